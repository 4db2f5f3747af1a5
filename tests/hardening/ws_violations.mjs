// RFC 6455 violations by a client, over raw sockets: each must fail the
// connection with the close code the RFC names (1002 protocol error, 1007
// invalid payload, 1009 too big), be counted in /metrics by reason, and cost
// no other subscriber anything. Valid edge cases (a fragmented message with a
// ping between its fragments, a character split across fragments) must pass.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, metrics, metric, topic } from "../lib/http.mjs";
import { rawUpgrade, rawNextFrame, clientFrame, closePayload } from "../lib/rawws.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";

const TEXT = 1, BIN = 2, CONT = 0, CLOSE = 8, PING = 9;
const LIMIT = 1024; // RTGW_MAX_CLIENT_FRAME_BYTES for these cases

async function setup(t) {
  const gw = await startGateway(t, { env: { RTGW_MAX_CLIENT_FRAME_BYTES: String(LIMIT) } });
  const bystander = await connect(wsUrl(gw, await mint(gw, [topic("c", "t")])), { t });
  return { gw, bystander };
}

// A raw, extended session (rtgw.v1), its subscription acknowledged.
async function session(gw, t) {
  const up = await rawUpgrade(gw, `/v1/realtime/connect?token=${await mint(gw, [topic("c", "t")])}`,
    { t, headers: { "Sec-WebSocket-Protocol": "rtgw.v1" } });
  assert.equal(up.status, 101);
  await rawNextFrame(up, (f) => f.opcode === 1 && /rtgw.subscribed/.test(f.payload.toString()), 5000, "the ack");
  return up;
}

// Send the frames, expect the server's close frame with `code` and the reason's
// name, and the metric for that reason to count it; the bystander still gets events.
async function expectClose(t, frames, code, name) {
  const { gw, bystander } = await setup(t);
  const before = metric(await metrics(gw), `rtgw_disconnects_total{reason="${name}"}`) || 0;
  const s = await session(gw, t);
  for (const f of frames) s.sock.write(f);
  const close = await rawNextFrame(s, (f) => f.opcode === CLOSE, 5000, `a close frame (${code})`);
  const { code: got, reason } = closePayload(close.payload);
  assert.equal(got, code, `close ${got} ${reason}`);
  assert.match(reason, new RegExp(name));
  s.sock.destroy();
  let after = before;
  for (let i = 0; i < 100 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = metric(await metrics(gw), `rtgw_disconnects_total{reason="${name}"}`) || 0;
  }
  assert.equal(after, before + 1, `rtgw_disconnects_total{reason="${name}"}`);
  assert.equal((await publish(gw, "c", "t", { still: "served" })).status, 200);
  let m;
  do m = await bystander.next(5000, "the bystander's event"); while (m.kind !== "data");
  assert.deepEqual(m.data, { still: "served" });
}

const utf8Bad = Buffer.from([0x6f, 0x6b, 0xc0, 0xaf]); // an overlong '/'

defcase("rsv_bits_without_extension_1002", (t) => expectClose(t, [clientFrame(TEXT, "hi", { rsv: 4 })], 1002, "protocol_error"));
defcase("reserved_opcode_1002", (t) => expectClose(t, [clientFrame(0xB, "")], 1002, "protocol_error"));
defcase("fragmented_ping_1002", (t) => expectClose(t, [clientFrame(PING, "x", { fin: false })], 1002, "protocol_error"));
defcase("ping_over_125_bytes_1002", (t) => expectClose(t, [clientFrame(PING, Buffer.alloc(126, 0x61))], 1002, "protocol_error"));
defcase("continuation_without_message_1002", (t) => expectClose(t, [clientFrame(CONT, "x")], 1002, "protocol_error"));
defcase("new_message_inside_fragmented_one_1002", (t) =>
  expectClose(t, [clientFrame(TEXT, "a", { fin: false }), clientFrame(BIN, "b")], 1002, "protocol_error"));
defcase("fragments_summing_past_the_limit_1009", (t) =>
  expectClose(t, [clientFrame(BIN, Buffer.alloc(400), { fin: false }), clientFrame(CONT, Buffer.alloc(400), { fin: false }),
    clientFrame(CONT, Buffer.alloc(400))], 1009, "message_too_big"));
defcase("invalid_utf8_text_1007", (t) => expectClose(t, [clientFrame(TEXT, utf8Bad)], 1007, "invalid_payload"));
defcase("invalid_utf8_in_a_later_fragment_1007", (t) =>
  expectClose(t, [clientFrame(TEXT, "fine", { fin: false }), clientFrame(CONT, utf8Bad, { fin: false })], 1007, "invalid_payload"));
defcase("text_ending_inside_a_character_1007", (t) =>
  expectClose(t, [clientFrame(TEXT, Buffer.from([0xe2, 0x82]))], 1007, "invalid_payload"));
defcase("invalid_utf8_close_reason_1007", (t) =>
  expectClose(t, [clientFrame(CLOSE, Buffer.concat([Buffer.from([0x03, 0xe8]), utf8Bad]))], 1007, "invalid_payload"));
defcase("one_byte_close_payload_1002", (t) => expectClose(t, [clientFrame(CLOSE, Buffer.from([0x03]))], 1002, "protocol_error"));

defcase("invalid_close_codes_1002", async (t) => {
  // Codes a peer may not send (RFC 6455 §7.4): each on its own connection.
  const { gw } = await setup(t);
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    const s = await session(gw, t);
    const p = Buffer.alloc(2); p.writeUInt16BE(code);
    s.sock.write(clientFrame(CLOSE, p));
    const close = await rawNextFrame(s, (f) => f.opcode === CLOSE, 5000, `the answer to close ${code}`);
    assert.equal(closePayload(close.payload).code, 1002, `close code ${code} was answered ${closePayload(close.payload).code}`);
    s.sock.destroy();
  }
});

defcase("valid_fragmented_text_with_ping_between_is_accepted", async (t) => {
  // An rtgw.refresh message split in three, a ping between the fragments and a
  // euro sign split across two of them: the session answers the ping, stays
  // open and still receives events.
  const { gw } = await setup(t);
  const s = await session(gw, t);
  const msg = Buffer.from('{"kind":"rtgw.nothing","x":"€"}');
  const cut = msg.indexOf(0xe2) + 1;
  s.sock.write(clientFrame(TEXT, msg.subarray(0, 5), { fin: false }));
  s.sock.write(clientFrame(PING, "p"));
  s.sock.write(clientFrame(CONT, msg.subarray(5, cut), { fin: false }));
  s.sock.write(clientFrame(CONT, msg.subarray(cut)));
  await rawNextFrame(s, (f) => f.opcode === 0xA && f.payload.toString() === "p", 5000, "the pong");
  assert.equal((await publish(gw, "c", "t", { after: "fragments" })).status, 200);
  await rawNextFrame(s, (f) => f.opcode === 1 && /after/.test(f.payload.toString()), 5000, "the event after");
  assert.ok(!s.frames.some((f) => f.opcode === CLOSE), "the session was closed");
  assert.equal((await http(gw, "GET", "/health")).status, 200);
});

defcase("valid_close_code_gets_a_normal_close", async (t) => {
  const { gw } = await setup(t);
  const s = await session(gw, t);
  s.sock.write(clientFrame(CLOSE, Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from("bye €")]))); // 4000
  const close = await rawNextFrame(s, (f) => f.opcode === CLOSE, 5000, "the close echo");
  assert.equal(closePayload(close.payload).code, 1000);
});

await run();
