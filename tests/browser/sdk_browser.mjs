// sdk/js in headless Chromium against real rtgw processes, all on loopback.
// The page comes from a tiny Node server (tests/browser/web.mjs); tokens are minted
// offline with sdk/js/node.js and events published with it.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, freePort } from "../lib/gateway.mjs";
import { launch, startWeb, selfSignedCert, root } from "./web.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";

const { mintToken, publish } = await import("../../sdk/js/node.js");

const token = (gw, channel = "user:1", topics = ["*"]) => mintToken({ signingKey: gw.key, channel, topics, ttl: 600 });
const pub = (gw, data, { channel = "user:1", topic = "ai", url = gw.url } = {}) =>
  publish({ baseUrl: url, signingKey: gw.key, channel, topic, data });

async function openPage(t, web, opts = {}) {
  const b = await launch(t, opts);
  await b.page.goto(web.url);
  await b.page.waitForFunction(() => document.getElementById("state").textContent === "ready");
  return b;
}

const state = (page) => page.evaluate(() => ({
  status: window.__sub && window.__sub.status,
  transport: window.__sub && window.__sub.transport,
  st: window.__st, msgs: window.__msgs, errs: window.__errs, ws: window.__ws,
}));

const waitState = (page, pred, ms, what) => waitFor(async () => { const s = await state(page); return pred(s) && s; }, ms, what);

function noProblems(b) {
  assert.deepEqual(b.problems, [], "no uncaught page errors");
}

defcase("receives_events", async (t) => {
  const gw = await startGateway(t);
  const web = await startWeb(t);
  const b = await openPage(t, web);
  await b.page.evaluate(({ baseUrl, token }) => window.start({ baseUrl, token }), { baseUrl: gw.url, token: token(gw) });
  await waitState(b.page, (s) => s.status === "open", 10000, "open");
  const ids = [];
  for (let i = 1; i <= 3; i++) ids.push((await pub(gw, { step: i })).ids[0]);
  const s = await waitState(b.page, (s) => s.msgs.length === 3, 5000, "three events");
  assert.deepEqual(s.msgs.map((m) => m.data), [{ step: 1 }, { step: 2 }, { step: 3 }]);
  assert.deepEqual(s.msgs.map((m) => m.id), ids);
  assert.deepEqual(s.st.map((x) => x.status), ["connecting", "open"]);
  assert.equal(s.transport, "websocket");
  assert.ok(s.ws[0].startsWith(`ws://127.0.0.1:${gw.port}/v1/realtime/connect?token=`));
  assert.deepEqual(await b.page.evaluate(() => window.__sub.lastIds), { "user:1": ids[2] });
  noProblems(b);
});

// Stop the gateway (SIGTERM: closing frame + 1001, or SIGKILL: no close frame, 1006)
// and start it again on the same port: the page reconnects by itself, reports the
// drop by name, says recovered:false (memory bus: new epoch), and gets new events.
async function restartCase(t, how) {
  const gw = await startGateway(t);
  const web = await startWeb(t);
  const b = await openPage(t, web);
  await b.page.evaluate(({ baseUrl, token }) => window.start({ baseUrl, token, backoffBaseMs: 200, backoffMaxMs: 1000 }),
    { baseUrl: gw.url, token: token(gw) });
  await waitState(b.page, (s) => s.status === "open", 10000, "open");
  await pub(gw, "before");
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "first event");
  if (how === "term") await gw.stop("SIGTERM"); else await gw.kill9();
  const down = await waitState(b.page, (s) => s.status === "reconnecting", 5000, "reconnecting");
  const rc = down.st.find((x) => x.status === "reconnecting");
  const gw2 = await startGateway(t, { port: gw.port, key: gw.key });
  const s = await waitState(b.page, (s) => s.st.filter((x) => x.status === "open").length === 2, 15000, "reopened");
  const reopen = s.st.filter((x) => x.status === "open")[1];
  assert.equal(reopen.resumed, true, "reconnected with since");
  assert.equal(reopen.recovered, false, "a restarted memory bus cannot replay: recovered:false");
  assert.deepEqual(reopen.gaps, ["user:1"]);
  assert.ok(/since=/.test(s.ws.at(-1)), "the reconnect sent since");
  // Transitions: connecting → open → reconnecting (one per attempt) → open; never closed.
  const seq = s.st.map((x) => x.status).filter((x, i, a) => x !== a[i - 1]);
  assert.deepEqual(seq, ["connecting", "open", "reconnecting", "open"]);
  assert.equal(s.transport, "websocket");
  await pub(gw2, "after");
  const fin = await waitState(b.page, (s) => s.msgs.length === 2, 5000, "event after the restart");
  assert.deepEqual(fin.msgs.map((m) => m.data), ["before", "after"]);
  noProblems(b);
  return rc;
}

defcase("reconnects_after_restart_sigterm", async (t) => {
  const rc = await restartCase(t, "term");
  assert.equal(rc.code, 1001);
  assert.equal(rc.reason, "shutting_down");
});

defcase("reconnects_after_restart_kill9", async (t) => {
  const rc = await restartCase(t, "kill");
  assert.equal(rc.code, 1006);
  assert.equal(rc.reason, "connection_lost", "1006 is never reported bare");
  assert.match(rc.hint, /proxy/);
});

defcase("offline_pauses_then_resumes", async (t) => {
  // Going offline closes the (hanging) connection and waits; back online, the SDK
  // reconnects at once and replays what was published meanwhile (recovered:true).
  const gw = await startGateway(t);
  const web = await startWeb(t);
  const b = await openPage(t, web);
  await b.page.evaluate(({ baseUrl, token }) => window.start({ baseUrl, token, backoffBaseMs: 100 }), { baseUrl: gw.url, token: token(gw) });
  await waitState(b.page, (s) => s.status === "open", 10000, "open");
  await pub(gw, 1);
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "first event");
  await b.ctx.setOffline(true);
  await waitState(b.page, (s) => s.st.some((x) => x.paused === "offline"), 5000, "paused offline");
  const before = (await state(b.page)).ws.length;
  await pub(gw, 2);
  await pub(gw, 3);
  await sleep(1000);
  let s = await state(b.page);
  assert.equal(s.ws.length, before, "no attempt while offline");
  assert.equal(s.st.find((x) => x.status === "reconnecting").reason, "offline");
  await b.ctx.setOffline(false);
  s = await waitState(b.page, (s) => s.msgs.length === 3, 10000, "replay after going online");
  assert.deepEqual(s.msgs.map((m) => m.data), [1, 2, 3]);
  const reopen = s.st.filter((x) => x.status === "open")[1];
  assert.equal(reopen.resumed, true);
  assert.equal(reopen.recovered, true);
  noProblems(b);
});

defcase("sse_fallback_when_upgrades_refused", async (t) => {
  // A proxy that forwards HTTP but refuses WebSocket upgrades: after 3 failed
  // upgrades while /health answers, the SDK switches to SSE, and resumes over it.
  const gw = await startGateway(t);
  const web = await startWeb(t, { gateway: gw.port, refuseUpgrades: true });
  const b = await openPage(t, web);
  await b.page.evaluate(({ token }) => window.start({ baseUrl: "/", token, backoffBaseMs: 100 }), { token: token(gw) });
  const s = await waitState(b.page, (s) => s.status === "open", 15000, "open over SSE");
  assert.equal(s.transport, "sse");
  assert.equal(s.ws.length, 3, "three WebSocket attempts before falling back");
  assert.ok(s.errs.some((e) => e.reason === "websocket_unavailable" && !e.fatal), JSON.stringify(s.errs));
  assert.ok(s.st.filter((x) => x.status === "reconnecting").every((x) => x.reason === "connection_lost" || x.reason === "websocket_unavailable"));
  await pub(gw, "a");
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "event over SSE");
  // Cut the stream; publish while it is down; the reconnect resumes with since.
  web.dropStreams();
  await pub(gw, "b");
  await pub(gw, "c");
  const fin = await waitState(b.page, (s) => s.msgs.length === 3 && s.st.filter((x) => x.status === "open").length === 2, 10000, "resume over SSE");
  assert.deepEqual(fin.msgs.map((m) => m.data), ["a", "b", "c"], "nothing lost, nothing twice");
  const reopen = fin.st.filter((x) => x.status === "open")[1];
  assert.equal(reopen.resumed, true);
  assert.equal(reopen.recovered, true);
  assert.equal(fin.transport, "sse");
  noProblems(b);
});

defcase("sse_fallback_retries_websocket", async (t) => {
  // Once on SSE, the SDK tries the WebSocket again every wsRetryMs: while upgrades
  // still fail it goes straight back to SSE; once they work it stays on the
  // WebSocket, resuming with since: nothing lost, nothing twice.
  const gw = await startGateway(t);
  const web = await startWeb(t, { gateway: gw.port, refuseUpgrades: true });
  const b = await openPage(t, web);
  await b.page.evaluate(({ token }) => window.start({ baseUrl: "/", token, backoffBaseMs: 100, wsRetryMs: 1500 }), { token: token(gw) });
  await waitState(b.page, (s) => s.status === "open" && s.transport === "sse", 15000, "open over SSE");
  await pub(gw, "a");
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "event over SSE");
  // The first retry meets the same refusing proxy: one attempt, back on SSE.
  let s = await waitState(b.page, (s) => s.ws.length === 4 && s.status === "open" && s.transport === "sse", 10000, "a refused retry, back on SSE");
  assert.ok(s.st.some((x) => x.reason === "websocket_retry"), JSON.stringify(s.st));
  await pub(gw, "b");
  await waitState(b.page, (s) => s.msgs.length === 2, 5000, "event over SSE after the refused retry");
  // The proxy is fixed: the next retry opens and stays.
  web.refuseUpgrades(false);
  s = await waitState(b.page, (s) => s.status === "open" && s.transport === "websocket", 10000, "back on the WebSocket");
  const wsOpen = s.st.filter((x) => x.status === "open").at(-1);
  assert.equal(wsOpen.resumed, true, "the switch resumed with since");
  await pub(gw, "c");
  const fin = await waitState(b.page, (s) => s.msgs.length === 3, 5000, "event over the WebSocket");
  assert.deepEqual(fin.msgs.map((m) => m.data), ["a", "b", "c"], "nothing lost, nothing twice");
  await sleep(2000); // no more retries once on the WebSocket
  const after = await state(b.page);
  assert.equal(after.transport, "websocket");
  assert.equal(after.ws.length, fin.ws.length, "no further attempts");
  assert.ok(after.errs.every((e) => !e.fatal), JSON.stringify(after.errs));
  noProblems(b);
});

defcase("sse_heartbeat_watchdog", async (t) => {
  // Over SSE the SDK sees the gateway's ": ping" comments (it reads the stream with
  // fetch; EventSource hides them), so heartbeatMs = 2-3x the ping interval keeps a
  // quiet connection alive and catches a silently dead one.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "300" } });
  const web = await startWeb(t, { gateway: gw.port });
  const b = await openPage(t, web);
  await b.page.evaluate(({ token }) => window.start({ baseUrl: "/", token, transport: "sse", heartbeatMs: 1200, backoffBaseMs: 100 }), { token: token(gw) });
  await waitState(b.page, (s) => s.status === "open", 10000, "open");
  await sleep(3000); // quiet, but pinged
  let s = await state(b.page);
  assert.deepEqual(s.st.map((x) => x.status), ["connecting", "open"], "pings kept the quiet connection alive");
  web.freezeStreams();
  // The history, not the current status: with backoffBaseMs 100 the SDK is
  // "reconnecting" for ~100 ms, less than one poll of the page on a loaded machine
  // (the flake of this case, 1 run in 8: the watchdog had fired and reconnected).
  s = await waitState(b.page, (s) => s.st.some((x) => x.status === "reconnecting"), 5000, "watchdog");
  const rc = s.st.find((x) => x.status === "reconnecting");
  assert.equal(rc.reason, "heartbeat_timeout");
  await waitState(b.page, (s) => s.status === "open", 10000, "reopen");
  await pub(gw, "alive");
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "event after the watchdog");
  noProblems(b);
});

defcase("https_page_uses_wss", async (t) => {
  // An https page with a relative baseUrl: the SDK picks wss:// on the page's origin.
  // The test server tunnels the upgrade to the gateway, so it works end to end.
  const gw = await startGateway(t);
  const web = await startWeb(t, { tls: selfSignedCert(t), gateway: gw.port });
  const b = await openPage(t, web, { https: true });
  await b.page.evaluate(({ token }) => window.start({ baseUrl: "", token }), { token: token(gw) });
  const s = await waitState(b.page, (s) => s.ws.length >= 1, 5000, "a WebSocket attempt");
  assert.ok(s.ws[0].startsWith(`wss://127.0.0.1:${web.port}/v1/realtime/connect?token=`), s.ws[0]);
  assert.ok(s.ws.every((u) => u.startsWith("wss://")), "never ws:// from an https page");
  await waitState(b.page, (s) => s.status === "open", 10000, "open over wss");
  await pub(gw, "secure");
  await waitState(b.page, (s) => s.msgs.length === 1, 5000, "event over wss");
  noProblems(b);
});

defcase("https_page_refuses_explicit_ws", async (t) => {
  const gw = await startGateway(t);
  const web = await startWeb(t, { tls: selfSignedCert(t) });
  const b = await openPage(t, web, { https: true });
  const tries = await b.page.evaluate(({ gwPort, token }) => {
    const out = [];
    for (const opts of [{ url: `ws://127.0.0.1:${gwPort}/v1/realtime/connect` }, { baseUrl: `http://127.0.0.1:${gwPort}` }]) {
      try { window.rtgw.subscribe({ ...opts, token }); out.push({ ok: true }); } catch (e) { out.push({ name: e.name, reason: e.reason, message: e.message, fatal: e.fatal }); }
    }
    return { out, ws: window.__ws };
  }, { gwPort: gw.port, token: token(gw) });
  for (const e of tries.out) {
    assert.equal(e.name, "RealtimeError");
    assert.equal(e.reason, "insecure_url");
    assert.match(e.message, /mixed content/);
    assert.match(e.message, /wss:\/\//);
  }
  assert.deepEqual(tries.ws, [], "no WebSocket was even attempted");
  noProblems(b);
});

defcase("demo_page_receives_run", async (t) => {
  const gw = await startGateway(t, { dev: true, key: null });
  const b = await launch(t);
  await b.page.setViewportSize({ width: 1280, height: 800 });
  await b.page.goto(`${gw.url}/`);
  await b.page.waitForFunction(() => document.getElementById("status").textContent === "open");
  await b.page.click("#run");
  // started, 3 steps, the streamed words, finished: data rows have a topic cell.
  await b.page.waitForFunction(() => [...document.querySelectorAll("#timeline li .topic")].filter((e) => e.textContent === "ai").length >= 8, null, { timeout: 20000 });
  await b.page.waitForFunction(() => document.querySelector("#timeline li pre").textContent.includes("finished"), null, { timeout: 20000 });
  const rows = await b.page.$$eval("#timeline li", (lis) => lis.map((li) => li.textContent));
  assert.ok(rows.some((r) => r.includes('"status":"started"')), "started row");
  assert.ok(rows.some((r) => r.includes('"step":3')), "step rows");
  const dir = path.join(root, "tests/artifacts");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "demo.png");
  await b.page.screenshot({ path: file, fullPage: true });
  const size = fs.statSync(file).size;
  assert.ok(size > 10 * 1024, `screenshot is ${size} bytes`);
  noProblems(b);
});

defcase("demo_page_one_socket_each_event_once", async (t) => {
  // The demo page subscribes through sdk/js (served at /sdk/ in --dev): one socket
  // at a time, no reconnect loop, every event shown once, across a second press
  // of "Mint token & subscribe" (which resumes); and no 404 (the favicon).
  const gw = await startGateway(t, { dev: true, key: null });
  const b = await launch(t);
  await b.page.addInitScript(() => {
    window.__sockets = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url, protocols) { super(url, protocols); window.__sockets.push(this); }
    };
  });
  const bad = [];
  b.page.on("response", (r) => { if (r.status() >= 400) bad.push(`${r.status()} ${r.url()}`); });
  b.page.on("console", (m) => { if (m.type() === "error") bad.push(`console: ${m.text()}`); });
  await b.page.goto(`${gw.url}/`);
  await b.page.waitForFunction(() => document.getElementById("status").textContent === "open");
  await sleep(1500); // the old page closed and reopened its socket every ~200 ms here
  const sockets = () => b.page.evaluate(() => ({
    made: window.__sockets.length, open: window.__sockets.filter((s) => s.readyState === 1).length }));
  assert.deepEqual(await sockets(), { made: 1, open: 1 }, "one socket, no reconnect loop");
  const dataRows = () => b.page.$$eval("#timeline li .topic", (e) => e.filter((x) => x.textContent === "ai").length);
  const runOnce = async (total) => {
    await b.page.click("#run");
    await b.page.waitForFunction((n) => document.getElementById("count").textContent === `${n} events`, total, { timeout: 20000 });
    await sleep(500); // nothing more, nothing twice
    assert.equal(await b.page.$eval("#count", (e) => e.textContent), `${total} events`);
    assert.equal(await dataRows(), total);
    assert.equal(await b.page.$eval("#runstatus", (e) => e.textContent), "finished");
  };
  // started, 3 steps, 11 words, finished: 16 events.
  await runOnce(16);
  // Subscribing again replaces the socket (one open) and resumes: no event twice.
  await b.page.click("#connect");
  await b.page.waitForFunction(() => window.__sockets.length === 2 && window.__sockets[1].readyState === 1);
  await sleep(1000);
  assert.deepEqual(await sockets(), { made: 2, open: 1 }, "the old socket closed, one open");
  assert.equal(await dataRows(), 16, "the resume replayed nothing twice");
  assert.match(await b.page.$eval("#timeline li:first-child pre", (e) => e.textContent), /"resumed":true/);
  await runOnce(32);
  assert.deepEqual(bad, [], "no failed request (favicon) and no console error");
  noProblems(b);
});

defcase("example_backend_renders_events", async (t) => {
  // examples/backend-node (fake cookie login, token minted for user:<id> only)
  // serving examples/browser, against a real gateway.
  const gw = await startGateway(t);
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, "examples/backend-node/server.mjs")], {
    env: { PATH: process.env.PATH, PORT: String(port), RTGW_URL: gw.url, RTGW_SIGNING_KEY: gw.key },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  t.cleanup(() => { if (child.exitCode === null) child.kill("SIGKILL"); });
  await waitFor(() => /listening/.test(out) || child.exitCode !== null, 10000, "backend start");
  assert.equal(child.exitCode, null, out);
  const app = `http://127.0.0.1:${port}`;
  const anon = await fetch(`${app}/api/realtime-token`, { method: "POST" });
  assert.equal(anon.status, 401, "no token without a session");

  const b = await launch(t);
  await b.page.goto(app);
  await b.page.fill("#user", "alice");
  await b.page.click("#login");
  await b.page.waitForFunction(() => document.getElementById("status").textContent === "open");
  await pub(gw, { note: "for bob" }, { channel: "user:bob" });
  await pub(gw, { note: "for alice" }, { channel: "user:alice", topic: "notes" });
  await b.page.waitForFunction(() => document.querySelectorAll("#events li").length >= 1);
  await b.page.click("#run");
  await b.page.waitForFunction(() => [...document.querySelectorAll("#events li")].some((li) => li.textContent.includes("finished")), null, { timeout: 15000 });
  const rows = await b.page.$$eval("#events li", (lis) => lis.map((li) => li.textContent));
  assert.ok(rows.some((r) => r.includes("for alice")), rows.join("\n"));
  assert.ok(!rows.some((r) => r.includes("for bob")), "another user's channel never reaches the page");
  assert.ok(rows.some((r) => r.includes("started")), rows.join("\n"));
  noProblems(b);
});

await run();
