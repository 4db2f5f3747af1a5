// Authorization: which events a token receives, which tokens and keys are refused.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish, keygen } from "../lib/gateway.mjs";
import { http, mintBody, topic } from "../lib/http.mjs";
import { hashKey, b64url, jwtParts } from "../lib/tokens.mjs";
import { withTimeout } from "../lib/wait.mjs";
import { connect, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function assertNoNull(obj, where = "frame") {
  for (const [k, v] of Object.entries(obj)) {
    assert.notEqual(v, null, `${where}.${k} is null`);
    if (v && typeof v === "object") assertNoNull(v, `${where}.${k}`);
  }
}

// Publishes `noise` events that must not reach the subscriber, then a sentinel
// on a granted topic: the next frame must be the sentinel (one queue per
// subscriber, so a leaked event would arrive before it).
async function assertOnlySentinel(gw, sub, noise, sentinel) {
  for (const [ch, tp] of noise) {
    const r = await publish(gw, ch, tp, { leak: `${ch}/${tp}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const r = await publish(gw, sentinel[0], sentinel[1], { sentinel: true });
  assert.equal(r.status, 200);
  const m = await sub.next(3000, "the sentinel");
  assert.deepEqual(m.data, { sentinel: true }, `received ${JSON.stringify(m)} before the sentinel`);
  assert.deepEqual(await sub.quiet(150), [], "nothing else may arrive");
}

defcase("granted_topic_exact_frame", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const sub = await connect(wsUrl(gw, jwt), { t });
  const before = Date.now();
  let r = await publish(gw, "user:42", "ai", { hello: "world", n: [1, 2] });
  assert.equal(r.status, 200);
  assert.equal(r.body.ok, true);
  assert.equal(r.body.delivered, 1);
  const m1 = await sub.next();
  // env_id: the publisher's environment, as Inngest sends it (the key's <env> here).
  assert.deepEqual(Object.keys(m1).sort(), ["channel", "created_at", "data", "env_id", "id", "kind", "topic"]);
  assert.equal(m1.env_id, "test");
  assert.equal(m1.kind, "data");
  assert.equal(m1.channel, "user:42");
  assert.equal(m1.topic, "ai");
  assert.deepEqual(m1.data, { hello: "world", n: [1, 2] });
  assert.match(m1.created_at, RFC3339);
  const ts = Date.parse(m1.created_at);
  assert.ok(ts >= before - 2000 && ts <= Date.now() + 2000, `created_at ${m1.created_at} is not now`);
  assert.equal(typeof m1.id, "string");
  assert.equal(m1.id, r.body.ids[0], "frame id is the id the publish returned");
  assertNoNull(m1);

  r = await publish(gw, "user:42", "ai", "plain text, not JSON", { query: "&run_id=run-1&fn_id=fn-9" });
  assert.equal(r.status, 200);
  const m2 = await sub.next();
  assert.deepEqual(Object.keys(m2).sort(), ["channel", "created_at", "data", "env_id", "fn_id", "id", "kind", "run_id", "topic"]);
  assert.equal(m2.run_id, "run-1");
  assert.equal(m2.fn_id, "fn-9");
  assert.equal(m2.data, "plain text, not JSON");
  assert.notEqual(m2.id, m1.id);
  assertNoNull(m2);

  // run_id only: fn_id absent (not null).
  r = await publish(gw, "user:42", "ai", 7, { query: "&run_id=run-2" });
  const m3 = await sub.next();
  assert.equal(m3.run_id, "run-2");
  assert.ok(!("fn_id" in m3), "fn_id must be absent, not null");
  assert.equal(m3.data, 7);
});

defcase("other_topic_not_delivered", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "ai")])), { t });
  await assertOnlySentinel(gw, sub, [["user:42", "other"], ["user:42", "AI"], ["user:42", "ai2"]], ["user:42", "ai"]);
});

defcase("other_channel_not_delivered", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "ai")])), { t });
  await assertOnlySentinel(gw, sub, [["user:43", "ai"], ["user:4", "ai"], ["user:420", "ai"]], ["user:42", "ai"]);
});

defcase("wildcard_topic_whole_channel_only", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "*")])), { t });
  for (const [ch, tp] of [["user:42", "a"], ["user:43", "a"], ["user:42", "b"], ["other", "*x"], ["user:42", "c"]])
    assert.equal((await publish(gw, ch, tp, { ch, tp })).status, 200);
  const got = [];
  for (let i = 0; i < 3; i++) got.push(await sub.next());
  assert.deepEqual(got.map((m) => `${m.channel}/${m.topic}`), ["user:42/a", "user:42/b", "user:42/c"]);
  assert.deepEqual(await sub.quiet(150), []);
});

// A token expired an hour ago, minted offline with the gateway's own key (tokentool).
defcase("expired_token_refused", async (t) => {
  const gw = await startGateway(t);
  const old = Math.floor(Date.now() / 1000) - 3600;
  const jwt = execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", "user:42", "ai", "60"], {
    encoding: "utf8", env: { ...process.env, RT_TOKENTOOL_NOW: String(old) },
  }).trim();
  assert.equal(jwtParts(jwt).p.exp, old + 60);
  const r = await refusedUpgrade(wsUrl(gw, jwt));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_expired");
  // The same mint with the current time works: only exp made the difference.
  const fresh = execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", "user:42", "ai", "60"], { encoding: "utf8" }).trim();
  const sub = await connect(wsUrl(gw, fresh), { t });
  await publish(gw, "user:42", "ai", 1);
  assert.equal((await sub.next()).data, 1);
});

// A token minted by the gateway itself with RTGW_TOKEN_TTL=1, refused once it expired.
defcase("expired_token_ttl_refused", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_TOKEN_TTL: "1", RTGW_CLOCK_LEEWAY: "0" } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const p = jwtParts(jwt).p;
  assert.equal(p.exp - p.iat, 1);
  await withTimeout(new Promise((r) => setTimeout(r, (p.exp + 1) * 1000 - Date.now() + 50)), 4000, "expiry");
  const r = await refusedUpgrade(wsUrl(gw, jwt));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_expired");
});

defcase("forged_token_refused", async (t) => {
  const gw = await startGateway(t);
  const other = await startGateway(t); // another key
  const foreign = await mint(other, [topic("user:42", "ai")]);
  let r = await refusedUpgrade(wsUrl(gw, foreign));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_unknown_kid");

  // Right kid, but signed with another secret.
  const good = await mint(gw, [topic("user:42", "ai")]);
  const [h, p] = good.split(".");
  const sig = crypto.createHmac("sha256", crypto.randomBytes(32)).update(`${h}.${p}`).digest("base64url");
  r = await refusedUpgrade(wsUrl(gw, `${h}.${p}.${sig}`));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_bad_signature");

  // Genuine signature, payload widened to another channel.
  const claims = jwtParts(good).p;
  claims.topics[0].channel = "user:43";
  r = await refusedUpgrade(wsUrl(gw, `${h}.${b64url(claims)}.${good.split(".")[2]}`));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_bad_signature");
  // Over Authorization: Bearer too.
  r = await refusedUpgrade(`${gw.ws}/v1/realtime/connect`, { headers: { Authorization: `Bearer ${foreign}` } });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_unknown_kid");
});

defcase("wrong_issuer_refused", async (t) => {
  const key = keygen();
  const gw = await startGateway(t, { key });
  const other = await startGateway(t, { key, env: { RTGW_TOKEN_ISSUER: "someone-else" } });
  const jwt = await mint(other, [topic("user:42", "ai")]);
  assert.equal(jwtParts(jwt).p.iss, "someone-else");
  const r = await refusedUpgrade(wsUrl(gw, jwt));
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_wrong_issuer");
  // ...while the issuing gateway accepts it.
  await (await connect(wsUrl(other, jwt), { t })).close();
});

defcase("alg_none_refused", async (t) => {
  const gw = await startGateway(t);
  const good = await mint(gw, [topic("user:42", "ai")]);
  const { h, p } = jwtParts(good);
  for (const alg of ["none", "None", "NONE"]) {
    const tok = `${b64url({ ...h, alg })}.${b64url(p)}.`;
    const r = await refusedUpgrade(wsUrl(gw, tok));
    assert.equal(r.status, 401, alg);
    assert.equal(r.json.error, "token_alg_none", alg);
  }
  // Publishing with an unsigned token is refused too.
  const r = await http(gw, "POST", "/v1/realtime/publish?channel=user:42&topic=ai", {
    body: "1", key: `${b64url({ ...h, alg: "none" })}.${b64url({ ...p, publish: true })}.`,
  });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_alg_none");
});

defcase("signing_key_forms_accepted", async (t) => {
  const key = keygen(), fallback = keygen();
  const gw = await startGateway(t, { key, env: { RTGW_SIGNING_KEY_FALLBACK: fallback } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "ai")])), { t });
  const forms = { plain: key, hashed: hashKey(key), fallback: fallback, fallback_hashed: hashKey(fallback) };
  assert.notEqual(forms.hashed, key);
  for (const [name, k] of Object.entries(forms)) {
    const m = await mintBody(gw, [topic("user:42", "ai")], k);
    assert.equal(m.status, 201, `${name}: ${m.text}`);
    assert.equal(typeof m.json.jwt, "string", name);
    assert.match(m.headers.get("content-type"), /^application\/json/);
    const p = await publish(gw, "user:42", "ai", { form: name }, { key: k });
    assert.equal(p.status, 200, `${name}: ${JSON.stringify(p.body)}`);
    assert.deepEqual((await sub.next()).data, { form: name });
    // The token minted with this form works.
    (await connect(wsUrl(gw, m.json.jwt), { t })).close();
  }
});

defcase("wrong_key_unauthorized", async (t) => {
  const gw = await startGateway(t);
  const wrong = keygen();
  const same_env_other_hex = gw.key.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
  for (const k of [wrong, hashKey(wrong), same_env_other_hex, "signkey-test-00", "", "garbage"]) {
    const m = await http(gw, "POST", "/v1/realtime/token", { body: JSON.stringify([topic("a", "b")]), headers: k === "" ? {} : { Authorization: `Bearer ${k}` } });
    assert.equal(m.status, 401, `token with '${k.slice(0, 16)}…': ${m.text}`);
    assert.deepEqual(Object.keys(m.json).sort(), ["error", "message"]);
    assert.equal(m.json.error, "unauthorized");
    assert.ok(!m.text.includes(k) || k === "", "the key must not be echoed");
    const p = await http(gw, "POST", "/v1/realtime/publish?channel=a&topic=b", { body: "1", headers: k === "" ? {} : { Authorization: `Bearer ${k}` } });
    assert.equal(p.status, 401, `publish with '${k.slice(0, 16)}…': ${p.text}`);
    // A Bearer that is not a signing key is read as a publish token.
    assert.equal(p.json.error, k.startsWith("signkey-") || k === "" ? "unauthorized" : "token_malformed");
  }
  // Basic auth with the right key is not a Bearer credential.
  const b = await http(gw, "POST", "/v1/realtime/token", { body: JSON.stringify([topic("a", "b")]), headers: { Authorization: `Basic ${gw.key}` } });
  assert.equal(b.status, 401);
  assert.equal(b.json.error, "unauthorized");
});

defcase("bearer_header_on_upgrade", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const sub = await connect(`${gw.ws}/v1/realtime/connect`, { t, headers: { Authorization: `Bearer ${jwt}` } });
  await publish(gw, "user:42", "ai", { via: "header" });
  assert.deepEqual((await sub.next()).data, { via: "header" });
  // No token at all: 401 token_missing.
  const r = await refusedUpgrade(`${gw.ws}/v1/realtime/connect`);
  assert.equal(r.status, 401);
  assert.equal(r.json.error, "token_missing");
});

defcase("publish_token_scope", async (t) => {
  const gw = await startGateway(t);
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "*")])), { t });
  const pubTok = await mint(gw, [topic("user:42", "ai")], { publish: true });
  assert.equal(jwtParts(pubTok).p.publish, true);
  let r = await publish(gw, "user:42", "ai", { by: "token" }, { key: pubTok });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const m = await sub.next();
  assert.equal(m.topic, "ai");
  assert.deepEqual(m.data, { by: "token" });
  for (const [ch, tp] of [["user:42", "other"], ["user:43", "ai"]]) {
    r = await publish(gw, ch, tp, { by: "token" }, { key: pubTok });
    assert.equal(r.status, 403, `${ch}/${tp}`);
    assert.equal(r.body.error, "topic_not_allowed");
  }
  // Two topics, one not granted: refused as a whole.
  r = await http(gw, "POST", "/v1/realtime/publish?channel=user:42&topic=ai&topic=other", { body: "1", key: pubTok });
  assert.equal(r.status, 403);
  assert.equal(r.json.error, "topic_not_allowed");
  // A subscribe-only token may not publish at all.
  const subTok = await mint(gw, [topic("user:42", "ai")]);
  r = await publish(gw, "user:42", "ai", 1, { key: subTok });
  assert.equal(r.status, 403);
  assert.equal(r.body.error, "topic_not_allowed");
  assert.deepEqual(await sub.quiet(150), [], "refused publishes delivered nothing");
});

await run();
