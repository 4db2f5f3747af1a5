// bench/node_kill.mjs — what a node kill costs (not a test; figures go to
// docs/benchmarks.md by hand). Three rtgw nodes on one redis-server (Debian's),
// NK_SUBS subscribers per node (default 2000) on NK_CHANNELS channels, a
// publisher at NK_RATE events/s (default 200) on node 1, round-robin over the
// channels. After NK_WARM_S seconds node 0 gets SIGKILL; each of its
// subscribers reconnects as the SDK does (full-jitter backoff from 500 ms: the
// first attempt after random(0..500) ms, then doubling) to node 1 or 2 at
// random, resuming with `since` = the last id it saw. Printed (one JSON line):
// the time from the kill until each moved subscriber is subscribed again and
// until it receives its first event again (p50, p99, max), and the delivery
// check of every subscriber (gaps, duplicates, unrecovered resumes) after the
// publisher stops. NK_BACKOFF_MS=0 reconnects at once (the server's share of
// the cost). Every process is started here and stopped by PID.
//
//   ulimit -n 20000; RTGW_BIN=build/rtgw node bench/node_kill.mjs
import { startGateway, mint, keygen } from "../tests/lib/gateway.mjs";
import { startRedis } from "../tests/lib/redis.mjs";
import { topic } from "../tests/lib/http.mjs";
import { sleep } from "../tests/lib/wait.mjs";
import { WebSocket } from "../tests/lib/ws.mjs";

const SUBS = Number(process.env.NK_SUBS || 2000);
const CHANNELS = Number(process.env.NK_CHANNELS || 20);
const RATE = Number(process.env.NK_RATE || 200);
const WARM_S = Number(process.env.NK_WARM_S || 5);
const AFTER_S = Number(process.env.NK_AFTER_S || 10);
const BACKOFF_MS = Number(process.env.NK_BACKOFF_MS ?? 500); // the SDK's backoffBaseMs; 0: reconnect at once
const log = (...a) => console.error(`[${new Date().toISOString()}]`, ...a);

const redis = await startRedis(null);
const key = keygen();
const nodes = [];
for (let i = 0; i < 3; i++)
  nodes.push(await startGateway(null, {
    key, startMs: 30000,
    env: { RTGW_REDIS_URL: redis.url, RTGW_MAX_CONNECTIONS: String(2 * SUBS + 500), RTGW_LOG_LEVEL: "warn",
      RTGW_RATE_LIMIT_CLIENT_FRAMES: "0" },
  }));
const tokens = [];
for (let c = 0; c < CHANNELS; c++) tokens.push(await mint(nodes[1], [topic(`nk:${c}`, "t")], { ttl: 3600, fresh: true }));

const stats = { gaps: 0, duplicates: 0, unrecovered: 0, connect_errors: 0 };
let killedAt = 0, stopping = false;

// A subscriber that checks its channel's payload n (ch, ch + CHANNELS, …).
class Sub {
  constructor(i) { this.i = i; this.ch = i % CHANNELS; this.node = Math.floor(i / SUBS); this.lastId = null; this.lastN = null; this.attempt = 0; }
  open() {
    const since = this.lastId ? `&since=${encodeURIComponent(this.lastId)}` : "";
    const ws = new WebSocket(`${nodes[this.node].ws}/v1/realtime/connect?token=${encodeURIComponent(tokens[this.ch])}${since}`,
      ["rtgw.v1"], { perMessageDeflate: false });
    this.ws = ws;
    return new Promise((resolve) => {
      let up = false;
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString());
        if (m.kind === "rtgw.subscribed") {
          const c = m.channels[`nk:${this.ch}`];
          if (this.lastId === null) this.lastId = c.id;
          else if (c.recovered !== true) stats.unrecovered++;
          if (this.moved && !this.tSub) this.tSub = Date.now() - killedAt;
          up = true; this.attempt = 0; resolve(true);
          return;
        }
        if (m.kind !== "data") return;
        if (this.moved && !this.tData) this.tData = Date.now() - killedAt;
        const n = m.data.n, want = this.lastN === null ? null : this.lastN + CHANNELS;
        this.lastId = m.id;
        if (want !== null && n < want) stats.duplicates++;
        else { if (want !== null && n !== want) stats.gaps += (n - want) / CHANNELS; this.lastN = n; }
      });
      ws.on("close", () => {
        if (!up) { stats.connect_errors++; resolve(false); }
        if (stopping) return;
        if (this.node === 0 || nodes[this.node].dead) { this.moved = true; this.node = 1 + Math.floor(Math.random() * 2); }
        const cap = BACKOFF_MS * 2 ** Math.min(this.attempt++, 6);
        setTimeout(() => this.open(), Math.random() * cap);
      });
      ws.on("error", () => {});
    });
  }
}

log(`connecting ${3 * SUBS} subscribers (${SUBS} per node) on ${CHANNELS} channels`);
const subs = Array.from({ length: 3 * SUBS }, (_, i) => new Sub(i));
for (let i = 0; i < subs.length; i += 200) await Promise.all(subs.slice(i, i + 200).map((s) => s.open()));
log("connected");

// Publisher on node 1 at RATE/s; n is global, channel = n % CHANNELS.
const published = new Array(CHANNELS).fill(null);
let n = 0, pubErrors = 0;
const t0 = Date.now();
const publisher = (async () => {
  while (Date.now() - t0 < (WARM_S + AFTER_S) * 1000) {
    const due = t0 + (n * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    const ch = n % CHANNELS;
    const r = await fetch(`${nodes[1].url}/v1/realtime/publish?channel=nk:${ch}&topic=t`, {
      method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: JSON.stringify({ n }),
    });
    await r.arrayBuffer();
    if (r.status !== 200) { pubErrors++; continue; }
    published[ch] = n;
    n++;
  }
})();
await sleep(WARM_S * 1000);
killedAt = Date.now();
nodes[0].dead = true;
await nodes[0].kill9();
log("node 0 killed");
await publisher;
const deadline = Date.now() + 30000;
const caughtUp = () => subs.every((s) => s.lastN === published[s.ch]);
while (Date.now() < deadline && !caughtUp()) await sleep(200);
stopping = true;

const pct = (xs, p) => { const a = xs.filter((x) => x !== undefined).sort((x, y) => x - y); return a.length ? a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] : null; };
const moved = subs.filter((s) => s.moved);
const result = {
  subscribers: subs.length, per_node: SUBS, backoff_ms: BACKOFF_MS, channels: CHANNELS, rate: RATE, published: n, publish_errors: pubErrors,
  moved: moved.length, moved_resubscribed: moved.filter((s) => s.tSub).length, moved_received_again: moved.filter((s) => s.tData).length,
  ms_until_subscribed: { p50: pct(moved.map((s) => s.tSub), 50), p99: pct(moved.map((s) => s.tSub), 99), max: pct(moved.map((s) => s.tSub), 100) },
  ms_until_receiving: { p50: pct(moved.map((s) => s.tData), 50), p99: pct(moved.map((s) => s.tData), 99), max: pct(moved.map((s) => s.tData), 100) },
  ...stats, behind_at_end: subs.filter((s) => s.lastN !== published[s.ch]).length,
};
for (const s of subs) s.ws.terminate();
for (const g of nodes) await g.stop();
await redis.stop();
console.log(JSON.stringify(result));
process.exit(result.gaps || result.duplicates || result.unrecovered || result.behind_at_end ? 1 : 0);
