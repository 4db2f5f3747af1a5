// The rtgw command line against real gateways: keygen, token, publish and
// subscribe (sdk/c underneath), and examples/worker-c. Every CLI process runs
// in an empty temporary directory (so no stray .env is read) with a bounded
// lifetime; every gateway listens on loopback.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { defcase, run } from "../lib/harness.mjs";
import { RTGW_BIN, startGateway, freePort, publish } from "../lib/gateway.mjs";
import { topic } from "../lib/http.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { sleep, waitFor, withTimeout } from "../lib/wait.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";


// Runs a command to completion (or kills it after ms); resolves { code, stdout, stderr, ms }.
function exec(bin, args, { env = {}, input, ms = 15000, t } = {}) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-cli-"));
  const child = spawn(bin, args, { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const t0 = Date.now();
  const proc = {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    done: new Promise((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), ms);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        fs.rmSync(cwd, { recursive: true, force: true });
        resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
      });
    }),
  };
  if (t) t.cleanup(() => { if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); });
  if (typeof input === "string") child.stdin.end(input);
  else if (input !== "keep-open") child.stdin.end();
  return proc;
}
const rtgw = (args, opts) => exec(RTGW_BIN, args, opts).done;

// An extended-protocol subscriber (sees stream frames); returns after the ack.
async function extSub(t, gw, channel = "user:42", topics = ["ai"]) {
  const jwt = await (await fetch(`${gw.url}/v1/realtime/token`, {
    method: "POST",
    headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify(topics.map((n) => topic(channel, n))),
  })).json();
  const sub = await connect(wsUrl(gw, jwt.jwt), { t, protocols: ["rtgw.v1"] });
  assert.equal((await sub.next(3000, "ack")).kind, "rtgw.subscribed");
  return sub;
}

const lines = (s) => s.split("\n").filter(Boolean).map((l) => JSON.parse(l));

// ---- keygen / token ---------------------------------------------------------------

defcase("version_and_help_flags", async () => {
  // `rtgw --version` used to be taken for `rtgw serve --version` (exit 2).
  for (const args of [["version"], ["--version"]]) {
    const r = await rtgw(args);
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /^rtgw \d+\.\d+\.\d+ /);
  }
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = await rtgw(args);
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: rtgw \[command\]/);
  }
  const bad = await rtgw(["frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'frobnicate'/);
});

defcase("keygen_prints_valid_key", async () => {
  const a = await rtgw(["keygen"]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /^signkey-prod-[0-9a-f]{64}\n$/);
  const b = await rtgw(["keygen", "--env", "staging_2"]);
  assert.match(b.stdout, /^signkey-staging_2-[0-9a-f]{64}\n$/);
  assert.notEqual(a.stdout, (await rtgw(["keygen"])).stdout, "keys are random");
  // The key is accepted by a gateway.
  const gw = await startGateway(null, { key: b.stdout.trim() });
  try {
    const r = await publish(gw, "c", "t", 1);
    assert.equal(r.status, 200);
  } finally { await gw.kill9(); }
});

defcase("keygen_env_validation", async () => {
  for (const env of ["Prod", "a-b", "", "x".repeat(65)]) {
    const r = await rtgw(["keygen", "--env", env]);
    assert.equal(r.code, 2, `--env '${env}': ${r.stderr}`);
    assert.match(r.stderr, /environment must be 1-64 characters of \[a-z0-9_\]/);
    assert.equal(r.stdout, "");
  }
  assert.equal((await rtgw(["keygen", "--bogus"])).code, 2);
  const h = await rtgw(["keygen", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: rtgw keygen/);
});

defcase("token_happy_path_and_explain", async (t) => {
  const gw = await startGateway(t);
  const r = await rtgw(["token", "--channel", "user:42", "--topic", "ai", "--topic", "status", "--explain"], { env: { RTGW_SIGNING_KEY: gw.key } });
  assert.equal(r.code, 0, r.stderr);
  const jwt = r.stdout.trim();
  assert.match(jwt, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.match(r.stderr, /alg=HS256 iss=rtgw sub=user:42 env=test/);
  assert.match(r.stderr, /topic channel=user:42 name=ai kind=run/);
  assert.match(r.stderr, /topic channel=user:42 name=status kind=run/);
  assert.doesNotMatch(r.stderr, new RegExp(gw.key), "the key is never printed");
  // The gateway accepts it and subscribes to exactly those topics.
  const sub = await connect(wsUrl(gw, jwt), { t, protocols: ["rtgw.v1"] });
  const ack = await sub.next(3000, "ack");
  assert.deepEqual(ack.topics, [{ channel: "user:42", name: "ai" }, { channel: "user:42", name: "status" }]);
});

defcase("token_bad_key", async () => {
  for (const env of [{ RTGW_SIGNING_KEY: "not-a-key" }, { RTGW_SIGNING_KEY: "signkey-prod-abc" }, {}]) {
    const r = await rtgw(["token", "--channel", "c", "--topic", "t"], { env });
    assert.equal(r.code, 2, `${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, /RTGW_SIGNING_KEY/);
    assert.equal(r.stdout, "");
  }
});

defcase("token_bad_args", async () => {
  const env = { RTGW_SIGNING_KEY: (await rtgw(["keygen"])).stdout.trim() };
  for (const args of [[], ["--channel", "c"], ["--topic", "t"], ["--channel", "c", "--topic", "t", "--ttl", "x"],
    ["--channel", "c", "--topic", "t", "--ttl", "-5"], ["--channel", "c", "--topic", "t", "--nope"], ["--channel"]]) {
    const r = await rtgw(["token", ...args], { env });
    assert.equal(r.code, 2, `token ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /rtgw token: /);
  }
  // A ttl beyond RTGW_TOKEN_MAX_TTL is a usage error too, named.
  const r = await rtgw(["token", "--channel", "c", "--topic", "t", "--ttl", "999999"], { env });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /token_lifetime_too_long/);
});

// ---- publish --------------------------------------------------------------------------

defcase("publish_data_file_stdin", async (t) => {
  const gw = await startGateway(t);
  const sub = await extSub(t, gw);
  const env = { RTGW_SIGNING_KEY: gw.key };
  const base = ["publish", "--url", gw.url, "--channel", "user:42", "--topic", "ai"];

  const a = await rtgw([...base, "--data", '{"status":"step","step":1}', "--run-id", "r1", "--fn-id", "f1"], { env });
  assert.equal(a.code, 0, a.stderr);
  const ra = JSON.parse(a.stdout);
  assert.equal(ra.ok, true);
  assert.equal(ra.ids.length, 1);
  const ma = await sub.next(3000, "the --data event");
  assert.deepEqual(ma.data, { status: "step", step: 1 });
  assert.equal(ma.run_id, "r1");
  assert.equal(ma.fn_id, "f1");
  assert.equal(ma.id, ra.ids[0]);

  const dir = tmpDir(t, "rtgw-cli-file-");
  const file = path.join(dir, "body.json");
  fs.writeFileSync(file, '{"from":"file","n":[1,2,3]}\n');
  const b = await rtgw([...base, "--file", file], { env });
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual((await sub.next(3000, "the --file event")).data, { from: "file", n: [1, 2, 3] });

  const c = await rtgw(base, { env, input: "plain text from stdin ✓" });
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await sub.next(3000, "the stdin event")).data, "plain text from stdin ✓");

  // Idempotency: the retry publishes nothing and returns the original ids.
  const k = [...base, "--data", '"once"', "--idempotency-key", "run-1-final"];
  const d1 = JSON.parse((await rtgw(k, { env })).stdout);
  const d2 = JSON.parse((await rtgw(k, { env })).stdout);
  assert.deepEqual(d2.ids, d1.ids);
  assert.equal(d2.duplicate, true);
  assert.equal((await sub.next(3000, "the idempotent event")).data, "once");
  assert.deepEqual(await sub.quiet(300), [], "the retry delivered nothing");
});

defcase("publish_stream", async (t) => {
  const gw = await startGateway(t);
  const sub = await extSub(t, gw);
  const text = "Streaming ünïcode, then more text. ".repeat(100); // > 1 KiB: several chunks
  const r = await rtgw(["publish", "--url", gw.url, "--channel", "user:42", "--topic", "ai", "--stream", "--run-id", "r9"],
    { env: { RTGW_SIGNING_KEY: gw.key }, input: text });
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.ok, true);
  assert.equal(res.bytes, Buffer.byteLength(text));
  const start = await sub.next(3000, "datastream-start");
  assert.equal(start.kind, "datastream-start");
  assert.equal(start.stream_id, res.stream_id);
  assert.equal(start.run_id, "r9");
  let got = "", chunks = 0, m;
  while ((m = await sub.next(3000, "chunks")).kind === "chunk") { got += m.data; chunks++; }
  assert.equal(m.kind, "datastream-end");
  assert.equal(got, text);
  assert.equal(chunks, res.chunks);
  assert.ok(chunks >= 2, `several chunks (${chunks})`);
  // --data --stream works too.
  const r2 = await rtgw(["publish", "--url", gw.url, "--channel", "user:42", "--topic", "ai", "--stream", "--data", "short"],
    { env: { RTGW_SIGNING_KEY: gw.key } });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal((await sub.next()).kind, "datastream-start");
  assert.equal((await sub.next()).data, "short");
  assert.equal((await sub.next()).kind, "datastream-end");
});

defcase("publish_with_token", async (t) => {
  const gw = await startGateway(t);
  const sub = await extSub(t, gw);
  const mintTok = async (pub) => (await rtgw(["token", "--channel", "user:42", "--topic", "ai", ...(pub ? ["--publish"] : [])],
    { env: { RTGW_SIGNING_KEY: gw.key } })).stdout.trim();
  const ok = await rtgw(["publish", "--url", gw.url, "--channel", "user:42", "--topic", "ai", "--data", "1", "--token", await mintTok(true)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((await sub.next()).data, 1);
  // A subscribe-only token may not publish: 403 with the gateway's error name.
  const no = await rtgw(["publish", "--url", gw.url, "--channel", "user:42", "--topic", "ai", "--data", "1", "--token", await mintTok(false)]);
  assert.equal(no.code, 1);
  assert.match(no.stderr, /403/);
  assert.match(no.stderr, /topic_not_allowed|forbidden|publish/);
});

defcase("publish_wrong_key", async (t) => {
  const gw = await startGateway(t);
  const other = (await rtgw(["keygen", "--env", "test"])).stdout.trim();
  const r = await rtgw(["publish", "--url", gw.url, "--channel", "c", "--topic", "t", "--data", "x"], { env: { RTGW_SIGNING_KEY: other } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /401 unauthorized/);
  assert.equal(r.stdout, "");
  assert.doesNotMatch(r.stderr, new RegExp(other.slice(14)), "no key material in messages");
});

defcase("publish_unreachable", async () => {
  const port = await freePort(); // nothing listens there
  const key = (await rtgw(["keygen"])).stdout.trim();
  const r = await rtgw(["publish", "--url", `http://127.0.0.1:${port}`, "--channel", "c", "--topic", "t", "--data", "x"], { env: { RTGW_SIGNING_KEY: key } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /unreachable: cannot connect to 127\.0\.0\.1:\d+/);
  assert.match(r.stderr, /Connection refused/);
});

defcase("publish_bad_args", async () => {
  const env = { RTGW_SIGNING_KEY: (await rtgw(["keygen"])).stdout.trim() };
  for (const args of [[], ["--channel", "c"], ["--topic", "t"], ["--channel", "c", "--topic", "t", "--data", "x", "--file", "/etc/hostname"],
    ["--channel", "c", "--topic", "t", "--bogus"], ["--channel", "c", "--topic"],
    ["--channel", "c", "--topic", "t", "--data", "x", "--url", "ftp://127.0.0.1:1"],
    ["--channel", "c", "--topic", "t", "--file", "/nonexistent/body"]]) {
    const r = await rtgw(["publish", ...args], { env });
    assert.equal(r.code, 2, `publish ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /rtgw publish: /);
  }
  // No credential at all: a configuration error naming the variable.
  const r = await rtgw(["publish", "--channel", "c", "--topic", "t", "--data", "x"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /RTGW_SIGNING_KEY/);
  const h = await rtgw(["publish", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: rtgw publish/);
});

// ---- subscribe --------------------------------------------------------------------------

defcase("subscribe_count_json_lines", async (t) => {
  const gw = await startGateway(t);
  const p = exec(RTGW_BIN, ["subscribe", "--url", gw.url, "--channel", "user:42", "--topic", "ai", "--topic", "b", "--count", "3"],
    { env: { RTGW_SIGNING_KEY: gw.key }, t });
  await waitFor(() => /connected/.test(p.stderr()), 5000, "subscribe connected");
  await publish(gw, "user:42", "ai", { n: 1 });
  await publish(gw, "user:42", "other", { n: "not granted" });
  await publish(gw, "user:42", "b", "two");
  await publish(gw, "user:42", "ai", { n: 3 }, { query: "&run_id=r3" });
  const r = await p.done;
  assert.equal(r.code, 0, r.stderr);
  const evs = lines(r.stdout);
  assert.equal(evs.length, 3);
  assert.deepEqual(evs.map((e) => e.data), [{ n: 1 }, "two", { n: 3 }]);
  assert.deepEqual(evs.map((e) => e.topic), ["ai", "b", "ai"]);
  assert.equal(evs[2].run_id, "r3");
  for (const e of evs) assert.equal(e.kind, "data");
  assert.match(r.stderr, /connected: channels=1 fresh/);
});

defcase("subscribe_since_replays", async (t) => {
  const gw = await startGateway(t);
  const ids = [];
  for (const n of [1, 2, 3]) ids.push((await publish(gw, "c", "t", { n })).body.ids[0]);
  const r = await rtgw(["subscribe", "--url", gw.url, "--channel", "c", "--topic", "t", "--since", ids[0], "--count", "2"],
    { env: { RTGW_SIGNING_KEY: gw.key } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(r.stdout).map((e) => e.id), ids.slice(1));
  assert.match(r.stderr, /connected: channels=1 resumed\n/);
});

defcase("subscribe_resumes_lossless_after_disconnect", async (t) => {
  // Tokens minted by the CLI live 2 s and the gateway closes expired
  // connections (4409): the CLI reconnects with a fresh token and since=, and
  // events published while it was away are replayed — nothing lost, no duplicate.
  // (2 s, not 1: a 1 s token minted late in a second can expire before a loaded
  // machine admits it, and then every attempt is refused.)
  const gw = await startGateway(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_CLOCK_LEEWAY: "0" } });
  const p = exec(RTGW_BIN, ["subscribe", "--url", gw.url, "--channel", "c", "--topic", "t", "--count", "30"],
    { env: { RTGW_SIGNING_KEY: gw.key, RTGW_TOKEN_TTL: "2" }, t, ms: 25000 });
  await waitFor(() => /connected/.test(p.stderr()), 5000, "subscribe connected");
  const sent = [];
  for (let i = 0; i < 30; i++) {
    sent.push((await publish(gw, "c", "t", { i })).body.ids[0]);
    await sleep(170);
  }
  const r = await p.done;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  assert.deepEqual(lines(r.stdout).map((e) => e.id), sent, "every event exactly once, in order");
  assert.match(r.stderr, /disconnected: 4409 token_expired/);
  assert.match(r.stderr, /connected: channels=1 resumed\n/);
  assert.doesNotMatch(r.stderr, /not recovered/);
});

defcase("subscribe_gateway_restart_not_recovered", async (t) => {
  const port = await freePort();
  const key = (await rtgw(["keygen", "--env", "test"])).stdout.trim();
  let gw = await startGateway(t, { port, key, env: { RTGW_SHUTDOWN_TIMEOUT_MS: "500" } });
  const p = exec(RTGW_BIN, ["subscribe", "--url", gw.url, "--channel", "c", "--topic", "t", "--count", "3", "--timeout", "20"],
    { env: { RTGW_SIGNING_KEY: key }, t, ms: 25000 });
  await waitFor(() => /connected/.test(p.stderr()), 5000, "subscribe connected");
  await publish(gw, "c", "t", "before");
  await waitFor(() => /before/.test(p.stdout()), 3000, "the first event");
  await gw.stop(); // SIGTERM: closing frame, 1001; the memory bus loses history
  await waitFor(() => /reconnecting/.test(p.stderr()), 5000, "a reconnect attempt");
  await sleep(300);
  gw = await startGateway(t, { port, key });
  await waitFor(() => /not recovered/.test(p.stderr()), 10000, "the not-recovered report");
  await publish(gw, "c", "t", "after-1");
  await publish(gw, "c", "t", "after-2");
  const r = await p.done;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(r.stdout).map((e) => e.data), ["before", "after-1", "after-2"]);
  assert.match(r.stderr, /disconnected: 1001 shutting_down/);
  assert.match(r.stderr, /not recovered: channel c/);
  assert.match(r.stderr, /"recovered":false/);
});

defcase("subscribe_bad_token", async (t) => {
  const gw = await startGateway(t);
  const other = await startGateway(t);
  const foreign = (await rtgw(["token", "--channel", "c", "--topic", "t"], { env: { RTGW_SIGNING_KEY: other.key } })).stdout.trim();
  for (const [tok, re] of [["not.a.token", /token_invalid: token_(malformed|bad_base64|bad_json)/], [foreign, /token_invalid: token_unknown_kid/]]) {
    const r = await rtgw(["subscribe", "--url", gw.url, "--token", tok, "--timeout", "5"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /refused by the gateway: 4402 /);
    assert.match(r.stderr, re);
    assert.ok(r.ms < 5000, `refusals are not retried (${r.ms} ms)`);
  }
  // A key that is not the gateway's: locally minted tokens are refused the same way.
  const r = await rtgw(["subscribe", "--url", gw.url, "--channel", "c", "--topic", "t"], { env: { RTGW_SIGNING_KEY: other.key } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /4402 token_invalid: token_unknown_kid/);
});

defcase("subscribe_unreachable", async () => {
  const port = await freePort();
  const key = (await rtgw(["keygen"])).stdout.trim();
  const r = await rtgw(["subscribe", "--url", `http://127.0.0.1:${port}`, "--channel", "c", "--topic", "t", "--timeout", "2"], { env: { RTGW_SIGNING_KEY: key } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /unreachable: cannot connect to 127\.0\.0\.1:\d+.*gave up after 2000 ms/);
  assert.match(r.stderr, /reconnecting: in \d+ ms/);
  assert.ok(r.ms >= 1900 && r.ms < 6000, `gave up after ~2 s (${r.ms} ms)`);
});

defcase("subscribe_bad_args", async () => {
  const env = { RTGW_SIGNING_KEY: (await rtgw(["keygen"])).stdout.trim() };
  for (const args of [[], ["--channel", "c"], ["--topic", "t"], ["--channel", "c", "--topic", "t", "--count", "0"],
    ["--channel", "c", "--topic", "t", "--count", "x"], ["--channel", "c", "--topic", "t", "--timeout", "-1"],
    ["--channel", "c", "--topic", "t", "--url", "ws://127.0.0.1:1"], ["--channel", "c", "--topic", "t", "--what"],
    ["--channel", "c", "--topic"], ["--channel", "", "--topic", "t"]]) {
    const r = await rtgw(["subscribe", ...args], { env });
    assert.equal(r.code, 2, `subscribe ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /rtgw subscribe: /);
  }
  const r = await rtgw(["subscribe", "--channel", "c", "--topic", "t"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /RTGW_SIGNING_KEY/);
  const h = await rtgw(["subscribe", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: rtgw subscribe/);
});

defcase("subscribe_sigterm_exits_0", async (t) => {
  const gw = await startGateway(t);
  const p = exec(RTGW_BIN, ["subscribe", "--url", gw.url, "--channel", "c", "--topic", "t"], { env: { RTGW_SIGNING_KEY: gw.key }, t });
  await waitFor(() => /connected/.test(p.stderr()), 5000, "subscribe connected");
  await publish(gw, "c", "t", 1);
  await waitFor(() => p.stdout().length, 3000, "an event");
  p.child.kill("SIGTERM");
  const r = await withTimeout(p.done, 5000, "exit after SIGTERM");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lines(r.stdout).length, 1);
});

// ---- examples/worker-c ----------------------------------------------------------------

defcase("worker_c_lifecycle", async (t) => {
  const bin = process.env.WORKER_C_BIN;
  assert.ok(bin && fs.existsSync(bin), `WORKER_C_BIN (${bin}) is the built examples/worker-c`);
  const gw = await startGateway(t);
  const sub = await extSub(t, gw, "user:7", ["ai"]);
  const r = await exec(bin, ["--url", gw.url, "--channel", "user:7", "--topic", "ai", "--run-id", "run-77", "--delay-ms", "20"],
    { env: { RTGW_SIGNING_KEY: gw.key } }).done;
  assert.equal(r.code, 0, r.stderr);
  const got = [];
  for (;;) {
    const m = await sub.next(3000, "lifecycle events");
    got.push(m);
    if (m.kind === "data" && m.data.status === "finished") break;
  }
  const shape = got.map((m) => (m.kind === "data" ? `${m.data.status}${m.data.step ?? ""}` : m.kind));
  const compact = shape.filter((s, i) => !(s === "chunk" && shape[i - 1] === "chunk"));
  assert.deepEqual(compact, ["started", "step1", "step2", "step3", "datastream-start", "chunk", "datastream-end", "finished"]);
  assert.equal(got.filter((m) => m.kind === "chunk").map((m) => m.data).join(""), "The answer is forty-two.");
  for (const m of got) {
    assert.equal(m.run_id, "run-77");
    assert.equal(m.fn_id, "worker-c");
  }
  // Ids increase within the channel's epoch: the order is the publish order.
  const offs = got.map((m) => Number(m.id.split("-").pop()));
  assert.deepEqual(offs, [...offs].sort((a, b) => a - b));
  // Running it again for the same run publishes no duplicate lifecycle events
  // (Idempotency-Key per event); only the stream, which has none, repeats.
  const again = await exec(bin, ["--url", gw.url, "--channel", "user:7", "--topic", "ai", "--run-id", "run-77", "--delay-ms", "0"],
    { env: { RTGW_SIGNING_KEY: gw.key } }).done;
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /started .*\(duplicate\)/);
  const extra = await sub.quiet(500);
  assert.ok(extra.every((m) => m.kind !== "data"), `no data event repeats: ${JSON.stringify(extra.map((m) => m.kind))}`);
});

await run();
