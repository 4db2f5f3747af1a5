// Inngest's client → server messages on a live WebSocket, against real rtgw
// processes: {"kind":"sub","data":"<jwt>"} adds the token's topics, {"kind":"unsub",
// "data":[topics]} removes them. Official (plain) clients get no answer, as from
// Inngest (pkg/execution/realtime/sub_websocket.go); extended (rtgw.v1) clients get
// rtgw.sub_ack / rtgw.unsub_ack or an rtgw.error naming the refusal. Bad input never
// closes the socket: after each refusal the connection still delivers.
// docs/protocol.md, "Client messages".
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { metrics, metric, topic as T } from "../lib/http.mjs";
import { sleep } from "../lib/wait.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";

requireNodeModules("ws");

const send = (c, m) => c.ws.send(typeof m === "string" ? m : JSON.stringify(m));
const unsubMsg = (...pairs) => ({ kind: "unsub", data: pairs.map(([channel, name]) => ({ kind: "run", channel, name })) });

// The data frames c receives after publishing to each (channel, topic) of `pairs`
// and then to the sentinel (a topic c holds): everything up to the sentinel.
async function deliveredOf(gw, c, pairs, sentinel) {
  c.msgs.splice(0, c.read); c.read = 0;
  for (const [ch, tp] of pairs) await publish(gw, ch, tp, { ch, tp });
  await publish(gw, sentinel[0], sentinel[1], { sentinel: true });
  const got = [];
  for (;;) {
    const m = await c.next(3000, "the sentinel").catch((e) => { throw new Error(`${e.message}; got ${JSON.stringify(c.msgs.map((x) => x.kind + ":" + x.topic + ":" + JSON.stringify(x.data)))}`); });
    if (m.kind !== "data") continue;
    if (m.data && m.data.sentinel) return got;
    got.push(`${m.channel}/${m.topic}`);
  }
}

async function plainClient(t, gw, topics) {
  return connect(wsUrl(gw, await mint(gw, topics, { ttl: 600 })), { t });
}

async function extClient(t, gw, topics) {
  const c = await connect(wsUrl(gw, await mint(gw, topics, { ttl: 600 })), { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  return c;
}

// The next rtgw.* answer of an extended client.
async function answer(c) {
  for (;;) {
    const m = await c.next(3000, "an answer");
    if (String(m.kind).startsWith("rtgw.")) return m;
  }
}

// A token expired an hour ago, signed with the gateway's own key (tokentool).
function expiredToken(gw, channel, name) {
  const old = Math.floor(Date.now() / 1000) - 3600;
  return execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", channel, name, "60"], {
    encoding: "utf8", env: { ...process.env, RT_TOKENTOOL_NOW: String(old) },
  }).trim();
}

defcase("sub_adds_topics_live", async (t) => {
  const gw = await startGateway(t);
  const c = await plainClient(t, gw, [T("live", "a")]);
  assert.deepEqual(await deliveredOf(gw, c, [["live", "b"]], ["live", "a"]), []);
  send(c, { kind: "sub", data: await mint(gw, [T("live", "b"), T("live", "a")]) });
  await sleep(200);
  assert.deepEqual(await deliveredOf(gw, c, [["live", "b"], ["live", "c"]], ["live", "a"]), ["live/b"]);
  assert.deepEqual(await c.quiet(150), [], "no answer to an official client, as from Inngest");
  assert.equal(c.closeInfo, null);
});

defcase("sub_other_channel", async (t) => {
  // Inngest does not tie a sub to the connection's channel: the token decides.
  const gw = await startGateway(t);
  const c = await extClient(t, gw, [T("home", "a")]);
  send(c, { kind: "sub", data: await mint(gw, [T("away", "x"), T("away2", "*")]) });
  const ack = await answer(c);
  assert.equal(ack.kind, "rtgw.sub_ack");
  assert.deepEqual(ack.topics, [{ channel: "away", name: "x" }, { channel: "away2", name: "*" }]);
  assert.match(ack.channels.away.id, /^[0-9a-f]+-\d+$/);
  const got = await deliveredOf(gw, c, [["away", "x"], ["away", "y"], ["away2", "q"]], ["home", "a"]);
  assert.deepEqual(got, ["away/x", "away2/q"]);
  // The new channel's frames carry ids like any other.
  await publish(gw, "away", "x", 1);
  const m = await c.next();
  assert.equal(m.channel, "away");
  assert.match(m.id, /^[0-9a-f]+-\d+$/);
  // A repeated sub adds nothing and delivers nothing twice.
  send(c, { kind: "sub", data: await mint(gw, [T("away", "x")]) });
  assert.deepEqual((await answer(c)).topics, []);
  assert.deepEqual(await deliveredOf(gw, c, [["away", "x"]], ["home", "a"]), ["away/x"]);
});

defcase("unsub_removes_topics", async (t) => {
  const gw = await startGateway(t);
  const c = await plainClient(t, gw, [T("un", "a"), T("un", "b"), T("un", "c")]);
  assert.deepEqual(await deliveredOf(gw, c, [["un", "b"], ["un", "c"]], ["un", "a"]), ["un/b", "un/c"]);
  send(c, unsubMsg(["un", "b"]));
  await sleep(200);
  assert.deepEqual(await deliveredOf(gw, c, [["un", "b"], ["un", "c"]], ["un", "a"]), ["un/c"]);
  assert.deepEqual(await c.quiet(150), []);
  // A sub brings it back.
  send(c, { kind: "sub", data: await mint(gw, [T("un", "b")]) });
  await sleep(200);
  assert.deepEqual(await deliveredOf(gw, c, [["un", "b"]], ["un", "a"]), ["un/b"]);
  const h = await (await fetch(`${gw.url}/health`)).json();
  assert.equal(h.subscriptions, 3);
});

defcase("unsub_unknown_topic", async (t) => {
  const gw = await startGateway(t);
  const c = await extClient(t, gw, [T("uk", "a"), T("uk", "*")]);
  // Topics the connection does not hold are ignored, as by Inngest; "b" is covered only by
  // the wildcard, which an unsub of "b" does not remove.
  send(c, unsubMsg(["uk", "zz"], ["nowhere", "a"], ["uk", "b"]));
  const ack = await answer(c);
  assert.deepEqual(ack, { kind: "rtgw.unsub_ack", topics: [] });
  assert.deepEqual(await deliveredOf(gw, c, [["uk", "b"]], ["uk", "a"]), ["uk/b"]);
  send(c, unsubMsg(["uk", "*"]));
  assert.deepEqual((await answer(c)).topics, [{ channel: "uk", name: "*" }]);
  assert.deepEqual(await deliveredOf(gw, c, [["uk", "b"]], ["uk", "a"]), []);
  // Malformed unsub data: refused whole, nothing removed.
  for (const data of ["uk:a", [{ channel: "uk" }], [{ channel: "uk", name: "a" }, 7], {}]) {
    send(c, { kind: "unsub", data });
    const e = await answer(c);
    assert.equal(e.kind, "rtgw.error");
    assert.equal(e.error, "bad_request");
  }
  assert.deepEqual(await deliveredOf(gw, c, [], ["uk", "a"]), []);
});

defcase("sub_forged_token_refused", async (t) => {
  const gw = await startGateway(t);
  const other = await startGateway(t);
  const c = await extClient(t, gw, [T("fg", "a")]);
  const good = await mint(gw, [T("fg", "b")]);
  const [h, p, s] = good.split(".");
  const flipped = s.slice(0, -2) + (s.at(-2) === "A" ? "B" : "A") + s.at(-1);
  const cases = [
    [await mint(other, [T("fg", "b")]), /^token_(bad_signature|unknown_kid|wrong_env)$/],
    [`${h}.${p}.${flipped}`, /^token_bad_signature$/],
    [`${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url")), topics: [T("fg", "*")] })).toString("base64url")}.${s}`, /^token_bad_signature$/],
    ["not-a-token", /^token_malformed$/],
  ];
  for (const [tok, want] of cases) {
    send(c, { kind: "sub", data: tok });
    const e = await answer(c);
    assert.equal(e.kind, "rtgw.error");
    assert.match(e.error, want);
    assert.ok(!e.message.includes(tok.slice(0, 20)), "no token in an error");
  }
  send(c, { kind: "sub", data: 42 });
  assert.equal((await answer(c)).error, "bad_request");
  assert.deepEqual(await deliveredOf(gw, c, [["fg", "b"], ["fg", "c"]], ["fg", "a"]), []);
  // A plain client gets no answer, is not subscribed, and the refusal is counted.
  const pc = await plainClient(t, gw, [T("fg", "a")]);
  send(pc, { kind: "sub", data: `${h}.${p}.${flipped}` });
  await sleep(200);
  assert.deepEqual(await deliveredOf(gw, pc, [["fg", "b"]], ["fg", "a"]), []);
  assert.ok(metric(await metrics(gw), 'rtgw_token_refusals_total{reason="token_bad_signature"}') >= 3);
  assert.ok(/client message refused.*message=sub reason=token_bad_signature/.test(gw.logs()));
});

defcase("sub_expired_token_refused", async (t) => {
  const gw = await startGateway(t);
  const c = await extClient(t, gw, [T("ex", "a")]);
  send(c, { kind: "sub", data: expiredToken(gw, "ex", "b") });
  const e = await answer(c);
  assert.deepEqual([e.kind, e.error], ["rtgw.error", "token_expired"]);
  assert.deepEqual(await deliveredOf(gw, c, [["ex", "b"]], ["ex", "a"]), []);
  // A fresh token of the same key and claims works: only exp made the difference.
  send(c, { kind: "sub", data: execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", "ex", "b", "60"], { encoding: "utf8" }).trim() });
  assert.equal((await answer(c)).kind, "rtgw.sub_ack");
  assert.deepEqual(await deliveredOf(gw, c, [["ex", "b"]], ["ex", "a"]), ["ex/b"]);
});

defcase("sub_key_rotation", async (t) => {
  // A token of the fallback key still verifies in a sub, as at connect.
  const old = (await startGateway(t)).key;
  const gw = await startGateway(t, { env: { RTGW_SIGNING_KEY_FALLBACK: old } });
  const c = await extClient(t, gw, [T("rot", "a")]);
  const byOld = await startGateway(t, { key: old });
  send(c, { kind: "sub", data: await mint(byOld, [T("rot", "b")]) });
  assert.equal((await answer(c)).kind, "rtgw.sub_ack");
  assert.deepEqual(await deliveredOf(gw, c, [["rot", "b"]], ["rot", "a"]), ["rot/b"]);
});

defcase("sub_topic_cap", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_TOPICS: "4" } });
  const c = await extClient(t, gw, [T("cap", "a"), T("cap", "b")]);
  send(c, { kind: "sub", data: await mint(gw, [T("cap", "c"), T("cap", "d")]) });
  assert.equal((await answer(c)).kind, "rtgw.sub_ack");
  send(c, { kind: "sub", data: await mint(gw, [T("cap", "e")]) });
  const e = await answer(c);
  assert.deepEqual([e.kind, e.error], ["rtgw.error", "too_many_topics"]);
  // Topics already held do not count twice; after an unsub there is room again.
  send(c, { kind: "sub", data: await mint(gw, [T("cap", "a")]) });
  assert.equal((await answer(c)).kind, "rtgw.sub_ack");
  send(c, unsubMsg(["cap", "d"]));
  await answer(c);
  send(c, { kind: "sub", data: await mint(gw, [T("cap", "e")]) });
  assert.equal((await answer(c)).kind, "rtgw.sub_ack");
  assert.deepEqual(await deliveredOf(gw, c, [["cap", "d"], ["cap", "e"]], ["cap", "a"]), ["cap/e"]);
});

defcase("client_message_bad_input", async (t) => {
  const gw = await startGateway(t);
  const ext = await extClient(t, gw, [T("bad", "a")]);
  const plain = await plainClient(t, gw, [T("bad", "a")]);
  let deep = '"x"';
  for (let i = 0; i < 9; i++) deep = `{"k":${deep}}`;
  const inputs = [
    "not json", "[]", "{}", '{"kind":7}', '{"kind":"sub","kind":"sub","data":"x"}',
    '{"kind":"launch"}', '{"kind":"data","data":1}', '{"kind":"rtgw.refresh"}',
    `{"kind":"sub","data":${deep}}`, "[".repeat(100000).slice(0, 60000),
    JSON.stringify({ kind: "sub", data: "x".repeat(60000) }),
  ];
  for (const m of inputs) { send(ext, m); send(plain, m); }
  for (let i = 0; i < inputs.length; i++) {
    const e = await answer(ext);
    assert.equal(e.kind, "rtgw.error", `answer to ${inputs[i].slice(0, 40)}`);
  }
  const names = ext.msgs.filter((m) => m.kind === "rtgw.error").map((m) => m.error);
  assert.ok(names.every((n) => n === "bad_request" || n === "token_too_large" || n === "token_malformed"), names.join());
  assert.ok(ext.msgs.some((m) => /nested at most 8/.test(m.message || "")), "the depth refusal says why");
  // rtgw.refresh is the extended protocol's: a plain client gets no answer to it either.
  assert.deepEqual((await plain.quiet(200)).filter((m) => m.kind !== "data"), []);
  assert.deepEqual(await deliveredOf(gw, plain, [], ["bad", "a"]), []);
  assert.deepEqual(await deliveredOf(gw, ext, [], ["bad", "a"]), []);
  // A frame over RTGW_MAX_CLIENT_FRAME_BYTES closes with 1009, as before (Inngest: 1009
  // past its 32 KiB read limit).
  send(plain, JSON.stringify({ kind: "sub", data: "x".repeat(70000) }));
  const info = await plain.closed;
  assert.equal(info.code, 1009);
  assert.equal(gw.child.exitCode, null, "the gateway is still up");
});

await run();
