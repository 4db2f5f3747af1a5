// The OFFICIAL `inngest` client (tests/node_modules, the pinned 4.x) in headless
// Chromium against a real rtgw: its unmodified browser build is served by web.mjs
// (import map; `debug` wrapped as ESM), and its `subscribe()` from `inngest/realtime`
// runs in the page. The producer is the official client too: Node's
// `inngest.realtime.publish(topic, ReadableStream)` (Content-Type: text/stream).
// `useRealtime` (inngest/react) runs in a React 19 root (react, react-dom from
// tests/node_modules, linked as ES modules by web.mjs).
import assert from "node:assert/strict";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint } from "../lib/gateway.mjs";
import { topic as T } from "../lib/http.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { launch, startWeb } from "./web.mjs";

requireNodeModules("inngest", "zod", "debug", "ms", "ws");

async function officialPage(t, gw, topics) {
  const web = await startWeb(t, { gateway: gw.port });
  const b = await launch(t);
  await b.page.goto(`${web.origin}/official.html`);
  await b.page.waitForFunction(() => document.getElementById("state").textContent === "ready");
  const key = await mint(gw, topics.map((n) => T("user:42", n)), { ttl: 600 });
  await b.page.evaluate((o) => window.start(o), { key, apiBaseUrl: `${web.origin}/`, channel: "user:42", topics });
  return b;
}

const pageMsgs = (b) => b.page.evaluate(() => window.__msgs);
const pageText = (b) => b.page.evaluate(() => document.getElementById("out").textContent);

// The official Node client, publishing through the gateway (realtime only).
async function officialPublisher(gw) {
  const { Inngest } = await import("inngest");
  const { realtime } = await import("inngest/realtime");
  const inngest = new Inngest({ id: "browser-stream", baseUrl: `${gw.url}/`, signingKey: gw.key });
  return { inngest, ch: realtime.channel({ name: "user:42", topics: { ai: {} } }) };
}

// Wait until the page's subscription is live: publish markers until one shows.
async function warm(b, inngest, topicRef) {
  await waitFor(async () => {
    await inngest.realtime.publish(topicRef, { warm: true });
    await sleep(100);
    return (await pageMsgs(b)).some((m) => m.data && m.data.warm);
  }, 10000, "the page's subscription");
}

defcase("official_subscribe_shows_stream", async (t) => {
  const gw = await startGateway(t);
  const b = await officialPage(t, gw, ["ai"]);
  const { inngest, ch } = await officialPublisher(gw);
  await warm(b, inngest, ch.ai);
  // An AI-style token stream, written over time; the page must show the first piece
  // while the producer is still writing (it waits for it before going on). Node's fetch
  // sends a piece of a ReadableStream body once the next one is queued, so the wait
  // comes after the second piece.
  const pieces = ["Hel", "lo", ", wo", "rld — ", "héllo ✓ ", "x".repeat(2500), " end"];
  const enc = new TextEncoder();
  let shownEarly = null;
  const rs = new ReadableStream({
    async start(c) {
      for (const [i, p] of pieces.entries()) {
        c.enqueue(enc.encode(p));
        if (i === 1) {
          shownEarly = await waitFor(async () => ((await pageText(b)).startsWith("Hel") ? true : null), 5000,
            "the first piece in the page before the stream ends").catch((e) => e);
        } else {
          await sleep(30);
        }
      }
      c.close();
    },
  });
  const body = pieces.join("");
  await inngest.realtime.publish(ch.ai, rs);
  await inngest.realtime.publish(ch.ai, { after: "stream" });
  await waitFor(async () => (await pageMsgs(b)).some((m) => m.data && m.data.after), 10000, "the event after the stream");
  assert.equal(shownEarly, true, `streamed, not batched: ${shownEarly}`);
  assert.equal(await pageText(b), body, "the page shows the whole body, in order");
  const msgs = (await pageMsgs(b)).filter((m) => !(m.data && m.data.warm));
  assert.ok(msgs.every((m) => m.kind === "data" && m.channel === "user:42" && m.topic === "ai"), JSON.stringify(msgs.slice(0, 3)));
  assert.deepEqual(msgs.at(-1).data, { after: "stream" });
  assert.deepEqual(b.problems, [], "no uncaught page errors (a datastream-start would throw in the client)");
});

defcase("official_use_realtime_shows_stream", async (t) => {
  // useRealtime (inngest/react) in a React 19 root: the streamed body shows as the
  // producer writes it, in order, and the hook reports its connection.
  requireNodeModules("react", "react-dom", "scheduler");
  const gw = await startGateway(t);
  const web = await startWeb(t, { gateway: gw.port });
  const b = await launch(t);
  await b.page.goto(`${web.origin}/react.html`);
  await b.page.waitForFunction(() => document.getElementById("state").textContent === "ready");
  const key = await mint(gw, [T("user:42", "ai")], { ttl: 600 });
  await b.page.evaluate((o) => window.startReact(o), { key, apiBaseUrl: `${web.origin}/`, channel: "user:42", topics: ["ai"] });
  await b.page.waitForFunction(() => document.getElementById("react-status")?.textContent === "open", null, { timeout: 10000 });
  const { inngest, ch } = await officialPublisher(gw);
  const reactText = () => b.page.evaluate(() => document.getElementById("react-out").textContent);
  await waitFor(async () => {
    await inngest.realtime.publish(ch.ai, { warm: true });
    await sleep(100);
    return (await b.page.evaluate(() => window.__all || [])).some((m) => m.data && m.data.warm);
  }, 10000, "the hook's subscription");
  const pieces = ["Str", "eam", "ing ", "tokens ✓ ", "y".repeat(1500), " done"];
  const enc = new TextEncoder();
  let shownEarly = null;
  const rs = new ReadableStream({
    async start(c) {
      for (const [i, p] of pieces.entries()) {
        c.enqueue(enc.encode(p));
        if (i === 1) {
          shownEarly = await waitFor(async () => ((await reactText()).startsWith("Str") ? true : null), 5000,
            "the first piece rendered before the stream ends").catch((e) => e);
        } else {
          await sleep(30);
        }
      }
      c.close();
    },
  });
  await inngest.realtime.publish(ch.ai, rs);
  const body = pieces.join("");
  await waitFor(async () => ((await reactText()) === body ? true : null), 10000, "the whole body rendered");
  assert.equal(shownEarly, true, `streamed, not batched: ${shownEarly}`);
  const all = (await b.page.evaluate(() => window.__all)).filter((m) => !(m.data && m.data.warm));
  assert.ok(all.every((m) => m.kind === "data" && m.topic === "ai"), JSON.stringify(all.slice(0, 3)));
  assert.deepEqual(b.problems, []);
});

defcase("official_subscribe_stream_other_topic_hidden", async (t) => {
  // The plain form keeps the topic: a stream on a topic the page did not subscribe to
  // does not show, and neither does one on another channel.
  const gw = await startGateway(t);
  const b = await officialPage(t, gw, ["ai"]);
  const { Inngest } = await import("inngest");
  const { realtime } = await import("inngest/realtime");
  const inngest = new Inngest({ id: "browser-stream-2", baseUrl: `${gw.url}/`, signingKey: gw.key });
  const mine = realtime.channel({ name: "user:42", topics: { ai: {}, status: {} } });
  const other = realtime.channel({ name: "user:43", topics: { ai: {} } });
  await warm(b, inngest, mine.ai);
  const stream = (text) => new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } });
  await inngest.realtime.publish(mine.status, stream("not-subscribed-topic"));
  await inngest.realtime.publish(other.ai, stream("other-channel"));
  await inngest.realtime.publish(mine.ai, stream("mine"));
  await waitFor(async () => ((await pageText(b)) === "mine" ? true : null), 10000, "the subscribed stream");
  await sleep(200);
  assert.equal(await pageText(b), "mine");
  assert.deepEqual(b.problems, []);
});

defcase("official_client_datastream_start_bug", async (t) => {
  // Why rtgw never sends datastream-start to official clients: the client's own handler
  // throws on it. A stand-in server (npm ws, not rtgw) sends upstream's stream frames,
  // with channel and topic, to the official subscribe() in Chromium: the page gets an
  // uncaught ReferenceError (its ReadableStream start callback reads `stream` before
  // initialisation), the chunk is dropped (no stream registered), and a data frame
  // after it still shows.
  const { WebSocketServer } = await import("ws");
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.on("listening", r));
  t.cleanup(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
  const base = { channel: "user:42", topic: "ai", created_at: new Date().toISOString() };
  wss.on("connection", (ws) => {
    ws.send(JSON.stringify({ ...base, kind: "datastream-start", data: "s1", stream_id: "s1" }));
    ws.send(JSON.stringify({ ...base, kind: "chunk", data: "lost", stream_id: "s1" }));
    ws.send(JSON.stringify({ ...base, kind: "data", data: "shown" }));
  });
  const web = await startWeb(t);
  const b = await launch(t);
  await b.page.goto(`${web.origin}/official.html`);
  await b.page.waitForFunction(() => document.getElementById("state").textContent === "ready");
  await b.page.evaluate((o) => window.start(o), {
    key: "x.y.z", apiBaseUrl: `http://127.0.0.1:${wss.address().port}/`, channel: "user:42", topics: ["ai"],
  });
  await waitFor(async () => ((await pageText(b)) === "shown" ? true : null), 10000, "the data frame");
  await sleep(200);
  assert.deepEqual((await pageMsgs(b)).map((m) => [m.kind, m.data]), [["data", "shown"]]);
  assert.ok(b.problems.some((p) => /Cannot access 'stream' before initialization/.test(p)), JSON.stringify(b.problems));
});

await run();
