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
import http from "node:http";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { sub } from "../lib/proxy.mjs";
import { startNginxExample } from "../lib/examples.mjs";
import { sse } from "../lib/sse.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";

requireNodeModules("ws");
const { connect } = await import("../lib/ws.mjs");
const checks = await import("../lib/proxy_checks.mjs");


// The body of one location block of the example (`= /v1/realtime/connect` etc.).
function editLocation(conf, header, fn) {
  const start = conf.indexOf(`location ${header} {`);
  if (start < 0) throw new Error(`no location ${header} in the example`);
  const end = conf.indexOf("\n    }\n", start);
  return conf.slice(0, start) + fn(conf.slice(start, end)) + conf.slice(end);
}

// The example, pointed at `gw` and a free port, edited by `edit`, included in the
// http {} block of a generated nginx.conf (lib/nginx.mjs); ready once /health
// answers through it. ng.conf is the edited example.
const startNginx = startNginxExample;
const nginx = { name: "nginx", start: startNginx };

// A test copy with the WebSocket location's proxy_read_timeout (and, with send,
// proxy_send_timeout) cut from 3600 s to `s` seconds.
const shortWsTimeouts = (s, { send = false } = {}) => (c) => editLocation(c, "= /v1/realtime/connect", (b) => {
  b = sub(b, "proxy_read_timeout 3600s;", `proxy_read_timeout ${s}s;`);
  return send ? sub(b, "proxy_send_timeout 3600s;", `proxy_send_timeout ${s}s;`) : b;
});

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", (t) => checks.wsSubscribeAndPublish(t, nginx));

defcase("sse_delivers_promptly", (t) => checks.sseDeliversPromptly(t, nginx, { why: " (buffering off)" }));

// Bodies over the limits: rtgw's own JSON 413 on publish; nginx's (made JSON by the
// example's error_page) on the API location, whose client_max_body_size = 512k.
defcase("publish_batch_token_and_limits", (t) => checks.publishBatchTokenAndLimits(t, nginx));

defcase("stream_publish_not_buffered", async (t) => {
  // With proxy_request_buffering off the first chunk reaches the subscriber while
  // the request is still open.
  const r = await checks.streamPublishNotBuffered(t, nginx, "proxy_request_buffering off");
  assert.equal(r.body.bytes, 1510);
});

// A short proxy_read_timeout (3 s) in a test copy, rtgw pinging every second: an idle
// WebSocket survives 6 s, because each ping resets nginx's timer.
defcase("idle_ws_kept_alive_by_pings", (t) => checks.idleWsSurvives(t, nginx, {
  pings: true, edit: shortWsTimeouts(3, { send: true }), confHas: [/proxy_read_timeout 3s;/] }));

// The control, and the field reports' "disconnects every minute": the same 3 s
// read timeout with rtgw's pings slower than it. nginx cuts the idle connection;
// the client sees 1006 with no close frame. Signature: a close after ~timeout, 1006.
defcase("idle_ws_dropped_without_pings", (t) => checks.idleWsDropped(t, nginx, {
  edit: shortWsTimeouts(3), timeout: "timeout 3 s" }));

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
  const pub = await publish(gw, "c", "t", 1, { base: ng.url });
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
  assert.equal((await publish(gw, "c", "t", { ok: 1 }, { base: ok.url })).status, 200);
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
  const r = await publish(gw, "b", "t", { stalled: true }, { base: ng.url });
  assert.equal(r.body.delivered, 1, "rtgw delivered the event to nginx");
  await sleep(1500);
  assert.equal(got, null, `nothing should reach the client while nginx buffers; got ${JSON.stringify(got)}`);
});

await run();
