// examples/haproxy/haproxy.cfg in front of a real rtgw, with Debian's real haproxy (2.6).
//
// Each case starts its own rtgw and haproxy (`haproxy -db -f <copy>`, in the foreground,
// as the current user, on a free loopback port). Test copies of the example shorten the
// timeouts or take `timeout tunnel` out, to pin what each line does and what the broken
// configurations look like.
//   node tests/proxy/haproxy.mjs <case>     (RTGW_BIN, HAPROXY_BIN=/usr/sbin/haproxy)
import assert from "node:assert/strict";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { sub } from "../lib/proxy.mjs";
import { startHaproxyExample } from "../lib/examples.mjs";
import { sse } from "../lib/sse.mjs";
import { waitFor } from "../lib/wait.mjs";

requireNodeModules("ws");
const checks = await import("../lib/proxy_checks.mjs");


// The example, pointed at `gw` and a free port, edited by `edit`; ready once
// /health answers through it. hp.conf is the edited haproxy.cfg.
const startHaproxy = startHaproxyExample;
const haproxy = { name: "haproxy", start: startHaproxy };

// `timeout client` and `timeout server` (and `timeout tunnel`, if asked) cut to `s` seconds.
const shortTimeouts = (s, { tunnel = true } = {}) => (c) => {
  c = sub(sub(c, "timeout client 60s", `timeout client ${s}s`), "timeout server 60s", `timeout server ${s}s`);
  return tunnel ? sub(c, "timeout tunnel 1h", `timeout tunnel ${s}s`) : c;
};
const withoutTunnelTimeout = (c) => sub(c, /\n    timeout tunnel 1h\n/, "\n");
// The broken copy: client/server at 3 s and no `timeout tunnel` at all.
const noTunnel3s = (c) => withoutTunnelTimeout(shortTimeouts(3, { tunnel: false })(c));

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", async (t) => {
  const { px: hp } = await checks.wsSubscribeAndPublish(t, haproxy);
  assert.equal((await fetch(`${hp.url}/metrics`)).status, 200, "/metrics answers loopback");
  // Paths that are not rtgw's go to no backend here (your app's, in production).
  assert.equal((await fetch(`${hp.url}/realtime/v1/realtime/connect`)).status, 503);
});

defcase("sse_delivers_promptly", (t) => checks.sseDeliversPromptly(t, haproxy));

// Over the limits: rtgw's own JSON 413 on publish, and haproxy's `http-request return
// status 413` on the rest of the API, before rtgw.
defcase("publish_batch_token_and_limits", async (t) => {
  const { gw, px: hp } = await checks.publishBatchTokenAndLimits(t, haproxy, { proxyLimit: { jsonType: true, beforeRtgw: true } });
  // API calls in a row on one client connection (fetch keeps it alive): with
  // http-server-close each gets its own connection to rtgw.
  for (let i = 0; i < 20; i++) assert.equal((await publish(gw, "c", "t", i, { base: hp.url })).status, 200);
});

defcase("stream_publish_not_buffered", (t) => checks.streamPublishNotBuffered(t, haproxy, "no http-buffer-request"));

// All timeouts (client, server, tunnel) cut to 3 s in a test copy, rtgw pinging every
// second: an idle WebSocket survives 6 s, because every ping resets the tunnel timer.
defcase("idle_ws_kept_alive_by_pings", (t) => checks.idleWsSurvives(t, haproxy, {
  pings: true, edit: shortTimeouts(3), confHas: [/timeout tunnel 3s/] }));

// `timeout client`/`server` at 3 s, pings slower (20 s), `timeout tunnel 1h` as in the
// example: once upgraded, the WebSocket is a tunnel and only the tunnel timeout counts.
defcase("idle_ws_survives_client_timeout_with_tunnel", (t) => checks.idleWsSurvives(t, haproxy, {
  pings: false, edit: shortTimeouts(3, { tunnel: false }), confHas: [/timeout client 3s/, /timeout tunnel 1h/] }));

// The broken copy: no `timeout tunnel`. The idle WebSocket falls back to `timeout
// client`/`server` (3 s here, 30–60 s in many configs) and is cut when no frame passes
// for that long: the field reports' "disconnects every minute". Signature: 1006, no
// close frame, about `timeout client` after the last frame.
defcase("idle_ws_dropped_without_timeout_tunnel", (t) => checks.idleWsDropped(t, haproxy, {
  edit: noTunnel3s, timeout: "timeout client 3 s", confLacks: [/timeout tunnel/] }));

// Every timeout (client, server, tunnel) at 3 s, rtgw's keep-alive comment every
// second: an idle SSE stream stays open past 6 s and still delivers.
defcase("idle_sse_kept_alive_by_comments", (t) => checks.idleSseSurvives(t, haproxy, { pings: true, edit: shortTimeouts(3) }));

// What actually bounds an idle SSE stream in HAProxy 2.6: rtgw's SSE reply is
// close-delimited (Connection: close, no Content-Length), so once the request is done
// HAProxy forwards it as a tunnel, and `timeout tunnel` (not client/server) applies.
// With client/server at 3 s, tunnel 1h and pings slower (20 s), the stream survives 6 s.
defcase("idle_sse_governed_by_timeout_tunnel", (t) => checks.idleSseSurvives(t, haproxy, {
  pings: false, edit: shortTimeouts(3, { tunnel: false }), confHas: [/timeout server 3s/, /timeout tunnel 1h/] }));

defcase("idle_sse_dropped_without_timeout_tunnel", async (t) => {
  // The broken copy for SSE: no `timeout tunnel`, client/server at 3 s, pings slower.
  // The stream ends about `timeout client` after rtgw's last byte; EventSource then
  // reconnects (and resumes with Last-Event-ID), so it shows as a reconnect every
  // `timeout client` rather than an error.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const hp = await startHaproxy(t, gw, noTunnel3s);
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
