// rtgw's side of doctor (docs/protocol.md, section 12): the X-Rtgw mark on every
// response rtgw writes, and the probe record — what arrived of requests tagged with a
// probe id, read back with the signing key only, bounded, and never holding a secret.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, keygen } from "../lib/gateway.mjs";
import { http } from "../lib/http.mjs";
import { rawExchange, rawRequest } from "../lib/rawhttp.mjs";

const MARK = /^\d+\.\d+\.\d+/;
const record = (gw, id, key = gw.key) => http(gw, "GET", `/v1/realtime/doctor/probes/${id}`, { key });

defcase("every_response_carries_the_mark", async (t) => {
  const gw = await startGateway(t);
  for (const [method, p, status] of [["GET", "/health", 200], ["GET", "/ready", 200], ["GET", "/metrics", 200],
    ["GET", "/nope", 404], ["GET", "/v1/realtime/connect", 426], ["GET", "/v1/realtime/token", 405],
    ["GET", "/v1/realtime/sse", 401], ["POST", "/v1/realtime/publish?channel=c&topic=t", 401], ["OPTIONS", "/v1/realtime/token", 204]]) {
    const r = await http(gw, method, p);
    assert.equal(r.status, status, `${method} ${p}`);
    assert.match(r.headers.get("x-rtgw") || "", MARK, `${method} ${p} lacks X-Rtgw`);
  }
  // The HTTP layer's own refusal (a malformed request line) and an upgrade refused before the 101.
  const bad = await rawExchange(gw, ["GARBAGE\r\n\r\n"]);
  assert.equal(bad.responses[0]?.status, 400, bad.text);
  assert.match(bad.responses[0].headers["x-rtgw"] || "", MARK, bad.text);
  const up = await rawRequest(gw, "GET /v1/realtime/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n");
  assert.equal(up.status, 401, up.text);
  assert.match(up.text, /\r\nX-Rtgw: \d/);
});

defcase("probe_record_shape_without_secrets", async (t) => {
  const gw = await startGateway(t);
  const id = "probe-0123456789abcdef";
  const secret = keygen();
  await rawRequest(gw, `GET /v1/realtime/connect?rtgw_probe=${id}&token=tok-${secret} HTTP/1.1\r\nHost: x\r\n` +
    `Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nAuthorization: Bearer ${secret}\r\nOrigin: https://app.example\r\n` +
    `X-Forwarded-For: 203.0.113.9\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n`);
  await http(gw, "GET", "/connect", { headers: { "X-Rtgw-Probe": id } }); // a rewritten path, id in the header only
  const r = await record(gw, id);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.id, id);
  const [a, b] = r.json.requests;
  assert.equal(r.json.requests.length, 2);
  assert.deepEqual({ path: a.path, query: a.query, query_token: a.query_token, upgrade: a.upgrade, connection: a.connection,
    authorization: a.authorization, origin: a.origin, xff: a.forwarded.x_forwarded_for, http: a.http_version, in: a.id_in },
  { path: "/v1/realtime/connect", query: true, query_token: true, upgrade: "websocket", connection: "upgrade",
    authorization: true, origin: true, xff: true, http: "1.1", in: { header: false, query: true } });
  assert.deepEqual({ path: b.path, query: b.query, authorization: b.authorization, connection: b.connection, in: b.id_in },
    { path: "/connect", query: false, authorization: false, connection: "keep-alive", in: { header: true, query: false } });
  assert.ok(!r.text.includes(secret), "a secret is in the record");
  // The record is also served under a rewritten prefix (a proxy that rewrote the probe rewrites this too).
  const under = await http(gw, "GET", `/doctor/probes/${id}`, { key: gw.key });
  assert.equal(under.status, 200);
  assert.equal(under.json.requests.length, 2);
});

defcase("probe_record_needs_the_signing_key", async (t) => {
  const gw = await startGateway(t);
  const id = "probe-needs-key-0001";
  await http(gw, "GET", "/health", { headers: { "X-Rtgw-Probe": id } });
  assert.equal((await record(gw, id, null)).status, 401);
  const wrong = await record(gw, id, keygen());
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error, "unauthorized");
  assert.equal((await record(gw, "short", gw.key)).status, 400);
  assert.equal((await record(gw, "bad%20id%20here", gw.key)).status, 400);
  assert.equal((await record(gw, "unknown-id-0000", gw.key)).json.requests.length, 0);
});

defcase("probe_record_is_bounded", async (t) => {
  const gw = await startGateway(t);
  // One id keeps at most 16 records; an invalid id is not recorded at all.
  for (let i = 0; i < 20; i++) await http(gw, "GET", `/health?rtgw_probe=bounded-id-${"x".repeat(4)}`);
  assert.equal((await record(gw, "bounded-id-xxxx")).json.requests.length, 16);
  await http(gw, "GET", "/health", { headers: { "X-Rtgw-Probe": "no" } });
  assert.equal((await record(gw, "no", gw.key)).status, 400);
  // The ring holds 64 in all: older ids are overwritten.
  for (let i = 0; i < 64; i++) await http(gw, "GET", "/health", { headers: { "X-Rtgw-Probe": `filler-${String(i).padStart(4, "0")}` } });
  assert.equal((await record(gw, "bounded-id-xxxx")).json.requests.length, 0);
  assert.equal((await record(gw, "filler-0063")).json.requests.length, 1);
});

await run();
