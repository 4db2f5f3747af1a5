// The checks every reverse proxy in front of rtgw must pass, whatever the proxy:
// tests/proxy/<proxy>.mjs says how to start its proxy and which of these apply,
// and adds the cases only its proxy has. One Node thread; each check starts its
// own rtgw and proxy, and everything it opens is closed by the case's t.cleanup.
//
//   const caddy = { name: "caddy", start: (t, gw, edit = (c) => c) => px };   px: { url, ws, conf, logs }
//   defcase("sse_delivers_promptly", (t) => checks.sseDeliversPromptly(t, caddy));
//
// `edit` (a function of the config text, built with lib/proxy.mjs sub) makes the
// test copy a check needs: shorter timeouts, a line taken out. confHas/confLacks
// are patterns the edited config must (not) contain, so a check never runs against
// an edit that did not happen.
import assert from "node:assert/strict";
import http from "node:http";
import { startGateway, mint, publish } from "./gateway.mjs";
import { metrics, metric } from "./http.mjs";
import { sse } from "./sse.mjs";
import { sleep, waitFor, withTimeout } from "./wait.mjs";
import { connect } from "./ws.mjs";

const PING_FAST = "1000";  // RTGW_PING_INTERVAL_MS well below a 3 s proxy timeout
const PING_SLOW = "20000"; // … and well above it

async function up(t, proxy, { env, edit } = {}) {
  const gw = await startGateway(t, env ? { env } : {});
  const px = await proxy.start(t, gw, edit);
  return { gw, px };
}

function assertConf(px, { confHas = [], confLacks = [] }) {
  for (const re of confHas) assert.match(px.conf, re);
  for (const re of confLacks) assert.doesNotMatch(px.conf, re);
}

// A token is minted through the proxy, an rtgw.v1 client (subprotocol passed
// through) and a plain client (as the official client) both receive a publish
// with its id, and a refused token is rtgw's JSON 401. Returns { gw, px }.
export async function wsSubscribeAndPublish(t, proxy) {
  const { gw, px } = await up(t, proxy);
  const name = proxy.name;
  const res = await fetch(`${px.url}/v1/realtime/token`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "user:42", name: "ai", kind: "run" }]),
  });
  assert.equal(res.status, 201, `token minted through ${name}`);
  const { jwt } = await res.json();
  const ext = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal(ext.ws.protocol, "rtgw.v1", `the subprotocol passes through ${name}`);
  assert.equal((await ext.next()).kind, "rtgw.subscribed");
  const plain = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { t }); // as the official client
  await sleep(100);
  const r = await publish(gw, "user:42", "ai", { hello: `via ${name}` }, { base: px.url });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.delivered, 2);
  for (const c of [ext, plain]) {
    const m = await c.next();
    assert.equal(m.kind, "data");
    assert.deepEqual(m.data, { hello: `via ${name}` });
    assert.equal(m.id, r.body.ids[0]);
  }
  const bad = await connect(`${px.ws}/v1/realtime/connect?token=nope`, { t }).catch((e) => e);
  assert.equal(bad.status, 401);
  assert.match(bad.body, /"error":"token_/);
  return { gw, px };
}

// An SSE stream through the proxy gets the ack and then each event within 1 s of
// its publish (the proxy does not buffer responses). `why` is added to the wait.
export async function sseDeliversPromptly(t, proxy, { why = "" } = {}) {
  const { gw, px } = await up(t, proxy);
  const jwt = await mint(gw, [{ channel: "user:7", name: "status", kind: "run" }]);
  const s = await sse(`${px.url}/v1/realtime/sse?token=${jwt}`, t);
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  await waitFor(() => s.frames.length >= 1, 2000, `the rtgw.subscribed ack through ${proxy.name}`);
  assert.equal(s.frames[0].msg.kind, "rtgw.subscribed");
  for (let i = 1; i <= 3; i++) {
    const sent = Date.now();
    const r = await publish(gw, "user:7", "status", { i }, { base: px.url });
    assert.equal(r.status, 200);
    const f = await waitFor(() => s.frames.find((x) => x.msg.data?.i === i), 1000, `event ${i} within 1 s${why}`);
    assert.ok(f.at - sent < 1000, `event ${i} took ${f.at - sent} ms`);
    await sleep(200);
  }
}

// Through the proxy: a text body, a batch (one event refused), Idempotency-Key
// passed through, events in order on SSE; rtgw's own JSON 413 on an oversized
// publish, and the proxy's own 413 on an oversized batch (the rest of the API),
// JSON with rtgw's error name. With `proxyLimit.jsonType` its Content-Type is
// checked too; with `proxyLimit.beforeRtgw`, that rtgw never counted the request.
// Returns { gw, px }.
export async function publishBatchTokenAndLimits(t, proxy, { proxyLimit = {} } = {}) {
  const { gw, px } = await up(t, proxy);
  const name = proxy.name, via = { base: px.url };
  const jwt = await mint(gw, [{ channel: "c", name: "*", kind: "run" }]);
  const s = await sse(`${px.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  assert.equal((await publish(gw, "c", "t", "plain text", via)).status, 200);
  const batch = await fetch(`${px.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "c", topic: "t", data: 1 }, { channel: "c", topic: "*", data: 2 }]),
  });
  assert.equal(batch.status, 200);
  const bj = await batch.json();
  assert.equal(bj.published, 1);
  assert.equal(bj.failed, 1);
  const a = await publish(gw, "c", "t", "x", { ...via, headers: { "Idempotency-Key": "k1" } });
  const b = await publish(gw, "c", "t", "x", { ...via, headers: { "Idempotency-Key": "k1" } });
  assert.equal(b.body.duplicate, true, `Idempotency-Key passes through ${name}`);
  assert.deepEqual(b.body.ids, a.body.ids);
  await waitFor(() => s.frames.length >= 4, 2000, "3 events");
  assert.deepEqual(s.frames.slice(1).map((f) => f.msg.data), ["plain text", 1, "x"]);
  const big = "x".repeat(600 * 1024);
  const p = await publish(gw, "c", "t", big, via);
  assert.equal(p.status, 413);
  assert.equal(p.body.error, "body_too_large");
  assert.match(p.body.message, /RTGW_MAX_BODY_BYTES/);
  const publishes = async () => metric(await metrics(gw), "rtgw_publish_requests_total");
  const before = proxyLimit.beforeRtgw ? await publishes() : undefined;
  const tb = await fetch(`${px.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: JSON.stringify([{ channel: "c", topic: "t", data: big }]),
  });
  const tbody = await tb.text();
  assert.equal(tb.status, 413, `${name}'s answer: ${tb.status} ${tbody.slice(0, 200)}`);
  if (proxyLimit.jsonType) assert.match(tb.headers.get("content-type"), /^application\/json/);
  assert.equal(JSON.parse(tbody).error, "body_too_large", `${name}'s 413 is JSON with rtgw's error name`);
  if (proxyLimit.beforeRtgw) assert.equal(await publishes(), before, "the oversized batch did not reach rtgw");
  return { gw, px };
}

// A streamed publish (text/stream) through the proxy reaches an SSE subscriber
// (also through the proxy) chunk by chunk, before the request ends: the proxy must
// not buffer the request body. rtgw forwards a stream in reads of up to 1 KiB, so
// 1500 bytes go first, the rest only once a chunk has arrived. `what` names the
// setting in failures. Returns the publish's answer { status, body }.
export async function streamPublishNotBuffered(t, proxy, what) {
  const { gw, px } = await up(t, proxy);
  const jwt = await mint(gw, [{ channel: "c", name: "ai", kind: "run" }]);
  const s = await sse(`${px.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  const u = new URL(`${px.url}/v1/realtime/publish?channel=c&topic=ai`);
  const req = http.request(u, { method: "POST", headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream" } });
  const done = new Promise((res, rej) => {
    req.on("response", (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => res({ status: r.statusCode, body: JSON.parse(b) })); });
    req.on("error", rej);
  });
  t.cleanup(() => req.destroy());
  const first = "a".repeat(1500);
  req.write(first);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "chunk"), 3000, `a chunk before the stream ends (${what})`);
  req.end("b".repeat(10));
  const r = await done;
  assert.equal(r.status, 200);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "datastream-end"), 2000, "datastream-end");
  const text = s.frames.filter((f) => f.msg.kind === "chunk").map((f) => f.msg.data).join("");
  assert.equal(text, first + "b".repeat(10));
  return r;
}

// An idle WebSocket through a proxy whose timeout `edit` cut to 3 s stays open 6 s
// and still delivers. pings: rtgw pings every second (each ping resets the
// proxy's timer; at least 4 arrive), or slower than the timeout (none arrives:
// something else keeps the connection, e.g. haproxy's `timeout tunnel`).
export async function idleWsSurvives(t, proxy, { pings, edit, ...conf }) {
  const { gw, px } = await up(t, proxy, { env: { RTGW_PING_INTERVAL_MS: pings ? PING_FAST : PING_SLOW }, edit });
  assertConf(px, conf);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const c = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  await sleep(6000);
  assert.equal(c.closeInfo, null, `closed while idle: ${JSON.stringify(c.closeInfo)}`);
  if (pings) assert.ok(c.pings >= 4, `pings through ${proxy.name}: ${c.pings}`);
  else assert.equal(c.pings, 0);
  const r = await publish(gw, "idle", "t", { after: "6s idle" }, { base: px.url });
  assert.equal(r.body.delivered, 1);
  assert.deepEqual((await c.next()).data, { after: "6s idle" });
}

// The broken copy: the proxy's idle timeout (3 s, `timeout` names it) below rtgw's
// ping interval (20 s). The proxy cuts the idle WebSocket; the client sees 1006
// with no close frame, about the timeout after it opened.
export async function idleWsDropped(t, proxy, { edit, timeout, ...conf }) {
  const { gw, px } = await up(t, proxy, { env: { RTGW_PING_INTERVAL_MS: PING_SLOW }, edit });
  assertConf(px, conf);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const opened = Date.now();
  const c = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const info = await withTimeout(c.closed, 10000, `${proxy.name} to drop the idle WebSocket`);
  const after = Date.now() - opened;
  assert.equal(info.code, 1006, `close ${JSON.stringify(info)}`);
  assert.ok(after >= 2500 && after < 6000, `dropped after ${after} ms (${timeout})`);
  assert.equal(c.pings, 0);
}

// An idle SSE stream through a proxy whose timeout `edit` cut to 3 s stays open 6 s
// and still delivers. pings: rtgw's keep-alive comment every second resets the
// timer (at least 4 arrive); or slower than the timeout, something else keeps it.
export async function idleSseSurvives(t, proxy, { pings, edit, ...conf }) {
  const { gw, px } = await up(t, proxy, { env: { RTGW_PING_INTERVAL_MS: pings ? PING_FAST : PING_SLOW }, edit });
  assertConf(px, conf);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const s = await sse(`${px.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  await sleep(6000);
  assert.equal(s.ended, null, "the idle SSE stream was cut");
  if (pings) assert.ok(s.comments >= 4, `keep-alive comments through ${proxy.name}: ${s.comments}`);
  await publish(gw, "idle", "t", { after: "6s idle" }, { base: px.url });
  await waitFor(() => s.frames.find((f) => f.msg.data?.after), 1000, "the event after 6 s idle");
}
