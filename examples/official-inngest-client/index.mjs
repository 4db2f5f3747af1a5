// Migrating from Inngest Cloud realtime to rtgw with the official `inngest` v4 client.
//
//   RTGW_URL=http://127.0.0.1:8288 INNGEST_SIGNING_KEY=signkey-test-… node index.mjs
//
// Nothing here is rtgw-specific except the base URL: the same code talks to Inngest
// Cloud when baseUrl is left out. It plays all three roles in one process:
//   backend  mints a subscription token for user 42 (inngest.realtime.token)
//   browser  subscribes with that token            (subscribe from inngest/realtime)
//   worker   publishes progress events              (inngest.realtime.publish)
// and prints every message it receives, then "ok: N messages".

// The client needs a global WebSocket: Node >= 22 has one; Node 20 only with
// --experimental-websocket, so re-run ourselves with that flag when it is missing.
if (typeof globalThis.WebSocket === "undefined") {
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  if (process.env.RTGW_EXAMPLE_REEXEC) {
    console.error("this Node.js has no WebSocket; use Node >= 22 (or >= 20.10 with --experimental-websocket)");
    process.exit(1);
  }
  const r = spawnSync(process.execPath,
    ["--experimental-websocket", "--no-warnings=ExperimentalWarning", fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit", env: { ...process.env, RTGW_EXAMPLE_REEXEC: "1" } });
  process.exit(r.status ?? 1);
}

const { Inngest } = await import("inngest");
const { realtime, subscribe } = await import("inngest/realtime");

const RTGW_URL = process.env.RTGW_URL || "http://127.0.0.1:8288";
if (!process.env.INNGEST_SIGNING_KEY && !process.env.INNGEST_DEV) {
  console.error("set INNGEST_SIGNING_KEY to rtgw's RTGW_SIGNING_KEY (or INNGEST_DEV=1 against `rtgw serve --dev`)");
  process.exit(2);
}

// The only change from Inngest Cloud: baseUrl (or INNGEST_BASE_URL) points at rtgw.
// rtgw must be served at the root of that origin: the client resolves /v1/realtime/…
// against it, dropping any path prefix. The signing key comes from INNGEST_SIGNING_KEY.
const inngest = new Inngest({ id: "my-app", baseUrl: new URL("/", RTGW_URL).href });

// One channel per user, with typed-by-convention topics.
const userChannel = realtime.channel({
  name: (userId) => `user:${userId}`,
  topics: { ai: {}, status: {} },
});
const ch = userChannel("42");

// backend: mint a token for user 42 (POST /v1/realtime/token, hashed signing key).
// In a web app you would return { key, apiBaseUrl } of this object to the browser.
const token = await inngest.realtime.token({ channel: ch, topics: ["ai", "status"] });

// browser: subscribe with the token (WebSocket /v1/realtime/connect?token=…).
const expected = 4;
let count = 0;
let done;
const finished = new Promise((r) => (done = r));
const sub = await subscribe({
  ...token,
  onMessage: (msg) => {
    console.log(`received ${msg.channel} ${msg.topic} ${JSON.stringify(msg.data)}`);
    if (++count === expected) done();
  },
  onError: (err) => console.error("subscription error:", err),
});

// subscribe() resolves when the socket opens; give the gateway a moment to attach
// the subscription before the worker starts publishing (a real app subscribes long
// before anything is published, and can use rtgw's resume extension to close the gap).
await new Promise((r) => setTimeout(r, 250));

// worker: publish (POST /v1/realtime/publish, hashed signing key). Inside an Inngest
// function the run id is attached automatically; here we publish directly.
await inngest.realtime.publish(ch.status, { state: "started" });
await inngest.realtime.publish(ch.ai, "Hello");
await inngest.realtime.publish(ch.ai, " from rtgw");
await inngest.realtime.publish(ch.status, { state: "done", tokens: 2 });

const timeout = setTimeout(() => {
  console.error(`timed out: received ${count}/${expected} messages`);
  process.exit(1);
}, 10000);
await finished;
clearTimeout(timeout);
sub.close();
console.log(`ok: ${count} messages`);
process.exit(0);
