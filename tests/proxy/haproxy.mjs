// examples/haproxy/haproxy.cfg in front of a real rtgw, with Debian's real haproxy (2.6).
//
// Each case starts its own rtgw and haproxy (`haproxy -db -f <copy>`, in the foreground,
// as the current user, on a free loopback port). Test copies of the example shorten the
// timeouts or take `timeout tunnel` out, to pin what each line does and what the broken
// configurations look like.
//   node tests/proxy/haproxy.mjs <case>     (RTGW_BIN, HAPROXY_BIN=/usr/sbin/haproxy)
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, freePort, mint } from "../lib/gateway.mjs";
import { sub, publishVia, sse, startProxyProcess, checkStreamNotBuffered, checkWsThroughProxy } from "./common.mjs";

requireNodeModules("ws");
const { sleep, withTimeout, waitFor } = await import("../lib/wait.mjs");
const { connect } = await import("../lib/ws.mjs");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = path.join(root, "examples", "haproxy", "haproxy.cfg");
const HAPROXY_BIN = process.env.HAPROXY_BIN || "/usr/sbin/haproxy";

async function startHaproxy(t, gw, edit = (c) => c) {
  if (!fs.existsSync(HAPROXY_BIN)) throw new Error(`${HAPROXY_BIN} is missing: run scripts/deps.sh test (Debian package haproxy)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-haproxy-"));
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let conf = fs.readFileSync(EXAMPLE, "utf8");
  conf = sub(conf, /^    maxconn 20000$/m, "    maxconn 1000"); // within a CI container's fd limit
  conf = sub(conf, /^    bind :80$/m, `    bind 127.0.0.1:${port}`);
  conf = sub(conf, /server rtgw1 127\.0\.0\.1:8288 /, `server rtgw1 127.0.0.1:${gw.port} `);
  conf = edit(conf);
  const file = path.join(dir, "haproxy.cfg");
  fs.writeFileSync(file, conf);
  const p = await startProxyProcess(t, "haproxy", HAPROXY_BIN, ["-db", "-f", file], { env: { PATH: process.env.PATH }, cwd: dir });
  const hp = { port, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, dir, conf, logs: p.logs, child: p.child };
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`haproxy exited ${p.child.exitCode}:\n${p.logs()}\n--- haproxy.cfg ---\n${conf}`);
    try { return (await fetch(`${hp.url}/health`)).status === 200; } catch { return false; }
  }, 10000, "haproxy to proxy /health");
  return hp;
}

// `timeout client` and `timeout server` (and `timeout tunnel`, if asked) cut to `s` seconds.
const shortTimeouts = (s, { tunnel = true } = {}) => (c) => {
  c = sub(sub(c, "timeout client 60s", `timeout client ${s}s`), "timeout server 60s", `timeout server ${s}s`);
  return tunnel ? sub(c, "timeout tunnel 1h", `timeout tunnel ${s}s`) : c;
};
const withoutTunnelTimeout = (c) => sub(c, /\n    timeout tunnel 1h\n/, "\n");

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", async (t) => {
  const gw = await startGateway(t);
  const hp = await startHaproxy(t, gw);
  await checkWsThroughProxy(t, gw, hp, "haproxy");
  assert.equal((await fetch(`${hp.url}/metrics`)).status, 200, "/metrics answers loopback");
  // Paths that are not rtgw's go to no backend here (your app's, in production).
  assert.equal((await fetch(`${hp.url}/realtime/v1/realtime/connect`)).status, 503);
});

defcase("sse_delivers_promptly", async (t) => {
  const gw = await startGateway(t);
  const hp = await startHaproxy(t, gw);
  const jwt = await mint(gw, [{ channel: "user:7", name: "status", kind: "run" }]);
  const s = await sse(`${hp.url}/v1/realtime/sse?token=${jwt}`, t);
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  await waitFor(() => s.frames.length >= 1, 2000, "the rtgw.subscribed ack through haproxy");
  assert.equal(s.frames[0].msg.kind, "rtgw.subscribed");
  for (let i = 1; i <= 3; i++) {
    const sent = Date.now();
    const r = await publishVia(hp.url, gw, "user:7", "status", { i });
    assert.equal(r.status, 200);
    const f = await waitFor(() => s.frames.find((x) => x.msg.data?.i === i), 1000, `event ${i} within 1 s`);
    assert.ok(f.at - sent < 1000, `event ${i} took ${f.at - sent} ms`);
    await sleep(200);
  }
});

defcase("publish_batch_token_and_limits", async (t) => {
  const gw = await startGateway(t);
  const hp = await startHaproxy(t, gw);
  const jwt = await mint(gw, [{ channel: "c", name: "*", kind: "run" }]);
  const s = await sse(`${hp.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  assert.equal((await publishVia(hp.url, gw, "c", "t", "plain text")).status, 200);
  const batch = await fetch(`${hp.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "c", topic: "t", data: 1 }, { channel: "c", topic: "*", data: 2 }]),
  });
  assert.equal(batch.status, 200);
  const bj = await batch.json();
  assert.equal(bj.published, 1);
  assert.equal(bj.failed, 1);
  const a = await publishVia(hp.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  const b = await publishVia(hp.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  assert.equal(b.body.duplicate, true, "Idempotency-Key passes through haproxy");
  assert.deepEqual(b.body.ids, a.body.ids);
  await waitFor(() => s.frames.length >= 4, 2000, "3 events");
  assert.deepEqual(s.frames.slice(1).map((f) => f.msg.data), ["plain text", 1, "x"]);
  // Over the limits: rtgw's own JSON 413 on publish…
  const big = "x".repeat(600 * 1024);
  const p = await publishVia(hp.url, gw, "c", "t", big);
  assert.equal(p.status, 413);
  assert.equal(p.body.error, "body_too_large");
  assert.match(p.body.message, /RTGW_MAX_BODY_BYTES/);
  // …and haproxy's `http-request return status 413` on the rest of the API, before rtgw.
  const metric = async () => (await (await fetch(`${gw.url}/metrics`)).text()).match(/^rtgw_publish_requests_total (\d+)/m)?.[1];
  const before = await metric();
  const tb = await fetch(`${hp.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: JSON.stringify([{ channel: "c", topic: "t", data: big }]),
  });
  assert.equal(tb.status, 413);
  assert.match(tb.headers.get("content-type"), /^application\/json/);
  assert.equal((await tb.json()).error, "body_too_large", "haproxy's 413 is JSON with rtgw's error name");
  assert.equal(await metric(), before, "the oversized batch did not reach rtgw");
  // API calls in a row on one client connection (fetch keeps it alive): with
  // http-server-close each gets its own connection to rtgw.
  for (let i = 0; i < 20; i++) assert.equal((await publishVia(hp.url, gw, "c", "t", i)).status, 200);
});

defcase("stream_publish_not_buffered", async (t) => {
  const gw = await startGateway(t);
  const hp = await startHaproxy(t, gw);
  await checkStreamNotBuffered(t, gw, hp.url, "no http-buffer-request");
});

defcase("idle_ws_kept_alive_by_pings", async (t) => {
  // All timeouts (client, server, tunnel) cut to 3 s in a test copy, rtgw pinging every
  // second: an idle WebSocket survives 6 s, because every ping resets the tunnel timer.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const hp = await startHaproxy(t, gw, shortTimeouts(3));
  assert.match(hp.conf, /timeout tunnel 3s/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const c = await connect(`${hp.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  await sleep(6000);
  assert.equal(c.closeInfo, null, `closed while idle: ${JSON.stringify(c.closeInfo)}`);
  assert.ok(c.pings >= 4, `pings through haproxy: ${c.pings}`);
  const r = await publishVia(hp.url, gw, "idle", "t", { after: "6s idle" });
  assert.equal(r.body.delivered, 1);
  assert.deepEqual((await c.next()).data, { after: "6s idle" });
});

defcase("idle_ws_survives_client_timeout_with_tunnel", async (t) => {
  // `timeout client`/`server` at 3 s, pings slower (20 s), `timeout tunnel 1h` as in the
  // example: once upgraded, the WebSocket is a tunnel and only the tunnel timeout counts.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const hp = await startHaproxy(t, gw, shortTimeouts(3, { tunnel: false }));
  assert.match(hp.conf, /timeout client 3s/);
  assert.match(hp.conf, /timeout tunnel 1h/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const c = await connect(`${hp.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  await sleep(6000);
  assert.equal(c.closeInfo, null, `closed while idle: ${JSON.stringify(c.closeInfo)}`);
  assert.equal(c.pings, 0);
  assert.equal((await publishVia(hp.url, gw, "idle", "t", { ok: 1 })).body.delivered, 1);
  assert.deepEqual((await c.next()).data, { ok: 1 });
});

defcase("idle_ws_dropped_without_timeout_tunnel", async (t) => {
  // The broken copy: no `timeout tunnel`. The idle WebSocket falls back to `timeout
  // client`/`server` (3 s here, 30–60 s in many configs) and is cut when no frame passes
  // for that long: the field reports' "disconnects every minute". Signature: 1006, no
  // close frame, about `timeout client` after the last frame.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const hp = await startHaproxy(t, gw, (c) => withoutTunnelTimeout(shortTimeouts(3, { tunnel: false })(c)));
  assert.doesNotMatch(hp.conf, /timeout tunnel/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const opened = Date.now();
  const c = await connect(`${hp.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const info = await withTimeout(c.closed, 10000, "haproxy to drop the idle WebSocket");
  const after = Date.now() - opened;
  assert.equal(info.code, 1006, `close ${JSON.stringify(info)}`);
  assert.ok(after >= 2500 && after < 6000, `dropped after ${after} ms (timeout client 3 s)`);
  assert.equal(c.pings, 0);
});

defcase("idle_sse_kept_alive_by_comments", async (t) => {
  // Every timeout (client, server, tunnel) at 3 s, rtgw's keep-alive comment every
  // second: an idle SSE stream stays open past 6 s and still delivers.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const hp = await startHaproxy(t, gw, shortTimeouts(3));
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const s = await sse(`${hp.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  await sleep(6000);
  assert.equal(s.ended, null, "the idle SSE stream was cut");
  assert.ok(s.comments >= 4, `keep-alive comments through haproxy: ${s.comments}`);
  await publishVia(hp.url, gw, "idle", "t", { after: "6s idle" });
  await waitFor(() => s.frames.find((f) => f.msg.data?.after), 1000, "the event after 6 s idle");
});

defcase("idle_sse_governed_by_timeout_tunnel", async (t) => {
  // What actually bounds an idle SSE stream in HAProxy 2.6: rtgw's SSE reply is
  // close-delimited (Connection: close, no Content-Length), so once the request is done
  // HAProxy forwards it as a tunnel, and `timeout tunnel` (not client/server) applies.
  // With client/server at 3 s, tunnel 1h and pings slower (20 s), the stream survives 6 s.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const hp = await startHaproxy(t, gw, shortTimeouts(3, { tunnel: false }));
  assert.match(hp.conf, /timeout server 3s/);
  assert.match(hp.conf, /timeout tunnel 1h/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const s = await sse(`${hp.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  await sleep(6000);
  assert.equal(s.ended, null, "the idle SSE stream was cut");
  await publishVia(hp.url, gw, "idle", "t", { ok: 1 });
  await waitFor(() => s.frames.find((f) => f.msg.data?.ok), 1000, "the event after 6 s idle");
});

defcase("idle_sse_dropped_without_timeout_tunnel", async (t) => {
  // The broken copy for SSE: no `timeout tunnel`, client/server at 3 s, pings slower.
  // The stream ends about `timeout client` after rtgw's last byte; EventSource then
  // reconnects (and resumes with Last-Event-ID), so it shows as a reconnect every
  // `timeout client` rather than an error.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const hp = await startHaproxy(t, gw, (c) => withoutTunnelTimeout(shortTimeouts(3, { tunnel: false })(c)));
  assert.doesNotMatch(hp.conf, /timeout tunnel/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const opened = Date.now();
  const s = await sse(`${hp.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  await waitFor(() => s.ended, 10000, "haproxy to end the idle SSE stream");
  const after = s.ended - opened;
  assert.ok(after >= 2500 && after < 6000, `ended after ${after} ms (timeout client 3 s)`);
});

defcase("health_check_on_ready", async (t) => {
  // Two nodes; one dies. `option httpchk GET /ready` with `inter 2s fall 2` takes it out
  // of the rotation within about 4 s, then every request goes to the live node.
  const gw = await startGateway(t);
  const gw2 = await startGateway(t, { key: gw.key });
  const hp = await startHaproxy(t, gw, (c) => sub(c, /(\n    server rtgw1 [^\n]*)/, `$1\n    server rtgw2 127.0.0.1:${gw2.port} check inter 2s fall 2 rise 2`));
  await gw.kill9();
  await waitFor(() => /rtgw\/rtgw1 is DOWN/.test(hp.logs()), 8000, "haproxy to mark the dead node DOWN");
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${hp.url}/ready`);
    assert.equal(r.status, 200, `request ${i} after the node was marked down`);
    assert.equal((await r.json()).ready, true);
  }
  assert.match(hp.logs(), /rtgw\/rtgw1 is DOWN/);
});

await run();
