// examples/nginx/rtgw.conf in front of a real rtgw, with Debian's real nginx.
//
// Each case starts its own rtgw and nginx (run as the current user, on a free loopback
// port, with a generated nginx.conf wrapping the example in events{}/http{} and temp
// paths under a private tmpdir). Broken copies of the example (no Upgrade headers,
// buffered SSE, a short read timeout without pings, a prefix location shadowed by a
// catch-all regex) pin the failure signatures from the field reports, so `rtgw doctor`
// can recognise them.
//   node tests/proxy/nginx.mjs <case>     (RTGW_BIN, NGINX_BIN=/usr/sbin/nginx)
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, freePort, mint } from "../lib/gateway.mjs";
import { sub, publishVia, sse, checkWsThroughProxy } from "./common.mjs";

requireNodeModules("ws");
const { sleep, withTimeout, waitFor } = await import("../lib/wait.mjs");
const { connect } = await import("../lib/ws.mjs");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = path.join(root, "examples", "nginx", "rtgw.conf");
const NGINX_BIN = process.env.NGINX_BIN || "/usr/sbin/nginx";

// The body of one location block of the example (`= /v1/realtime/connect` etc.).
function editLocation(conf, header, fn) {
  const start = conf.indexOf(`location ${header} {`);
  if (start < 0) throw new Error(`no location ${header} in the example`);
  const end = conf.indexOf("\n    }\n", start);
  return conf.slice(0, start) + fn(conf.slice(start, end)) + conf.slice(end);
}

async function startNginx(t, gw, edit = (c) => c) {
  if (!fs.existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} is missing: run scripts/deps.sh test (Debian package nginx)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-nginx-"));
  fs.chmodSync(dir, 0o755); // as root, nginx's workers run as nobody and need to reach the temp paths
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let conf = fs.readFileSync(EXAMPLE, "utf8");
  conf = sub(conf, /server 127\.0\.0\.1:8288;/, `server 127.0.0.1:${gw.port};`);
  conf = sub(conf, /listen 80;/, `listen 127.0.0.1:${port};`);
  conf = edit(conf);
  fs.writeFileSync(path.join(dir, "rtgw.conf"), conf);
  fs.writeFileSync(path.join(dir, "nginx.conf"), `worker_processes 1;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/rtgw.conf;
}
`);
  const child = spawn(NGINX_BIN, ["-e", "stderr", "-p", `${dir}/`, "-c", `${dir}/nginx.conf`,
    "-g", `daemon off; pid ${dir}/nginx.pid; error_log stderr;`], { stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stdout.on("data", (d) => (logs += d));
  child.stderr.on("data", (d) => (logs += d));
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  // Stop the master by its PID: SIGTERM (workers exit with it); SIGKILL only if stuck.
  t.cleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const r = await Promise.race([exited, sleep(5000).then(() => null)]);
    if (!r) { child.kill("SIGKILL"); await exited; }
  });
  const ng = { port, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, dir, conf, logs: () => logs };
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}:\n${logs}\n--- rtgw.conf ---\n${conf}`);
    try { return (await fetch(`${ng.url}/health`)).status === 200; } catch { return false; }
  }, 10000, "nginx to proxy /health");
  return ng;
}

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw);
  await checkWsThroughProxy(t, gw, ng, "nginx");
});

defcase("sse_delivers_promptly", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw);
  const jwt = await mint(gw, [{ channel: "user:7", name: "status", kind: "run" }]);
  const s = await sse(`${ng.url}/v1/realtime/sse?token=${jwt}`, t);
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  await waitFor(() => s.frames.length >= 1, 2000, "the rtgw.subscribed ack through nginx");
  assert.equal(s.frames[0].msg.kind, "rtgw.subscribed");
  for (let i = 1; i <= 3; i++) {
    const sent = Date.now();
    const r = await publishVia(ng.url, gw, "user:7", "status", { i });
    assert.equal(r.status, 200);
    const f = await waitFor(() => s.frames.find((x) => x.msg.data?.i === i), 1000, `event ${i} within 1 s (buffering off)`);
    assert.ok(f.at - sent < 1000, `event ${i} took ${f.at - sent} ms`);
    await sleep(200);
  }
});

defcase("publish_batch_token_and_limits", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw);
  const jwt = await mint(gw, [{ channel: "c", name: "*", kind: "run" }]);
  const s = await sse(`${ng.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  // Hashed key, text body, run_id through nginx.
  const r1 = await publishVia(ng.url, gw, "c", "t", "plain text");
  assert.equal(r1.status, 200);
  const batch = await fetch(`${ng.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "c", topic: "t", data: 1 }, { channel: "c", topic: "*", data: 2 }]),
  });
  assert.equal(batch.status, 200);
  const bj = await batch.json();
  assert.equal(bj.published, 1);
  assert.equal(bj.failed, 1);
  // Idempotency-Key is passed through.
  const a = await publishVia(ng.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  const b = await publishVia(ng.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  assert.equal(b.body.duplicate, true);
  assert.deepEqual(b.body.ids, a.body.ids);
  await waitFor(() => s.frames.length >= 4, 2000, "3 events");
  assert.deepEqual(s.frames.slice(1).map((f) => f.msg.data), ["plain text", 1, "x"]);
  // Bodies over the limits: rtgw's own JSON 413 on publish; nginx's (made JSON by the
  // example's error_page) on the API location, whose client_max_body_size = 512k.
  const big = "x".repeat(600 * 1024);
  const p = await publishVia(ng.url, gw, "c", "t", big);
  assert.equal(p.status, 413);
  assert.equal(p.body.error, "body_too_large");
  assert.match(p.body.message, /RTGW_MAX_BODY_BYTES/);
  const tb = await fetch(`${ng.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: JSON.stringify([{ channel: "c", topic: "t", data: big }]),
  });
  assert.equal(tb.status, 413);
  assert.equal((await tb.json()).error, "body_too_large", "nginx's 413 is JSON with the same error name");
});

defcase("stream_publish_not_buffered", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw);
  const jwt = await mint(gw, [{ channel: "c", name: "ai", kind: "run" }]);
  const s = await sse(`${ng.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  // rtgw forwards a stream in reads of up to 1 KiB, so send more than that, then pause
  // before finishing: with proxy_request_buffering off the first chunk reaches the
  // subscriber while the request is still open.
  const u = new URL(`${ng.url}/v1/realtime/publish?channel=c&topic=ai`);
  const req = http.request(u, { method: "POST", headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream" } });
  const done = new Promise((res, rej) => {
    req.on("response", (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => res({ status: r.statusCode, body: JSON.parse(b) })); });
    req.on("error", rej);
  });
  t.cleanup(() => req.destroy());
  const first = "a".repeat(1500);
  req.write(first);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "chunk"), 3000, "a chunk before the stream ends");
  req.end("b".repeat(10));
  const r = await done;
  assert.equal(r.status, 200);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "datastream-end"), 2000, "datastream-end");
  const text = s.frames.filter((f) => f.msg.kind === "chunk").map((f) => f.msg.data).join("");
  assert.equal(text, first + "b".repeat(10));
  assert.equal(r.body.bytes, 1510);
});

defcase("idle_ws_kept_alive_by_pings", async (t) => {
  // A short proxy_read_timeout (3 s) in a test copy, rtgw pinging every second: an idle
  // WebSocket survives 6 s, because each ping resets nginx's timer.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const ng = await startNginx(t, gw, (c) => editLocation(c, "= /v1/realtime/connect", (b) =>
    sub(sub(b, "proxy_read_timeout 3600s;", "proxy_read_timeout 3s;"), "proxy_send_timeout 3600s;", "proxy_send_timeout 3s;")));
  assert.match(ng.conf, /proxy_read_timeout 3s;/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const c = await connect(`${ng.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  await sleep(6000);
  assert.equal(c.closeInfo, null, `closed while idle: ${JSON.stringify(c.closeInfo)}`);
  assert.ok(c.pings >= 4, `pings through nginx: ${c.pings}`);
  const r = await publishVia(ng.url, gw, "idle", "t", { after: "6s idle" });
  assert.equal(r.body.delivered, 1);
  assert.deepEqual((await c.next()).data, { after: "6s idle" });
});

defcase("idle_ws_dropped_without_pings", async (t) => {
  // The control, and the field reports' "disconnects every minute": the same 3 s
  // read timeout with rtgw's pings slower than it. nginx cuts the idle connection;
  // the client sees 1006 with no close frame. Signature: a close after ~timeout, 1006.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const ng = await startNginx(t, gw, (c) => editLocation(c, "= /v1/realtime/connect", (b) =>
    sub(b, "proxy_read_timeout 3600s;", "proxy_read_timeout 3s;")));
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const opened = Date.now();
  const c = await connect(`${ng.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const info = await withTimeout(c.closed, 10000, "nginx to drop the idle WebSocket");
  const after = Date.now() - opened;
  assert.equal(info.code, 1006, `close ${JSON.stringify(info)}`);
  assert.ok(after >= 2500 && after < 6000, `dropped after ${after} ms (timeout 3 s)`);
  assert.equal(c.pings, 0);
});

defcase("missing_upgrade_headers_fail", async (t) => {
  // The field reports' first cause: a location without the Upgrade/Connection headers.
  // nginx sends rtgw a plain GET; the WebSocket handshake fails with rtgw's HTTP reply.
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw, (c) => editLocation(c, "= /v1/realtime/connect", (b) => {
    b = sub(b, /\n\s*proxy_http_version 1\.1;/, "");
    b = sub(b, /\n\s*proxy_set_header Upgrade \$http_upgrade;/, "");
    return sub(b, /\n\s*proxy_set_header Connection \$connection_upgrade;/, "");
  }));
  assert.doesNotMatch(ng.conf.slice(ng.conf.indexOf("location = /v1/realtime/connect")), /^\s*proxy_set_header Upgrade/m);
  const jwt = await mint(gw, [{ channel: "c", name: "t", kind: "run" }]);
  for (const protocols of [undefined, ["rtgw.v1"]]) {
    const e = await connect(`${ng.ws}/v1/realtime/connect?token=${jwt}`, { protocols, t }).then(
      (c) => { c.close(); return null; }, (err) => err);
    assert.ok(e, "the WebSocket must not open without the Upgrade headers");
    // Signature for `rtgw doctor`: HTTP 426 with rtgw's JSON {"error":"upgrade_required"}
    // (a reply from rtgw itself, which saw a plain GET, not nginx's HTML).
    assert.equal(e.status, 426, `status ${e.status} ${e.body}`);
    assert.equal(JSON.parse(e.body).error, "upgrade_required");
  }
  // Everything else still works through the broken copy, which is why it goes unnoticed.
  const pub = await publishVia(ng.url, gw, "c", "t", 1);
  assert.equal(pub.status, 200, `publish through nginx: ${pub.status}\n--- nginx ---\n${ng.logs()}\n--- rtgw ---\n${gw.logs().slice(-3000)}`);
});

defcase("catch_all_regex_location", async (t) => {
  // A catch-all regex location placed first (e.g. an app's `location ~ /`) shadows
  // prefix locations, the "/ws must come BEFORE /api" trap. The example uses exact
  // (`=`) and `^~` locations, which regexes cannot take over.
  const gw = await startGateway(t);
  const catchAll = "    location ~ / { return 418; }\n\n    # ---- WebSocket: subscribe";
  const ok = await startNginx(t, gw, (c) => sub(c, "    # ---- WebSocket: subscribe", catchAll));
  const jwt = await mint(gw, [{ channel: "c", name: "t", kind: "run" }]);
  const c = await connect(`${ok.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  assert.equal((await publishVia(ok.url, gw, "c", "t", { ok: 1 })).status, 200);
  assert.deepEqual((await c.next()).data, { ok: 1 });
  const s = await sse(`${ok.url}/v1/realtime/sse?token=${jwt}`, t);
  assert.equal(s.status, 200);
  // The broken copy: the same locations written as plain prefixes lose to the regex.
  const broken = await startNginx(t, gw, (conf) => {
    conf = sub(conf, "    # ---- WebSocket: subscribe", catchAll);
    conf = sub(conf, "location = /v1/realtime/connect", "location /v1/realtime/connect");
    return sub(conf, "location ^~ /v1/realtime/", "location /v1/realtime/");
  });
  const e = await connect(`${broken.ws}/v1/realtime/connect?token=${jwt}`, { t }).catch((err) => err);
  assert.equal(e.status, 418, "the catch-all regex answered the WebSocket");
  assert.equal((await fetch(`${broken.url}/v1/realtime/token`, { method: "POST" })).status, 418);
});

defcase("sse_buffered_stalls", async (t) => {
  // The control for sse_delivers_promptly: buffering on and X-Accel-Buffering ignored.
  // Signature: the request hangs. nginx 1.22 sends not even the response headers
  // (nor the ack, nor events published meanwhile) until its buffer fills or the
  // upstream ends. A browser's EventSource sits in CONNECTING.
  const gw = await startGateway(t);
  const ng = await startNginx(t, gw, (c) => editLocation(c, "= /v1/realtime/sse", (b) =>
    sub(b, "proxy_buffering off;", "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;")));
  const jwt = await mint(gw, [{ channel: "b", name: "t", kind: "run" }]);
  let got = null;
  const req = http.get(`${ng.url}/v1/realtime/sse?token=${jwt}`, (res) => {
    got = { status: res.statusCode, bytes: 0 };
    res.on("data", (d) => (got.bytes += d.length));
  });
  req.on("error", () => {});
  t.cleanup(() => req.destroy());
  await waitFor(async () => (await fetch(`${gw.url}/health`).then((r) => r.json())).connections >= 1, 3000,
    "rtgw to hold the SSE connection (it answered; nginx holds the reply)");
  const r = await publishVia(ng.url, gw, "b", "t", { stalled: true });
  assert.equal(r.body.delivered, 1, "rtgw delivered the event to nginx");
  await sleep(1500);
  assert.equal(got, null, `nothing should reach the client while nginx buffers; got ${JSON.stringify(got)}`);
});

await run();
