// The front door's own answers (gateway/server/fastpath.c): a WebSocket upgrade
// rtgw admits, and a token mint whose body has arrived, are answered on the
// front door's thread; everything else goes to civetweb as before. Raw bytes,
// the way a client or an attacker sends them. Each case checks which side
// answered (rtgw_frontdoor_answered_total) as well as what the client saw, so a
// fast path that silently stops answering, or answers what it should leave to
// civetweb, fails here.
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, topic, metrics, metric } from "../lib/http.mjs";
import { rawExchange, parseResponses } from "../lib/rawhttp.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";
import { selfSigned } from "../lib/certs.mjs";
import { tmpDir } from "../lib/proc.mjs";

const UPGRADES = 'rtgw_frontdoor_answered_total{request="upgrade"}';
const MINTS = 'rtgw_frontdoor_answered_total{request="mint"}';
const REFUSALS = 'rtgw_frontdoor_answered_total{request="refusal"}';
// RFC 6455 §1.3's sample key and its accept value.
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const CIVETWEB_101 =
  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  `Sec-WebSocket-Accept: ${ACCEPT}\r\n`;

const upgradeHead = (gw, token, extra = "", eol = "\r\n") =>
  [`GET /v1/realtime/connect?token=${token} HTTP/1.1`, `Host: 127.0.0.1:${gw.port}`, "Upgrade: websocket",
    "Connection: Upgrade", `Sec-WebSocket-Key: ${KEY}`, "Sec-WebSocket-Version: 13"].join(eol) +
  eol + extra + eol;
const mintBody = (channel) => JSON.stringify([topic(channel, "t")]);
const mintHead = (gw, body, { key = gw.key, version = "1.1", extra = "" } = {}) =>
  `POST /v1/realtime/token HTTP/${version}\r\nHost: 127.0.0.1:${gw.port}\r\nAuthorization: Bearer ${key}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`;

async function counters(gw) {
  const m = await metrics(gw);
  return { upgrades: metric(m, UPGRADES), mints: metric(m, MINTS), refusals: metric(m, REFUSALS), text: m };
}

// A raw WebSocket client: sends `parts` (gapMs apart), then collects bytes.
// next(text) waits until the bytes received so far include `text`.
function rawWs(gw, parts, { gapMs = 0 } = {}) {
  const sock = net.connect(gw.port, "127.0.0.1");
  let buf = Buffer.alloc(0), ended = false;
  const waiters = [];
  const poke = () => { for (const w of waiters.splice(0)) w(); };
  sock.on("data", (d) => { buf = Buffer.concat([buf, d]); poke(); });
  sock.on("end", () => { ended = true; poke(); });
  sock.on("error", () => { ended = true; poke(); });
  sock.on("connect", async () => {
    for (let i = 0; i < parts.length; i++) {
      if (i && gapMs) await new Promise((r) => setTimeout(r, gapMs));
      sock.write(parts[i]);
    }
  });
  return {
    sock,
    text: () => buf.toString("latin1"),
    ended: () => ended,
    async next(text, ms = 5000) {
      const until = Date.now() + ms;
      while (!buf.toString("latin1").includes(text)) {
        if (ended || Date.now() > until)
          throw new Error(`waited for ${JSON.stringify(text)}; got ${JSON.stringify(buf.toString("latin1"))}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
    },
  };
}

defcase("upgrade_answered_by_front_door_with_civetwebs_101", async (t) => {
  const gw = await startGateway(t);
  const c = rawWs(gw, [upgradeHead(gw, await mint(gw, [topic("c", "t")]))]);
  t.cleanup(() => c.sock.destroy());
  await c.next("\r\n\r\n");
  assert.equal(c.text(), CIVETWEB_101 + "\r\n", "the 101 differs from civetweb's");
  assert.equal((await publish(gw, "c", "t", { n: 1 })).status, 200);
  await c.next('"n":1');
  const k = await counters(gw);
  assert.equal(k.upgrades, 1, k.text);
  assert.equal(metric(k.text, "rtgw_connections"), 1);
});

defcase("upgrade_extended_subprotocol_acked", async (t) => {
  const gw = await startGateway(t);
  const tok = await mint(gw, [topic("c", "t")]);
  const c = rawWs(gw, [upgradeHead(gw, tok, "Sec-WebSocket-Protocol: rtgw.v1\r\n")]);
  t.cleanup(() => c.sock.destroy());
  await c.next("rtgw.subscribed");
  assert.ok(c.text().startsWith(CIVETWEB_101 + "Sec-WebSocket-Protocol: rtgw.v1\r\n\r\n"), c.text());
  assert.equal((await counters(gw)).upgrades, 1);
});

defcase("upgrade_head_in_pieces", async (t) => {
  const gw = await startGateway(t);
  const head = upgradeHead(gw, await mint(gw, [topic("c", "t")]));
  const c = rawWs(gw, [head.slice(0, 7), head.slice(7, 90), head.slice(90)], { gapMs: 150 });
  t.cleanup(() => c.sock.destroy());
  await c.next("\r\n\r\n");
  assert.ok(c.text().startsWith(CIVETWEB_101), c.text());
  assert.equal((await publish(gw, "c", "t", { n: 2 })).status, 200);
  await c.next('"n":2');
  assert.equal((await counters(gw)).upgrades, 1);
});

// A plain client's refusal is the front door's, named and counted once (one
// verification, no hand-over), and the connection closed as civetweb closes
// it after a refused upgrade.
defcase("upgrade_refused_token_named_and_counted_once", async (t) => {
  const gw = await startGateway(t);
  const r = await rawExchange(gw, [upgradeHead(gw, "not.a.token")], { ms: 3000 });
  assert.equal(r.responses[0]?.status, 401, r.text);
  assert.ok(r.closedByServer, "the connection stays open after a refused upgrade");
  const name = r.responses[0].json.error;
  assert.match(name, /^token_/, r.text);
  const k = await counters(gw);
  assert.equal(k.upgrades, 0, "a refused upgrade counted as admitted");
  assert.equal(k.refusals, 1, k.text);
  assert.equal(metric(k.text, 'rtgw_refusals_total{reason="token_invalid"}'), 1, k.text);
  assert.equal(metric(k.text, `rtgw_token_refusals_total{reason="${name}"}`), 1, k.text);
  assert.equal((gw.logs().match(/websocket refused/g) || []).length, 1, gw.logs());
});

// An extended client (rtgw.v1) is refused the way civetweb refuses it: the
// 101, then a close with the reason's code and "name: detail" (a browser reads
// those, where a failed upgrade is only 1006), then the connection ends once
// the client answers the close. The same bytes as civetweb's for the same
// refusal (a trailing space in Host leaves it to civetweb), Date aside.
defcase("extended_upgrade_refused_with_a_close_code", async (t) => {
  const gw = await startGateway(t);
  const head = upgradeHead(gw, "not.a.token", "Sec-WebSocket-Protocol: rtgw.v1\r\n");
  const k0 = await counters(gw);
  const fast = await rawExchange(gw, [head], { ms: 3000, halfClose: false });
  const k1 = await counters(gw);
  const slow = await rawExchange(gw, [head.replace(`Host: 127.0.0.1:${gw.port}`, `Host: 127.0.0.1:${gw.port} `)], { ms: 3000 });
  const k2 = await counters(gw);
  assert.equal(k1.refusals - k0.refusals, 1, "the front door did not answer the refusal");
  assert.equal(k2.refusals - k1.refusals, 0, "the front door answered the one civetweb should");
  assert.ok(fast.text.startsWith(CIVETWEB_101 + "Sec-WebSocket-Protocol: rtgw.v1\r\n\r\n"), fast.text);
  const body = Buffer.from(fast.text.slice(fast.text.indexOf("\r\n\r\n") + 4), "latin1");
  assert.equal(body[0], 0x88, "a close frame after the 101");
  assert.equal(body.readUInt16BE(2), 4402); // token_invalid (reason.h)
  assert.match(body.slice(4).toString(), /^token_invalid/);
  assert.equal(fast.text, slow.text);
  assert.equal(metric(k2.text, 'rtgw_refusals_total{reason="token_invalid"}'), 2, k2.text);
  // neither is an admitted connection, whichever thread refused it
  assert.equal(metric(k2.text, "rtgw_connections_total"), metric(k0.text, "rtgw_connections_total"), k2.text);
});

// The refusal's bytes are civetweb's: the same refused request with a
// trailing space in Host (which the front door leaves to civetweb) gets the
// same response, Date aside.
defcase("upgrade_refusal_bytes_equal_civetwebs", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://app.example" } });
  const tok = await mint(gw, [topic("c", "t")]);
  const expired = "eyJhbGciOiJIUzI1NiJ9.e30.AAAA";
  for (const [token, extra] of [[expired, ""], [tok, "Origin: https://app.example\r\nX-Forwarded-For: 1.2.3.4\r\n"], [tok, "Origin: https://evil.example\r\n"]]) {
    const before = await counters(gw);
    const fast = await rawExchange(gw, [upgradeHead(gw, token, extra)], { ms: 3000 });
    const mid = await counters(gw);
    const slow = await rawExchange(gw, [upgradeHead(gw, token, extra).replace(`Host: 127.0.0.1:${gw.port}`, `Host: 127.0.0.1:${gw.port} `)], { ms: 3000 });
    const after = await counters(gw);
    if (token === tok && extra.includes("app.example")) { // admitted: both 101, nothing refused
      assert.ok(fast.text.startsWith(CIVETWEB_101) && slow.text.startsWith(CIVETWEB_101), fast.text + slow.text);
      continue;
    }
    assert.equal(mid.refusals - before.refusals, 1, "the front door did not answer the refusal");
    assert.equal(after.refusals - mid.refusals, 0, "the front door answered the one civetweb should");
    const norm = (x) => x.replace(/\r\nDate: [^\r]*/, "");
    assert.ok(fast.responses[0]?.status >= 400, fast.text);
    assert.equal(norm(fast.text), norm(slow.text));
    assert.equal(fast.closedByServer, slow.closedByServer);
  }
});

// Closed as civetweb closes it: after a refused upgrade, even one whose
// Connection header lists keep-alive, the connection ends (a next request on
// it is not read).
defcase("upgrade_refused_closes_even_when_keep_alive_is_asked", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://app.example" } });
  const tok = await mint(gw, [topic("c", "t")]);
  const head = upgradeHead(gw, tok, "Origin: https://evil.example\r\n").replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
  const body = mintBody("c2");
  const k0 = await counters(gw);
  const r = await rawExchange(gw, [head, mintHead(gw, body) + body], { ms: 3000, gapMs: 300 });
  assert.deepEqual(r.responses.map((x) => x.status), [403], r.text);
  assert.ok(r.closedByServer, r.text);
  const k = await counters(gw);
  assert.equal(k.refusals - k0.refusals, 1, k.text);
  assert.equal(k.mints - k0.mints, 0, k.text);
});

defcase("upgrade_refused_origin_counted_once", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://app.example" } });
  const tok = await mint(gw, [topic("c", "t")]);
  const r = await rawExchange(gw, [upgradeHead(gw, tok, "Origin: https://evil.example\r\n")], { ms: 3000 });
  assert.equal(r.responses[0]?.status, 403, r.text);
  assert.equal(r.responses[0].json.error, "origin_not_allowed", r.text);
  const k = await counters(gw);
  assert.equal(k.upgrades, 0);
  assert.equal(k.refusals, 1, k.text);
  assert.equal(metric(k.text, "rtgw_origin_refused_total"), 1, k.text);
  assert.equal(metric(k.text, 'rtgw_refusals_total{reason="origin_not_allowed"}'), 1, k.text);
  assert.equal((gw.logs().match(/origin refused/g) || []).length, 1, gw.logs());
});

// A key civetweb could not answer (64 bytes or more) used to be admitted, then
// answered 500, and its connection slot was never given back: with
// RTGW_MAX_CONNECTIONS=2, two such requests locked every client out. Both
// paths now refuse a key that is not a 16-byte nonce, before admission.
defcase("bad_websocket_keys_refused_without_taking_a_slot", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "2" } });
  const tok = await mint(gw, [topic("c", "t")]);
  for (const key of ["A".repeat(70), "A".repeat(64), "A".repeat(63), "dGhlIHNhbXBsZSBub25jZQ", "not base64 at all!!!!!=="]) {
    const head = upgradeHead(gw, tok).replace(KEY, key);
    const r = await rawExchange(gw, [head], { ms: 3000 });
    assert.equal(r.responses[0]?.status, 400, `key ${JSON.stringify(key)}: ${r.text}`);
    assert.equal(r.responses[0].json.error, "bad_request", r.text);
    assert.match(r.responses[0].json.message, /Sec-WebSocket-Key/, r.text);
  }
  const subs = [await connect(wsUrl(gw, tok), { t }), await connect(wsUrl(gw, tok), { t })];
  assert.equal((await publish(gw, "c", "t", { slots: 2 })).status, 200);
  for (const s of subs) {
    for (;;) {
      const m = await s.next(5000, "the event");
      if (m.kind === "data") break;
    }
  }
  const k = await counters(gw);
  assert.equal(metric(k.text, 'rtgw_refusals_total{reason="bad_request"}'), 5, k.text);
  assert.equal(metric(k.text, "rtgw_connections"), 2);
});

// A frame sent before the 101 could arrive: civetweb's refusal, as before.
defcase("upgrade_with_early_frame_left_to_civetweb", async (t) => {
  const gw = await startGateway(t);
  const frame = Buffer.from([0x81, 0x82, 1, 2, 3, 4, "h".charCodeAt(0) ^ 1, "i".charCodeAt(0) ^ 2]);
  const head = Buffer.from(upgradeHead(gw, await mint(gw, [topic("c", "t")])));
  const r = await rawExchange(gw, [Buffer.concat([head, frame])], { ms: 3000 });
  assert.equal(r.responses[0]?.status, 400, r.text);
  assert.equal(r.responses[0].json.error, "protocol_error", r.text);
  assert.equal((await counters(gw)).upgrades, 0);
});

// Bare LF line ends: legal for civetweb, never parsed by the front door.
defcase("upgrade_bare_lf_head_left_to_civetweb", async (t) => {
  const gw = await startGateway(t);
  const c = rawWs(gw, [upgradeHead(gw, await mint(gw, [topic("c", "t")]), "", "\n")]);
  t.cleanup(() => c.sock.destroy());
  await c.next("\r\n\r\n");
  assert.ok(c.text().startsWith(CIVETWEB_101), c.text());
  assert.equal((await counters(gw)).upgrades, 0);
});

// Requests one after another on one kept-alive connection, each sent once the
// previous answer is in; resolves with the parsed answers.
async function inTurn(t, gw, requests) {
  const sock = net.connect(gw.port, "127.0.0.1");
  t.cleanup(() => sock.destroy());
  let buf = "";
  sock.on("data", (d) => (buf += d.toString("latin1")));
  await new Promise((r) => sock.once("connect", r));
  const out = [];
  for (const req of requests) {
    buf = "";
    sock.write(req);
    const until = Date.now() + 3000;
    while (!/\r\n\r\n\{.*\}$/s.test(buf) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    out.push(parseResponses(buf)[0] || { status: 0, text: buf });
  }
  return out;
}

// Mints one after another on a kept-alive connection: each answered by the
// front door, the connection kept.
defcase("mints_in_turn_on_one_connection_answered", async (t) => {
  const gw = await startGateway(t);
  const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));
  const res = await inTurn(t, gw, [0, 1, 2].map((i) => mintHead(gw, mintBody(`c${i}`)) + mintBody(`c${i}`)));
  res.forEach((r, i) => {
    assert.equal(r.status, 201, JSON.stringify(r));
    assert.equal(claims(r.json.jwt).topics[0].channel, `c${i}`);
    assert.ok(r.headers["x-rtgw"], "no X-Rtgw mark");
  });
  assert.equal((await counters(gw)).mints, 3);
});

// Pipelined requests are civetweb's (it buffers them and writes at the
// reader's pace): answered in order, none by the front door.
defcase("mint_pipelined_left_to_civetweb_in_order", async (t) => {
  const gw = await startGateway(t);
  const b1 = mintBody("c1"), b2 = mintBody("c2");
  const r = await rawExchange(gw, [mintHead(gw, b1) + b1 + mintHead(gw, b2) + b2 +
    "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], { ms: 4000 });
  assert.deepEqual(r.responses.map((x) => x.status), [201, 201, 200], r.text);
  const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));
  assert.equal(claims(r.responses[0].json.jwt).topics[0].channel, "c1");
  assert.equal(claims(r.responses[1].json.jwt).topics[0].channel, "c2");
  assert.ok(r.closedByServer);
  assert.equal((await counters(gw)).mints, 0);
});

// Sixty mints with 4.8 KB heads pipelined in one write. The front door once
// answered them itself, one per peek: the next head's first bytes sat unread
// in the kernel, the receive window closed, and the rest never came (40 of 60
// answered, then nothing until the deadline).
defcase("large_pipelined_mints_all_answered", async (t) => {
  const gw = await startGateway(t);
  const pad = "X-Pad: " + "p".repeat(4700) + "\r\n";
  const b = mintBody("c");
  const one = mintHead(gw, b, { extra: pad }) + b;
  const r = await rawExchange(gw, [one.repeat(59) + mintHead(gw, b, { extra: pad + "Connection: close\r\n" }) + b], { ms: 6000 });
  assert.equal(r.responses.length, 60, `${r.responses.length} of 60 answered`);
  assert.ok(r.responses.every((x) => x.status === 201));
  assert.ok(r.closedByServer);
});

// civetweb keeps the spaces after a header value: "13 " is not version 13,
// and the front door must not read it as one.
defcase("trailing_space_in_a_value_left_to_civetweb", async (t) => {
  const gw = await startGateway(t);
  const tok = await mint(gw, [topic("c", "t")]);
  const r = await rawExchange(gw, [upgradeHead(gw, tok).replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13 ")], { ms: 3000 });
  assert.notEqual(r.responses[0]?.status, 101, r.text);
  const b = mintBody("c");
  const m = await rawExchange(gw, [mintHead(gw, b).replace(/Content-Length: (\d+)/, "Content-Length: $1 ") + b], { ms: 3000 });
  assert.equal(m.responses[0]?.status, 400, m.text);
  assert.equal(m.responses[0].json.error, "ambiguous_framing", m.text);
  const k = await counters(gw);
  assert.equal(k.upgrades, 0);
  assert.equal(k.mints, 1); /* the one mint() above */
});

defcase("mint_body_late_left_to_civetweb", async (t) => {
  const gw = await startGateway(t);
  const b = mintBody("c");
  const r = await rawExchange(gw, [mintHead(gw, b, { extra: "Connection: close\r\n" }), b], { ms: 4000, gapMs: 300 });
  assert.equal(r.responses[0]?.status, 201, r.text);
  assert.equal((await counters(gw)).mints, 0, "a mint without its body was answered by the front door");
});

defcase("mint_http10_closes_after_answer", async (t) => {
  const gw = await startGateway(t);
  const b = mintBody("c");
  const r = await rawExchange(gw, [mintHead(gw, b, { version: "1.0" }) + b], { ms: 4000 });
  assert.equal(r.responses[0]?.status, 201, r.text);
  assert.equal(r.responses[0].headers.connection, "close", r.text);
  assert.ok(r.closedByServer, "an HTTP/1.0 connection stayed open");
  assert.ok(r.ms < 2000, `closed after ${r.ms} ms`);
  assert.equal((await counters(gw)).mints, 1);
});

defcase("mint_kept_alive_closed_at_the_deadline", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_REQUEST_TIMEOUT_MS: "1000" } });
  const b = mintBody("c");
  const r = await rawExchange(gw, [mintHead(gw, b) + b], { ms: 6000 });
  assert.equal(r.responses[0]?.status, 201, r.text);
  assert.ok(r.closedByServer, "an idle kept-alive connection was never closed");
  assert.ok(r.ms >= 900 && r.ms < 4000, `closed after ${r.ms} ms (deadline 1000 ms)`);
});

defcase("mint_wrong_key_401_then_next_request_served", async (t) => {
  const gw = await startGateway(t);
  const b = mintBody("c");
  const res = await inTurn(t, gw, [mintHead(gw, b, { key: "signkey-test-" + "0".repeat(64) }) + b, mintHead(gw, b) + b]);
  assert.deepEqual(res.map((x) => x.status), [401, 201], JSON.stringify(res));
  assert.doesNotMatch(JSON.stringify(res), /signkey-test-0000/, "the key was echoed");
  assert.equal((await counters(gw)).mints, 2);
});

defcase("mint_rate_limited_429_with_retry_after", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_RATE_LIMIT_MINT: "1" } });
  const b = mintBody("c");
  const res = await inTurn(t, gw, [1, 2, 3].map(() => mintHead(gw, b) + b));
  assert.deepEqual(res.map((x) => x.status), [201, 201, 429], JSON.stringify(res));
  assert.equal(res[2].json.error, "rate_limited");
  assert.ok(Number(res[2].headers["retry-after"]) >= 1, JSON.stringify(res[2]));
  const k = await counters(gw);
  assert.equal(metric(k.text, 'rtgw_refusals_total{reason="rate_limited"}'), 1);
  assert.equal(k.mints, 3);
});

// Ambiguous framing on a mint: refused by the framing guard, never minted.
defcase("mint_ambiguous_framing_left_to_the_guard", async (t) => {
  const gw = await startGateway(t);
  const b = mintBody("c");
  const r = await rawExchange(gw, [mintHead(gw, b, { extra: "Transfer-Encoding: chunked\r\n" }) + b], { ms: 4000 });
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "ambiguous_framing", r.text);
  assert.ok(r.closedByServer);
  const k = await counters(gw);
  assert.equal(k.mints, 0);
  assert.equal(metric(k.text, "rtgw_tokens_minted_total"), 0);
});

// Over rtgw's own TLS: the front door answers from the decrypted head and
// through the connection's TLS; the wss session takes the TLS to its writer.
defcase("wss_upgrade_and_https_mints_answered", async (t) => {
  const gw = await startGateway(t, { tls: selfSigned(tmpDir(t, "rtgw-fast-"), "gw") });
  const b1 = mintBody("c1"), b2 = mintBody("c2");
  const text = await new Promise((resolve, reject) => {
    const sock = tls.connect({ port: gw.port, host: "127.0.0.1", servername: "localhost", ca: gw.ca }, () =>
      sock.write(mintHead(gw, b1) + b1));
    let buf = "", second = false;
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (!second && /\}$/.test(buf)) { /* the first answer is in: the second request */
        second = true;
        sock.write(mintHead(gw, b2, { extra: "Connection: close\r\n" }) + b2);
      }
    });
    sock.on("end", () => resolve(buf));
    sock.on("error", reject);
    setTimeout(() => { sock.destroy(); resolve(buf); }, 4000);
  });
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [201, 201], text);
  const jwt = JSON.parse(text.slice(text.lastIndexOf("\r\n\r\n") + 4)).jwt;
  const sub = await connect(wsUrl(gw, jwt), { t, wsOpts: { ca: gw.ca } });
  assert.equal((await publish(gw, "c2", "t", { over: "tls" })).status, 200);
  for (;;) {
    const m = await sub.next(5000, "the event over wss");
    if (m.kind === "data") { assert.deepEqual(m.data, { over: "tls" }); break; }
  }
  const k = await counters(gw);
  assert.equal(k.upgrades, 1, k.text);
  assert.ok(k.mints >= 2, k.text);
});

// A refused wss upgrade: answered through the connection's TLS, then closed.
defcase("wss_refused_upgrade_answered_and_closed", async (t) => {
  const gw = await startGateway(t, { tls: selfSigned(tmpDir(t, "rtgw-fast-"), "gw") });
  const res = await new Promise((resolve, reject) => {
    const sock = tls.connect({ port: gw.port, host: "127.0.0.1", servername: "localhost", ca: gw.ca }, () =>
      sock.write(upgradeHead(gw, "not.a.token")));
    let buf = "";
    sock.on("data", (d) => (buf += d.toString("latin1")));
    sock.on("end", () => resolve({ text: buf, closed: true }));
    sock.on("error", reject);
    setTimeout(() => { sock.destroy(); resolve({ text: buf, closed: false }); }, 3000);
  });
  assert.equal(parseResponses(res.text)[0]?.status, 401, res.text);
  assert.ok(res.closed, "the wss connection stayed open after its refusal");
  const k = await counters(gw);
  assert.equal(k.refusals, 1, k.text);
  assert.equal(k.upgrades, 0, k.text);
});

// Several front-door threads at once: every connect minted and subscribed, and
// every subscriber receives.
defcase("many_connects_over_two_front_door_threads", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ACCEPT_THREADS: "2", RTGW_MAX_CONNECTIONS: "1000" } });
  const subs = await Promise.all(Array.from({ length: 200 }, async (_, i) =>
    connect(wsUrl(gw, await mint(gw, [topic("c", "t")], { fresh: i % 2 === 0 })), { t })));
  assert.equal((await publish(gw, "c", "t", { all: 1 })).status, 200);
  for (const s of subs) {
    for (;;) {
      const m = await s.next(5000, "the event");
      if (m.kind === "data") { assert.deepEqual(m.data, { all: 1 }); break; }
    }
  }
  const k = await counters(gw);
  assert.equal(k.upgrades, 200, k.text);
  assert.ok(k.mints >= 100, k.text);
  assert.equal(metric(k.text, "rtgw_connections"), 200);
});

await run();
