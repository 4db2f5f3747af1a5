// sdk/js against a real gateway: the Node side (mintToken, getToken, publish,
// publishBatch, publishStream) checked with a raw `ws` client on rtgw.v1, and the
// browser subscribe() run under Node with `ws` as its WebSocket (token refresh,
// renewal on 4409, fatal refusals, async iteration). Browsers: tests/browser/.
import assert from "node:assert/strict";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, keygen } from "../lib/gateway.mjs";
import { sleep, waitFor, withTimeout } from "../lib/wait.mjs";

requireNodeModules("ws");
const { default: WebSocket } = await import("ws");
const sdkNode = await import("../../sdk/js/node.js");
const sdk = await import("../../sdk/js/index.js");
const { mintToken, getToken, publish, publishBatch, publishStream, RtgwHttpError } = sdkNode;


// A raw rtgw.v1 WebSocket client: resolves after the acknowledgement.
function rawSubscribe(t, gw, token) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(token)}`, ["rtgw.v1"]);
    const c = { ws, msgs: [], ack: null, close: null };
    t.cleanup(() => ws.terminate());
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString());
      if (m.kind === "rtgw.subscribed") { c.ack = m; resolve(c); } else c.msgs.push(m);
    });
    ws.on("close", (code, reason) => { c.close = { code, reason: reason.toString() }; if (!c.ack) reject(new Error(`closed before the ack: ${code} ${reason}`)); });
    ws.on("error", reject);
  }), 5000, "rtgw.v1 subscribe");
}

const frames = (c, n, what) => waitFor(() => c.msgs.length >= n && c.msgs, 5000, `${n} frame(s): ${what}`);

defcase("mint_offline_accepted", async (t) => {
  const gw = await startGateway(t);
  const token = mintToken({ signingKey: gw.key, channel: "user:7", topics: ["ai", "status"], ttl: 120 });
  const c = await rawSubscribe(t, gw, token);
  assert.deepEqual(c.ack.topics.map((x) => x.name).sort(), ["ai", "status"]);
  assert.ok(c.ack.expires_at - Date.now() / 1000 > 100, "ttl respected");
  const r = await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:7", topic: "ai", data: { step: 1 } });
  assert.equal(r.ok, true);
  const [m] = await frames(c, 1, "offline-token subscriber");
  assert.deepEqual([m.kind, m.channel, m.topic, m.data, m.id], ["data", "user:7", "ai", { step: 1 }, r.ids[0]]);
});

defcase("mint_offline_eddsa_accepted", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_TOKEN_ALG: "EdDSA" } });
  const token = mintToken({ signingKey: gw.key, channel: "user:8", topics: ["*"], alg: "EdDSA" });
  assert.equal(JSON.parse(Buffer.from(token.split(".")[0], "base64url")).alg, "EdDSA");
  const c = await rawSubscribe(t, gw, token);
  await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:8", topic: "anything", data: "x" });
  const [m] = await frames(c, 1, "EdDSA subscriber");
  assert.equal(m.data, "x");
});

defcase("mint_offline_claims_and_kid", async (t) => {
  const gw = await startGateway(t);
  // The gateway's own mint and ours must agree on header and claim shape.
  const theirs = await getToken({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topics: ["ai"] });
  const ours = mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] });
  const part = (jwt, i) => JSON.parse(Buffer.from(jwt.split(".")[i], "base64url"));
  assert.deepEqual(part(ours, 0), part(theirs.jwt, 0), "same header (alg, typ, kid)");
  const a = part(ours, 1), b = part(theirs.jwt, 1);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of ["iss", "sub", "env", "topics", "publish"]) assert.deepEqual(a[k], b[k], k);
  assert.equal(a.exp - a.iat, 60);
});

defcase("mint_offline_wrong_key_refused", async (t) => {
  const gw = await startGateway(t);
  const token = mintToken({ signingKey: keygen(), channel: "user:7", topics: ["ai"] });
  const ws = new WebSocket(`${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(token)}`, ["rtgw.v1"]);
  t.cleanup(() => ws.terminate());
  const { code, reason } = await withTimeout(new Promise((res) => ws.on("close", (code, r) => res({ code, reason: r.toString() }))), 5000, "close");
  assert.equal(code, 4402);
  assert.match(reason, /^token_invalid: token_(unknown_kid|bad_signature)/);
  assert.throws(() => mintToken({ signingKey: "signkey-x-zz", channel: "c", topics: ["t"] }), /signkey-<env>-<hex>/);
  assert.throws(() => mintToken({ signingKey: gw.key, channel: "c" }), /topics is required/);
});

defcase("get_token", async (t) => {
  const gw = await startGateway(t);
  const r = await getToken({ baseUrl: gw.url, signingKey: gw.key, channel: "user:9", topics: ["ai"], ttl: 300 });
  assert.equal(typeof r.jwt, "string");
  assert.ok(Math.abs(r.expires_at - (Date.now() / 1000 + 300)) < 5, "expires_at follows ttl");
  const c = await rawSubscribe(t, gw, r.jwt);
  assert.deepEqual(c.ack.topics, [{ channel: "user:9", name: "ai" }]);
  await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:9", topic: "other", data: 0 });
  await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:9", topic: "ai", data: 1 });
  const [m] = await frames(c, 1, "getToken subscriber");
  assert.equal(m.data, 1, "only the granted topic arrives");
});

defcase("publish_delivered", async (t) => {
  const gw = await startGateway(t);
  const c = await rawSubscribe(t, gw, mintToken({ signingKey: gw.key, channel: "user:1", topics: ["*"] }));
  const base = { baseUrl: gw.url, signingKey: gw.key, channel: "user:1" };
  await publish({ ...base, topic: "ai", data: "42", runId: "run_1", fnId: "fn_a" }); // a string stays a string
  await publish({ ...base, topic: "ai", data: { nested: [1, 2] } });
  await publish({ ...base, topic: ["a", "b"], data: null });
  const ms = await frames(c, 4, "published events");
  assert.deepEqual(ms.map((m) => [m.topic, m.data]), [["ai", "42"], ["ai", { nested: [1, 2] }], ["a", null], ["b", null]]);
  assert.equal(ms[0].run_id, "run_1");
  assert.equal(ms[0].fn_id, "fn_a");
  assert.equal(ms[1].run_id, undefined);
});

defcase("publish_batch_delivered", async (t) => {
  const gw = await startGateway(t);
  const c = await rawSubscribe(t, gw, mintToken({ signingKey: gw.key, channel: "user:1", topics: ["*"] }));
  const r = await publishBatch({
    baseUrl: gw.url, signingKey: gw.key, channel: "user:1", runId: "r9",
    events: [{ topic: "a", data: 1 }, { topic: "b", data: "two", fnId: "f" }, { channel: "user:1", topic: "*", data: 3 }],
  });
  assert.equal(r.published, 2);
  assert.equal(r.failed, 1);
  assert.equal(r.results[2].ok, false, "the wildcard cannot be published to");
  const ms = await frames(c, 2, "batch events");
  assert.deepEqual(ms.map((m) => [m.topic, m.data, m.run_id, m.fn_id]), [["a", 1, "r9", undefined], ["b", "two", "r9", "f"]]);
  assert.deepEqual(ms.map((m) => m.id), [r.results[0].id, r.results[1].id]);
});

defcase("publish_stream_delivered", async (t) => {
  const gw = await startGateway(t);
  const c = await rawSubscribe(t, gw, mintToken({ signingKey: gw.key, channel: "user:1", topics: ["answer"] }));
  async function* words() { for (const w of ["Real", "time ", "héllo ", "wörld"]) { yield w; await sleep(30); } }
  const r = await publishStream({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "answer", stream: words(), runId: "r1" });
  assert.equal(r.ok, true);
  assert.equal(r.bytes, Buffer.byteLength("Realtime héllo wörld"));
  await waitFor(() => c.msgs.some((m) => m.kind === "datastream-end"), 5000, "datastream-end");
  assert.equal(c.msgs[0].kind, "datastream-start");
  assert.equal(c.msgs[0].stream_id, r.stream_id);
  assert.equal(c.msgs.filter((m) => m.kind === "chunk").map((m) => m.data).join(""), "Realtime héllo wörld");
  // A web ReadableStream works too.
  const rs = new ReadableStream({ start(ctl) { ctl.enqueue("one "); ctl.enqueue(new TextEncoder().encode("two")); ctl.close(); } });
  const r2 = await publishStream({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "answer", stream: rs });
  await waitFor(() => c.msgs.filter((m) => m.kind === "datastream-end").length === 2, 5000, "second stream");
  assert.equal(c.msgs.filter((m) => m.kind === "chunk" && m.stream_id === r2.stream_id).map((m) => m.data).join(""), "one two");
});

defcase("idempotency_key_dedupes", async (t) => {
  const gw = await startGateway(t);
  const c = await rawSubscribe(t, gw, mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] }));
  const p = { baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "ai", data: { step: 3 }, idempotencyKey: "run1-step3" };
  const a = await publish(p);
  const b = await publish(p);
  assert.equal(a.duplicate, undefined);
  assert.equal(b.duplicate, true);
  assert.deepEqual(b.ids, a.ids);
  const batch = await publishBatch({ baseUrl: gw.url, signingKey: gw.key, events: [{ channel: "user:1", topic: "ai", data: 9, idempotencyKey: "run1-step3" }] });
  assert.equal(batch.results[0].id, a.ids[0], "the batch form shares the key space");
  await publish({ ...p, idempotencyKey: "run1-step4", data: { step: 4 } });
  const ms = await frames(c, 2, "deduplicated events");
  await sleep(150);
  assert.deepEqual(c.msgs.map((m) => m.data), [{ step: 3 }, { step: 4 }], "each key delivered once");
});

defcase("bad_key_clear_error", async (t) => {
  const gw = await startGateway(t);
  const wrong = keygen();
  for (const call of [
    () => publish({ baseUrl: gw.url, signingKey: wrong, channel: "user:1", topic: "ai", data: 1 }),
    () => getToken({ baseUrl: gw.url, signingKey: wrong, channel: "user:1", topics: ["ai"] }),
    () => publishBatch({ baseUrl: gw.url, signingKey: wrong, events: [{ channel: "user:1", topic: "ai", data: 1 }] }),
  ]) {
    await assert.rejects(call, (e) => {
      assert.ok(e instanceof RtgwHttpError, `an RtgwHttpError, got ${e}`);
      assert.equal(e.status, 401);
      assert.equal(e.error, "unauthorized");
      assert.match(e.message, /HTTP 401 unauthorized: /);
      assert.ok(!e.message.includes(wrong.slice(15)), "the key is not in the message");
      return true;
    });
  }
  // A 403 names its reason too: a subscribe-only token cannot publish.
  const token = mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] });
  await assert.rejects(() => publish({ baseUrl: gw.url, token, channel: "user:1", topic: "ai", data: 1 }),
    (e) => e.status === 403 && /HTTP 403 \w+/.test(e.message));
  // With publish:true it can, for its own topics only.
  const pt = mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"], publish: true });
  assert.equal((await publish({ baseUrl: gw.url, token: pt, channel: "user:1", topic: "ai", data: 1 })).ok, true);
  await assert.rejects(() => publish({ baseUrl: gw.url, token: pt, channel: "user:1", topic: "other", data: 1 }),
    (e) => e.status === 403 && e.error === "topic_not_allowed");
});

defcase("fallback_key_retried", async (t) => {
  const gw = await startGateway(t);
  const r = await publish({ baseUrl: gw.url, signingKey: keygen(), signingKeyFallback: gw.key, channel: "user:1", topic: "ai", data: 1 });
  assert.equal(r.ok, true);
});

// ---- subscribe() under Node ------------------------------------------------

function track(t, opts) {
  const statuses = [], errors = [], msgs = [];
  const sub = sdk.subscribe({
    WebSocket, ...opts,
    onStatus: (s) => statuses.push(s), onError: (e) => errors.push(e), onMessage: (m) => msgs.push(m),
  });
  t.cleanup(() => sub.close());
  return { sub, statuses, errors, msgs };
}

defcase("subscribe_refreshes_in_band", async (t) => {
  // Close-on-expiry makes a missed refresh visible (4409).
  const gw = await startGateway(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_CLOCK_LEEWAY: "0" } });
  let calls = 0;
  const s = track(t, {
    baseUrl: gw.url,
    getToken: async () => { calls++; return mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"], ttl: 4 }); },
  });
  await waitFor(() => s.sub.status === "open", 5000, "open");
  const firstExp = s.sub.expiresAt;
  await sleep(7000);
  assert.ok(calls >= 3, `getToken called for refreshes (${calls} calls)`);
  assert.ok(s.sub.expiresAt > firstExp, "expiry moved forward");
  assert.deepEqual(s.statuses.map((x) => x.status), ["connecting", "open"], "never reconnected");
  await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "ai", data: "still here" });
  await waitFor(() => s.msgs.length === 1, 3000, "event after refreshes");
  assert.deepEqual(s.errors, []);
});

defcase("subscribe_new_token_on_4409", async (t) => {
  const gw = await startGateway(t);
  let calls = 0;
  const s = track(t, {
    baseUrl: gw.url,
    getToken: async () => {
      calls++;
      if (calls === 1) {
        // An expired token whose holder claims it is fresh: the gateway says 4409.
        return { jwt: mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"], ttl: 10, now: Date.now() / 1000 - 100 }), expires_at: Date.now() / 1000 + 600 };
      }
      return mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] });
    },
  });
  await waitFor(() => s.sub.status === "open", 8000, "open with a new token");
  assert.equal(calls, 2);
  const rc = s.statuses.find((x) => x.status === "reconnecting");
  assert.equal(rc.code, 4409);
  assert.equal(rc.reason, "token_expired");
});

defcase("subscribe_fatal_refusal_named", async (t) => {
  const gw = await startGateway(t);
  const token = mintToken({ signingKey: keygen(), channel: "user:1", topics: ["ai"] });
  const s = track(t, { baseUrl: gw.url, token });
  const it = s.sub[Symbol.asyncIterator]();
  await assert.rejects(withTimeout(it.next(), 5000, "iterator failure"), (e) => e.reason === "token_invalid" && e.code === 4402 && e.fatal);
  const last = s.statuses.at(-1);
  assert.equal(last.status, "closed");
  assert.equal(last.reason, "token_invalid");
  assert.match(last.detail, /^token_/);
  assert.equal(s.errors.length, 1);
  assert.match(s.errors[0].message, /token_invalid \(4402\)/);
});

defcase("subscribe_async_iterator", async (t) => {
  const gw = await startGateway(t);
  const sub = sdk.subscribe({ WebSocket, baseUrl: gw.url, token: mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] }) });
  t.cleanup(() => sub.close());
  const got = [];
  const loop = (async () => { for await (const m of sub) { got.push(m.data); if (got.length === 3) break; } })();
  await waitFor(() => sub.status === "open", 5000, "open");
  for (let i = 1; i <= 4; i++) await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "ai", data: i });
  await withTimeout(loop, 5000, "three messages");
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(sub.status, "closed", "break closed the subscription");
});

defcase("subscribe_resumes_after_restart", async (t) => {
  // Kill -9 and restart on the same port: the SDK reconnects by itself, names the drop
  // connection_lost (never 1006 alone), and reports recovered:false (new epoch).
  const gw = await startGateway(t);
  const s = track(t, { baseUrl: gw.url, backoffBaseMs: 100, getToken: () => mintToken({ signingKey: gw.key, channel: "user:1", topics: ["ai"] }) });
  await waitFor(() => s.sub.status === "open", 5000, "open");
  await publish({ baseUrl: gw.url, signingKey: gw.key, channel: "user:1", topic: "ai", data: 1 });
  await waitFor(() => s.msgs.length === 1, 3000, "first event");
  await gw.kill9();
  await waitFor(() => s.sub.status === "reconnecting", 3000, "reconnecting");
  const gw2 = await startGateway(t, { port: gw.port, key: gw.key });
  await waitFor(() => s.sub.status === "open", 10000, "reopen");
  const open2 = s.statuses.filter((x) => x.status === "open")[1];
  assert.equal(open2.resumed, true);
  assert.equal(open2.recovered, false);
  assert.ok(s.statuses.find((x) => x.status === "reconnecting").reason === "connection_lost");
  await publish({ baseUrl: gw2.url, signingKey: gw.key, channel: "user:1", topic: "ai", data: 2 });
  await waitFor(() => s.msgs.length === 2, 3000, "event after restart");
  assert.equal(s.sub.transport, "websocket", "a down gateway is not a refusing proxy: no SSE fallback");
});

await run();
