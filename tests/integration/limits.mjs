// Abuse limits: connections per client IP (with X-Forwarded-For only from
// trusted proxies), publish and mint rates per IP (429 + Retry-After), and
// frames per second from a WebSocket client (close 4420).
import assert from "node:assert/strict";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { sleep } from "../lib/wait.mjs";
import { connect } from "../lib/ws.mjs";

requireNodeModules("ws");
const topics = [{ channel: "l", name: "t", kind: "run" }];

async function wsStatus(url, headers = {}) {
  return connect(url, { headers }).then((c) => ({ ok: true, c }), (e) => ({ ok: false, status: e.status, body: e.body }));
}

defcase("connections_per_ip_limited", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS_PER_IP: "2" } });
  const jwt = await mint(gw, topics);
  const url = `${gw.ws}/v1/realtime/connect?token=${jwt}`;
  const a = await wsStatus(url), b = await wsStatus(url);
  assert.ok(a.ok && b.ok);
  const c = await wsStatus(url);
  assert.equal(c.ok, false);
  assert.equal(c.status, 503);
  assert.equal(JSON.parse(c.body).error, "over_capacity");
  assert.match(JSON.parse(c.body).message, /RTGW_MAX_CONNECTIONS_PER_IP/);
  // Closing one frees its slot.
  a.c.close();
  await a.c.closed;
  let d;
  for (let i = 0; i < 40 && !(d = await wsStatus(url)).ok; i++) await sleep(50);
  assert.ok(d.ok, "a slot is freed when a connection closes");
  b.c.close();
  d.c.close();
});

defcase("forwarded_for_only_from_trusted_proxies", async (t) => {
  // 127.0.0.1 is the trusted proxy: X-Forwarded-For names the client.
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS_PER_IP: "1", RTGW_TRUSTED_PROXIES: "127.0.0.1" } });
  const jwt = await mint(gw, topics);
  const url = `${gw.ws}/v1/realtime/connect?token=${jwt}`;
  const a = await wsStatus(url, { "X-Forwarded-For": "203.0.113.7" });
  const b = await wsStatus(url, { "X-Forwarded-For": "198.51.100.9, 127.0.0.1" });
  assert.ok(a.ok && b.ok, "two different clients behind the proxy");
  const c = await wsStatus(url, { "X-Forwarded-For": "203.0.113.7" });
  assert.equal(c.status, 503, "the same forwarded client is limited");
  a.c.close(); b.c.close();
  // Untrusted peer: X-Forwarded-For is ignored (no spoofing around the limit).
  const gw2 = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS_PER_IP: "1", RTGW_TRUSTED_PROXIES: "10.9.9.9" } });
  const jwt2 = await mint(gw2, topics);
  const url2 = `${gw2.ws}/v1/realtime/connect?token=${jwt2}`;
  const x = await wsStatus(url2, { "X-Forwarded-For": "203.0.113.1" });
  const y = await wsStatus(url2, { "X-Forwarded-For": "203.0.113.2" });
  assert.ok(x.ok);
  assert.equal(y.status, 503, "a spoofed X-Forwarded-For from an untrusted peer does not help");
  x.c.close();
});

defcase("publish_rate_limited_429", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_RATE_LIMIT_PUBLISH: "5" } });
  const statuses = [];
  let limited;
  for (let i = 0; i < 20; i++) {
    const r = await publish(gw, "l", "t", { i });
    statuses.push(r.status);
    if (r.status === 429 && !limited) limited = r;
  }
  // Burst of 2 x 5 = 10, then refusals.
  assert.equal(statuses.filter((s) => s === 200).length >= 10, true, statuses.join(","));
  assert.ok(limited, `no 429 among ${statuses.join(",")}`);
  assert.equal(limited.body.error, "rate_limited");
  assert.match(limited.body.message, /RTGW_RATE_LIMIT_PUBLISH/);
  const ra = Number(limited.headers.get("retry-after"));
  assert.ok(ra >= 1 && ra <= 2, `Retry-After ${ra}`);
  // After waiting, publishing works again.
  await sleep(ra * 1000 + 100);
  assert.equal((await publish(gw, "l", "t", { after: true })).status, 200);
  const m = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(m, /rtgw_refusals_total\{reason="rate_limited"\} [1-9]/);
});

defcase("mint_rate_limited_429", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_RATE_LIMIT_MINT: "2" } });
  const statuses = [];
  for (let i = 0; i < 8; i++) {
    const r = await fetch(`${gw.url}/v1/realtime/token`, {
      method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: JSON.stringify(topics),
    });
    statuses.push(r.status);
    if (r.status === 429) {
      assert.ok(Number(r.headers.get("retry-after")) >= 1);
      assert.equal((await r.json()).error, "rate_limited");
    }
  }
  assert.deepEqual(statuses.slice(0, 4), [201, 201, 201, 201]);
  assert.ok(statuses.includes(429), statuses.join(","));
});

defcase("client_frame_flood_closed_4420", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_RATE_LIMIT_CLIENT_FRAMES: "10" } });
  const jwt = await mint(gw, topics);
  const other = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { t });
  const c = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  await c.next();
  for (let i = 0; i < 200; i++) {
    try { c.ws.send(JSON.stringify({ kind: "rtgw.noop", i })); } catch { break; }
  }
  await Promise.race([c.closed, sleep(5000)]);
  assert.ok(c.closeInfo, "the flooding client is closed");
  assert.equal(c.closeInfo.code, 4420);
  assert.match(c.closeInfo.reason, /rate_limited/);
  // The quiet client is unaffected.
  assert.equal((await publish(gw, "l", "t", { still: "here" })).status, 200);
  assert.deepEqual((await other.next(3000)).data, { still: "here" });
});

defcase("frames_before_handshake_refused", async (t) => {
  // The client frame guard starts at the handshake: frames sent before the 101
  // would put it mid-stream, so such a client is refused (RFC 6455 §4.1: a
  // client sends no data before the server's handshake).
  const net = await import("node:net");
  const gw = await startGateway(t);
  const jwt = await mint(gw, topics);
  const sock = net.connect(gw.port, "127.0.0.1");
  t.cleanup(() => sock.destroy());
  let got = "";
  sock.on("data", (d) => (got += d.toString("latin1")));
  const ended = new Promise((r) => sock.on("close", r));
  const frame = Buffer.from([0x81, 0x85, 0, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
  sock.write(Buffer.concat([Buffer.from(`GET /v1/realtime/connect?token=${jwt} HTTP/1.1\r\nHost: x\r\n` +
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Version: 13\r\n\r\n"), frame]));
  await Promise.race([ended, sleep(5000)]);
  assert.match(got, /^HTTP\/1\.1 400/);
  assert.match(got, /protocol_error/);
  // A well-behaved client is still served.
  const ok = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { t });
  assert.equal((await publish(gw, "l", "t", { fine: 1 })).status, 200);
  assert.deepEqual((await ok.next(3000)).data, { fine: 1 });
});

defcase("slowloris_headers_time_out", async (t) => {
  // A client that dribbles its request headers a byte at a time is cut off
  // RTGW_REQUEST_TIMEOUT_MS after connecting, not kept forever.
  const net = await import("node:net");
  const gw = await startGateway(t, { env: { RTGW_REQUEST_TIMEOUT_MS: "1000" } });
  const sock = net.connect(gw.port, "127.0.0.1");
  t.cleanup(() => sock.destroy());
  const closed = new Promise((r) => sock.on("close", r));
  sock.on("error", () => {});
  const req = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(200);
  const t0 = Date.now();
  let i = 0;
  const timer = setInterval(() => { if (i < req.length) sock.write(req[i++]); }, 200); // every read within civetweb's timeout
  t.cleanup(() => clearInterval(timer));
  await Promise.race([closed, sleep(8000)]);
  const took = Date.now() - t0;
  assert.ok(sock.destroyed || sock.readableEnded, "the slow client was disconnected");
  assert.ok(took < 5000, `disconnected after ${took} ms`);
  // Meanwhile, normal requests are served.
  assert.equal((await fetch(`${gw.url}/health`)).status, 200);
});

defcase("unmasked_client_frame_closed_1002", async (t) => {
  const net = await import("node:net");
  const gw = await startGateway(t);
  const jwt = await mint(gw, topics);
  const sock = net.connect(gw.port, "127.0.0.1");
  t.cleanup(() => sock.destroy());
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
  sock.on("error", () => {});
  const closed = new Promise((r) => sock.on("close", r));
  sock.write(`GET /v1/realtime/connect?token=${jwt}&rtgw=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  for (let i = 0; i < 100 && !buf.includes("rtgw.subscribed"); i++) await sleep(20);
  assert.match(buf.toString("latin1"), /^HTTP\/1\.1 101/);
  sock.write(Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f])); // text "hello", no mask bit
  await Promise.race([closed, sleep(5000)]);
  // Find the close frame (opcode 8) after the 101 and the ack.
  const body = buf.subarray(buf.indexOf("\r\n\r\n") + 4);
  let off = 0, close = null;
  while (off + 2 <= body.length) {
    let len = body[off + 1] & 127, hl = 2;
    if (len === 126) { len = body.readUInt16BE(off + 2); hl = 4; }
    if ((body[off] & 0x0f) === 8) { close = body.subarray(off + hl, off + hl + len); break; }
    off += hl + len;
  }
  assert.ok(close, "a close frame");
  assert.equal(close.readUInt16BE(0), 1002);
  assert.match(close.subarray(2).toString(), /protocol_error/);
});

await run();
