// Leak check: `rtgw serve` under valgrind through a scripted session that
// touches every path a client can reach — connect, subscribe, publish, resume
// with since, refresh in band (accepted and refused), SSE, batch, stream
// publish, refusals, plain (non-extended) clients — then SIGTERM with clients
// still connected (the drain path). Asserts that valgrind reports zero bytes
// "definitely lost" and zero errors, with the suppressions in valgrind.supp.
// Against an ASan build the same session runs without valgrind and LeakSanitizer
// checks at exit (rtgw must exit 0).
//
//   node tests/hardening/leak.mjs session_valgrind
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { defcase, run, requireNodeModules, Skip } from "../lib/harness.mjs";
import { startGateway, mint as mintAny, publish as publishAny } from "../lib/gateway.mjs";
import { http as gwHttp, topic } from "../lib/http.mjs";
import { sanitizedBuild } from "../lib/proc.mjs";
import { sse } from "../lib/sse.mjs";
import { sleep, waitFor, withTimeout } from "../lib/wait.mjs";
import { connect } from "../lib/ws.mjs";

requireNodeModules("ws");
// Requests on connections of their own (no keep-alive socket outlives one), tokens
// for [channel, name] pairs, clients bounded for valgrind's pace.
const req = (gw, method, p, opts = {}) => gwHttp(gw, method, p, { ...opts, fresh: true });
const mint = (gw, pairs, opts = {}) => mintAny(gw, pairs.map(([c, n]) => topic(c, n)), { ttl: 600, ...opts, fresh: true });
const publish = (gw, channel, name, data, query = "") => publishAny(gw, channel, name, data, { query, fresh: true });
const wsClient = (url, opts = {}) => connect(url, { protocols: ["rtgw.v1"], ms: 15000, nextMs: 10000, ...opts });
const t0 = Date.now();
const step = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
const here = path.dirname(fileURLToPath(import.meta.url));

function streamPost(gw, parts) {
  return withTimeout(new Promise((resolve, reject) => {
    const r = http.request(`${gw.url}/v1/realtime/publish?channel=user:42&topic=ai`, {
      method: "POST", headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream" },
    }, (res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve({ status: res.statusCode, body: b }));
    });
    r.on("error", reject);
    (async () => { for (const p of parts) { r.write(p); await sleep(30); } r.end(); })();
  }), 30000, "stream publish");
}

defcase("session_valgrind", async (t) => {
  // RT_LEAK_NATIVE=1 runs the same session without valgrind (to tell a valgrind
  // artefact from a gateway bug).
  // Under an ASan build (make test-asan) LeakSanitizer does the check at exit:
  // rtgw must still exit 0.
  const native = !!process.env.RT_LEAK_NATIVE || sanitizedBuild();
  if (!native) {
    try { execFileSync("valgrind", ["--version"]); } catch { throw new Skip("valgrind is not installed"); }
  }
  const log = path.join(os.tmpdir(), `rtgw-valgrind-${process.pid}.log`);
  if (!process.env.RT_KEEP_LOG) t.cleanup(() => fs.rmSync(log, { force: true }));
  const gw = await startGateway(t, {
    startMs: 45000,
    wrap: native ? [] : ["valgrind", "--leak-check=full", "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
      "--num-callers=30", `--suppressions=${path.join(here, "valgrind.supp")}`, `--log-file=${log}`],
    env: { RTGW_LOG_LEVEL: "warn", RTGW_SHUTDOWN_TIMEOUT_MS: "3000", RTGW_MAX_CONNECTIONS: "32", RTGW_PING_INTERVAL_MS: "500",
      RTGW_ALLOWED_ORIGINS: "https://app.example.com" },
  });

  // connect + subscribe (extended), publish
  step("connect + subscribe (extended), publish");
  const tok = await mint(gw, [["user:42", "ai"], ["user:42", "b"], ["team:7", "*"]], { publish: true });
  const a = await wsClient(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(tok)}`);
  assert.equal((await a.next()).kind, "rtgw.subscribed");
  const plain = await wsClient(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(tok)}`, { protocols: [] });
  for (let i = 0; i < 3; i++) assert.equal((await publish(gw, "user:42", "ai", { i })).status, 200);
  let last;
  for (let i = 0; i < 3; i++) { last = await a.next(); assert.equal(last.data.i, i); }
  for (let i = 0; i < 3; i++) assert.equal((await plain.next()).data.i, i);
  a.close(); await a.closed;

  // resume with since: the two events published while away are replayed
  step("resume with since");
  for (let i = 3; i < 5; i++) assert.equal((await publish(gw, "user:42", "ai", { i }, "&idempotency_key=k" + i)).status, 200);
  assert.equal((await publish(gw, "user:42", "ai", { i: 4 }, "&idempotency_key=k4")).body.duplicate, true);
  const b = await wsClient(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(tok)}&since=${last.id}`);
  const ack = await b.next();
  assert.equal(ack.kind, "rtgw.subscribed");
  assert.equal(ack.channels["user:42"].recovered, true, JSON.stringify(ack));
  assert.equal((await b.next()).data.i, 3);
  assert.equal((await b.next()).data.i, 4);

  // refresh in band: a narrower token is accepted, a broader one and garbage are refused
  step("refresh in band");
  const narrow = await mint(gw, [["user:42", "ai"], ["team:7", "x"]]);
  b.ws.send(JSON.stringify({ kind: "rtgw.refresh", token: narrow }));
  assert.equal((await b.next()).kind, "rtgw.refreshed");
  const broad = await mint(gw, [["other", "ai"]]);
  b.ws.send(JSON.stringify({ kind: "rtgw.refresh", token: broad }));
  assert.equal((await b.next()).error, "refresh_broader_grant");
  b.ws.send("not json");
  assert.equal((await b.next()).kind, "rtgw.error");
  b.ws.send(JSON.stringify({ kind: "rtgw.refresh", token: "a.b.c" }));
  assert.equal((await b.next()).kind, "rtgw.error");

  // SSE: the ack and one event
  step("SSE");
  const s = await sse(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(tok)}`, t, { ms: 30000 });
  await sleep(500);
  await publish(gw, "user:42", "b", { sse: true });
  await waitFor(() => s.frames.length >= 2, 30000, "SSE records");
  s.req.destroy();
  assert.equal(s.status, 200);
  assert.equal(s.frames[0].msg.kind, "rtgw.subscribed");

  // batch (one event refused), stream publish
  step("batch (one event refused)");
  const batch = await req(gw, "POST", "/v1/realtime/publish/batch", {
    key: gw.key, headers: { "Content-Type": "application/json" },
    body: JSON.stringify([{ channel: "user:42", topic: "ai", data: 5 }, { channel: "team:7", topic: "s", data: "x" },
      { channel: "user:42", topic: "*" }]),
  });
  assert.equal(batch.status, 200);
  assert.equal(batch.json.published, 2);
  assert.equal((await b.next()).data, 5);
  const st = await streamPost(gw, ["hello ", "stream ", "world"]);
  assert.equal(st.status, 200);
  const kinds = [];
  for (;;) { const m = await b.next(); kinds.push(m.kind); if (m.kind === "datastream-end") break; }
  assert.equal(kinds[0], "datastream-start");

  // refusals
  step("refusals");
  assert.equal((await publish(gw, "user:42", "*", {})).status, 400);
  assert.equal((await req(gw, "POST", "/v1/realtime/publish?channel=c&topic=t", { key: "signkey-test-00", body: "x" })).status, 401);
  assert.equal((await req(gw, "POST", "/v1/realtime/token", { key: gw.key, body: "[" })).status, 400);
  await assert.rejects(wsClient(`${gw.ws}/v1/realtime/connect?token=bad`, { protocols: [] }), /401/);
  const refused = await wsClient(`${gw.ws}/v1/realtime/connect?token=bad`);
  assert.equal((await refused.closed).code, 4402);
  const badSince = await wsClient(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(tok)}&since=zz`);
  assert.equal((await badSince.closed).code, 4400);
  assert.equal((await req(gw, "GET", "/v1/realtime/connect")).status, 426);
  assert.equal((await req(gw, "GET", "/nope")).status, 404);
  assert.equal((await req(gw, "GET", "/health")).status, 200);
  assert.equal((await req(gw, "GET", "/metrics")).status, 200);

  // SIGTERM with b and plain still connected: closing frame, then exit
  step("SIGTERM with b");
  const res = await withTimeout(gw.stop("SIGTERM"), 45000, "rtgw exit after SIGTERM").catch((e) => {
    // Where it is stuck: every thread's stack (through vgdb under valgrind).
    const attach = native ? ["-p", String(gw.pid)] : ["-ex", `target remote | vgdb --pid=${gw.pid}`];
    try { console.error(execFileSync("gdb", ["-batch", ...attach, "-ex", "thread apply all bt"], { encoding: "utf8", timeout: 60000 })); } catch (g) { console.error(`gdb: ${g.message}`); }
    throw e;
  });
  if (native) return;
  assert.equal(res.code, 0, `rtgw exited ${res.code}/${res.signal}\n${gw.logs()}`);
  await withTimeout(b.closed, 5000, "b closed");
  await withTimeout(waitForFile(log, /ERROR SUMMARY/), 10000, "valgrind summary");
  const text = fs.readFileSync(log, "utf8");
  const definitely = text.match(/definitely lost: ([\d,]+) bytes in ([\d,]+) blocks/);
  const errors = text.match(/ERROR SUMMARY: (\d+) errors from (\d+) contexts/);
  const suppressed = text.match(/suppressed: ([\d,]+) bytes in ([\d,]+) blocks/);
  console.log(`valgrind: definitely lost ${definitely ? definitely[1] : 0} bytes; ` +
    `errors ${errors[1]}; suppressed ${suppressed ? suppressed[1] : 0} bytes`);
  if ((definitely && definitely[1] !== "0") || errors[1] !== "0") {
    console.error(text.split("\n").filter((l) => /^==\d+==/.test(l)).slice(-300).join("\n"));
    assert.fail(`valgrind found leaks or errors (log above; full log ${log})`);
  }
});

async function waitForFile(file, re) {
  for (;;) {
    if (fs.existsSync(file) && re.test(fs.readFileSync(file, "utf8"))) return;
    await sleep(100);
  }
}

// Under CTest the case has 120 s (tests/hardening/CMakeLists.txt).
process.env.RT_CASE_TIMEOUT_MS ||= "110000";
await run();
