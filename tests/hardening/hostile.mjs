// Hostile input over raw sockets, the way an attacker or a broken client sends it:
// request smuggling (ambiguous framing), bodies shorter than they announce,
// header floods and oversized heads, pipelining, slow writers and slow readers,
// half-closed connections.
// Each case checks what the client sees (status, error name, the connection
// closed), that nothing reached a subscriber that was there all along, and that
// the gateway still serves. Figures and the full list of classes: docs/hardening.md.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, topic, metrics, metric } from "../lib/http.mjs";
import { rawExchange, rawEndlessHead, rawNoRead } from "../lib/rawhttp.mjs";
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

// ---- header floods and large heads (civetweb: max_request_size 32768, MG_MAX_HEADERS 64) ----

// `n` filler header lines.
const filler = (n) => Array.from({ length: n }, (_, i) => `X-Filler-${i}: v\r\n`).join("");
// A GET /health whose head is exactly `size` bytes, blank line included.
const healthHeadOfSize = (size) => {
  const start = "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  return start + "a".repeat(size - start.length - 4) + "\r\n\r\n";
};

// One refusal, in the API's JSON shape, then the connection closed: nothing
// after the refused head is ever answered.
function refusedOnce(r, status, error, why) {
  assert.equal(r.responses.length, 1, `expected exactly one response, got:\n${r.text.slice(0, 600)}`);
  const [res] = r.responses;
  assert.equal(res.status, status, r.text.slice(0, 600));
  assert.equal(res.json?.error, error, r.text.slice(0, 600));
  if (why) assert.match(res.json.message, why);
  assert.equal(res.headers.connection, "close");
  assert.ok(r.closedByServer, "the server kept the connection open after refusing it");
}

defcase("head_at_size_limit_served", async (t) => {
  // 32768 bytes, the blank line included, is the largest head civetweb reads.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [healthHeadOfSize(32768)], { ms: 1000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200], r.text.slice(0, 300));
  await nothingLeaked(gw, sub, "after-32768");
});

defcase("head_over_size_limit_refused", async (t) => {
  // One byte more: 431 headers_too_large, naming the limit (civetweb 1.15 calls an
  // oversized head "Malformed message"; the front door tells rtgw it was the size),
  // the request behind it never answered.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [healthHeadOfSize(32769) + SMUGGLED], { ms: 4000 });
  refusedOnce(r, 431, "headers_too_large", /longer than 32768 bytes/);
  assert.ok(r.ms < 1500, `refused after ${r.ms} ms, not at once`);
  await nothingLeaked(gw, sub, "after-32769");
});

defcase("header_line_of_64k_refused", async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(65536)}\r\n\r\n` + SMUGGLED], { ms: 4000 });
  refusedOnce(r, 431, "headers_too_large", /32768/);
  assert.ok(r.ms < 1500, `refused after ${r.ms} ms, not at once`);
  await nothingLeaked(gw, sub, "after-64k-line");
});

defcase("header_flood_63_headers_served", async (t) => {
  // Host and 62 more: 63 header lines, the most rtgw reads.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [`GET /health HTTP/1.1\r\nHost: x\r\n${filler(62)}\r\n`], { ms: 1000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200], r.text.slice(0, 300));
  await nothingLeaked(gw, sub, "after-63");
});

// civetweb keeps 64 header lines and drops the rest unread; 64 or more are
// refused (431 headers_too_large), a flood past 32 KiB by the size cap (431 too).
const headerFlood = (n, status, error, why) => async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [`GET /health HTTP/1.1\r\nHost: x\r\n${filler(n - 1)}\r\n` + SMUGGLED], { ms: 4000 });
  refusedOnce(r, status, error, why);
  assert.ok(r.ms < 1500, `refused after ${r.ms} ms, not at once`);
  await nothingLeaked(gw, sub, `after-${n}-headers`);
};
defcase("header_flood_64_headers_refused", headerFlood(64, 431, "headers_too_large", /64 or more header lines/));
defcase("header_flood_100_headers_refused", headerFlood(100, 431, "headers_too_large", /64 or more header lines/));
defcase("header_flood_1000_headers_refused", headerFlood(1000, 431, "headers_too_large", /64 or more header lines/));
defcase("header_flood_5000_headers_refused", headerFlood(5000, 431, "headers_too_large", /32768/));

// The framing header after 64 others: dropped unread, it would turn the body
// into a second request (the chunk lines) or a smuggled one.
const hiddenFraming = (framing, body) => async (t) => {
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [publishHead(gw, filler(64) + framing) + body + SMUGGLED], { ms: 4000 });
  refusedOnce(r, 431, "headers_too_large");
  await nothingLeaked(gw, sub, `after-hidden-${framing.slice(0, 10)}`);
};
defcase("header_flood_hides_transfer_encoding_refused", hiddenFraming("Transfer-Encoding: chunked\r\n", '9\r\n{"x":"y"}\r\n0\r\n\r\n'));
defcase("header_flood_hides_content_length_refused", hiddenFraming("Content-Length: 9\r\n", '{"x":"y"}'));

defcase("never_ending_head_slow_closed_at_deadline", async (t) => {
  // A header line every 50 ms, never the blank line: the front door closes the
  // connection at RTGW_REQUEST_TIMEOUT_MS (1500) after accept, no thread held.
  const { gw, sub } = await setup(t);
  const r = await rawEndlessHead(gw, "GET /health HTTP/1.1\r\nHost: x\r\n", (i) => `X-Line-${i}: y\r\n`, { gapMs: 50, ms: 8000 });
  assert.ok(r.closedByServer, `still open after ${r.ms} ms and ${r.lines} lines`);
  assert.equal(r.responses.length, 0, r.text.slice(0, 300));
  assert.ok(r.ms >= 1300 && r.ms < 5000, `closed after ${r.ms} ms; the deadline is 1500`);
  await nothingLeaked(gw, sub, "after-endless-slow");
});

defcase("never_ending_head_fast_refused_at_size_cap", async (t) => {
  // 64 header lines of 1 KiB as fast as the socket takes them, no blank line,
  // then silence: refused at the 32 KiB cap (400, closed) long before the
  // 1500 ms deadline.
  const { gw, sub } = await setup(t);
  const r = await rawEndlessHead(gw, "GET /health HTTP/1.1\r\nHost: x\r\n", (i) => `X-Line-${i}: ${"y".repeat(1000)}\r\n`, { maxLines: 64, ms: 8000 });
  refusedOnce(r, 431, "headers_too_large", /32768/);
  assert.ok(r.ms < 1400, `closed after ${r.ms} ms, by the deadline rather than the cap`);
  await nothingLeaked(gw, sub, "after-endless-fast");
});

// ---- pipelining ----

defcase("pipelined_gets_answered_in_order", async (t) => {
  // Several requests in one write: each answered, in order, on one connection
  // that stays open.
  const { gw, sub } = await setup(t);
  const H = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  let r = await rawExchange(gw, [H + H + H], { ms: 1000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200, 200, 200], r.text.slice(0, 600));
  assert.ok(!r.closedByServer, "a keep-alive connection was closed");
  r = await rawExchange(gw, [H + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + H], { ms: 1000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200, 404, 200, 200], r.text.slice(0, 600));
  assert.equal(r.responses[1].json.error, "not_found");
  assert.match(r.responses[2].body, /^# HELP/);
  await nothingLeaked(gw, sub, "after-pipelined-gets");
});

defcase("pipelined_publishes_delivered_once_in_order", async (t) => {
  const { gw, sub } = await setup(t);
  const one = (i) => {
    const b = JSON.stringify({ i });
    return publishHead(gw, `Content-Length: ${b.length}\r\n`) + b;
  };
  const r = await rawExchange(gw, [one(1) + one(2) + one(3)], { ms: 1000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200, 200, 200], r.text.slice(0, 600));
  for (const i of [1, 2, 3]) {
    const m = await sub.next(5000, `event ${i}`);
    assert.deepEqual(m.data, { i });
  }
  await nothingLeaked(gw, sub, "after-pipelined-publishes"); // nothing twice
});

defcase("pipelined_after_ambiguous_never_answered", async (t) => {
  // A complete publish behind an ambiguous one: never run, never answered.
  const { gw, sub } = await setup(t);
  const b = JSON.stringify({ smuggled: true });
  const behind = publishHead(gw, `Content-Length: ${b.length}\r\n`) + b;
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" + behind], { ms: 4000 });
  refusedOnce(r, 400, "ambiguous_framing");
  await nothingLeaked(gw, sub, "after-pipelined-ambiguous");
});

// A publish announcing 300 bytes, then a complete publish (inside those 300),
// then silence or FIN: one 400 body_incomplete, the inner one never run.
const pipelinedAfterShort = (halfClose) => async (t) => {
  const { gw, sub } = await setup(t);
  const b = JSON.stringify({ smuggled: true });
  const behind = publishHead(gw, `Content-Length: ${b.length}\r\n`) + b;
  assert.ok(behind.length + 7 < 300);
  const r = await rawExchange(gw, [publishHead(gw, "Content-Length: 300\r\n") + '"abcde"' + behind], { ms: 6000, halfClose });
  refusedOnce(r, 400, "body_incomplete", halfClose ? /could not be read to its end/ : /of the 300 bytes/);
  await nothingLeaked(gw, sub, `after-pipelined-short-${halfClose}`);
};
defcase("pipelined_after_body_incomplete_never_answered", pipelinedAfterShort(false));
defcase("pipelined_after_body_cut_off_never_answered", pipelinedAfterShort(true));

// ---- slow writers: the body's deadline is per request, not per read ----

defcase("slow_body_within_deadline_published", async (t) => {
  // 4 pieces 150 ms apart: ~450 ms of the 1500 ms deadline.
  const { gw, sub } = await setup(t);
  const body = JSON.stringify({ dribbled: "d".repeat(30) });
  const q = Math.ceil(body.length / 4);
  const pieces = [0, 1, 2, 3].map((i) => body.slice(i * q, (i + 1) * q));
  const r = await rawExchange(gw, [publishHead(gw, `Content-Length: ${body.length}\r\nConnection: close\r\n`), ...pieces], { gapMs: 150, ms: 6000 });
  assert.deepEqual(r.responses.map((x) => x.status), [200], r.text);
  assert.deepEqual((await sub.next(5000, "the dribbled event")).data, JSON.parse(body));
  await nothingLeaked(gw, sub, "after-slow-within");
});

// One byte every 1000 ms: each read waits less than civetweb's 1500 ms timeout,
// so only a deadline on the whole body ends it. Refused (400 body_incomplete)
// within about the deadline plus one byte's gap, never published.
const slowBody = (chunked) => async (t) => {
  const { gw, sub } = await setup(t);
  const body = JSON.stringify({ lorisbody: 1 }); // 15 bytes: 15 s if nothing stops it
  const framed = chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
  const head = publishHead(gw, chunked ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${body.length}\r\n`);
  // The chunk-size line goes with the head, so every later byte is body.
  const first = chunked ? head + framed.slice(0, 3) : head;
  const rest = (chunked ? framed.slice(3) : framed).split("");
  const r = await rawExchange(gw, [first, ...rest], { gapMs: 1000, ms: 9000 });
  refusedOnce(r, 400, "body_incomplete", /RTGW_REQUEST_TIMEOUT_MS \(1500 ms\)/);
  assert.ok(r.ms < 6000, `refused after ${r.ms} ms; the deadline is 1500`);
  await nothingLeaked(gw, sub, `after-slow-body-${chunked}`);
};
defcase("slow_body_past_deadline_refused", slowBody(false));
defcase("slow_chunked_body_past_deadline_refused", slowBody(true));

// ---- slow readers: a client that never reads its responses ----

// GET /metrics (~5 KiB each) pipelined `n` times on a client that does not read.
const METRICS_GET = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

defcase("slow_reader_pipelining_metrics_dropped", async (t) => {
  // 2000 responses (~11 MB) that no one reads: the kernel's buffers fill, a
  // write times out (RTGW_REQUEST_TIMEOUT_MS), and the connection is closed;
  // meanwhile other clients are served at once.
  const { gw, sub } = await setup(t);
  const slow = await rawNoRead(gw, METRICS_GET.repeat(2000));
  t.cleanup(() => slow.sock.destroy());
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    assert.equal((await http(gw, "GET", "/health", { fresh: true })).status, 200);
    assert.ok(Date.now() - t0 < 1000, `/health took ${Date.now() - t0} ms beside a slow reader`);
    await new Promise((r) => setTimeout(r, 300));
  }
  await new Promise((r) => setTimeout(r, 3500)); // ~5 s since the slow client's write
  const r = await slow.collect(3000);
  assert.ok(r.ended, `the slow reader's connection is still open (${r.responses.length} responses so far)`);
  assert.ok(r.responses.length < 2000, `all ${r.responses.length} responses were written: the client was never dropped`);
  await nothingLeaked(gw, sub, "after-slow-reader");
});

defcase("slow_readers_beyond_thread_count_do_not_block_others", async (t) => {
  // More non-reading clients than civetweb has threads (RTGW_HTTP_THREADS=2:
  // 2 + 32): each is dropped at its first timed-out write, so the threads come
  // back and /health is answered within a few timeouts.
  const gw = await startGateway(t, { env: { RTGW_REQUEST_TIMEOUT_MS: "1500", RTGW_HTTP_THREADS: "2" } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("c", "t")])), { t });
  const slow = [];
  t.cleanup(() => slow.forEach((s) => s.sock.destroy()));
  for (let i = 0; i < 40; i++) slow.push(await rawNoRead(gw, METRICS_GET.repeat(1000)));
  const t0 = Date.now();
  const h = await rawExchange(gw, ["GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], { ms: 15000 });
  assert.deepEqual(h.responses.map((x) => x.status), [200], `no answer to /health in ${Date.now() - t0} ms beside 40 slow readers`);
  assert.ok(h.ms < 9000, `/health took ${h.ms} ms`);
  await nothingLeaked(gw, sub, "after-slow-readers");
});

// ---- half-closes ----

defcase("half_close_after_full_request_gets_response", async (t) => {
  // FIN right after a complete request: the response still comes, whole.
  const { gw, sub } = await setup(t);
  let r = await rawExchange(gw, ["GET /health HTTP/1.1\r\nHost: x\r\n\r\n"], { ms: 3000, halfClose: true });
  assert.deepEqual(r.responses.map((x) => x.status), [200], r.text);
  assert.equal(r.responses[0].body.length, Number(r.responses[0].headers["content-length"]));
  assert.ok(r.closedByServer);
  const b = JSON.stringify({ fin: 1 });
  r = await rawExchange(gw, [publishHead(gw, `Content-Length: ${b.length}\r\n`) + b], { ms: 3000, halfClose: true });
  assert.deepEqual(r.responses.map((x) => x.status), [200], r.text);
  assert.equal(r.responses[0].body.length, Number(r.responses[0].headers["content-length"]));
  assert.deepEqual((await sub.next(5000, "the published event")).data, { fin: 1 });
  await nothingLeaked(gw, sub, "after-fin-full");
});

defcase("half_close_mid_head_closed_promptly", async (t) => {
  // FIN in the middle of a head (a publish's, so nothing may be published): no
  // response, and closed at once, not at the deadline.
  const { gw, sub } = await setup(t);
  const r = await rawExchange(gw, [`POST /v1/realtime/publish?channel=c&topic=t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.key}\r\nContent-Le`], { ms: 5000, halfClose: true });
  assert.equal(r.responses.length, 0, r.text);
  assert.ok(r.closedByServer);
  assert.ok(r.ms < 1000, `closed after ${r.ms} ms; the deadline is 1500`);
  await nothingLeaked(gw, sub, "after-fin-mid-head");
});

defcase("websocket_fin_after_upgrade_cleaned_up", async (t) => {
  // The upgrade request, then FIN at once: the session that starts is ended and
  // the connections gauge is back where it was.
  const { gw, sub } = await setup(t);
  const gauge = async () => metric(await metrics(gw), "rtgw_connections");
  const before = await gauge();
  const jwt = await mint(gw, [topic("c", "t")]);
  const r = await rawExchange(gw, [
    `GET /v1/realtime/connect?token=${encodeURIComponent(jwt)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
    "Sec-WebSocket-Protocol: rtgw.v1\r\n\r\n",
  ], { ms: 5000, halfClose: true });
  assert.match(r.text, /^HTTP\/1\.1 101 /, r.text.slice(0, 200));
  assert.ok(r.closedByServer, "the session outlived its client's FIN");
  let now;
  for (let i = 0; i < 50; i++) {
    now = await gauge();
    if (now === before) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(now, before, `rtgw_connections is ${now}, was ${before}`);
  await nothingLeaked(gw, sub, "after-ws-fin");
});

await run();
