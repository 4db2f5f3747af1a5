// An app that runs Inngest functions on Inngest (Cloud, or the Inngest dev server)
// and uses rtgw for realtime: TWO instances of the official `inngest` v4 client.
//
//   INNGEST_DEV=1 (or INNGEST_DEV=http://127.0.0.1:8288; on Cloud: INNGEST_SIGNING_KEY,
//   INNGEST_EVENT_KEY) RTGW_URL=http://127.0.0.1:8289 RTGW_SIGNING_KEY=signkey-… \
//   node two-clients.mjs
//
// Why two: `baseUrl` / INNGEST_BASE_URL moves EVERYTHING a client sends (function
// registration, event sends, checkpoints, step results) — rtgw serves only
// /v1/realtime/*. So the app's client stays pointed at Inngest, and a second client,
// used for nothing but realtime.token() and realtime.publish(), points at rtgw.
//
// It plays every role in one process: it serves its function on APP_PORT (default
// 3000; /api/inngest), syncs it with Inngest (a PUT on its own endpoint, as
// `curl -X PUT …/api/inngest` does), mints a token for user 42 with the realtime
// client, subscribes with it, sends the event that starts the run, and prints every
// realtime message the function publishes, then "ok: N messages".

// The realtime subscriber needs a global WebSocket: Node >= 22 has one; Node 20 only
// with --experimental-websocket, so re-run ourselves with that flag when it is missing.
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

const http = await import("node:http");
const { Inngest } = await import("inngest");
const { serve } = await import("inngest/node");
const { realtime, subscribe } = await import("inngest/realtime");

const { RTGW_URL, RTGW_SIGNING_KEY } = process.env;
if (!RTGW_URL || !RTGW_SIGNING_KEY) {
  console.error("set RTGW_URL and RTGW_SIGNING_KEY (rtgw's key); Inngest itself is configured as usual (INNGEST_DEV, INNGEST_SIGNING_KEY, …)");
  process.exit(2);
}

// 1. The app's client: functions, events, checkpoints go to Inngest, configured the
//    usual way (INNGEST_DEV / INNGEST_BASE_URL / INNGEST_SIGNING_KEY / INNGEST_EVENT_KEY).
const inngest = new Inngest({ id: "two-client-app" });

// 2. The realtime client: only realtime.token() and realtime.publish(), to rtgw. Its
//    key is rtgw's (never sent to Inngest), isDev:false so that INNGEST_DEV, meant for
//    the app's client, does not make it send no key, and baseUrl is rtgw's origin.
const rt = new Inngest({
  id: "two-client-app-realtime",
  baseUrl: new URL("/", RTGW_URL).href,
  signingKey: RTGW_SIGNING_KEY,
  isDev: false,
});

const userChannel = realtime.channel({
  name: (userId) => `user:${userId}`,
  topics: { ai: {}, status: {} },
});

// The function runs on Inngest's schedule and publishes with the REALTIME client.
// Each publish sits in a step, so a retried or resumed run does not publish twice
// (step.realtime.publish would do that too, but it publishes through the function's
// own client, that is to Inngest). Inside a run the client adds the run id itself.
const generate = inngest.createFunction(
  { id: "generate", triggers: [{ event: "app/generate" }] },
  async ({ event, step }) => {
    const ch = userChannel(event.data.userId);
    await step.run("started", () => rt.realtime.publish(ch.status, { state: "started" }));
    const text = await step.run("generate", async () => {
      const tokens = ["Hello", " from", " rtgw"];
      for (const tok of tokens) await rt.realtime.publish(ch.ai, tok);
      return tokens.join("");
    });
    await step.run("done", () => rt.realtime.publish(ch.status, { state: "done", text }));
    return { text };
  },
);

// Serve the function to Inngest, and sync it (Inngest then knows where to call it).
const port = Number(process.env.APP_PORT || 3000);
const server = http.createServer(serve({ client: inngest, functions: [generate] }));
await new Promise((r) => server.listen(port, "127.0.0.1", r));
const appUrl = `http://127.0.0.1:${server.address().port}/api/inngest`;
const sync = await fetch(appUrl, { method: "PUT" });
if (!sync.ok) {
  console.error(`syncing with Inngest failed: ${sync.status} ${await sync.text()}`);
  process.exit(1);
}

// Backend: a token for user 42 from rtgw, minted with the realtime client. A web app
// returns { key, apiBaseUrl } of it to the browser, which subscribes with it.
const token = await rt.realtime.token({ channel: userChannel("42"), topics: ["ai", "status"] });
const expected = 5;
let count = 0;
let done;
const finished = new Promise((r) => (done = r));
const sub = await subscribe({
  ...token,
  onMessage: (msg) => {
    console.log(`received ${msg.channel} ${msg.topic} ${JSON.stringify(msg.data)} run=${msg.runId ? "yes" : "no"}`);
    if (++count === expected) done();
  },
  onError: (err) => console.error("subscription error:", err),
});
await new Promise((r) => setTimeout(r, 250)); // let rtgw attach the subscription

// Start a run: the event goes to Inngest with the app's client.
await inngest.send({ name: "app/generate", data: { userId: "42" } });

const timeout = setTimeout(() => {
  console.error(`timed out: received ${count}/${expected} messages`);
  process.exit(1);
}, 20000);
await finished;
clearTimeout(timeout);
sub.close();
// A real app keeps serving; this one gives Inngest a moment to make its last call
// (the run's return value, after the last step) before it stops.
await new Promise((r) => setTimeout(r, 1000));
server.close();
console.log(`ok: ${count} messages`);
process.exit(0);
