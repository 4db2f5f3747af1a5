// Bad input: malformed bodies, oversized bodies and tokens, bad names, unknown
// routes, and WebSocket clients that misbehave after the upgrade. After each
// misbehaving client, another subscriber must still receive events.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import nodeHttp from "node:http";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, mintBody, topic } from "../lib/http.mjs";
import { rssKb } from "../lib/proc.mjs";
import { rawRequest } from "../lib/rawhttp.mjs";
import { rawUpgrade, rawNextFrame, clientFrame } from "../lib/rawws.mjs";
import { sleep, waitFor, withTimeout } from "../lib/wait.mjs";
import { connect, refusedUpgrade, refusedExt, wsUrl } from "../lib/ws.mjs";

const MAX_BODY = 2048;

// POST with a chunked body (no Content-Length).
function postChunked(gw, p, chunks, key) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = nodeHttp.request(`${gw.url}${p}`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" } }, async (res) => {
      let b = ""; for await (const d of res) b += d;
      let json; try { json = JSON.parse(b); } catch {}
      resolve({ status: res.statusCode, json, text: b });
    });
    req.on("error", reject);
    for (const c of chunks) req.write(c);
    req.end();
  }), 5000, `chunked POST ${p}`);
}

defcase("token_malformed_json_400", async (t) => {
  const gw = await startGateway(t);
  for (const body of ['[{"channel":"a","name":"b"', "not json", "", '[{"channel":"a","name":"b","channel":"c"}]']) {
    const r = await mintBody(gw, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error, "bad_json", JSON.stringify(body));
    assert.equal(typeof r.json.message, "string");
  }
  // Valid JSON of the wrong shape is bad_request.
  for (const body of ["{}", "[]", "[1]", '[{"channel":"a"}]', '[{"name":"b"}]', '[{"channel":1,"name":"b"}]', '{"topics":[{"channel":"a","name":"b"}],"ttl":"x"}']) {
    const r = await mintBody(gw, body);
    assert.equal(r.status, 400, `${body}: ${r.text}`);
    assert.equal(r.json.error, "bad_request", body);
  }
});

defcase("body_too_large_413", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_BODY_BYTES: String(MAX_BODY) } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  const big = JSON.stringify("x".repeat(MAX_BODY * 3));
  // Content-Length
  let r = await mintBody(gw, big);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error, "body_too_large");
  r = await http(gw, "POST", "/v1/realtime/publish?channel=a&topic=b", { body: big, key: gw.key });
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error, "body_too_large");
  // Chunked
  const chunks = Array.from({ length: 12 }, () => "y".repeat(512));
  r = await postChunked(gw, "/v1/realtime/token", chunks, gw.key);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error, "body_too_large");
  r = await postChunked(gw, "/v1/realtime/publish?channel=a&topic=b", chunks, gw.key);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error, "body_too_large");
  // A body at the limit is accepted, chunked or not; the refused ones delivered nothing.
  const atLimit = JSON.stringify("z".repeat(MAX_BODY - 2));
  assert.equal(Buffer.byteLength(atLimit), MAX_BODY);
  r = await http(gw, "POST", "/v1/realtime/publish?channel=a&topic=b", { body: atLimit, key: gw.key });
  assert.equal(r.status, 200, r.text);
  r = await postChunked(gw, "/v1/realtime/publish?channel=a&topic=b", [atLimit.slice(0, 1000), atLimit.slice(1000)], gw.key);
  assert.equal(r.status, 200, r.text);
  assert.equal((await sub.next()).data.length, MAX_BODY - 2);
  assert.equal((await sub.next()).data.length, MAX_BODY - 2);
  assert.deepEqual(await sub.quiet(100), []);
});

defcase("missing_channel_or_topic_400", async (t) => {
  const gw = await startGateway(t);
  for (const q of ["", "?topic=b", "?channel=a", "?channel=&topic=b", "?channel=a&topic=", "?chan=a&topic=b"]) {
    const r = await http(gw, "POST", `/v1/realtime/publish${q}`, { body: "1", key: gw.key });
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.match(r.json.error, /^(bad_request|name_empty)$/, q);
  }
  for (const body of [[{ name: "b" }], [{ channel: "a" }], [{ channel: "", name: "b" }], [{ channel: "a", name: "" }]]) {
    const r = await mintBody(gw, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.json.error, /^(bad_request|name_empty)$/);
  }
});

defcase("invalid_utf8_names_400", async (t) => {
  const gw = await startGateway(t);
  for (const q of ["channel=%ff&topic=b", "channel=a&topic=%c3%28", "channel=a%e2%82&topic=b", "channel=%01&topic=b", "channel=a&topic=b%7f"]) {
    const r = await http(gw, "POST", `/v1/realtime/publish?${q}`, { body: "1", key: gw.key });
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.error, "name_bad_chars", q);
  }
  // A NUL byte in a name is refused as well, not truncated.
  const r = await http(gw, "POST", "/v1/realtime/publish?channel=a%00b&topic=b", { body: "1", key: gw.key });
  assert.equal(r.status, 400);
  assert.equal(r.json.error, "name_bad_chars");
  // Token names: control characters.
  const m = await mintBody(gw, [{ channel: "a\u0001", name: "b" }]);
  assert.equal(m.status, 400);
  assert.equal(m.json.error, "name_bad_chars");
});

defcase("huge_token_in_url_refused", async (t) => {
  const gw = await startGateway(t);
  const good = await mint(gw, [topic("a", "b")]);
  const huge = good + "A".repeat(9000); // > RTGW_MAX_TOKEN_BYTES (8192)
  let r = await refusedUpgrade(wsUrl(gw, huge));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_too_large");
  r = await refusedUpgrade(`${gw.ws}/v1/realtime/connect`, { headers: { Authorization: `Bearer ${huge}` } });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_too_large");
  const e = await refusedExt(wsUrl(gw, huge));
  assert.equal(e.code, 4402);
  assert.match(e.reason, /token_too_large/);
  // A smaller limit applies too (token minted by a gateway with the same key and the default limit).
  const gw2 = await startGateway(t, { key: gw.key, env: { RTGW_MAX_TOKEN_BYTES: "256" } });
  const tok2 = await mint(gw, [topic("a", "b"), topic("a", "c"), topic("a", "d")]);
  assert.ok(tok2.length > 256);
  r = await refusedUpgrade(wsUrl(gw2, tok2));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_too_large");
});

defcase("unknown_route_404_json", async (t) => {
  const gw = await startGateway(t);
  for (const p of ["/nope", "/v1/realtime", "/v1/realtime/tokens", "/v1/realtime/token/x", "/", "/v2/realtime/publish"]) {
    const r = await http(gw, "GET", p);
    assert.equal(r.status, 404, `${p}: ${r.text}`);
    assert.match(r.headers.get("content-type"), /^application\/json/, p);
    assert.equal(r.json.error, "not_found", p);
  }
});

defcase("wrong_method_405", async (t) => {
  const gw = await startGateway(t);
  for (const [m, p] of [["GET", "/v1/realtime/publish"], ["PUT", "/v1/realtime/publish?channel=a&topic=b"], ["GET", "/v1/realtime/token"], ["DELETE", "/v1/realtime/token"]]) {
    const r = await http(gw, m, p, { key: gw.key });
    assert.equal(r.status, 405, `${m} ${p}: ${r.text}`);
    assert.equal(r.json.error, "method_not_allowed");
  }
});

// One healthy subscriber; `misbehave` runs a bad client; then the healthy one must
// still receive, and /health must answer.
async function survives(t, misbehave, env = {}) {
  const gw = await startGateway(t, { env });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const good = await connect(wsUrl(gw, jwt), { t });
  await publish(gw, "user:42", "ai", { n: 0 });
  assert.deepEqual((await good.next()).data, { n: 0 });
  const ctx = await misbehave(gw, jwt);
  for (let n = 1; n <= 20; n++) assert.equal((await publish(gw, "user:42", "ai", { n })).status, 200);
  for (let n = 1; n <= 20; n++) assert.deepEqual((await good.next(3000, `event ${n}`)).data, { n });
  const h = await http(gw, "GET", "/health");
  assert.equal(h.status, 200);
  assert.equal(h.json.status, "ok");
  assert.equal(good.closeInfo, null, "the healthy subscriber stays open");
  return { gw, good, ctx };
}

defcase("garbage_after_upgrade", async (t) => {
  const { gw, ctx } = await survives(t, async (gw, jwt) => {
    const bad = [];
    for (let i = 0; i < 5; i++) {
      const r = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t });
      assert.equal(r.status, 101);
      r.sock.write(crypto.randomBytes(8192));
      // Unmasked frames are a protocol error too.
      r.sock.write(Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
      bad.push(r);
    }
    return bad;
  });
  // Garbage that declares a frame longer than what was sent may keep a socket
  // waiting; once the clients go away the gateway is back to one connection.
  for (const r of ctx) r.sock.destroy();
  await waitFor(async () => (await http(gw, "GET", "/health")).json.connections === 1, 3000, "connections back to 1");
});

defcase("disconnect_mid_frame", async (t) => {
  const { gw } = await survives(t, async (gw, jwt) => {
    for (let i = 0; i < 5; i++) {
      const r = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t });
      assert.equal(r.status, 101);
      r.sock.write(clientFrame(0x1, Buffer.from("{\"half"), { declaredLen: 1000 }).subarray(0, 10 + i));
      await sleep(20);
      if (i % 2) r.sock.destroy(); else r.sock.end();
    }
  });
  // The five half-frame clients are gone: only the healthy one is counted.
  await waitFor(async () => (await http(gw, "GET", "/health")).json.connections === 1, 3000, "connections back to 1");
});

defcase("client_sends_1mib_text_frame", async (t) => {
  // Over RTGW_MAX_CLIENT_FRAME_BYTES (64 KiB): the sender is closed with 1009
  // message_too_big; the other subscriber keeps being served.
  const { gw, ctx } = await survives(t, async (gw, jwt) => {
    const big = await connect(wsUrl(gw, jwt), { t });
    await new Promise((res) => big.ws.send("x".repeat(1 << 20), () => res()));
    // A second frame may find the socket already closed by the gateway.
    await new Promise((res) => big.ws.send(crypto.randomBytes(1 << 20), () => res()));
    return big;
  });
  assert.ok(ctx.closeInfo, "the sender of a 1 MiB frame must be closed");
  assert.equal(ctx.closeInfo.code, 1009);
  assert.match(String(ctx.closeInfo.reason), /message_too_big/);
  assert.equal((await http(gw, "GET", "/health")).json.connections, 1);
});

// KNOWN BUG (registered WILL_FAIL in CMakeLists.txt until fixed): civetweb reads
// and buffers a whole client frame before ws_data sees it, so the
// RTGW_MAX_CLIENT_FRAME_BYTES check (64 KiB) comes after the gateway has
// allocated what the header announced (up to ~2 GiB per connection). Expected:
// the frame is refused from its header, with 1009, and memory stays flat.
defcase("oversized_frame_refused_before_buffering", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_LOG_LEVEL: "info" } });
  const jwt = await mint(gw, [topic("a", "b")]);
  const r = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t });
  assert.equal(r.status, 101);
  const rss0 = rssKb(gw.child.pid);
  const N = 64 * 1024 * 1024;
  const hdr = Buffer.alloc(14); // text frame, 64-bit length, zero mask
  hdr[0] = 0x81; hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(N), 2);
  r.sock.write(hdr);
  const chunk = Buffer.alloc(1 << 20, 0x61);
  let maxRss = rss0;
  for (let sent = 0; sent < N && !r.sock.destroyed && !r.frames.some((f) => f.opcode === 0x8); sent += chunk.length) {
    if (!r.sock.write(chunk)) {
      await withTimeout(new Promise((res) => {
        const done = () => { r.sock.off("drain", done); r.sock.off("close", done); res(); };
        r.sock.on("drain", done); r.sock.on("close", done);
      }), 10000, "drain");
    }
    maxRss = Math.max(maxRss, rssKb(gw.child.pid));
  }
  await withTimeout(r.ended, 10000, "the gateway to close the connection");
  const close = r.frames.find((f) => f.opcode === 0x8);
  assert.ok(close, "a close frame");
  assert.equal(close.payload.readUInt16BE(0), 1009);
  assert.ok(maxRss - rss0 < 16 * 1024, `gateway RSS grew by ${((maxRss - rss0) / 1024).toFixed(0)} MB for a refused frame`);
});


// ---- deeply nested JSON (a recursive parser on a small thread stack) ----------------
// 300 levels of `[` in a 600-byte publish body, or 1,000 in the header of a forged
// token (no credential at all), overflowed a connection thread's stack and killed the
// process. Every parse of untrusted JSON is now preceded by a depth scan.

const nest = (depth, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);

const postHead = (gw, p, key) =>
  `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n` +
  (key ? `Authorization: Bearer ${key}\r\n` : "") + "Content-Type: application/json\r\n";

// The gateway is alive, answers /health, and a subscriber that was there all along
// still receives the next ordinary event: the bad request cost nobody anything.
async function stillServing(gw, sub, marker) {
  assert.equal(gw.child.exitCode, null, `rtgw exited: ${gw.logs().slice(-2000)}`);
  assert.equal(gw.child.signalCode, null, `rtgw was killed by ${gw.child.signalCode}`);
  const h = await http(gw, "GET", "/health");
  assert.equal(h.status, 200, h.text);
  assert.equal((await publish(gw, "a", "b", { marker })).status, 200);
  for (;;) {
    const m = await sub.next(5000, `event ${marker}`);
    if (m.kind === "data" && m.data && m.data.marker === marker) break;
  }
}

defcase("deep_json_publish_refused_400_nothing_published", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  const ptok = await mint(gw, [topic("a", "b")], { publish: true });
  let n = 0;
  for (const depth of [65, 300, 1000, 80000]) {
    for (const key of [gw.key, ptok]) {
      const r = await rawRequest(gw, postHead(gw, "/v1/realtime/publish?channel=a&topic=b", key), nest(depth));
      assert.equal(r.status, 400, `depth ${depth}: ${r.text.slice(0, 300)}`);
      assert.equal(r.json && r.json.error, "json_too_deep", r.text.slice(0, 300));
      assert.match(r.json.message, /RTGW_MAX_JSON_DEPTH/);
      await stillServing(gw, sub, `after-${depth}-${n++}`);
    }
  }
  // Nothing of the refused bodies reached the subscriber.
  for (const m of await sub.quiet(200)) assert.ok(!(m.data && Array.isArray(m.data)), JSON.stringify(m).slice(0, 200));
});

defcase("deep_json_batch_and_mint_refused_400", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  for (const depth of [300, 100000]) {
    const batch = `[{"channel":"a","topic":"b","data":${nest(depth)}}]`;
    let r = await rawRequest(gw, postHead(gw, "/v1/realtime/publish/batch", gw.key), batch);
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json.error, "json_too_deep");
    r = await rawRequest(gw, postHead(gw, "/v1/realtime/token", gw.key), nest(depth, '{"channel":"a","name":"b"}'));
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json.error, "json_too_deep");
    await stillServing(gw, sub, `after-${depth}`);
  }
});

defcase("deep_json_in_forged_token_refused_unauthenticated", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  const forged = (part) => part === "h"
    ? `${Buffer.from(nest(1500)).toString("base64url")}.e30.AAAA`
    : `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url")}.${Buffer.from(nest(1500)).toString("base64url")}.AAAA`;
  for (const part of ["h", "p"]) {
    const tok = forged(part);
    // WebSocket upgrade (plain client: an HTTP refusal) and extended (a close code).
    const up = await rawUpgrade(gw, `/v1/realtime/connect?token=${tok}`, { t });
    assert.equal(up.status, 401, `${part}: upgrade answered ${up.status}`);
    const ext = await rawUpgrade(gw, `/v1/realtime/connect?token=${tok}`, { t, headers: { "Sec-WebSocket-Protocol": "rtgw.v1" } });
    assert.equal(ext.status, 101);
    const close = await rawNextFrame(ext, (f) => f.opcode === 8, 5000, "the close frame");
    assert.equal(close.payload.readUInt16BE(0), 4402);
    // the header is scanned before it is parsed; the payload is not even parsed
    // until the signature verifies
    assert.match(close.payload.subarray(2).toString(), part === "h" ? /token_json_too_deep/ : /token_bad_signature/);
    // SSE
    const sse = await rawRequest(gw, `GET /v1/realtime/sse?token=${tok} HTTP/1.1\r\nHost: x\r\n`);
    assert.equal(sse.status, 401, sse.text.slice(0, 300));
    await stillServing(gw, sub, `after-${part}`);
  }
});

defcase("deep_json_client_message_refused_session_lives", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  const up = await rawUpgrade(gw, `/v1/realtime/connect?token=${await mint(gw, [topic("a", "b")])}`, { t, headers: { "Sec-WebSocket-Protocol": "rtgw.v1" } });
  assert.equal(up.status, 101);
  await rawNextFrame(up, (f) => f.opcode === 1 && /rtgw.subscribed/.test(f.payload.toString()), 5000, "the ack");
  up.sock.write(clientFrame(1, Buffer.from(nest(20000, '{"kind":"rtgw.refresh"}'))));
  const err = await rawNextFrame(up, (f) => f.opcode === 1 && /rtgw.error/.test(f.payload.toString()), 5000, "an rtgw.error reply");
  assert.equal(JSON.parse(err.payload.toString()).error, "bad_request");
  await stillServing(gw, sub, "after-message");
  // the session that sent it is still subscribed
  await rawNextFrame(up, (f) => f.opcode === 1 && /after-message/.test(f.payload.toString()), 5000, "the event on the sender's session");
});

defcase("json_depth_limit_edge_exact", async (t) => {
  // At the largest RTGW_MAX_JSON_DEPTH allowed, a body exactly that deep is parsed
  // (on the same small stacks) and delivered intact; one level more is refused.
  const gw = await startGateway(t, { env: { RTGW_MAX_JSON_DEPTH: "128" } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("a", "b")])), { t });
  let r = await rawRequest(gw, postHead(gw, "/v1/realtime/publish?channel=a&topic=b", gw.key), nest(128, '"deep"'));
  assert.equal(r.status, 200, r.text.slice(0, 300));
  let m = await sub.next(5000, "the 128-deep event");
  let d = m.data, levels = 0;
  while (Array.isArray(d)) { d = d[0]; levels++; }
  assert.equal(levels, 128);
  assert.equal(d, "deep");
  r = await rawRequest(gw, postHead(gw, "/v1/realtime/publish/batch", gw.key), `[{"channel":"a","topic":"b","data":${nest(128, '"deep"')}}]`);
  assert.equal(r.status, 200, r.text.slice(0, 300));
  m = await sub.next(5000, "the 128-deep batch event");
  assert.ok(Array.isArray(m.data));
  r = await rawRequest(gw, postHead(gw, "/v1/realtime/publish?channel=a&topic=b", gw.key), nest(129));
  assert.equal(r.status, 400, r.text.slice(0, 300));
  assert.equal(r.json.error, "json_too_deep");
  assert.match(r.json.message, /128/);
  const bad = await startGateway(t, { env: { RTGW_MAX_JSON_DEPTH: "129" }, expectFail: true });
  const ex = await bad.exited;
  assert.notEqual(ex.code, 0);
  assert.match(bad.logs(), /RTGW_MAX_JSON_DEPTH/);
});

await run();
