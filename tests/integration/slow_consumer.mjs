// Slow consumers: subscribers that stop reading are disconnected at their queue
// bound, and never delay or starve the subscribers that keep reading.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint } from "../lib/gateway.mjs";
import { http, topic, metrics, metric } from "../lib/http.mjs";
import { rssKb } from "../lib/proc.mjs";
import { rawUpgrade } from "../lib/rawws.mjs";
import { waitFor, withTimeout } from "../lib/wait.mjs";
import { WebSocket, wsUrl } from "../lib/ws.mjs";

const READERS = 195, STUCK = 5, MESSAGES = 3000, WINDOW = 100;
const SEQ = Buffer.from('"seq":');

// Sequence number from a raw frame without parsing the whole JSON.
function seqOf(buf) {
  let i = buf.indexOf(SEQ);
  if (i < 0) return -1;
  i += SEQ.length;
  let n = 0;
  for (; i < buf.length && buf[i] >= 48 && buf[i] <= 57; i++) n = n * 10 + buf[i] - 48;
  return n;
}

defcase("stuck_subscribers_kicked_readers_get_everything", async (t) => {
  const gw = await startGateway(t, {
    env: {
      RTGW_MAX_CONNECTIONS: "260",
      RTGW_QUEUE_MAX_MESSAGES: "200",
      RTGW_SOCKET_SNDBUF: "16384",
      RTGW_LOG_LEVEL: "info",
    },
  });
  const jwt = await mint(gw, [topic("flood", "t")]);

  // Readers: npm ws clients that check every message is the next sequence number.
  const readers = await Promise.all(Array.from({ length: READERS }, () => withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(gw, jwt), { perMessageDeflate: false, skipUTF8Validation: true });
    const r = { ws, next: 0, bad: null, closed: null, firstChecked: false };
    t.cleanup(() => ws.terminate());
    ws.on("message", (data) => {
      if (!r.firstChecked) {
        const m = JSON.parse(data.toString());
        if (m.kind !== "data" || m.channel !== "flood" || m.topic !== "t") r.bad ??= `unexpected frame ${data.toString().slice(0, 80)}`;
        r.firstChecked = true;
      }
      const s = seqOf(data);
      if (s !== r.next && !r.bad) r.bad = `expected seq ${r.next}, got ${s}`;
      r.next = s + 1;
    });
    ws.on("close", (code, reason) => { r.closed = `${code} ${reason}`; });
    ws.on("open", () => resolve(r));
    ws.on("error", reject);
  }), 10000, "reader open")));

  // Stuck ones: upgrade by hand, then stop reading (the socket is paused right
  // after the 101, so the kernel receive buffer fills and the window closes).
  const stuck = [];
  for (let i = 0; i < STUCK; i++) stuck.push(await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t, pauseAfter: true }));
  for (const s of stuck) assert.equal(s.status, 101);
  assert.equal((await http(gw, "GET", "/health")).json.connections, READERS + STUCK);

  const payload = "p".repeat(1400);
  let maxRss = 0;
  const t0 = Date.now();
  const agentless = `${gw.url}/v1/realtime/publish?channel=flood&topic=t`;
  for (let seq = 0; seq < MESSAGES; seq++) {
    const res = await fetch(agentless, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "application/json" },
      body: `{"seq":${seq},"pad":"${payload}"}`,
    });
    assert.equal(res.status, 200, await res.text());
    await res.arrayBuffer().catch(() => {});
    if (seq % 250 === 0) maxRss = Math.max(maxRss, rssKb(gw.child.pid));
    // Keep the readers within WINDOW events of the publisher (well under their
    // queue bound of 200), so that a starved test machine cannot turn a reader
    // into a slow consumer. The stuck subscribers are not waited for: they must
    // not slow the flood down.
    if (seq % 50 === 49) {
      await waitFor(() => readers.every((r) => r.next >= seq + 1 - WINDOW || r.bad || r.closed), 20000,
        `readers to catch up with event ${seq}`, 2);
    }
  }
  const publishMs = Date.now() - t0;

  // Every reader gets all MESSAGES, in order.
  await waitFor(() => readers.every((r) => r.next === MESSAGES || r.bad || r.closed), 20000,
    "every reader to receive every message", 50).catch((e) => {
    const behind = readers.filter((r) => r.next !== MESSAGES).map((r) => r.next);
    throw new Error(`${e.message}; ${behind.length} readers behind: ${behind.slice(0, 10)}`);
  });
  maxRss = Math.max(maxRss, rssKb(gw.child.pid));
  for (const [i, r] of readers.entries()) {
    assert.equal(r.bad, null, `reader ${i}: ${r.bad}`);
    assert.equal(r.closed, null, `reader ${i} was closed: ${r.closed}`);
    assert.equal(r.next, MESSAGES, `reader ${i}`);
  }

  // The stuck ones were disconnected: the gateway counts them and lets them go
  // while they are still not reading.
  const m = await metrics(gw);
  assert.equal(metric(m, "rtgw_slow_consumer_kicks_total"), STUCK, "exactly the stuck subscribers were kicked");
  await waitFor(async () => (await http(gw, "GET", "/health")).json.connections === READERS, 5000, "stuck connections dropped");
  assert.equal(metric(await metrics(gw), 'rtgw_disconnects_total{reason="slow_consumer"}'), STUCK);
  // Once they read again, their sockets end (after what was already buffered).
  for (const s of stuck) s.sock.resume();
  await withTimeout(Promise.all(stuck.map((s) => s.ended)), 5000, "stuck sockets to end");
  for (const s of stuck) {
    const data = s.frames.filter((f) => f.opcode === 0x1);
    assert.ok(data.length < MESSAGES, `a stuck subscriber got ${data.length} frames`);
    const close = s.frames.find((f) => f.opcode === 0x8);
    if (close) assert.equal(close.payload.readUInt16BE(0), 4429);
  }
  // AddressSanitizer's shadow memory and quarantine multiply RSS; the bound is
  // for the real build (CMake sets RT_SANITIZED=1 for a -DRT_SANITIZE=ON build).
  const rssBound = (process.env.RT_SANITIZED === "1" ? 4 : 1) * 200 * 1024;
  assert.ok(maxRss > 0 && maxRss < rssBound, `gateway RSS ${maxRss} kB (bound ${rssBound} kB)`);
  console.log(`published ${MESSAGES} in ${publishMs} ms; max RSS ${(maxRss / 1024).toFixed(1)} MB`);
});

// Events larger than half of RTGW_SOCKET_SNDBUF: the writer must still make
// progress (it used to spin forever when a frame was larger than the socket room
// it had, starving every subscriber of that writer thread).
defcase("events_larger_than_socket_buffer", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_SOCKET_SNDBUF: "4096", RTGW_LOG_LEVEL: "info" } });
  const jwt = await mint(gw, [topic("big", "t")]);
  const subs = [];
  for (let i = 0; i < 3; i++) {
    const ws = new WebSocket(wsUrl(gw, jwt), { perMessageDeflate: false });
    t.cleanup(() => ws.terminate());
    const s = { ws, got: [] };
    ws.on("message", (d) => { const m = JSON.parse(d.toString()); s.got.push(m.kind === "data" ? m.data.i : m.kind); });
    await withTimeout(new Promise((r, j) => { ws.on("open", r); ws.on("error", j); }), 5000, "open");
    subs.push(s);
  }
  const N = 60;
  const pad = "x".repeat(12000);
  for (let i = 0; i < N; i++) {
    const r = await http(gw, "POST", "/v1/realtime/publish?channel=big&topic=t", { body: JSON.stringify({ i, pad }), key: gw.key });
    assert.equal(r.status, 200);
  }
  await waitFor(() => subs.every((s) => s.got.length === N), 5000, "every subscriber to receive the large events").catch((e) => {
    throw new Error(`${e.message}: got ${subs.map((s) => s.got.length)}`);
  });
  for (const s of subs) assert.deepEqual(s.got, Array.from({ length: N }, (_, i) => i));
  // The gateway still stops cleanly (a spinning writer thread would block the join).
  const { code } = await withTimeout(gw.stop(), 8000, "stop");
  assert.equal(code, 0);
});

await run();
