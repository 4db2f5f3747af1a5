// Operations: /health, /ready, /metrics, /dev, logs that never hold secrets,
// and dev mode.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { startGateway, mint, publish, keygen, RTGW_BIN } from "../lib/gateway.mjs";
import { http, mintBody, topic, metrics, metric } from "../lib/http.mjs";
import { rawUpgrade } from "../lib/rawws.mjs";
import { hashKey } from "../lib/tokens.mjs";
import { withTimeout, waitFor } from "../lib/wait.mjs";
import { connect, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

defcase("health_fields", async (t) => {
  const gw = await startGateway(t);
  let h = await http(gw, "GET", "/health");
  assert.equal(h.status, 200);
  assert.match(h.headers.get("content-type"), /^application\/json/);
  assert.equal(h.json.status, "ok");
  assert.ok(Number.isInteger(h.json.uptime_s) && h.json.uptime_s >= 0 && h.json.uptime_s < 30);
  assert.equal(h.json.connections, 0);
  assert.equal(h.json.channels, 0);
  assert.match(h.json.version, /^\d+\.\d+\.\d+/);
  const jwt = await mint(gw, [topic("c1", "a"), topic("c2", "a")]);
  const a = await connect(wsUrl(gw, jwt), { t });
  await connect(wsUrl(gw, jwt), { t });
  h = await http(gw, "GET", "/health");
  assert.equal(h.json.connections, 2);
  assert.equal(h.json.channels, 2);
  a.close();
  await a.closed;
  await waitFor(async () => (await http(gw, "GET", "/health")).json.connections === 1, 2000, "connections 1");
  // The version matches `rtgw version`.
  const v = execFileSync(RTGW_BIN, ["version"], { encoding: "utf8" });
  assert.ok(v.includes(h.json.version), `${v} vs ${h.json.version}`);
});

defcase("ready_endpoint", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_SHUTDOWN_TIMEOUT_MS: "4000", RTGW_SOCKET_SNDBUF: "4096" } });
  const r = await http(gw, "GET", "/ready");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.equal(r.json.ready, true);
  assert.equal(r.json.bus, "memory");
  assert.equal(r.json.draining, false);
  // A subscriber that stops reading with events queued holds the drain open for a
  // moment; meanwhile /ready says 503 so a load balancer stops sending traffic.
  const jwt = await mint(gw, [topic("a", "b")]);
  const stuck = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t, pauseAfter: true });
  const pad = "x".repeat(8000);
  for (let i = 0; i < 100; i++) assert.equal((await publish(gw, "a", "b", { i, pad })).status, 200);
  gw.child.kill("SIGTERM");
  const d = await waitFor(async () => {
    const x = await fetch(`${gw.url}/ready`).catch(() => null);
    return x && x.status === 503 ? x : null;
  }, 1500, "/ready to report draining");
  const dj = await d.json();
  assert.equal(dj.ready, false);
  assert.equal(dj.draining, true);
  const h = await fetch(`${gw.url}/health`);
  assert.equal(h.status, 503);
  assert.equal((await h.json()).status, "draining");
  // New work is refused while draining.
  const p = await publish(gw, "a", "b", 1);
  assert.equal(p.status, 503);
  assert.equal(p.body.error, "shutting_down");
  stuck.sock.destroy();
  assert.equal((await withTimeout(gw.exited, 7000, "exit")).code, 0);
});

defcase("metrics_prometheus_text", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const subs = [await connect(wsUrl(gw, jwt), { t }), await connect(wsUrl(gw, jwt), { t })];
  for (let i = 0; i < 5; i++) assert.equal((await publish(gw, "user:42", "ai", { i })).status, 200);
  assert.equal((await publish(gw, "user:42", "nobody", 1)).status, 200);
  for (const s of subs) for (let i = 0; i < 5; i++) await s.next();
  const [h64, p64] = jwt.split(".");
  const forged = `${h64}.${p64}.${crypto.createHmac("sha256", crypto.randomBytes(32)).update(`${h64}.${p64}`).digest("base64url")}`;
  const bad = await refusedUpgrade(wsUrl(gw, forged));
  assert.equal(bad.json.error, "token_bad_signature");

  const res = await http(gw, "GET", "/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const text = res.text;
  // Every line is a comment or `name{labels} value`, and every sample has a TYPE.
  const types = new Map();
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# TYPE ")) { const [, , n, ty] = line.split(" "); types.set(n, ty); continue; }
    if (line.startsWith("# HELP ")) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.e+Inf-]+$/, `bad line: ${line}`);
    const name = line.match(/^[a-zA-Z0-9_:]+/)[0].replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(name) || types.has(line.match(/^[a-zA-Z0-9_:]+/)[0]), `no TYPE for ${line}`);
  }
  assert.equal(types.get("rtgw_connections"), "gauge");
  assert.equal(types.get("rtgw_publishes_total"), "counter");
  assert.equal(types.get("rtgw_deliveries_total"), "counter");
  assert.equal(types.get("rtgw_publish_enqueue_seconds"), "histogram");
  assert.equal(metric(text, "rtgw_connections"), 2);
  assert.equal(metric(text, "rtgw_publishes_total"), 6);
  // A publish racing a subscription's start reaches it by replay from the
  // position pinned before the 101, so count both paths.
  assert.equal(metric(text, "rtgw_deliveries_total") + metric(text, "rtgw_replayed_total"), 10);
  assert.equal(metric(text, "rtgw_tokens_minted_total"), 1);
  assert.equal(metric(text, 'rtgw_token_refusals_total{reason="token_bad_signature"}'), 1);
  // Histogram: cumulative buckets, +Inf == count == publishes.
  const buckets = [...text.matchAll(/^rtgw_publish_enqueue_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]);
  assert.ok(buckets.length >= 3);
  assert.equal(buckets.at(-1)[0], "+Inf");
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i][1] >= buckets[i - 1][1], "buckets are cumulative");
    if (i < buckets.length - 1) assert.ok(Number(buckets[i][0]) > Number(buckets[i - 1][0]));
  }
  assert.equal(buckets.at(-1)[1], 6);
  assert.equal(metric(text, "rtgw_publish_enqueue_seconds_count"), 6);
  assert.ok(metric(text, "rtgw_publish_enqueue_seconds_sum") > 0);
  // Counters move: the two subscribers are attached by now (each has had its
  // five events), so this publish is two live deliveries, whichever path the
  // first ones took (a retry in the ASan tier: 11 against 12, one of the
  // first ten having been a replay).
  await publish(gw, "user:42", "ai", 9);
  const text2 = await metrics(gw);
  assert.equal(metric(text2, "rtgw_publishes_total"), 7);
  assert.equal(metric(text2, "rtgw_deliveries_total") - metric(text, "rtgw_deliveries_total"), 2);
  assert.equal(metric(text2, "rtgw_replayed_total"), metric(text, "rtgw_replayed_total"));
  await mintBody(gw, [topic("a", "b")], "signkey-test-" + "00".repeat(32));
  assert.equal(metric(await metrics(gw), "rtgw_auth_failures_total"), 1);
});

defcase("dev_probe_returns_empty_json", async (t) => {
  const gw = await startGateway(t);
  const r = await http(gw, "GET", "/dev");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.deepEqual(r.json, {});
  assert.equal(r.text, "{}");
});

defcase("secrets_never_logged", async (t) => {
  const fallback = keygen();
  const gw = await startGateway(t, { env: { RTGW_LOG_LEVEL: "debug", RTGW_SIGNING_KEY_FALLBACK: fallback } });
  const wrong = keygen();
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const hashed = hashKey(gw.key);
  const jwt2 = (await mintBody(gw, [topic("user:42", "ai")], hashed)).json.jwt;
  const sub = await connect(wsUrl(gw, jwt, "&since=junk-1"), { t }).catch((e) => e); // refused: bad since
  assert.equal(sub.status, 400);
  const s1 = await connect(wsUrl(gw, jwt), { t });
  const s2 = await connect(`${gw.ws}/v1/realtime/connect`, { t, headers: { Authorization: `Bearer ${jwt2}` } });
  const s3 = await connect(wsUrl(gw, jwt, "&rtgw=1"), { t });
  await publish(gw, "user:42", "ai", { x: 1 });
  await publish(gw, "user:42", "ai", { x: 2 }, { key: hashed });
  await publish(gw, "user:42", "ai", { x: 3 }, { key: fallback });
  await publish(gw, "user:42", "ai", 1, { key: wrong });
  await publish(gw, "user:42", "ai", 1, { key: jwt }); // a subscribe token: 403
  await mintBody(gw, [topic("a", "b")], wrong);
  const badSig = jwt.replace(/\.[^.]+$/, ".AAAA");
  await refusedUpgrade(wsUrl(gw, badSig));
  const sse = await fetch(`${gw.url}/v1/realtime/sse?token=${jwt}`);
  const reader = sse.body.getReader();
  await reader.read();
  await reader.cancel();
  for (const s of [s1, s2, s3]) assert.equal((await s.next()).kind, s === s3 ? "rtgw.subscribed" : "data");
  await withTimeout(gw.stop(), 8000, "stop");
  const out = gw.logs() + gw.stdout();
  assert.match(gw.logs(), /level=debug msg="request"/, "debug logging was on");
  const secrets = {
    key: gw.key, key_hex: gw.key.replace(/^signkey-\w+-/, ""), hashed, hashed_hex: hashed.replace(/^signkey-\w+-/, ""),
    fallback, wrong_key: wrong, jwt, jwt2, jwt_signature: jwt.split(".")[2], jwt_payload: jwt.split(".")[1],
  };
  for (const [name, s] of Object.entries(secrets)) assert.ok(!out.includes(s), `${name} appears in the logs: ${out.split("\n").filter((l) => l.includes(s)).map((l) => l.split(s).join("[" + name + "]")).join("\n")}`);
});

defcase("dev_mode_banner_and_demo_page", async (t) => {
  const gw = await startGateway(t, { dev: true, key: "" });
  const out = gw.stdout();
  assert.match(out, /dev mode/);
  const key = out.match(/signing key\s+(signkey-dev-[0-9a-f]{64})\b/);
  assert.ok(key, `no key in the banner:\n${out}`);
  assert.ok(out.includes(`http://127.0.0.1:${gw.port}/`), "demo page URL");
  assert.ok(out.includes(`ws://127.0.0.1:${gw.port}/v1/realtime/connect`), "subscribe URL");
  assert.ok(out.includes(`http://127.0.0.1:${gw.port}/v1/realtime/publish`), "publish URL");
  // The printed key works.
  const m = await mintBody(gw, [topic("user:42", "ai")], key[1]);
  assert.equal(m.status, 201);
  const page = await http(gw, "GET", "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  assert.match(page.text, /<html/i);
  assert.match(page.text, /v1\/realtime/);
  // Dev mode accepts the empty Bearer the official clients send without a key.
  const e = await http(gw, "POST", "/v1/realtime/token", { body: JSON.stringify([topic("a", "b")]), headers: { Authorization: "Bearer " } });
  assert.equal(e.status, 201);
});

defcase("no_demo_page_without_dev", async (t) => {
  const gw = await startGateway(t);
  assert.doesNotMatch(gw.stdout(), /signkey-/);
  for (const p of ["/", "/dev/key", "/sdk/index.js", "/sdk/codes.js"]) {
    const r = await http(gw, "GET", p);
    assert.equal(r.status, 404, p);
    assert.match(r.headers.get("content-type"), /^application\/json/);
    assert.equal(r.json.error, "not_found");
    assert.ok(!r.text.includes(gw.key));
  }
  // Without dev mode an empty Bearer is refused.
  const e = await http(gw, "POST", "/v1/realtime/token", { body: JSON.stringify([topic("a", "b")]), headers: { Authorization: "Bearer " } });
  assert.equal(e.status, 401);
  assert.equal(e.json.error, "unauthorized");
});

defcase("dev_key_only_for_the_demo_page", async (t) => {
  // A page on another origin that a developer visits must not read the dev
  // key from localhost: no CORS header, and cross-origin requests are refused.
  const gw = await startGateway(t, { dev: true, key: null });
  const same = await fetch(`${gw.url}/dev/key`, { headers: { "Sec-Fetch-Site": "same-origin" } });
  assert.equal(same.status, 200);
  assert.equal((await same.json()).signing_key, gw.key);
  assert.equal(same.headers.get("access-control-allow-origin"), null);
  for (const headers of [{ Origin: "https://evil.example" }, { "Sec-Fetch-Site": "cross-site" }]) {
    const r = await fetch(`${gw.url}/dev/key`, { headers });
    assert.equal(r.status, 403, JSON.stringify(headers));
    const text = await r.text();
    assert.ok(!text.includes(gw.key), "the key must not leak in the refusal");
    assert.equal(JSON.parse(text).error, "forbidden");
  }
});

await run();
