// Hostile input over raw sockets, the way an attacker or a broken client sends it:
// request smuggling (ambiguous framing) and bodies shorter than they announce.
// Each case checks what the client sees (status, error name, the connection
// closed), that nothing reached a subscriber that was there all along, and that
// the gateway still serves. Figures and the full list of classes: docs/hardening.md.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, topic } from "../lib/http.mjs";
import { rawExchange } from "../lib/rawhttp.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";

// A gateway with a short request deadline (so stalled bodies end quickly) and a
// subscriber of c/t that is checked for unwanted events at the end.
async function setup(t) {
  const gw = await startGateway(t, { env: { RTGW_REQUEST_TIMEOUT_MS: "1500" } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("c", "t")])), { t });
  return { gw, sub };
}

const publishHead = (gw, extra) =>
  `POST /v1/realtime/publish?channel=c&topic=t HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n` +
  `Authorization: Bearer ${gw.key}\r\nContent-Type: application/json\r\n${extra}\r\n`;
// A second request hidden after the first one's body: if it is ever answered,
// the framing was read two ways.
const SMUGGLED = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

// Nothing but `marker` events reach the subscriber, the gateway is alive and a
// normal publish is still delivered.
async function nothingLeaked(gw, sub, marker) {
  assert.equal(gw.child.exitCode, null, `rtgw exited: ${gw.logs().slice(-2000)}`);
  assert.equal((await http(gw, "GET", "/health")).status, 200);
  assert.equal((await publish(gw, "c", "t", { marker })).status, 200);
  for (;;) {
    const m = await sub.next(5000, `event ${marker}`);
    if (m.kind !== "data") continue;
    assert.deepEqual(m.data, { marker }, `an event that should not exist reached the subscriber: ${JSON.stringify(m)}`);
    break;
  }
}

// The smuggling setups: one request whose body length can be read two ways.
const AMBIGUOUS = {
  cl_te: ["Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n", /Content-Length and Transfer-Encoding/],
  te_cl: ["Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", '2\r\n{}\r\n0\r\n\r\n', /Content-Length and Transfer-Encoding/],
  te_space_before_colon: ["Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n", /white space|Content-Length and Transfer-Encoding/],
  te_twice: ["Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n", /more than once/],
  te_not_chunked: ["Transfer-Encoding: identity\r\n", "0\r\n\r\n", /other than chunked/],
  cl_twice_different: ["Content-Length: 2\r\nContent-Length: 40\r\n", "{}", /two different Content-Length/],
  cl_not_a_number: ["Content-Length: +2\r\n", "{}", /not a decimal number/],
  cl_list: ["Content-Length: 2, 2\r\n", "{}", /not a decimal number/],
};

// One case per setup: exactly one response (400 ambiguous_framing, naming the
// problem), the connection closed, the smuggled request never answered.
const refusesAmbiguous = (name) => async (t) => {
  const [headers, body, why] = AMBIGUOUS[name];
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, headers) + body + SMUGGLED], { ms: 4000 });
  assert.equal(r.responses.length, 1, `expected exactly one response, got:\n${r.text}`);
  const [res] = r.responses;
  assert.equal(res.status, 400, r.text);
  assert.equal(res.json.error, "ambiguous_framing", r.text);
  assert.match(res.json.message, why);
  assert.equal(res.headers.connection, "close");
  assert.ok(r.closedByServer, "the server kept the connection open after refusing it");
  await nothingLeaked(gw, sub, name);
};
defcase("smuggling_cl_te_refused_and_closed", refusesAmbiguous("cl_te"));
defcase("smuggling_te_cl_refused_and_closed", refusesAmbiguous("te_cl"));
defcase("smuggling_te_space_before_colon_refused_and_closed", refusesAmbiguous("te_space_before_colon"));
defcase("smuggling_te_twice_refused_and_closed", refusesAmbiguous("te_twice"));
defcase("smuggling_te_not_chunked_refused_and_closed", refusesAmbiguous("te_not_chunked"));
defcase("smuggling_cl_twice_different_refused_and_closed", refusesAmbiguous("cl_twice_different"));
defcase("smuggling_cl_not_a_number_refused_and_closed", refusesAmbiguous("cl_not_a_number"));
defcase("smuggling_cl_list_refused_and_closed", refusesAmbiguous("cl_list"));

defcase("unsupported_transfer_coding_refused_as_json", async (t) => {
  // civetweb refuses "gzip, chunked" itself, before any rtgw code runs; its refusal
  // still comes in the API's shape, names the problem and closes the connection.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n" + SMUGGLED], { ms: 4000 });
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "bad_request", r.text);
  assert.equal(typeof r.responses[0].json.message, "string");
  assert.ok(r.closedByServer);
  await nothingLeaked(gw, sub, "after-gzip");
});

defcase("same_content_length_twice_is_not_ambiguous", async (t) => {
  // RFC 9112 §6.3 allows identical repeated values; refusing them would break
  // clients behind proxies that repeat the header.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n") + "{}"]);
  assert.equal(r.responses[0].status, 200, r.text);
  const m = await sub.next(5000, "the event");
  assert.deepEqual(m.data, {});
});

defcase("short_body_stalled_not_published", async (t) => {
  // Content-Length: 100, then 7 bytes, then silence: the deadline passes and the
  // 7 bytes must not be published as a complete event.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 100\r\n") + '"abcde"'], { ms: 8000 });
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "body_incomplete");
  assert.match(r.responses[0].json.message, /7 of the 100 bytes/);
  assert.ok(r.closedByServer);
  await nothingLeaked(gw, sub, "after-stall");
});

defcase("short_body_then_half_close_not_published", async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 100\r\n") + '"abcde"'], { ms: 8000, halfClose: true });
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "body_incomplete");
  await nothingLeaked(gw, sub, "after-half-close");
});

defcase("expect_continue_body_never_sent_not_published", async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 10\r\nExpect: 100-continue\r\n")], { ms: 8000 });
  const statuses = r.responses.map((x) => x.status);
  assert.deepEqual(statuses, [100, 400], r.text);
  assert.equal(r.responses[1].json.error, "body_incomplete");
  assert.match(r.responses[1].json.message, /0 of the 10 bytes/);
  await nothingLeaked(gw, sub, "after-expect");
});

// A chunked body whose last chunk never comes: stalled past the deadline, or cut
// off by the client's FIN.
const chunkedCutOff = (halfClose) => async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, "Transfer-Encoding: chunked\r\n") + '7\r\n"abcde"\r\n'], { ms: 8000, halfClose });
  assert.equal(r.responses.length, 1, r.text);
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "body_incomplete");
  assert.ok(r.closedByServer);
  await nothingLeaked(gw, sub, `after-chunked-${halfClose}`);
};
defcase("chunked_body_stalled_not_published", chunkedCutOff(false));
defcase("chunked_body_cut_off_not_published", chunkedCutOff(true));

defcase("short_mint_body_refused", async (t) => {
  const { gw } = await setup(t);
  const r = await rawExchange(gw, [
    `POST /v1/realtime/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.key}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 60\r\n\r\n[{"channel":"c","name":"t"}]',
  ], { ms: 8000 });
  assert.equal(r.responses[0].status, 400, r.text);
  assert.equal(r.responses[0].json.error, "body_incomplete");
});

defcase("complete_body_in_slow_pieces_is_published", async (t) => {
  // The all-or-nothing rule must not refuse a body that arrives slowly but whole
  // within the deadline.
  const { gw, sub } = await setup(t);
  const body = JSON.stringify({ slow: "x".repeat(50) });
  const pieces = [publishHead(gw, `Content-Length: ${body.length}\r\nConnection: close\r\n`), body.slice(0, 10), body.slice(10, 30), body.slice(30)];
  const r = await rawExchange(gw, pieces, { gapMs: 200, ms: 6000 });
  assert.equal(r.responses[0].status, 200, r.text);
  const m = await sub.next(5000, "the slow event");
  assert.deepEqual(m.data, JSON.parse(body));
});

defcase("closing_responses_say_connection_close", async (t) => {
  // A response after which rtgw closes must say so (RFC 9112 section 9.6): nginx's
  // upstream keepalive otherwise pools the connection and its next request on it
  // fails with "upstream prematurely closed connection" (a 502). This was the cause
  // of the proxy.nginx.missing_upgrade_headers_fail flake: nginx without
  // proxy_http_version 1.1 speaks HTTP/1.0 to rtgw.
  const { gw } = await setup(t);
  const jwt = await mint(gw, [topic("c", "t")]);
  for (const [req, what] of [
    [`GET /v1/realtime/connect?token=${jwt} HTTP/1.0\r\nHost: x\r\n\r\n`, "HTTP/1.0 426"],
    ["GET /health HTTP/1.0\r\nHost: x\r\n\r\n", "HTTP/1.0 health"],
    ["GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "Connection: close metrics"],
    ["OPTIONS /v1/realtime/publish HTTP/1.0\r\nHost: x\r\n\r\n", "HTTP/1.0 preflight"],
  ]) {
    const r = await rawExchange(gw, [req], { ms: 4000 });
    assert.equal(r.responses.length, 1, `${what}: ${r.text}`);
    assert.equal(r.responses[0].headers.connection, "close", `${what}: ${r.text.slice(0, 300)}`);
    assert.ok(r.closedByServer, `${what}: the connection stayed open`);
  }
  // HTTP/1.1 keep-alive stays keep-alive: two requests, two answers, one connection.
  const r = await rawExchange(gw, ["GET /health HTTP/1.1\r\nHost: x\r\n\r\n", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"], { gapMs: 100, ms: 1500 });
  assert.deepEqual(r.responses.map((x) => [x.status, x.headers.connection]), [[200, undefined], [200, undefined]]);
});

await run();
