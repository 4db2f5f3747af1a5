// Inngest parity (issue 15, part two), against a real rtgw process with raw clients:
// payloads forwarded as the bytes they came as, the frame fields Inngest sends
// (env_id, metadata, fn_slug), dev mode with any key on loopback only, publish/tee,
// and the named refusals of token claims and oversized tokens. The official client's
// side of the same behaviours is in tests/interop/inngest_clients.mjs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import nodeHttp from "node:http";
import { defcase, run } from "../lib/harness.mjs";
import { freePort, keygen, startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, mintBody, topic } from "../lib/http.mjs";
import { rawExchange } from "../lib/rawhttp.mjs";
import { TRICKY_JSON, rawField } from "../lib/jsondocs.mjs";
import { sse } from "../lib/sse.mjs";
import { resignHs256 } from "../lib/tokens.mjs";
import { waitFor } from "../lib/wait.mjs";
import { connect, refusedExt, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

// Publish every tricky document as a raw body; `frames()` returns the frame texts
// received so far; each must carry the document's bytes as its data.
async function roundTrip(gw, frames, what) {
  for (const d of TRICKY_JSON) {
    const r = await publish(gw, "bytes", "t", d.body);
    assert.equal(r.status, 200, `${d.name}: publish ${JSON.stringify(r.body)}`);
  }
  await waitFor(() => frames().length >= TRICKY_JSON.length, 5000, `${TRICKY_JSON.length} frames over ${what}`);
  TRICKY_JSON.forEach((d, i) => {
    const text = frames()[i];
    assert.ok(!/[\r\n]/.test(text), `${d.name}: the frame is one line: ${JSON.stringify(text)}`);
    assert.equal(rawField(text, "data"), d.want, `${d.name} over ${what}: frame ${text}`);
    JSON.parse(text); // still JSON
  });
}

defcase("raw_json_bytes_over_ws", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("bytes", "t")]);
  const c = await connect(wsUrl(gw, jwt), { t, raw: true });
  await roundTrip(gw, () => c.msgs.map((b) => b.toString("utf8")), "a WebSocket");
});

defcase("raw_json_bytes_over_sse", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("bytes", "t")]);
  const s = await sse(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(jwt)}`, t);
  assert.equal(s.status, 200);
  const lines = () => s.raw.split("\n").filter((l) => l.startsWith("data: {\"kind\":\"data\"")).map((l) => l.slice(6));
  await roundTrip(gw, lines, "SSE");
});

defcase("raw_json_bytes_in_batch", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("bytes", "t")]);
  const c = await connect(wsUrl(gw, jwt), { t, raw: true });
  const body = "[" + TRICKY_JSON.map((d) => `{"channel":"bytes","topic":"t","data": ${d.body} }`).join(",\n") + "]";
  const r = await http(gw, "POST", "/v1/realtime/publish/batch", { body, key: gw.key });
  assert.equal(r.status, 200, JSON.stringify(r.json ?? r.text));
  assert.equal(r.json.published, TRICKY_JSON.length, JSON.stringify(r.json));
  await waitFor(() => c.msgs.length >= TRICKY_JSON.length, 5000, "the batch's frames");
  TRICKY_JSON.forEach((d, i) => {
    const text = c.msgs[i].toString("utf8");
    assert.equal(rawField(text, "data"), d.want, `${d.name} in a batch: frame ${text}`);
  });
});

defcase("invalid_json_body_is_a_string_bad_utf8_refused", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("bytes", "t")]);
  const c = await connect(wsUrl(gw, jwt), { t, raw: true });
  // Not JSON (as Go's json.Valid sees it): sent as a JSON string, like Inngest.
  for (const body of ["01", "[1,]", "{\"a\":1", "\"tab\there\"", "nul", "1 2"]) {
    const r = await publish(gw, "bytes", "t", body);
    assert.equal(r.status, 200, `${body}: ${JSON.stringify(r.body)}`);
  }
  await waitFor(() => c.msgs.length >= 6, 5000, "6 frames");
  assert.deepEqual(c.msgs.map((b) => JSON.parse(b.toString()).data), ["01", "[1,]", "{\"a\":1", "\"tab\there\"", "nul", "1 2"]);
  const bad = await http(gw, "POST", "/v1/realtime/publish?channel=bytes&topic=t",
    { body: Buffer.from([0x22, 0xff, 0x22]), key: gw.key });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, "bad_body");
});

// ---- gap 3: env_id, metadata, fn_slug ---------------------------------------------

defcase("frame_fields_env_id_metadata_fn_slug", async (t) => {
  const gw = await startGateway(t, { key: keygen("prod") });
  const jwt = await mint(gw, [topic("f", "t")]);
  const c = await connect(wsUrl(gw, jwt), { t, raw: true });
  const s = await sse(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(jwt)}`, t);
  const meta = '{"content-type":"text/plain","n":1e2,"big":123456789012345678901234567890}';
  let r = await publish(gw, "f", "t", { a: 1 },
    { query: `&metadata=${encodeURIComponent(" {\n" + meta.slice(1))}&fn_slug=my-app-my-fn&run_id=01HRUNID&fn_id=fn-1` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // A publish token: env_id is the token's env.
  const pubTok = await mint(gw, [topic("f", "t")], { publish: true, ttl: 60 });
  r = await publish(gw, "f", "t", 2, { key: pubTok });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  // Batch events carry fn_slug too.
  r = await http(gw, "POST", "/v1/realtime/publish/batch",
    { key: gw.key, body: JSON.stringify([{ channel: "f", topic: "t", data: 3, fn_slug: "batch-fn" }]) });
  assert.equal(r.status, 200, r.text);
  await waitFor(() => c.msgs.length >= 3, 5000, "3 frames");
  const [m1, m2, m3] = c.msgs.map((b) => b.toString());
  assert.equal(rawField(m1, "metadata"), meta, `metadata kept as its bytes: ${m1}`);
  const f1 = JSON.parse(m1);
  assert.equal(f1.env_id, "prod");
  assert.equal(f1.fn_slug, "my-app-my-fn");
  assert.equal(f1.run_id, "01HRUNID");
  assert.equal(f1.fn_id, "fn-1");
  const f2 = JSON.parse(m2);
  assert.equal(f2.env_id, "prod");
  assert.ok(!("metadata" in f2) && !("fn_slug" in f2), `absent, never null: ${m2}`);
  assert.equal(JSON.parse(m3).fn_slug, "batch-fn");
  await waitFor(() => s.frames.filter((f) => f.msg.kind === "data").length >= 3, 5000, "3 SSE frames");
  const sf = s.frames.filter((f) => f.msg.kind === "data")[0].msg;
  assert.equal(sf.env_id, "prod");
  assert.equal(sf.fn_slug, "my-app-my-fn");
  assert.deepEqual(sf.metadata, JSON.parse(meta));
});

defcase("metadata_refused_unless_json_within_limits", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_JSON_DEPTH: "4" } });
  const jwt = await mint(gw, [topic("f", "t")]);
  const c = await connect(wsUrl(gw, jwt), { t });
  for (const [what, m] of [["not JSON", "{oops"], ["too deep", "[[[[[1]]]]]"], ["too long", JSON.stringify("x".repeat(4100))]]) {
    const r = await publish(gw, "f", "t", 1, { query: `&metadata=${encodeURIComponent(m)}` });
    assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, "bad_metadata", what);
  }
  const ok = await publish(gw, "f", "t", 1, { query: `&metadata=${encodeURIComponent(JSON.stringify("x".repeat(4000)))}` });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal((await c.next()).metadata, "x".repeat(4000), "only the accepted publish arrives");
});

// ---- gap 2: dev mode accepts any signing key, on loopback only --------------------

defcase("dev_mode_accepts_foreign_key_on_loopback", async (t) => {
  const gw = await startGateway(t, { dev: true, key: null });
  const foreign = keygen("prod");
  assert.notEqual(foreign, gw.key);
  assert.match(gw.stdout(), /any signing key accepted/);
  const m = await mintBody(gw, [topic("d", "t")], foreign);
  assert.equal(m.status, 201, JSON.stringify(m.json));
  const c = await connect(wsUrl(gw, m.json.jwt), { t });
  for (let i = 0; i < 2; i++) {
    const r = await publish(gw, "d", "t", { i }, { key: foreign });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  assert.deepEqual((await c.next()).data, { i: 0 });
  // One warning line, naming the key's env and never its value.
  const warns = gw.logs().split("\n").filter((l) => /not this gateway's/.test(l));
  assert.equal(warns.length, 1, gw.logs());
  assert.match(warns[0], /key_env=prod/);
  assert.ok(!gw.logs().includes(foreign.slice(13)) && !gw.logs().includes(foreign.slice(-20)), "the key's value is never logged");
  // Not a signing key at all is still refused.
  assert.equal((await mintBody(gw, [topic("d", "t")], "not-a-key")).status, 401);
});

defcase("dev_mode_non_loopback_keeps_keys_strict", async (t) => {
  const port = await freePort();
  const gw = await startGateway(t, { dev: true, key: null, port, env: { RTGW_LISTEN: `0.0.0.0:${port}` } });
  assert.doesNotMatch(gw.stdout(), /any signing key accepted/);
  assert.match(gw.logs(), /only its own signing key is accepted here/);
  const foreign = keygen("prod");
  const m = await mintBody(gw, [topic("d", "t")], foreign);
  assert.equal(m.status, 401, JSON.stringify(m.json));
  assert.equal((await publish(gw, "d", "t", 1, { key: foreign })).status, 401);
  assert.equal((await mintBody(gw, [topic("d", "t")], gw.key)).status, 201, "its own key still works");
});

// ---- gap 5: publish/tee ------------------------------------------------------------

// POST a tee body in parts (chunked), `gapMs` apart; `between(i)` runs after part i.
function tee(gw, channel, parts, { key = gw.key, gapMs = 0, between = async () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(`${gw.url}/v1/realtime/publish/tee?channel=${encodeURIComponent(channel)}`, {
      method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/octet-stream" },
    }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => { let json; try { json = JSON.parse(text); } catch {} resolve({ status: res.statusCode, text, json }); });
    });
    req.on("error", reject);
    (async () => {
      for (let i = 0; i < parts.length; i++) {
        req.write(parts[i]);
        await between(i);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      req.end();
    })();
  });
}

const TEE_PARTS = [
  'event: inngest.metadata\ndata: {"runId":"01RUN"}\n\n',
  'event: inngest.stream\ndata: {"data":"h\u00e9llo 😀","hashedStepId":"s1"}\n\n',
  "event: inngest.commit\ndata: {\"hashedStepId\":\"s1\"}\n\n",
  'event: inngest.response\ndata: {"status":"succeeded","response":{"body":"{\\"n\\":0.1}","headers":{},"statusCode":200}}\n\n',
];

defcase("tee_body_verbatim_over_sse", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("01RUN", "$stream")]);
  const s = await sse(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(jwt)}`, t);
  assert.equal(s.status, 200);
  await waitFor(() => s.raw.includes("rtgw.subscribed"), 3000, "the SSE subscription");
  const start = s.raw.length;
  const other = await connect(wsUrl(gw, await mint(gw, [topic("01RUN", "ai")])), { t });
  const ext = await connect(wsUrl(gw, jwt), { t, protocols: ["rtgw.v1"] });
  assert.equal((await ext.next()).kind, "rtgw.subscribed");
  // Each part reaches the subscriber while the body is still open (it streams).
  const r = await tee(gw, "01RUN", TEE_PARTS, {
    between: (i) => waitFor(() => s.raw.slice(start) === TEE_PARTS.slice(0, i + 1).join(""), 3000, `part ${i} live`),
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.ok, true);
  assert.equal(r.json.bytes, Buffer.byteLength(TEE_PARTS.join("")));
  assert.equal(s.raw.slice(start), TEE_PARTS.join(""), "the SSE stream holds the tee'd bytes, nothing else");
  // Extended WebSocket clients get it as an event of kind "raw"; other topics nothing.
  const got = [];
  while (got.join("") !== TEE_PARTS.join("")) {
    const m = await ext.next(3000, "raw events");
    assert.equal(m.kind, "raw");
    assert.equal(m.topic, "$stream");
    got.push(m.data);
  }
  assert.deepEqual(await other.quiet(200), []);
});

defcase("tee_refusals", async (t) => {
  const gw = await startGateway(t);
  let r = await http(gw, "POST", "/v1/realtime/publish/tee", { key: gw.key, body: "x" });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error, "bad_request");
  r = await http(gw, "GET", "/v1/realtime/publish/tee?channel=c", { key: gw.key });
  assert.equal(r.status, 405, r.text);
  r = await tee(gw, "c", ["x"], { key: keygen() });
  assert.equal(r.status, 401, r.text);
  // A token publishes only where it may: publish:true and the channel's $stream granted.
  const sub = await mint(gw, [topic("c", "$stream")]);
  assert.equal((await tee(gw, "c", ["x"], { key: sub })).status, 403);
  const other = await mint(gw, [topic("c", "ai")], { publish: true, ttl: 60 });
  assert.equal((await tee(gw, "c", ["x"], { key: other })).status, 403);
  const ok = await mint(gw, [topic("c", "$stream")], { publish: true, ttl: 60 });
  r = await tee(gw, "c", ["data: 1\n\n"], { key: ok });
  assert.equal(r.status, 200, r.text);
});

defcase("tee_body_bounded", async (t) => {
  // 64 x RTGW_MAX_BODY_BYTES, like a streamed publish: 64 x 1 KiB here.
  const gw = await startGateway(t, { env: { RTGW_MAX_BODY_BYTES: "1024" } });
  const jwt = await mint(gw, [topic("big", "$stream")]);
  const s = await sse(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(jwt)}`, t);
  await waitFor(() => s.raw.includes("rtgw.subscribed"), 3000, "the SSE subscription");
  const start = s.raw.length;
  const ok = await tee(gw, "big", ["x".repeat(65536)]);
  assert.equal(ok.status, 200, ok.text);
  const over = await tee(gw, "big", ["y".repeat(65537)]);
  assert.equal(over.status, 413, over.text);
  assert.equal(over.json.error, "body_too_large");
  await waitFor(() => s.raw.slice(start).startsWith("x".repeat(65536)), 5000, "the whole first body");
});

// ---- gap 8: claims Inngest never issues, and oversized tokens ----------------------

// A validly signed token for gw whose payload edit() changed.
async function forged(gw, edit) {
  const jwt = await mint(gw, [topic("c", "t")], { publish: true, ttl: 60 });
  return resignHs256(jwt, execFileSync(process.env.TOKENTOOL, ["secret", gw.key], { encoding: "utf8" }).trim(), edit);
}

// Every way a token is used refuses `jwt` with the token error `name`.
async function refusedEverywhere(gw, jwt, name) {
  const up = await refusedUpgrade(wsUrl(gw, jwt));
  assert.equal(up.status, 401, `upgrade: ${JSON.stringify(up.json)}`);
  assert.equal(up.json.error, name, "upgrade");
  const ext = await refusedExt(wsUrl(gw, jwt));
  assert.equal(ext.code, 4402, `ext close (reason '${ext.reason}')`);
  assert.equal(ext.reason, `token_invalid: ${name}`);
  const s = await http(gw, "GET", `/v1/realtime/sse?token=${encodeURIComponent(jwt)}`);
  assert.equal(s.status, 401, `sse: ${s.text}`);
  assert.equal(s.json.error, name, "sse");
  const p = await publish(gw, "c", "t", { x: 1 }, { key: jwt });
  assert.equal(p.status, 401, `publish: ${JSON.stringify(p.body)}`);
  assert.equal(p.body.error, name, "publish");
}

defcase("token_topic_kind_not_inngest_refused", async (t) => {
  const gw = await startGateway(t);
  const m = await mintBody(gw, [{ channel: "c", name: "t", kind: "admin" }]);
  assert.equal(m.status, 400, JSON.stringify(m.json));
  assert.equal(m.json.error, "token_bad_topic_kind");
  // Inngest's two kinds are minted.
  for (const kind of ["run", "event"]) assert.equal((await mintBody(gw, [{ channel: "c", name: "t", kind }])).status, 201, kind);
  const jwt = await forged(gw, (p) => { p.topics = [{ channel: "c", name: "t", kind: "admin" }]; });
  await refusedEverywhere(gw, jwt, "token_bad_topic_kind");
});

// Inngest matches an "event" topic by env and name only; rtgw by channel and name, like "run".
defcase("token_kind_event_matches_channel_and_name", async (t) => {
  const gw = await startGateway(t);
  const m = await mintBody(gw, [{ channel: "c", name: "e", kind: "event" }]);
  assert.equal(m.status, 201, JSON.stringify(m.json));
  const c = await connect(wsUrl(gw, m.json.jwt), { t });
  assert.equal((await publish(gw, "other", "e", { other: true })).status, 200);
  assert.equal((await publish(gw, "c", "e", { mine: true })).status, 200);
  assert.deepEqual((await c.next()).data, { mine: true });
  assert.deepEqual(await c.quiet(200), []);
});

defcase("token_empty_topic_list_refused", async (t) => {
  const gw = await startGateway(t);
  const m = await mintBody(gw, []);
  assert.equal(m.status, 400, JSON.stringify(m.json));
  const jwt = await forged(gw, (p) => { p.topics = []; });
  await refusedEverywhere(gw, jwt, "token_no_topics");
});

// A 1 MB token: the head passes the gateway's 32 KiB head limit inside the token's
// line; the answer is 431 token_too_large (JSON), on every route that takes a token.
const WS_HEAD = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
const MB = "a".repeat(1 << 20);

async function headRefused(gw, head, name, what) {
  const r = await rawExchange(gw, [head], { ms: 8000 });
  const res = r.responses[0];
  assert.ok(res, `${what}: no HTTP response, only ${JSON.stringify(r.text.slice(0, 200))}`);
  assert.equal(res.status, 431, `${what}: ${res.body}`);
  assert.equal(res.json?.error, name, `${what}: ${res.body}`);
  assert.ok(r.closedByServer, `${what}: the connection is closed`);
}

defcase("oversized_token_in_query_named_refusal", async (t) => {
  const gw = await startGateway(t);
  await headRefused(gw, `GET /v1/realtime/connect?token=${MB} HTTP/1.1\r\nHost: x\r\n${WS_HEAD}\r\n`, "token_too_large", "upgrade");
  await headRefused(gw, `GET /v1/realtime/sse?token=${MB} HTTP/1.1\r\nHost: x\r\n\r\n`, "token_too_large", "sse");
  // Past RTGW_MAX_TOKEN_BYTES but inside the head limit: 401, and a close code for ext clients.
  const mid = "a".repeat(20000);
  const up = await refusedUpgrade(wsUrl(gw, mid));
  assert.equal(up.status, 401);
  assert.equal(up.json.error, "token_too_large");
  const ext = await refusedExt(wsUrl(gw, mid));
  assert.equal(ext.code, 4402, ext.reason);
  assert.equal(ext.reason, "token_invalid: token_too_large");
  assert.match(gw.logs(), /reason=token_too_large/);
});

defcase("oversized_token_in_authorization_named_refusal", async (t) => {
  const gw = await startGateway(t);
  await headRefused(gw, `GET /v1/realtime/connect HTTP/1.1\r\nHost: x\r\n${WS_HEAD}Authorization: Bearer ${MB}\r\n\r\n`, "token_too_large", "upgrade");
  await headRefused(gw, `POST /v1/realtime/publish?channel=c&topic=t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MB}\r\nContent-Length: 2\r\n\r\n{}`, "token_too_large", "publish");
  await headRefused(gw, `POST /v1/realtime/token HTTP/1.1\r\nHost: x\r\nauthorization: Bearer ${MB}\r\nContent-Length: 2\r\n\r\n[]`, "token_too_large", "mint");
  // Another header past the limit has the generic name.
  await headRefused(gw, `GET /health HTTP/1.1\r\nHost: x\r\nCookie: ${MB}\r\n\r\n`, "headers_too_large", "a cookie");
  const mid = "a".repeat(20000);
  const ext = await refusedExt(`${gw.ws}/v1/realtime/connect`, { headers: { Authorization: `Bearer ${mid}` } });
  assert.equal(ext.code, 4402, ext.reason);
  assert.equal(ext.reason, "token_invalid: token_too_large");
});

await run();
