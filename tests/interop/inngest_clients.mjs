// Interop: the OFFICIAL, unmodified Inngest realtime clients against a real rtgw.
//
//   inngest@4.24.0            `inngest` + `inngest/realtime`          (called "v4" below)
//   @inngest/realtime@0.4.7   standalone package, which brings its own nested
//                             inngest@3.x (used for `getSubscriptionToken(app, …)`)
//
// Each defcase is one CTest entry (interop.inngest.<case>); see docs/inngest-wire-notes.md
// for the client behaviour these cases rely on.
//
// WebSocket on Node 20: both clients need a global `WebSocket`. Node 20 only has it
// behind `--experimental-websocket` (undici's implementation, the same one Node >= 22
// exposes by default), so when it is missing this file re-executes itself with that
// flag (signals are forwarded to the child, its exit code is ours). We deliberately do
// not polyfill with the `ws` package: undici's WebSocket is what users of Node >= 22 get.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

if (typeof globalThis.WebSocket === "undefined") {
  if (process.env.RT_WS_REEXEC) {
    console.error("FAIL: no global WebSocket even with --experimental-websocket (Node >= 20.10 needed)");
    process.exit(1);
  }
  const child = spawn(process.execPath,
    ["--experimental-websocket", "--no-warnings=ExperimentalWarning", ...process.execArgv,
     fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit", env: { ...process.env, RT_WS_REEXEC: "1" } });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

async function main() {
  const fs = await import("node:fs");
  const path = await import("node:path");
  const { defcase, run, requireNodeModules } = await import("../lib/harness.mjs");
  const gwlib = await import("../lib/gateway.mjs");
  const { startGateway, mint, publish, keygen } = gwlib;
  const { sleep } = await import("../lib/wait.mjs");
  const { tmpDir } = await import("../lib/proc.mjs");

  requireNodeModules("inngest", "@inngest/realtime");
  const here = path.dirname(fileURLToPath(import.meta.url));
  const nm = path.resolve(here, "../node_modules");
  // Imported lazily so that the env vars each case sets are in place first.
  const v4 = () => import("inngest");
  const v4rt = () => import("inngest/realtime");
  const rt047 = () => import("@inngest/realtime");
  // inngest@3 nested under @inngest/realtime (its own dependency, not hoisted).
  const v3 = () => import(path.join(nm, "@inngest/realtime/node_modules/inngest/index.js"));

  function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
  function eq(a, b, msg) {
    const ja = JSON.stringify(a), jb = JSON.stringify(b);
    if (ja !== jb) throw new Error(`${msg}: got ${ja}, want ${jb}`);
  }

  // Collects messages from a subscriber callback; waitFor() is bounded.
  function collector(label) {
    const msgs = [];
    const waiters = [];
    return {
      msgs,
      push(m) {
        msgs.push(m);
        for (const w of waiters.slice()) if (w.pred(msgs)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(msgs); }
      },
      waitFor(pred, ms = 10000, what = "messages") {
        if (pred(msgs)) return Promise.resolve(msgs);
        return new Promise((resolve, reject) => {
          const w = { pred, resolve };
          waiters.push(w);
          setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) {
              waiters.splice(i, 1);
              reject(new Error(`${label}: timed out after ${ms} ms waiting for ${what}; got ${msgs.length}: ${JSON.stringify(msgs.slice(-5))}`));
            }
          }, ms);
        });
      },
    };
  }
  const isWarm = (m) => m && m.data && typeof m.data === "object" && "__warm" in m.data;
  const real = (msgs) => msgs.filter((m) => !isWarm(m));

  // The official clients resolve subscribe() on the WebSocket `open` event, which can
  // precede the gateway registering the subscription. Publish marker events until every
  // collector has seen one, so the measured events cannot race the subscription.
  async function warmUp(pub, cols, ms = 10000) {
    const deadline = Date.now() + ms;
    for (let i = 0; ; i++) {
      await pub({ __warm: i });
      const ok = await Promise.all(cols.map((c) => c.waitFor((x) => x.some(isWarm), 100).then(() => true, () => false)));
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error("warm-up: subscribers never received a marker event");
    }
  }

  // An inngest v4 client made with `opts` (id, signing keys) against gw mints a token
  // for `channel`/ai, subscribes, publishes `data` itself and receives exactly it.
  async function v4OneEvent(t, gw, opts, channel, data) {
    const { Inngest } = await v4();
    const { realtime, subscribe: sub4 } = await v4rt();
    const inngest = new Inngest({ ...opts, baseUrl: `${gw.url}/` });
    const ch = realtime.channel({ name: channel, topics: { ai: {} } });
    const tok = await inngest.realtime.token({ channel: ch, topics: ["ai"] });
    const col4 = collector("v4");
    const s4 = await sub4({ ...tok, onMessage: (m) => col4.push(m) });
    t.cleanup(() => s4.close());
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col4]);
    await inngest.realtime.publish(ch.ai, data);
    await col4.waitFor((m) => real(m).length >= 1, 10000, "1 event");
    eq(real(col4.msgs)[0].data, data, "v4 data");
  }

  // Env vars the clients read; each case sets exactly what it needs.
  const INNGEST_VARS = ["INNGEST_BASE_URL", "INNGEST_API_BASE_URL", "INNGEST_DEV", "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_ENV", "NODE_ENV"];
  function setEnv(vars) {
    for (const k of INNGEST_VARS) delete process.env[k];
    for (const [k, v] of Object.entries(vars)) if (v !== undefined) process.env[k] = v;
  }

  // Raw opted-in (subprotocol rtgw.v1) WebSocket client.
  async function rawWs(url, protocols) {
    const ws = new WebSocket(url, protocols);
    const col = collector("raw ws");
    ws.onmessage = (ev) => col.push(JSON.parse(ev.data));
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = (e) => reject(new Error(`raw ws error: ${e.message || e.type}`));
    });
    return { ws, col };
  }

  async function metric(gw, name) {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const m = text.match(new RegExp(`^${name} (\\d+)`, "m"));
    return m ? Number(m[1]) : NaN;
  }

  // ---- 1. v4 token + subscribe + publish ---------------------------------------

defcase("v4_token_subscribe_publish", async (t) => {
    const gw = await startGateway(t);
    setEnv({});
    const { Inngest } = await v4();
    const { realtime, subscribe } = await v4rt();
    const inngest = new Inngest({ id: "interop-v4", baseUrl: `${gw.url}/`, signingKey: gw.key });
    // The v4 client sends the *hashed* key; make sure that is what we exercise.
    assert(inngest.inngestApi.hashedKey !== gw.key && inngest.inngestApi.hashedKey.startsWith("signkey-test-"),
      "v4 client hashes the signing key");
    const ch = realtime.channel({ name: "user:42", topics: { ai: {}, status: {} } });

    const tok = await inngest.realtime.token({ channel: ch, topics: ["ai", "status"] });
    assert(typeof tok.key === "string" && tok.key.split(".").length === 3, "token.key is a JWT");
    eq(tok.apiBaseUrl, `${gw.url}/`, "token carries apiBaseUrl");

    const col = collector("v4");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col]);

    const N = 20;
    for (let i = 0; i < N; i++) {
      const topic = i % 2 ? ch.status : ch.ai;
      await inngest.realtime.publish(topic, { i, text: `msg ${i}`, nested: { ok: true, list: [i, "x"] } });
    }
    await col.waitFor((m) => real(m).length >= N, 10000, `${N} events`);
    const got = real(col.msgs);
    eq(got.length, N, "event count");
    got.forEach((m, i) => {
      eq(m.kind, "data", `msg ${i} kind`);
      eq(m.channel, "user:42", `msg ${i} channel`);
      eq(m.topic, i % 2 ? "status" : "ai", `msg ${i} topic`);
      eq(m.data, { i, text: `msg ${i}`, nested: { ok: true, list: [i, "x"] } }, `msg ${i} data (order)`);
      assert(m.createdAt instanceof Date && Math.abs(Date.now() - m.createdAt.getTime()) < 60000, `msg ${i} createdAt`);
      // Published outside a function run: no run_id on the wire, so none delivered.
      eq(m.runId, undefined, `msg ${i} runId`);
    });

    // Same through the v3-compatible entry point getSubscriptionToken(app, …).
    const { getSubscriptionToken } = await v4rt();
    const tok2 = await getSubscriptionToken(inngest, { channel: "user:42", topics: ["ai"] });
    const col2 = collector("v4 getSubscriptionToken");
    const sub2 = await subscribe({ ...tok2, onMessage: (m) => col2.push(m) });
    t.cleanup(() => sub2.close());
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col2]);
    await inngest.realtime.publish(ch.status, { not: "subscribed" });
    await inngest.realtime.publish(ch.ai, { last: true });
    await col2.waitFor((m) => real(m).length >= 1, 10000, "1 event");
    await sleep(200);
    eq(real(col2.msgs).map((m) => [m.topic, m.data]), [["ai", { last: true }]], "getSubscriptionToken subscriber events");
  });

  // ---- 2. fetch-published run_id/fn_id, string bodies, extra id ----------------

defcase("v4_run_fn_ids_string_body", async (t) => {
    const gw = await startGateway(t);
    setEnv({});
    const { Inngest } = await v4();
    const { subscribe } = await v4rt();
    const inngest = new Inngest({ id: "interop-v4", baseUrl: `${gw.url}/`, signingKey: gw.key });
    const tok = await inngest.realtime.token({ channel: "run:abc", topics: ["progress"] });
    const col = collector("v4");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp(async (d) => { const r = await publish(gw, "run:abc", "progress", d); eq(r.status, 200, "warm publish"); }, [col]);

    const q = "&run_id=01HRUN000000000000000000&fn_id=fn-resize";
    let r = await publish(gw, "run:abc", "progress", { pct: 10 }, { query: q });
    eq(r.status, 200, "publish json");
    // A non-JSON body labelled application/json (what the clients send for a string).
    r = await publish(gw, "run:abc", "progress", "plain text, not json", { query: q });
    eq(r.status, 200, "publish string");
    r = await publish(gw, "run:abc", "progress", "\"a json string\"");
    eq(r.status, 200, "publish json string");
    r = await publish(gw, "run:abc", "progress", "123");
    eq(r.status, 200, "publish number");

    await col.waitFor((m) => real(m).length >= 4, 10000, "4 events");
    const got = real(col.msgs);
    eq(got.map((m) => m.data), [{ pct: 10 }, "plain text, not json", "a json string", 123], "data");
    eq(got[0].runId, "01HRUN000000000000000000", "runId");
    eq(got[0].fnId, "fn-resize", "fnId");
    eq(got[1].runId, "01HRUN000000000000000000", "runId (string body)");
    eq(got[1].fnId, "fn-resize", "fnId (string body)");
    eq(got[2].runId, undefined, "no runId when not published");
    eq(got[2].fnId, undefined, "no fnId when not published");
    // rtgw adds `id` to every frame; the zod schema strips it, the message still arrives.
    for (const m of got) {
      eq(m.channel, "run:abc", "channel");
      eq(m.topic, "progress", "topic");
      assert(!("id" in m), "extra id field is not exposed by the client");
    }

    // The v4 publisher inside the same process sending a JS string (raw body).
    const { realtime } = await v4rt();
    const ch = realtime.channel({ name: "run:abc", topics: { progress: {} } });
    await inngest.realtime.publish(ch.progress, "from the sdk");
    await col.waitFor((m) => real(m).length >= 5, 10000, "5 events");
    eq(real(col.msgs)[4].data, "from the sdk", "sdk string body");
  });

  // ---- 3. 0.4.7 lazy subscribe with the raw key ---------------------------------

defcase("rt047_subscribe_raw_key", async (t) => {
    const gw = await startGateway(t);
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: gw.key });
    const { subscribe } = await rt047();
    const col = collector("0.4.7");
    const stream = await subscribe({ channel: "user:42", topics: ["ai", "status"] }, (m) => col.push(m));
    t.cleanup(() => stream.cancel().catch(() => {}));
    await warmUp((d) => publish(gw, "user:42", "ai", d), [col]);
    for (let i = 0; i < 10; i++) {
      const r = await publish(gw, "user:42", i % 2 ? "status" : "ai", { i });
      eq(r.status, 200, "publish");
    }
    await col.waitFor((m) => real(m).length >= 10, 10000, "10 events");
    const got = real(col.msgs);
    eq(got.map((m) => [m.channel, m.topic, m.data]),
      Array.from({ length: 10 }, (_, i) => ["user:42", i % 2 ? "status" : "ai", { i }]), "events in order");
    eq(await metric(gw, "rtgw_auth_failures_total"), 0, "no auth failure (raw key accepted first time)");
  });

  // ---- 4. fallback keys: client-side retry, and gateway-side rotation ----------

defcase("rt047_fallback_key_retry", async (t) => {
    const gw = await startGateway(t);
    const wrong = keygen();
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: wrong, INNGEST_SIGNING_KEY_FALLBACK: gw.key });
    const { subscribe } = await rt047();
    const col = collector("0.4.7");
    const stream = await subscribe({ channel: "user:42", topics: ["ai"] }, (m) => col.push(m));
    t.cleanup(() => stream.cancel().catch(() => {}));
    // The first mint with the wrong key was refused with 401, then retried.
    eq(await metric(gw, "rtgw_auth_failures_total"), 1, "one 401 before the fallback retry");
    await warmUp((d) => publish(gw, "user:42", "ai", d), [col]);
    await publish(gw, "user:42", "ai", { hello: "fallback" });
    await col.waitFor((m) => real(m).length >= 1, 10000, "1 event");
    eq(real(col.msgs)[0].data, { hello: "fallback" }, "data");

    // v4 (hashed keys) takes the same path, for token and publish.
    await v4OneEvent(t, gw, { id: "fb", signingKey: wrong, signingKeyFallback: gw.key }, "user:42", { v4: "fallback" });
  });

defcase("rt047_gateway_rotation_old_key", async (t) => {
    const oldKey = keygen();
    const newKey = keygen();
    const gw = await startGateway(t, { key: newKey, env: { RTGW_SIGNING_KEY_FALLBACK: oldKey } });
    // The client still holds only the old key (no fallback configured on its side).
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: oldKey });
    const { subscribe } = await rt047();
    const col = collector("0.4.7");
    const stream = await subscribe({ channel: "user:7", topics: ["ai"] }, (m) => col.push(m));
    t.cleanup(() => stream.cancel().catch(() => {}));
    // Publish with the new key (an upgraded worker) and with the old key (a stale one).
    await warmUp((d) => publish(gw, "user:7", "ai", d, { key: newKey }), [col]);
    eq((await publish(gw, "user:7", "ai", { by: "new" }, { key: newKey })).status, 200, "publish new key");
    eq((await publish(gw, "user:7", "ai", { by: "old" }, { key: oldKey })).status, 200, "publish old key");
    await col.waitFor((m) => real(m).length >= 2, 10000, "2 events");
    eq(real(col.msgs).map((m) => m.data), [{ by: "new" }, { by: "old" }], "data");

    // v4 holding only the old key: hashed old key is accepted for token and publish.
    await v4OneEvent(t, gw, { id: "rot", signingKey: oldKey }, "user:7", { v4: "old key" });
    eq(await metric(gw, "rtgw_auth_failures_total"), 0, "no auth failures during rotation");

    // A key that is neither current nor fallback is refused with 401 (so SDKs retry).
    const r = await fetch(`${gw.url}/v1/realtime/token`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${keygen()}` },
      body: JSON.stringify([{ channel: "user:7", name: "ai", kind: "run" }]),
    });
    eq(r.status, 401, "unknown key");
  });

  // ---- 5. 0.4.7 getSubscriptionToken with a v3 Inngest app ---------------------

defcase("rt047_get_subscription_token_v3_app", async (t) => {
    const gw = await startGateway(t);
    // inngest@3's client reads the signing key only from INNGEST_SIGNING_KEY (a
    // `signingKey` constructor option is ignored); INNGEST_BASE_URL is for the WebSocket URL.
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: gw.key });
    const { Inngest } = await v3();
    const { getSubscriptionToken, subscribe, channel, topic } = await rt047();
    const app = new Inngest({ id: "interop-v3", baseUrl: `${gw.url}/` });
    assert(app["inngestApi"].hashedKey && app["inngestApi"].hashedKey !== gw.key, "v3 client hashes the key");
    const userChannel = channel((id) => `user:${id}`).addTopic(topic("ai")).addTopic(topic("status"));
    const tok = await getSubscriptionToken(app, { channel: userChannel("42"), topics: ["ai"] });
    assert(typeof tok.key === "string" && tok.key.length > 20, "token key");
    eq(tok.channel, "user:42", "token channel");
    const col = collector("0.4.7+v3");
    const stream = await subscribe({ ...tok, app }, (m) => col.push(m));
    t.cleanup(() => stream.cancel().catch(() => {}));
    // Publish through the v3 API the 0.4.7 middleware uses (hashed key, run_id).
    const pub = (d, runId) => app["inngestApi"].publish({ channel: "user:42", topics: ["ai"], runId }, d)
      .then((res) => { if (!res.ok) throw new Error(`v3 publish failed: ${JSON.stringify(res.error)}`); });
    await warmUp((d) => pub(d), [col]);
    await pub({ step: "one" }, "run-v3-1");
    await pub("two as string", "run-v3-1");
    await col.waitFor((m) => real(m).length >= 2, 10000, "2 events");
    const got = real(col.msgs);
    eq(got.map((m) => [m.channel, m.topic, m.data, m.runId]),
      [["user:42", "ai", { step: "one" }, "run-v3-1"], ["user:42", "ai", "two as string", "run-v3-1"]], "events");
  });

  // ---- 6. streams reach official subscribers as data, and do not crash them --

defcase("streams_official_subscribers_survive", async (t) => {
    const gw = await startGateway(t);
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: gw.key });
    let crashed = null;
    process.on("uncaughtException", (e) => { crashed = e; });
    const { Inngest } = await v4();
    const { realtime, subscribe: sub4 } = await v4rt();
    const { subscribe: sub047 } = await rt047();
    const inngest = new Inngest({ id: "streams", baseUrl: `${gw.url}/`, signingKey: gw.key });
    const ch = realtime.channel({ name: "user:42", topics: { ai: {} } });

    const col4 = collector("v4");
    const s4 = await sub4({ ...(await inngest.realtime.token({ channel: ch, topics: ["ai"] })), onMessage: (m) => col4.push(m) });
    t.cleanup(() => s4.close());
    const col047 = collector("0.4.7");
    const s047 = await sub047({ channel: "user:42", topics: ["ai"] }, (m) => col047.push(m));
    t.cleanup(() => s047.cancel().catch(() => {}));
    const raw = await rawWs(`${gw.ws}/v1/realtime/connect?token=${await mint(gw, [{ channel: "user:42", name: "ai", kind: "run" }])}`, ["rtgw.v1"]);
    t.cleanup(() => raw.ws.close());
    eq(raw.ws.protocol, "rtgw.v1", "raw client negotiated rtgw.v1");
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col4, col047, raw.col]);

    // The worker: the official v4 publisher with a ReadableStream body
    // (Content-Type: text/stream, chunked, duplex half), pieces written over time.
    const pieces = ["Hello", ", wor", "ld! ", "héllo ", "✓ ", "x".repeat(3000), " end"];
    const body = pieces.join("");
    const enc = new TextEncoder();
    const rs = new ReadableStream({
      async start(c) {
        for (const p of pieces) { c.enqueue(enc.encode(p)); await sleep(20); }
        c.close();
      },
    });
    await inngest.realtime.publish(ch.ai, rs);
    // Data frames after the stream still arrive at everyone.
    await inngest.realtime.publish(ch.ai, { after: "stream" });

    await raw.col.waitFor((m) => m.some((x) => x.kind === "data" && x.data?.after), 10000, "post-stream event (raw)");
    await col4.waitFor((m) => m.some((x) => x.data?.after), 10000, "post-stream event (v4)");
    await col047.waitFor((m) => m.some((x) => x.data?.after), 10000, "post-stream event (0.4.7)");
    await sleep(200);
    assert(!crashed, `process survived the stream (uncaught: ${crashed && crashed.stack})`);
    // Official clients saw the stream in its plain form: each chunk a data message of
    // the topic, in order, their texts making the body (no datastream-start, which they
    // cannot handle, docs/protocol.md "Streams to official clients"), then the event.
    for (const [name, c] of [["v4", col4], ["0.4.7", col047]]) {
      const got = real(c.msgs);
      assert(got.length >= 2, `${name} events: ${JSON.stringify(got)}`);
      assert(got.every((m) => m.kind === "data" && m.channel === "user:42" && m.topic === "ai"), `${name} kinds: ${JSON.stringify(got)}`);
      eq(got[got.length - 1].data, { after: "stream" }, `${name} last event`);
      eq(got.slice(0, -1).map((m) => m.data).join(""), body, `${name} chunks make the body`);
    }

    // The opted-in client got the whole stream, framed.
    const frames = raw.col.msgs.filter((m) => ["datastream-start", "chunk", "datastream-end"].includes(m.kind));
    assert(frames.length >= 3, `stream frames: ${JSON.stringify(raw.col.msgs)}`);
    const start = frames[0], end = frames[frames.length - 1];
    eq(start.kind, "datastream-start", "first stream frame");
    eq(end.kind, "datastream-end", "last stream frame");
    const sid = start.stream_id;
    assert(typeof sid === "string" && sid.length > 0 && !sid.includes(":"), `stream_id ${sid}`);
    eq(start.data, sid, "start data = stream id");
    eq(end.data, sid, "end data = stream id");
    const chunks = frames.slice(1, -1);
    assert(chunks.length >= 1, "at least one chunk");
    for (const f of frames) {
      eq(f.channel, "user:42", `${f.kind} channel`);
      eq(f.topic, "ai", `${f.kind} topic`);
      eq(f.stream_id, sid, `${f.kind} stream_id`);
    }
    for (const c of chunks) eq(c.kind, "chunk", "middle frames are chunks");
    eq(chunks.map((c) => c.data).join(""), body, "concatenated chunks equal the body");
    const realRaw = raw.col.msgs.filter((m) => m.kind === "data" && !isWarm(m));
    eq(realRaw.map((m) => m.data), [{ after: "stream" }], "raw data frames");
  });

  // ---- 7. channel scoping enforced by the server ------------------------------

defcase("rt047_channel_scoping", async (t) => {
    const gw = await startGateway(t);
    setEnv({ INNGEST_BASE_URL: `${gw.url}/`, INNGEST_SIGNING_KEY: gw.key });
    const { subscribe } = await rt047();
    const col = collector("0.4.7 user:42");
    const stream = await subscribe({ channel: "user:42", topics: ["ai"] }, (m) => col.push(m));
    t.cleanup(() => stream.cancel().catch(() => {}));
    await warmUp((d) => publish(gw, "user:42", "ai", d), [col]);
    eq((await publish(gw, "user:43", "ai", { secret: "for 43" })).status, 200, "publish 43");
    eq((await publish(gw, "user:4", "ai", { secret: "for 4" })).status, 200, "publish 4");
    eq((await publish(gw, "user:420", "ai", { secret: "for 420" })).status, 200, "publish 420");
    eq((await publish(gw, "user:42", "other", { secret: "other topic" })).status, 200, "publish other topic");
    eq((await publish(gw, "user:42", "ai", { mine: true })).status, 200, "publish 42");
    await col.waitFor((m) => real(m).length >= 1, 10000, "own event");
    await sleep(300);
    eq(real(col.msgs).map((m) => [m.channel, m.data]), [["user:42", { mine: true }]], "only user:42 events");
  });

  // ---- 8. dev mode, zero config -----------------------------------------------

defcase("v4_dev_zero_config", async (t) => {
    const gw = await startGateway(t, { dev: true, key: "" });
    const devUrl = `http://127.0.0.1:${gw.port}`;
    eq(await (await fetch(`${devUrl}/dev`)).json(), {}, "GET /dev");
    setEnv({ INNGEST_DEV: devUrl }); // no signing key, no base URL
    const { Inngest } = await v4();
    const { realtime, subscribe } = await v4rt();
    const inngest = new Inngest({ id: "dev-app" });
    eq(inngest.apiBaseUrl, `${devUrl}/`, "v4 resolves the dev URL");
    const ch = realtime.channel({ name: "user:1", topics: { ai: {} } });
    const tok = await inngest.realtime.token({ channel: ch, topics: ["ai"] });
    const col = collector("v4 dev");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col]);
    await inngest.realtime.publish(ch.ai, { dev: 1 });
    await col.waitFor((m) => real(m).length >= 1, 10000, "1 event");
    eq(real(col.msgs).map((m) => [m.channel, m.topic, m.data]), [["user:1", "ai", { dev: 1 }]], "dev events");

    // INNGEST_DEV=1 + INNGEST_BASE_URL also works.
    setEnv({ INNGEST_DEV: "1", INNGEST_BASE_URL: devUrl });
    const inngest2 = new Inngest({ id: "dev-app-2" });
    const tok2 = await inngest2.realtime.token({ channel: ch, topics: ["ai"] });
    const col2 = collector("v4 dev 2");
    const sub2 = await subscribe({ ...tok2, onMessage: (m) => col2.push(m) });
    t.cleanup(() => sub2.close());
    await warmUp((d) => inngest2.realtime.publish(ch.ai, d), [col2]);
    await inngest2.realtime.publish(ch.ai, { dev: 2 });
    await col2.waitFor((m) => real(m).some((x) => x.data?.dev === 2), 10000, "dev 2 event");

    // 0.4.7 with no key at all (no Authorization header) in dev.
    setEnv({ INNGEST_DEV: devUrl });
    const { subscribe: sub047 } = await rt047();
    const col3 = collector("0.4.7 dev");
    const s3 = await sub047({ channel: "user:1", topics: ["ai"] }, (m) => col3.push(m));
    t.cleanup(() => s3.cancel().catch(() => {}));
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col3]);
    await inngest.realtime.publish(ch.ai, { dev: 3 });
    await col3.waitFor((m) => real(m).some((x) => x.data?.dev === 3), 10000, "dev 3 event");
  });

  // ---- 8b. issue 15: exact payloads, env_id, dev mode with any key, tee --------

defcase("v4_exact_json_bytes", async (t) => {
    const gw = await startGateway(t);
    setEnv({});
    const { TRICKY_JSON } = await import("../lib/jsondocs.mjs");
    const { Inngest } = await v4();
    const { realtime, subscribe } = await v4rt();
    const inngest = new Inngest({ id: "interop-bytes", baseUrl: `${gw.url}/`, signingKey: gw.key });
    const ch = realtime.channel({ name: "bytes", topics: { t: {} } });
    const tok = await inngest.realtime.token({ channel: ch, topics: ["t"] });
    const col = collector("v4 bytes");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp((d) => inngest.realtime.publish(ch.t, d), [col]);
    // Raw bodies (what another SDK or curl sends), then values the v4 SDK serialises
    // itself: JSON.stringify writes 2**64 as an integer beyond int64, "\0" as \u0000.
    for (const d of TRICKY_JSON) eq((await publish(gw, "bytes", "t", d.body)).status, 200, `publish ${d.name}`);
    const values = [{ big: 2 ** 64, neg: -(2 ** 70) }, "a\u0000b", 0.1, 1e21, [1e-7, -0], "é😀 <>&\n", { deep: [[[[{ x: 0.3 }]]]] }];
    for (const v of values) await inngest.realtime.publish(ch.t, v);
    const want = [...TRICKY_JSON.map((d) => JSON.parse(d.body)), ...values];
    await col.waitFor((m) => real(m).length >= want.length, 10000, `${want.length} events`);
    real(col.msgs).forEach((m, i) => {
      const what = i < TRICKY_JSON.length ? TRICKY_JSON[i].name : JSON.stringify(values[i - TRICKY_JSON.length]);
      eq(typeof m.data, typeof want[i], `${what}: type (a JSON body must not arrive as a string)`);
      eq(m.data, want[i], what);
    });
  });

defcase("v4_env_id_and_extra_fields", async (t) => {
    const gw = await startGateway(t);
    setEnv({});
    const { Inngest } = await v4();
    const { realtime, subscribe } = await v4rt();
    const inngest = new Inngest({ id: "interop-env", baseUrl: `${gw.url}/`, signingKey: gw.key });
    const ch = realtime.channel({ name: "run:env", topics: { t: {} } });
    const tok = await inngest.realtime.token({ channel: ch, topics: ["t"] });
    const col = collector("v4 env");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp((d) => inngest.realtime.publish(ch.t, d), [col]);
    await inngest.realtime.publish(ch.t, { from: "sdk" });
    const meta = encodeURIComponent(JSON.stringify({ "content-type": "text/plain" }));
    const r = await publish(gw, "run:env", "t", { from: "http" },
      { query: `&metadata=${meta}&fn_slug=app-fn&fn_id=fn-1&run_id=01HRUN000000000000000000` });
    eq(r.status, 200, "publish with metadata and fn_slug");
    await col.waitFor((m) => real(m).length >= 2, 10000, "2 events");
    const [a, b] = real(col.msgs);
    // env_id reaches the client as envId: the publisher's environment (its key's <env>).
    eq([a.envId, b.envId], ["test", "test"], "envId");
    eq(b.data, { from: "http" }, "a frame with metadata and fn_slug still arrives");
    eq([b.fnId, b.runId], ["fn-1", "01HRUN000000000000000000"], "fnId, runId");
    // This client's schema has no metadata or fn_slug: it strips them (as from Inngest's frames).
    assert(!("metadata" in b) && !("fnSlug" in b) && !("fn_slug" in b), `stripped: ${JSON.stringify(b)}`);
  });

defcase("v4_dev_mode_foreign_signing_key", async (t) => {
    const gw = await startGateway(t, { dev: true, key: "" });
    const devUrl = `http://127.0.0.1:${gw.port}`;
    const leftover = keygen("prod");
    // An app with a leftover production key, pointed at the dev gateway.
    setEnv({ INNGEST_DEV: "1", INNGEST_BASE_URL: devUrl, INNGEST_SIGNING_KEY: leftover });
    const { Inngest } = await v4();
    const { realtime, subscribe } = await v4rt();
    const inngest = new Inngest({ id: "dev-leftover-key" });
    const ch = realtime.channel({ name: "user:1", topics: { ai: {} } });
    const tok = await inngest.realtime.token({ channel: ch, topics: ["ai"] });
    const col = collector("v4 dev leftover");
    const sub = await subscribe({ ...tok, onMessage: (m) => col.push(m) });
    t.cleanup(() => sub.close());
    await warmUp((d) => inngest.realtime.publish(ch.ai, d), [col]);
    await inngest.realtime.publish(ch.ai, { leftover: true });
    await col.waitFor((m) => real(m).some((x) => x.data?.leftover), 10000, "the event");
    assert(/key_env=prod/.test(gw.logs()), "the gateway names the key's env once");
    assert(!gw.logs().includes(leftover.slice(-24)), "never the key itself");
  });

defcase("v4_tee_read_by_fetch_with_stream", async (t) => {
    const gw = await startGateway(t);
    setEnv({});
    const http = await import("node:http");
    const { Inngest } = await v4();
    const { fetchWithStream } = await import("inngest/experimental/durable-endpoints/client");
    const inngest = new Inngest({ id: "interop-tee", baseUrl: `${gw.url}/`, signingKey: gw.key });
    const runId = "01TEERUN0000000000000000";
    const jwt = await mint(gw, [{ channel: runId, name: "$stream", kind: "run" }]);
    // A stand-in durable endpoint: it answers with its run id and the redirect to
    // rtgw's SSE (what an endpoint sends when it goes async), then ends.
    const de = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      res.end(`event: inngest.metadata\ndata: ${JSON.stringify({ runId })}\n\n` +
        `event: inngest.redirect_info\ndata: ${JSON.stringify({ runId, url: `${gw.url}/v1/realtime/sse?token=${jwt}` })}\n\n`);
    });
    await new Promise((r) => de.listen(0, "127.0.0.1", r));
    t.cleanup(() => new Promise((r) => { de.closeAllConnections(); de.close(() => r()); }));
    const data = [], meta = [];
    const done = fetchWithStream(`http://127.0.0.1:${de.address().port}/api/de`,
      { onData: ({ data: d }) => data.push(d), onMetadata: ({ runId: id }) => meta.push(id) });
    // The client follows the redirect; tee once its SSE subscription is live.
    for (let i = 0; ; i++) {
      const h = await (await fetch(`${gw.url}/health`)).json();
      if (h.subscriptions >= 1) break;
      if (i > 200) throw new Error("the client never subscribed to the redirect URL");
      await sleep(25);
    }
    const events = [
      ["inngest.stream", { data: "tok 1" }], ["inngest.stream", { data: { n: 0.1, big: 123456789012345678901234567890 } }],
      ["inngest.commit", { hashedStepId: null }],
      ["inngest.response", { status: "succeeded", response: { body: "done", headers: {}, statusCode: 200 } }],
    ];
    const enc = new TextEncoder();
    const body = new ReadableStream({
      async start(c) {
        for (const [ev, d] of events) { c.enqueue(enc.encode(`event: ${ev}\ndata: ${JSON.stringify(d)}\n\n`)); await sleep(20); }
        c.close();
      },
    });
    await inngest.inngestApi.checkpointStream({ runId, body }); // the SDK's own tee call
    const res = await done;
    eq(await res.text(), "done", "the response the endpoint streamed");
    eq(meta, [runId], "metadata");
    eq(data, ["tok 1", { n: 0.1, big: 123456789012345678901234567890 }], "stream data, through publish/tee");
  });

  // ---- 9. the migration example in examples/official-inngest-client -----------

defcase("example_official_client", async (t) => {
    const gw = await startGateway(t);
    const src = path.resolve(here, "../../examples/official-inngest-client/index.mjs");
    // Run the example unmodified, but resolving packages from tests/node_modules.
    const dir = tmpDir(t, "rtgw-example-");
    fs.copyFileSync(src, path.join(dir, "index.mjs"));
    fs.symlinkSync(nm, path.join(dir, "node_modules"));
    const env = { PATH: process.env.PATH, RTGW_URL: gw.url, INNGEST_SIGNING_KEY: gw.key };
    // Plain `node index.mjs`, exactly as the README says (the example handles Node 20 itself).
    const child = spawn(process.execPath, ["index.mjs"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    t.cleanup(() => { if (child.exitCode === null) child.kill("SIGKILL"); });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`example did not finish in 30 s\nstdout:\n${out}\nstderr:\n${err}`)), 30000);
      child.on("exit", (c) => { clearTimeout(timer); resolve(c); });
    });
    if (code !== 0) throw new Error(`example exited ${code}\nstdout:\n${out}\nstderr:\n${err}`);
    const lines = out.trim().split("\n");
    const got = lines.filter((l) => l.startsWith("received ")).map((l) => l.slice(9));
    eq(got, [
      'user:42 status {"state":"started"}',
      'user:42 ai "Hello"',
      'user:42 ai " from rtgw"',
      'user:42 status {"state":"done","tokens":2}',
    ], "example output");
    assert(lines.includes("ok: 4 messages"), `final line: ${out}`);
  });

  // A stand-in for the Inngest API, for the two-client case: the Inngest dev server
  // is a Go binary this machine does not have. It does only what the example needs,
  // the way the dev server does it: POST /fn/register (a sync) records the
  // functions and their URLs; POST /e/<key> accepts events and runs each matching
  // function by calling the app's serve handler with the executor's request
  // (step results are fed back until the run returns 200 or a RunComplete op).
  // Anything else gets 404 and is recorded too. Everything else in the case is real.
  async function standInInngest(t) {
    const http = await import("node:http");
    const seen = [], fns = [], runs = [], errors = [];
    const runFn = async (f, ev) => {
      const runId = `01TWOCLIENT${String(runs.length).padStart(15, "0")}`;
      const run = { fn: f.id, runId, calls: 0, result: undefined };
      runs.push(run);
      const steps = {};
      for (; run.calls < 20; run.calls++) {
        const ids = Object.keys(steps);
        const r = await fetch(f.url, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ version: 2, event: ev, events: [ev], steps,
            ctx: { run_id: runId, fn_id: f.id, attempt: 0, stack: { stack: ids, current: ids.length } } }),
        });
        const body = await r.json();
        if (r.status === 200) { run.result = body; return; }
        if (r.status !== 206) throw new Error(`run ${runId}: ${r.status} ${JSON.stringify(body)}`);
        const complete = body.find((op) => op.op === "RunComplete"); // how the v4 SDK returns
        if (complete) { run.result = complete.data; return; }
        for (const op of body) steps[op.id] = { type: "data", data: op.data ?? null };
      }
      throw new Error(`run ${runId} did not finish`);
    };
    const server = http.createServer(async (req, res) => {
      let text = "";
      for await (const d of req) text += d;
      const u = new URL(req.url, "http://x");
      seen.push(`${req.method} ${u.pathname}`);
      const reply = (st, o) => { res.writeHead(st, { "Content-Type": "application/json" }); res.end(JSON.stringify(o)); };
      if (req.method === "POST" && u.pathname === "/fn/register") {
        for (const f of JSON.parse(text).functions) {
          fns.push({ id: f.id, event: f.triggers[0].event, url: f.steps.step.runtime.url });
        }
        return reply(200, { ok: true, modified: true });
      }
      if (req.method === "POST" && u.pathname.startsWith("/e/")) {
        const evs = [].concat(JSON.parse(text));
        reply(200, { ids: evs.map((_, i) => `ev-${seen.length}-${i}`), status: 200 });
        for (const ev of evs) for (const f of fns.filter((x) => x.event === ev.name)) runFn(f, ev).catch((e) => errors.push(e));
        return;
      }
      reply(404, { error: "not served by the stand-in" });
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    t.cleanup(() => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }));
    return { url: `http://127.0.0.1:${server.address().port}`, seen, fns, runs, errors };
  }

  // ---- 10. two clients: functions on Inngest, realtime on rtgw ----------------

defcase("example_two_clients", async (t) => {
    // examples/official-inngest-client/two-clients.mjs, unmodified: the app's client talks
    // to "Inngest" (the stand-in above, via INNGEST_DEV), the realtime client to rtgw.
    const gw = await startGateway(t);
    const inn = await standInInngest(t);
    const src = path.resolve(here, "../../examples/official-inngest-client/two-clients.mjs");
    const dir = tmpDir(t, "rtgw-example-");
    fs.copyFileSync(src, path.join(dir, "two-clients.mjs"));
    fs.symlinkSync(nm, path.join(dir, "node_modules"));
    const env = { PATH: process.env.PATH, RTGW_URL: gw.url, RTGW_SIGNING_KEY: gw.key, INNGEST_DEV: inn.url, APP_PORT: "0" };
    const child = spawn(process.execPath, ["two-clients.mjs"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    t.cleanup(() => { if (child.exitCode === null) child.kill("SIGKILL"); });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`example did not finish in 40 s\nstdout:\n${out}\nstderr:\n${err}\nInngest saw: ${inn.seen.join(", ")}`)), 40000);
      child.on("exit", (c) => { clearTimeout(timer); resolve(c); });
    });
    if (code !== 0) throw new Error(`example exited ${code}\nstdout:\n${out}\nstderr:\n${err}\nInngest saw: ${inn.seen.join(", ")} ${inn.errors.join("; ")}`);
    const got = out.trim().split("\n").filter((l) => l.startsWith("received ")).map((l) => l.slice(9));
    eq(got, [
      'user:42 status {"state":"started"} run=yes',
      'user:42 ai "Hello" run=yes',
      'user:42 ai " from" run=yes',
      'user:42 ai " rtgw" run=yes',
      'user:42 status {"state":"done","text":"Hello from rtgw"} run=yes',
    ], "what the function published, through rtgw, with its run id");
    // Inngest got the sync and the event, and ran the function to its end; it never saw
    // a realtime request. rtgw got the token and the five publishes.
    eq(inn.errors.map(String), [], "runs without errors");
    eq(inn.fns.map((f) => f.id), ["two-client-app-generate"], "the function was registered with Inngest");
    assert(inn.seen.includes("POST /fn/register") && inn.seen.some((s) => s.startsWith("POST /e/")), `Inngest saw ${inn.seen}`);
    assert(!inn.seen.some((s) => s.includes("/realtime")), `no realtime request reached Inngest: ${inn.seen}`);
    eq(inn.runs.length, 1, "one run");
    eq(inn.runs[0].result, { text: "Hello from rtgw" }, "the run's result");
    eq(await metric(gw, "rtgw_tokens_minted_total"), 1, "rtgw minted the token");
    eq(await metric(gw, "rtgw_publish_requests_total"), 5, "rtgw got the five publishes");
  });

  await run();
}
