// Streamed publishes (Content-Type: text/stream) reach subscribers live, chunk
// by chunk as the producer writes, and curl's Expect: 100-continue is answered.
import assert from "node:assert/strict";
import http from "node:http";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint } from "../lib/gateway.mjs";
import { sleep } from "../lib/wait.mjs";
import { connect } from "../lib/ws.mjs";

requireNodeModules("ws");

// POST a chunked text/stream body, writing `parts` with `gapMs` between them.
function streamPost(gw, parts, gapMs, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/realtime/publish?channel=s&topic=ai`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream", ...headers },
    }, (res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve({ status: res.statusCode, body: b ? JSON.parse(b) : null }));
    });
    req.on("error", reject);
    (async () => {
      for (const p of parts) {
        req.write(p);
        await sleep(gapMs);
      }
      req.end();
    })();
  });
}

defcase("stream_chunks_arrive_live", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [{ channel: "s", name: "ai", kind: "run" }]);
  const c = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const parts = ["tok1 ", "tok2 ", "héllo ", "tok4"];
  const done = streamPost(gw, parts, 400);
  const start = await c.next(3000, "datastream-start");
  assert.equal(start.kind, "datastream-start");
  const arrivals = [];
  let text = "";
  for (;;) {
    const m = await c.next(3000, "a chunk or the end");
    if (m.kind === "datastream-end") break;
    assert.equal(m.kind, "chunk");
    assert.equal(m.stream_id, start.stream_id);
    assert.equal(m.channel, "s");
    assert.equal(m.topic, "ai");
    arrivals.push(Date.now());
    text += m.data;
  }
  assert.equal(text, parts.join(""));
  // Written 400 ms apart, so they must not arrive as one chunk at the end.
  assert.ok(arrivals.length >= 3, `chunks were held back: ${arrivals.length} chunk(s) for 4 writes`);
  assert.ok(arrivals[arrivals.length - 1] - arrivals[0] >= 700,
    `chunks arrived within ${arrivals[arrivals.length - 1] - arrivals[0]} ms of each other`);
  const res = await done;
  assert.equal(res.status, 200);
  assert.equal(res.body.stream_id, start.stream_id);
  assert.equal(res.body.bytes, Buffer.byteLength(parts.join("")));
});

defcase("stream_over_64_bodies_413_after_its_end", async (t) => {
  // A streamed body may carry 64 x RTGW_MAX_BODY_BYTES (64 KiB here): past it
  // the stream is ended for its subscribers (datastream-end, nothing beyond
  // the limit delivered) and the publisher gets 413 body_too_large.
  const gw = await startGateway(t, { env: { RTGW_MAX_BODY_BYTES: "1024" } });
  const jwt = await mint(gw, [{ channel: "s", name: "ai", kind: "run" }]);
  const c = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const parts = Array.from({ length: 10 }, (_, i) => String(i).repeat(8192)); // 80 KiB
  const done = streamPost(gw, parts, 20);
  assert.equal((await c.next(5000, "datastream-start")).kind, "datastream-start");
  let bytes = 0;
  for (;;) {
    const m = await c.next(5000, "a chunk or the end");
    if (m.kind === "datastream-end") break;
    assert.equal(m.kind, "chunk");
    bytes += Buffer.byteLength(m.data);
  }
  assert.ok(bytes <= 64 * 1024, `${bytes} bytes delivered, past the 65536-byte limit`);
  const res = await done.catch((e) => ({ status: 0, error: String(e) }));
  assert.equal(res.status, 413, JSON.stringify(res));
  assert.equal(res.body.error, "body_too_large");
  assert.match(res.body.message, /64 x RTGW_MAX_BODY_BYTES/);
});

defcase("stream_utf8_never_split", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [{ channel: "s", name: "ai", kind: "run" }]);
  const c = await connect(`${gw.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  await c.next();
  // A 4-byte character written one byte at a time, then a long multibyte run.
  const emoji = Buffer.from("🙂");
  const parts = [...emoji].map((b) => Buffer.from([b])).concat([Buffer.from("ü".repeat(1500))]);
  const done = streamPost(gw, parts, 60);
  let text = "";
  for (;;) {
    const m = await c.next(3000, "stream frames");
    if (m.kind === "datastream-end") break;
    if (m.kind === "chunk") {
      assert.ok(!m.data.includes("\ufffd"), "a chunk holds a broken UTF-8 sequence");
      text += m.data;
    }
  }
  assert.equal(text, "🙂" + "ü".repeat(1500));
  assert.equal((await done).status, 200);
});

defcase("expect_100_continue_answered", async (t) => {
  const gw = await startGateway(t);
  // With Expect: 100-continue a client waits for "100 Continue" before the body.
  const res = await new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/realtime/publish?channel=s&topic=ai`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "application/json", Expect: "100-continue" },
    }, (r) => {
      let b = "";
      r.on("data", (d) => (b += d));
      r.on("end", () => resolve({ status: r.statusCode, body: JSON.parse(b), continued }));
    });
    let continued = false;
    req.on("continue", () => { continued = true; req.end('{"ok":1}'); });
    req.on("error", reject);
    setTimeout(() => { if (!continued) reject(new Error("no 100 Continue within 800 ms")); }, 800);
  });
  assert.equal(res.continued, true);
  assert.equal(res.status, 200);
  assert.equal(res.body.ok, true);
  // Any other expectation is refused with 417.
  const other = await new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/realtime/publish?channel=s&topic=ai`, {
      method: "POST", headers: { Authorization: `Bearer ${gw.key}`, Expect: "something-else", "Content-Length": 2 },
    }, (r) => {
      let b = "";
      r.on("data", (d) => (b += d));
      r.on("end", () => resolve({ status: r.statusCode, body: JSON.parse(b) }));
    });
    req.on("error", reject);
    req.end("{}");
  });
  assert.equal(other.status, 417);
  assert.equal(other.body.error, "expectation_failed");
});

defcase("plain_get_on_connect_says_upgrade_required", async (t) => {
  const gw = await startGateway(t);
  const res = await fetch(`${gw.url}/v1/realtime/connect?token=x`);
  assert.equal(res.status, 426);
  const body = await res.json();
  assert.equal(body.error, "upgrade_required");
  assert.match(body.message, /proxy/);
});

await run();
