// examples/caddy/Caddyfile in front of a real rtgw, with Debian's real caddy (2.6).
//
// Each case starts its own rtgw and caddy (`caddy run --adapter caddyfile`, as the current
// user, on a free loopback port, with HOME and the XDG dirs in a private tmpdir, the admin
// API off and automatic HTTPS off). Test copies of the example shorten the read timeout
// or take lines out, to pin what each line does and what a misconfiguration looks like.
//   node tests/proxy/caddy.mjs <case>     (RTGW_BIN, CADDY_BIN=/usr/bin/caddy)
import assert from "node:assert/strict";
import http from "node:http";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { sub } from "../lib/proxy.mjs";
import { startCaddyExample } from "../lib/examples.mjs";
import { sse } from "../lib/sse.mjs";
import { waitFor, withTimeout } from "../lib/wait.mjs";

requireNodeModules("ws");
const checks = await import("../lib/proxy_checks.mjs");


// The example, pointed at `gw` and a free port, edited by `edit`; ready once
// /health answers through it. cd.conf is the edited Caddyfile.
const startCaddy = startCaddyExample;
const caddy = { name: "caddy", start: startCaddy };

// The transport's read/write timeouts in a test copy.
const shortTimeouts = (s) => (c) => sub(sub(c, "read_timeout 1h", `read_timeout ${s}s`), "write_timeout 1h", `write_timeout ${s}s`);

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", async (t) => {
  const { px: cd } = await checks.wsSubscribeAndPublish(t, caddy);
  // /metrics is answered for loopback (the test's own address).
  assert.equal((await fetch(`${cd.url}/metrics`)).status, 200);
  assert.equal((await fetch(`${cd.url}/ready`)).status, 200);
});

defcase("sse_delivers_promptly", (t) => checks.sseDeliversPromptly(t, caddy));

// Over the limits: rtgw's own JSON 413 on publish (caddy allows 32MB there), and
// caddy's request_body max_size 512KB on the rest of the API, refused by caddy
// itself (rtgw never sees it). Without the example's handle_errors, Caddy 2.6
// answers that with an empty 502.
defcase("publish_batch_token_and_limits", (t) => checks.publishBatchTokenAndLimits(t, caddy, {
  proxyLimit: { jsonType: true, beforeRtgw: true } }));

defcase("stream_publish_not_buffered", (t) => checks.streamPublishNotBuffered(t, caddy, "caddy does not buffer requests"));

// The transport's read_timeout cut to 3 s in a test copy, rtgw pinging every second:
// an idle WebSocket survives 6 s, because every ping resets caddy's read deadline.
defcase("idle_ws_kept_alive_by_pings", (t) => checks.idleWsSurvives(t, caddy, {
  pings: true, edit: shortTimeouts(3), confHas: [/read_timeout 3s/] }));

// The broken copy: read_timeout (3 s) below rtgw's ping interval (20 s here, like a
// `read_timeout 10s` against the default 15 s). caddy's read deadline still applies
// after the upgrade, so it cuts the idle WebSocket. Signature: 1006, no close frame,
// about read_timeout after the last frame from rtgw.
defcase("idle_ws_dropped_by_short_read_timeout", (t) => checks.idleWsDropped(t, caddy, {
  edit: shortTimeouts(3), timeout: "read_timeout 3 s" }));

// The same short read_timeout on an SSE stream: rtgw's keep-alive comment every
// RTGW_PING_INTERVAL_MS resets it, so an idle stream outlives it and still delivers.
defcase("idle_sse_kept_alive_by_comments", (t) => checks.idleSseSurvives(t, caddy, { pings: true, edit: shortTimeouts(3) }));

defcase("sse_without_flush_interval_still_prompt", async (t) => {
  // Not a failure in Caddy 2.6: without `flush_interval -1`, reverse_proxy still flushes
  // at once because rtgw answers text/event-stream (and streams with no Content-Length).
  // The example keeps `flush_interval -1` as a guarantee, and the README says so.
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw, (c) => sub(c, /\n\s*flush_interval -1\n/, "\n"));
  assert.doesNotMatch(cd.conf, /flush_interval/);
  const jwt = await mint(gw, [{ channel: "s", name: "t", kind: "run" }]);
  const s = await sse(`${cd.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  const sent = Date.now();
  await publish(gw, "s", "t", { unbuffered: true }, { base: cd.url });
  const f = await waitFor(() => s.frames.find((x) => x.msg.data?.unbuffered), 1000, "the event within 1 s");
  assert.ok(f.at - sent < 1000);
});

defcase("encode_kept_off_realtime_paths", async (t) => {
  // A site that compresses its own pages keeps `encode` off /v1/realtime/* (the README's
  // rule). A compressed event stream is held in the gzip writer: with a site-wide
  // `encode gzip`, Caddy 2.6 compresses a text/event-stream reply whose first flush is
  // ≥ 512 bytes (minimum_length), Cache-Control: no-transform or not, and then sends
  // nothing until the compressor's buffer fills. Whether rtgw's first flush (headers and
  // ": rtgw") is read alone or together with the subscribed ack is a matter of timing,
  // so only the recommended form is pinned here.
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw, (c) => sub(c, /^(http:\/\/127\.0\.0\.1:\d+ \{\n\tbind 127\.0\.0\.1\n)/m,
    "$1\t@compress not path /v1/realtime/*\n\tencode @compress gzip\n"));
  assert.match(cd.conf, /encode @compress gzip/);
  // Long topic names make the subscribed ack well over 512 bytes.
  const topics = Array.from({ length: 30 }, (_, i) => ({ channel: "g", name: `a-long-topic-name-${i}`, kind: "run" }));
  const jwt = await mint(gw, [{ channel: "g", name: "t", kind: "run" }, ...topics]);
  const res = await withTimeout(new Promise((resolve, reject) => {
    const req = http.get(`${cd.url}/v1/realtime/sse?token=${jwt}`, { headers: { Accept: "text/event-stream", "Accept-Encoding": "gzip" } }, resolve);
    req.on("error", reject);
    t.cleanup(() => req.destroy());
  }), 5000, "SSE response headers");
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["content-encoding"], undefined, "SSE must not be gzipped");
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (d) => (text += d));
  res.on("error", () => {});
  await waitFor(() => text.includes("rtgw.subscribed"), 2000, "the ack");
  const sent = Date.now();
  await publish(gw, "g", "t", { gz: 1 }, { base: cd.url });
  await waitFor(() => text.includes('"gz":1'), 1000, "the event within 1 s");
  assert.ok(Date.now() - sent < 1000);
  // The encode line is live for the other paths: /metrics (text, > 512 bytes) is gzipped.
  const m = await new Promise((resolve, reject) => {
    http.get(`${cd.url}/metrics`, { headers: { "Accept-Encoding": "gzip" } }, (r) => { r.resume(); resolve(r); }).on("error", reject);
  });
  assert.equal(m.statusCode, 200);
  assert.equal(m.headers["content-encoding"], "gzip");
});

defcase("rtgw_down_is_not_a_413", async (t) => {
  // The handle_errors block only rewrites the body-size error: with rtgw gone, caddy
  // still answers 502 (or 503 once the /ready health check has marked it down).
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  await gw.stop();
  const r = await fetch(`${cd.url}/v1/realtime/token`, { method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: "[]" });
  assert.ok([502, 503].includes(r.status), `status ${r.status}`);
});

await run();
