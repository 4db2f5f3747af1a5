// rtgw's own React hook (sdk/js/react.js, createUseRealtime) with real React 19
// (react, react-dom from tests/node_modules, development build, linked as ES
// modules by web.mjs) in headless Chromium, against a real `rtgw serve` behind the
// test web server (web.mjs: it proxies the gateway and can refuse WebSocket
// upgrades). Assertions read the DOM the component renders; what the gateway sees
// is read from its /metrics (rtgw_connections: open WebSocket + SSE connections;
// rtgw_connections_total: accepted since start) and its log.
// Tokens for getToken are minted in Node (sdk/js/node.js) and handed to the page
// through page.exposeFunction("rtgwToken").
import assert from "node:assert/strict";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway } from "../lib/gateway.mjs";
import { metrics, metric } from "../lib/http.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { launch, startWeb } from "./web.mjs";

requireNodeModules("react", "react-dom", "scheduler");
const { mintToken, publish } = await import("../../sdk/js/node.js");

// A gateway, the web server in front of it, and Chromium on /rtgw-react.html.
// ctl.ttl is the lifetime of the tokens rtgwToken mints; ctl.calls lists its channels.
async function reactPage(t, { env, refuseUpgrades = false } = {}) {
  const gw = await startGateway(t, { env });
  const web = await startWeb(t, { gateway: gw.port, refuseUpgrades });
  const b = await launch(t);
  // React's development build reports misuse (duplicate keys, updates in render) on console.error.
  b.page.on("console", (m) => {
    if (m.type() === "error" && !/WebSocket connection to|Failed to load resource/.test(m.text())) b.problems.push(`console: ${m.text()}`);
  });
  const ctl = { ttl: 600, calls: [] };
  await b.page.exposeFunction("rtgwToken", (channel) => {
    ctl.calls.push(channel);
    return mintToken({ signingKey: gw.key, channel, topics: ["*"], ttl: ctl.ttl });
  });
  await b.page.goto(`${web.origin}/rtgw-react.html`);
  await b.page.waitForFunction(() => document.getElementById("state").textContent === "ready");
  return { gw, web, b, ctl, page: b.page };
}

const token = (gw, channel = "user:1", ttl = 600) => mintToken({ signingKey: gw.key, channel, topics: ["*"], ttl });
const pub = (gw, data, channel = "user:1", topic = "ai") => publish({ baseUrl: gw.url, signingKey: gw.key, channel, topic, data });

const mount = (page, props, strict = true) => page.evaluate(([p, s]) => window.mount(p, { strict: s }), [props, strict]);
const update = (page, props) => page.evaluate((p) => window.update(p), props);

// What the component shows.
const dom = (page) => page.evaluate(() => ({
  status: document.getElementById("status")?.textContent,
  transport: document.getElementById("transport")?.textContent,
  error: document.getElementById("error")?.textContent,
  recovered: document.getElementById("recovered")?.textContent,
  items: [...document.querySelectorAll("#msgs li")].map((li) => ({ id: li.dataset.id, channel: li.dataset.channel, data: JSON.parse(li.textContent) })),
  ws: window.__ws.length,
  statuses: window.__statuses,
}));
const waitDom = (page, pred, ms, what) => waitFor(async () => { const d = await dom(page); return pred(d) && d; }, ms, what);
const shown = (d) => d.items.map((i) => i.data);

// The gateway's view: open connections now, and accepted since start.
async function conns(gw) {
  const m = await metrics(gw);
  return { open: metric(m, "rtgw_connections"), total: metric(m, "rtgw_connections_total") };
}
const waitConns = (gw, pred, ms, what) => waitFor(async () => { const c = await conns(gw); return pred(c) && c; }, ms, what);

function noProblems(b) {
  assert.deepEqual(b.problems, [], "no uncaught page error, no React warning");
}

defcase("react_events_in_order_once", async (t) => {
  // Events show as published: in order, each once, with the ids the gateway gave them.
  const { gw, b, page } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/" }, channel: "user:1", tokenFromPage: true });
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  const ids = [];
  for (let i = 1; i <= 20; i++) ids.push((await pub(gw, { n: i })).ids[0]);
  await pub(gw, { other: true }, "user:2"); // another channel: not this token's
  await waitDom(page, (d) => d.items.length >= 20, 10000, "twenty events");
  await sleep(500); // nothing more, nothing twice
  const d = await dom(page);
  assert.deepEqual(shown(d), Array.from({ length: 20 }, (_, i) => ({ n: i + 1 })));
  assert.deepEqual(d.items.map((i) => i.id), ids);
  assert.ok(d.items.every((i) => i.channel === "user:1"));
  assert.equal(d.error, "");
  assert.equal(d.recovered, "true");
  noProblems(b);
});

defcase("react_strict_mode_one_socket", async (t) => {
  // React 19 StrictMode (development) mounts, unmounts and mounts again every effect:
  // the gateway must see one connection, not two (nor one opened and dropped), and
  // re-renders with a fresh getToken closure and deps array must not reconnect.
  const { gw, b, page, ctl } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/" }, channel: "user:1", tokenFromPage: true }, true);
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await sleep(1000);
  assert.deepEqual(await conns(gw), { open: 1, total: 1 }, "one connection ever accepted");
  for (let i = 0; i < 5; i++) await update(page, { opts: { baseUrl: "/" }, channel: "user:1", tokenFromPage: true });
  await pub(gw, "x");
  const d = await waitDom(page, (d) => d.items.length === 1, 5000, "an event after re-renders");
  assert.equal(d.ws, 1, "the page opened one WebSocket");
  assert.deepEqual(await conns(gw), { open: 1, total: 1 }, "re-renders did not reconnect");
  assert.deepEqual(ctl.calls, ["user:1"], "one token fetched");
  noProblems(b);
});

defcase("react_unmount_closes_socket", async (t) => {
  // Unmounting the component closes the subscription: the gateway's connection gauge
  // goes back to 0 and it logs the session closed by the client (1000).
  const { gw, b, page } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/", token: token(gw) }, channel: "user:1" });
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await waitConns(gw, (c) => c.open === 1, 5000, "one connection");
  await page.evaluate(() => window.unmount());
  await waitConns(gw, (c) => c.open === 0, 5000, "the gateway's connection closed");
  assert.match(gw.logs(), /session closed[^\n]*reason=normal/);
  await pub(gw, "after unmount");
  await sleep(500);
  assert.equal(await page.evaluate(() => document.getElementById("root").childElementCount), 0);
  assert.deepEqual(await conns(gw), { open: 0, total: 1 }, "nothing reconnected after the unmount");
  noProblems(b);
});

defcase("react_unmount_closes_sse", async (t) => {
  // The same over SSE (transport "sse"): the unmount aborts the event stream and the
  // gateway's gauge goes back to 0 at once, not at its next ping.
  const { gw, b, page } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/", transport: "sse", token: token(gw) }, channel: "user:1" });
  await waitDom(page, (d) => d.status === "open" && d.transport === "sse", 10000, "open over SSE");
  await pub(gw, "over sse");
  await waitDom(page, (d) => d.items.length === 1, 5000, "an event over SSE");
  await waitConns(gw, (c) => c.open === 1, 5000, "one connection");
  await page.evaluate(() => window.unmount());
  await waitConns(gw, (c) => c.open === 0, 3000, "the gateway's SSE connection closed");
  assert.deepEqual(await conns(gw), { open: 0, total: 1 });
  noProblems(b);
});

defcase("react_new_channel_resubscribes", async (t) => {
  // A re-render with another channel (in deps; getToken mints for it) closes the old
  // subscription and opens one for the new channel: the old channel's messages are
  // cleared, the new channel's show, the old one's no longer arrive.
  const { gw, b, page, ctl } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/" }, channel: "user:1", tokenFromPage: true });
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await pub(gw, "one-a", "user:1");
  await waitDom(page, (d) => d.items.length === 1, 5000, "user:1's event");
  await update(page, { opts: { baseUrl: "/" }, channel: "user:2", tokenFromPage: true });
  await waitConns(gw, (c) => c.total === 2 && c.open === 1, 5000, "the second connection, the first closed");
  await waitDom(page, (d) => d.status === "open", 5000, "open again");
  await pub(gw, "one-b", "user:1");
  await pub(gw, "two-a", "user:2");
  await pub(gw, "two-b", "user:2");
  const d = await waitDom(page, (d) => d.items.length === 2, 5000, "user:2's events");
  await sleep(500);
  assert.deepEqual(shown(await dom(page)), ["two-a", "two-b"], "only the new channel's events");
  assert.ok(d.items.every((i) => i.channel === "user:2"));
  assert.deepEqual(ctl.calls, ["user:1", "user:2"]);
  assert.deepEqual(await conns(gw), { open: 1, total: 2 });
  const stale = (await page.evaluate(() => window.__commits)).filter((c) => c.shown.some((ch) => ch !== c.channel));
  assert.deepEqual(stale, [], "no commit showed the old channel's messages under the new channel");
  noProblems(b);
});

defcase("react_enabled_false_then_true_resumes", async (t) => {
  // enabled:false closes the connection (the gateway sees it go) and keeps what was
  // shown; enabled:true again resumes from the last ids: what was published while
  // disabled shows once, in order.
  const { gw, b, page } = await reactPage(t);
  const props = (enabled) => ({ opts: { baseUrl: "/", enabled }, channel: "user:1", tokenFromPage: true });
  await mount(page, props(true));
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await pub(gw, "on-1");
  await waitDom(page, (d) => d.items.length === 1, 5000, "the first event");
  await update(page, props(false));
  await waitConns(gw, (c) => c.open === 0, 5000, "the connection closed while disabled");
  let d = await waitDom(page, (d) => d.status === "closed", 5000, "closed");
  await pub(gw, "off-1");
  await pub(gw, "off-2");
  await sleep(300);
  assert.deepEqual(shown(await dom(page)), ["on-1"], "nothing arrives while disabled");
  await update(page, props(true));
  await waitDom(page, (d) => d.status === "open", 10000, "open again");
  await pub(gw, "on-2");
  await waitDom(page, (d) => d.items.length >= 4, 5000, "the missed events and the new one");
  await sleep(500);
  d = await dom(page);
  assert.deepEqual(shown(d), ["on-1", "off-1", "off-2", "on-2"], "nothing lost, nothing twice");
  assert.deepEqual(await conns(gw), { open: 1, total: 2 });
  // Another channel and disabled in one render: closed, and nothing of the old channel shown.
  await update(page, { ...props(false), channel: "user:3" });
  await waitConns(gw, (c) => c.open === 0, 5000, "closed");
  await sleep(300);
  d = await dom(page);
  assert.equal(d.status, "closed", "not the old stream's last status");
  assert.deepEqual(d.items, []);
  noProblems(b);
});

defcase("react_config_error_shown", async (t) => {
  // A configuration that can never work (no token nor getToken) is not thrown out of
  // render: the component shows the reason and status closed, and nothing connects.
  const { gw, b, page } = await reactPage(t);
  await mount(page, { opts: { baseUrl: "/" }, channel: "user:1" });
  const d = await waitDom(page, (d) => d.status === "closed", 5000, "closed");
  assert.equal(d.error, "token_missing");
  assert.equal(d.ws, 0);
  assert.deepEqual(await conns(gw), { open: 0, total: 0 });
  noProblems(b);
});

defcase("react_token_prop_expires_new_token_resumes", async (t) => {
  // A token passed as a prop (no getToken) expires: the gateway closes with 4409 and
  // the component shows token_expired. The app renders a new token: the hook
  // resubscribes from where it was, so events published in between show once, in
  // order, after those already shown.
  const { gw, b, page } = await reactPage(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_PING_INTERVAL_MS: "300" } });
  await mount(page, { opts: { baseUrl: "/", token: token(gw, "user:1", 3) }, channel: "user:1" });
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await pub(gw, "before");
  await waitDom(page, (d) => d.items.length === 1, 5000, "the first event");
  let d = await waitDom(page, (d) => d.status === "closed", 10000, "closed at the token's expiry");
  assert.equal(d.error, "token_expired");
  await pub(gw, "gap-1");
  await pub(gw, "gap-2");
  await update(page, { opts: { baseUrl: "/", token: token(gw) }, channel: "user:1" });
  d = await waitDom(page, (d) => d.status === "open", 10000, "open with the new token");
  assert.equal(d.error, "", "the error clears once open");
  assert.equal(d.recovered, "true");
  await pub(gw, "after");
  await waitDom(page, (d) => d.items.length >= 4, 5000, "the missed events and the new one");
  await sleep(500);
  d = await dom(page);
  assert.deepEqual(shown(d), ["before", "gap-1", "gap-2", "after"], "nothing lost, nothing twice");
  assert.ok(/since=/.test(await page.evaluate(() => window.__ws.at(-1))), "the new subscription resumed with since");
  noProblems(b);
});

defcase("react_get_token_refreshes_in_band", async (t) => {
  // With getToken and short-lived tokens, the hook stays on one connection: the SDK
  // renews the token in band before each expiry (rtgw.refresh), so events published
  // long after the first token expired still show, with no reconnect (the gateway
  // closes a connection whose token expired: RTGW_CLOSE_ON_EXPIRY=1).
  const { gw, b, page, ctl } = await reactPage(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_PING_INTERVAL_MS: "300" } });
  ctl.ttl = 4;
  await mount(page, { opts: { baseUrl: "/" }, channel: "user:1", tokenFromPage: true });
  await waitDom(page, (d) => d.status === "open", 10000, "open");
  await pub(gw, 0);
  for (let i = 1; i <= 3; i++) {
    await sleep(3000);
    await pub(gw, i);
  }
  const d = await waitDom(page, (d) => d.items.length === 4, 5000, "events across three token lifetimes");
  assert.deepEqual(shown(d), [0, 1, 2, 3]);
  assert.equal(d.status, "open");
  assert.equal(d.error, "");
  // (StrictMode's first mount, discarded, reported connecting then closed before any socket.)
  const sinceOpen = d.statuses.slice(d.statuses.findIndex((s) => s.status === "open"));
  assert.deepEqual(sinceOpen.map((s) => s.status), ["open"], "never reconnected");
  assert.ok(ctl.calls.length >= 3, `getToken called ${ctl.calls.length} times`);
  assert.deepEqual(await conns(gw), { open: 1, total: 1 });
  assert.doesNotMatch(gw.logs(), /reason=token_expired/);
  noProblems(b);
});

defcase("react_sse_fallback_then_websocket", async (t) => {
  // A proxy that refuses WebSocket upgrades: the hook's subscription falls back to
  // SSE (the component shows transport "sse" and its events); once the proxy is
  // fixed, the next WebSocket retry (wsRetryMs) opens and stays, resuming with since.
  // One connection at the gateway throughout the switch.
  const { gw, web, b, page } = await reactPage(t, { refuseUpgrades: true });
  await mount(page, { opts: { baseUrl: "/", backoffBaseMs: 100, wsRetryMs: 1500 }, channel: "user:1", tokenFromPage: true });
  await waitDom(page, (d) => d.status === "open" && d.transport === "sse", 15000, "open over SSE");
  await pub(gw, "a");
  await waitDom(page, (d) => d.items.length === 1, 5000, "an event over SSE");
  web.refuseUpgrades(false);
  await waitDom(page, (d) => d.status === "open" && d.transport === "websocket", 10000, "back on the WebSocket");
  await pub(gw, "b");
  await waitDom(page, (d) => d.items.length === 2, 5000, "an event over the WebSocket");
  await sleep(500);
  const d = await dom(page);
  assert.deepEqual(shown(d), ["a", "b"], "nothing lost, nothing twice");
  assert.equal(d.error, "", "the switch to SSE is not an error the component keeps showing");
  await waitConns(gw, (c) => c.open === 1, 3000, "one connection at the gateway");
  noProblems(b);
});

await run();
