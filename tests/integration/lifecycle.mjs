// Connection lifecycle: heartbeat and idle timeout, connection limit, origin
// checks, graceful shutdown.
import assert from "node:assert/strict";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { http, topic, metrics, metric } from "../lib/http.mjs";
import { rawUpgrade, rawNextFrame, closePayload } from "../lib/rawws.mjs";
import { sleep, waitFor, withTimeout } from "../lib/wait.mjs";
import { connect, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

const PING = 300, PONG = 300;

defcase("half_open_client_closed_after_pong_timeout", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: String(PING), RTGW_PONG_TIMEOUT_MS: String(PONG) } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const before = metric(await metrics(gw), 'rtgw_disconnects_total{reason="idle_timeout"}');
  assert.equal(before, 0);
  // Never answers anything: no pong, no close.
  const r = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t });
  assert.equal(r.status, 101);
  const ping = await rawNextFrame(r, (f) => f.opcode === 0x9, PING + 500, "a ping");
  assert.ok(ping);
  await withTimeout(r.ended, PING + PONG + 1500, "the gateway to close the silent connection");
  const elapsed = r.endedAt - r.upgradedAt;
  assert.ok(elapsed >= PING + PONG - 50, `closed too early (${elapsed} ms)`);
  assert.ok(elapsed <= PING + PONG + 700, `closed after ${elapsed} ms, want ≈ ${PING + PONG}`);
  const close = r.frames.find((f) => f.opcode === 0x8);
  assert.ok(close, "a close frame precedes the end");
  assert.deepEqual(closePayload(close.payload), { code: 4408, reason: "idle_timeout" });
  assert.equal(r.frames.filter((f) => f.opcode === 0x1).length, 0);
  await waitFor(async () => metric(await metrics(gw), 'rtgw_disconnects_total{reason="idle_timeout"}') === before + 1, 2000, "idle_timeout counted");
  assert.equal((await http(gw, "GET", "/health")).json.connections, 0);
});

defcase("ws_client_answering_pings_stays_connected", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: String(PING), RTGW_PONG_TIMEOUT_MS: String(PONG) } });
  const sub = await connect(wsUrl(gw, await mint(gw, [topic("user:42", "ai")])), { t });
  await sleep(6 * PING + 200);
  assert.equal(sub.closeInfo, null, `closed: ${JSON.stringify(sub.closeInfo)}`);
  assert.ok(sub.pings >= 4, `only ${sub.pings} pings in ${6 * PING} ms`);
  await publish(gw, "user:42", "ai", "still here");
  assert.equal((await sub.next()).data, "still here");
  const m = await metrics(gw);
  assert.equal(metric(m, 'rtgw_disconnects_total{reason="idle_timeout"}'), 0);
  assert.equal(metric(m, "rtgw_connections"), 1);
});

defcase("connection_limit_503", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "3" } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const subs = [];
  for (let i = 0; i < 3; i++) subs.push(await connect(wsUrl(gw, jwt), { t }));
  const t0 = Date.now();
  const r = await refusedUpgrade(wsUrl(gw, jwt), { ms: 2000 });
  assert.ok(Date.now() - t0 < 1000, `refusal took ${Date.now() - t0} ms`);
  assert.equal(r.status, 503);
  assert.equal(r.json.error, "over_capacity");
  // SSE counts against the same limit.
  const sse = await withTimeout(fetch(`${gw.url}/v1/realtime/sse?token=${jwt}`), 2000, "SSE at capacity");
  assert.equal(sse.status, 503);
  assert.equal((await sse.json()).error, "over_capacity");
  // HTTP stays available.
  const h = await http(gw, "GET", "/health");
  assert.equal(h.status, 200);
  assert.equal(h.json.connections, 3);
  const rd = await http(gw, "GET", "/ready");
  assert.equal(rd.json.at_capacity, true);
  assert.equal((await publish(gw, "user:42", "ai", 1)).status, 200);
  for (const s of subs) assert.equal((await s.next()).data, 1);
  assert.ok(metric(await metrics(gw), 'rtgw_refusals_total{reason="over_capacity"}') >= 2);
  // A slot frees when a client leaves.
  subs[0].close();
  await subs[0].closed;
  await waitFor(async () => (await http(gw, "GET", "/health")).json.connections === 2, 2000, "slot freed");
  const again = await connect(wsUrl(gw, jwt), { t });
  await publish(gw, "user:42", "ai", 2);
  assert.equal((await again.next()).data, 2);
});

// Ten upgrades at once against a limit of 3: exactly 3 are admitted (the check
// and the count are not racy), the others get 503 over_capacity.
defcase("connection_limit_concurrent_burst", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "3" } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const rs = await Promise.allSettled(Array.from({ length: 10 }, () => connect(wsUrl(gw, jwt), { t })));
  const ok = rs.filter((r) => r.status === "fulfilled");
  const refused = rs.filter((r) => r.status === "rejected");
  assert.equal(ok.length, 3, `admitted ${ok.length}`);
  for (const r of refused) assert.equal(r.reason.status, 503, r.reason.message);
  assert.equal((await http(gw, "GET", "/health")).json.connections, 3);
  await publish(gw, "user:42", "ai", "x");
  for (const r of ok) assert.equal((await r.value.next()).data, "x");
});

defcase("origin_allowlist", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://app.example.com,http://localhost:3000" } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const before = metric(await metrics(gw), "rtgw_origin_refused_total");
  assert.equal(before, 0);
  for (const origin of ["https://evil.example", "https://app.example.com.evil.example", "http://app.example.com", "null"]) {
    const r = await refusedUpgrade(wsUrl(gw, jwt), { origin });
    assert.equal(r.status, 403, origin);
    assert.equal(r.json.error, "origin_not_allowed", origin);
  }
  const sse = await fetch(`${gw.url}/v1/realtime/sse?token=${jwt}`, { headers: { Origin: "https://evil.example" } });
  assert.equal(sse.status, 403);
  assert.equal((await sse.json()).error, "origin_not_allowed");
  assert.equal(metric(await metrics(gw), "rtgw_origin_refused_total"), before + 5);
  // Allowed origins (case-insensitive host) and no Origin at all (not a browser) work.
  const subs = [
    await connect(wsUrl(gw, jwt), { t, origin: "https://app.example.com" }),
    await connect(wsUrl(gw, jwt), { t, origin: "https://APP.example.com" }),
    await connect(wsUrl(gw, jwt), { t, origin: "http://localhost:3000" }),
    await connect(wsUrl(gw, jwt), { t }),
  ];
  await publish(gw, "user:42", "ai", "hi");
  for (const s of subs) assert.equal((await s.next()).data, "hi");
  assert.equal(metric(await metrics(gw), "rtgw_origin_refused_total"), before + 5);
});

defcase("graceful_shutdown_sigterm", async (t) => {
  const SHUTDOWN = 3000;
  const gw = await startGateway(t, { env: { RTGW_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN) } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const subs = [];
  for (let i = 0; i < 3; i++) subs.push(await connect(wsUrl(gw, jwt), { t }));
  await publish(gw, "user:42", "ai", "before");
  for (const s of subs) assert.equal((await s.next()).data, "before");
  const t0 = Date.now();
  const exited = gw.stop("SIGTERM");
  for (const s of subs) {
    const m = await s.next(SHUTDOWN, "the closing frame");
    assert.deepEqual(m, { kind: "closing" });
    const c = await withTimeout(s.closed, SHUTDOWN, "close frame");
    assert.equal(c.code, 1001);
  }
  const { code, signal } = await withTimeout(exited, SHUTDOWN + 2000, "exit after SIGTERM");
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 <= SHUTDOWN + 2000, `exit took ${Date.now() - t0} ms`);
  assert.match(gw.logs(), /shutting down/);
});

// An idle gateway stops at once: civetweb's master thread polled its listener
// 2 s at a time, the heartbeat slept a tick (up to 1 s) and the writers 500 ms
// before they looked at the stop, so every stop took ~2 s (a deploy's restart,
// and each test's gateway). Now each is woken (sockhook.c poll slices, the
// heartbeat's condition, the writers' eventfd).
defcase("idle_gateway_stops_within_a_second", async (t) => {
  const gw = await startGateway(t);
  assert.equal((await http(gw, "GET", "/health")).status, 200);
  const t0 = Date.now();
  const { code } = await withTimeout(gw.stop("SIGTERM"), 5000, "exit after SIGTERM");
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 1000, `an idle gateway took ${Date.now() - t0} ms to stop`);
});

// A client that never answers the close does not hold the process past its timeout.
defcase("graceful_shutdown_bounded_by_timeout", async (t) => {
  const SHUTDOWN = 1000;
  const gw = await startGateway(t, { env: { RTGW_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN) } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const raws = [];
  for (let i = 0; i < 2; i++) raws.push(await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t }));
  const ok = await connect(wsUrl(gw, jwt), { t });
  const t0 = Date.now();
  const { code } = await withTimeout(gw.stop("SIGTERM"), SHUTDOWN + 2000, "exit after SIGTERM");
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 <= SHUTDOWN + 2000);
  assert.equal((await withTimeout(ok.closed, 1000, "ws close")).code, 1001);
  for (const r of raws) {
    const texts = r.frames.filter((f) => f.opcode === 0x1).map((f) => f.payload.toString());
    assert.deepEqual(texts, ['{"kind":"closing"}']);
    const close = r.frames.find((f) => f.opcode === 0x8);
    assert.equal(closePayload(close.payload).code, 1001);
  }
});

await run();
