// Soak (not part of CTest; run by hand or `make soak`): a steady publish to many
// subscribers that randomly disconnect and resume with `since`, for a set
// duration. At the end every subscriber must have received every event of its
// channel exactly once, in order (checked by sequence: ids are <epoch>-<offset>),
// and the gateway's RSS, sampled every 10 s, is reported with its slope.
//
//   ulimit -n 8192   # 2 000 sockets on each side, plus civetweb's threads
//   RTGW_BIN=build/rtgw node tests/hardening/soak.mjs
// Environment (defaults): RT_SOAK_SECONDS (600), RT_SOAK_SUBS (2000),
// RT_SOAK_CHANNELS (20), RT_SOAK_RATE (events/s in all, 20), RT_SOAK_DROP
// (probability a subscriber drops in a given second, 0.01), RT_SOAK_AWAY_MS
// (longest time a dropped subscriber stays away, 3000), RT_SOAK_NODES (1; with
// more, that many nodes share one redis-server started here: subscribers spread
// over the nodes and resume on a random node, the publisher goes round-robin,
// each node's RSS slope and Redis's used_memory are reported).
// Prints one JSON line of figures; exits 1 on any loss or duplicate.
import { startGateway, mint, keygen } from "../lib/gateway.mjs";
import { startRedis } from "../lib/redis.mjs";
import { topic } from "../lib/http.mjs";
import { procStats } from "../lib/proc.mjs";
import { sleep } from "../lib/wait.mjs";
import { WebSocket } from "../lib/ws.mjs";

// Least-squares slope of y over x.
function slope(xs, ys) {
  const n = xs.length, mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2; }
  return den ? num / den : 0;
}

const SECONDS = Number(process.env.RT_SOAK_SECONDS || 600);
const SUBS = Number(process.env.RT_SOAK_SUBS || 2000);
const CHANNELS = Number(process.env.RT_SOAK_CHANNELS || 20);
const RATE = Number(process.env.RT_SOAK_RATE || 20);
const DROP = Number(process.env.RT_SOAK_DROP || 0.01);
const AWAY_MS = Number(process.env.RT_SOAK_AWAY_MS || 3000);
const NODES = Number(process.env.RT_SOAK_NODES || 1);
// The tokens outlive the run: past their expiry every resume was refused 4409
// (a 100-minute run on 2026-12-07 turned into a reconnect loop at 60 minutes).
const TOKEN_TTL = Math.max(3600, SECONDS + 600);

const log = (...a) => console.error(`[${new Date().toISOString()}]`, ...a);
const redis = NODES > 1 ? await startRedis(null) : null;
const redisMem = async () => (redis ? Number((await redis.cli("INFO", "memory")).match(/used_memory:(\d+)/)[1]) : null);
const key = NODES > 1 ? keygen() : undefined;
const gws = [];
for (let i = 0; i < NODES; i++)
  gws.push(await startGateway(null, {
    key,
    env: { RTGW_MAX_CONNECTIONS: String(SUBS + 200), RTGW_RATE_LIMIT_CLIENT_FRAMES: "0", RTGW_LOG_LEVEL: "warn",
      RTGW_TOKEN_MAX_TTL: String(TOKEN_TTL),
      ...(redis ? { RTGW_REDIS_URL: redis.url } : {}) },
    startMs: 60000,
  }));
const gw = gws[0];
const stats = { published: 0, delivered: 0, gaps: 0, duplicates: 0, reconnects: 0, unrecovered: 0,
  connect_errors: 0, closes_by_server: {} };
const published = new Array(CHANNELS).fill(null); // last n published per channel
let stopping = false;

const tokens = [];
for (let c = 0; c < CHANNELS; c++) tokens.push(await mint(gw, [topic(`soak:${c}`, "t")], { ttl: TOKEN_TTL, fresh: true }));

// Order and completeness are checked on the payload's n (the publisher sends
// n = 0, 1, 2 … round-robin, so channel ch carries ch, ch + CHANNELS, …); the
// last event id is what a resume sends as `since` (ids are opaque: with Redis
// they are stream ids).
class Sub {
  constructor(i) { this.i = i; this.ch = i % CHANNELS; this.node = i % NODES; this.lastId = null; this.lastN = null; this.ws = null; this.up = false; }
  open() {
    const since = this.lastId !== null ? `&since=${encodeURIComponent(this.lastId)}` : "";
    const url = `${gws[this.node].ws}/v1/realtime/connect?token=${encodeURIComponent(tokens[this.ch])}${since}`;
    return new Promise((resolve) => {
      const ws = new WebSocket(url, ["rtgw.v1"], { perMessageDeflate: false });
      this.ws = ws;
      let acked = false;
      ws.on("message", (d) => {
        const m = JSON.parse(d.toString());
        if (m.kind === "rtgw.subscribed") {
          const c = m.channels[`soak:${this.ch}`];
          if (this.lastId === null) this.lastId = c.id;
          else if (c.recovered !== true) stats.unrecovered++;
          acked = true; this.up = true; resolve(true);
          return;
        }
        if (m.kind !== "data") return;
        const n = m.data.n;
        this.lastId = m.id;
        const want = this.lastN === null ? this.ch : this.lastN + CHANNELS;
        if (this.lastN !== null && n <= this.lastN) stats.duplicates++;
        else { if (n !== want) stats.gaps += (n - want) / CHANNELS; this.lastN = n; stats.delivered++; }
      });
      ws.on("close", (code) => {
        this.up = false;
        if (!this.dropping && !stopping) stats.closes_by_server[code] = (stats.closes_by_server[code] || 0) + 1;
        this.dropping = false;
        if (!acked) { stats.connect_errors++; resolve(false); }
        if (!stopping) setTimeout(() => this.reopen(), 200 + Math.random() * AWAY_MS);
      });
      ws.on("error", () => {});
    });
  }
  async reopen() {
    if (stopping || this.up) return;
    stats.reconnects++;
    this.node = Math.floor(Math.random() * NODES);
    await this.open();
  }
  drop() { if (this.up) { this.dropping = true; this.ws.terminate(); } }
}

log(`connecting ${SUBS} subscribers on ${CHANNELS} channels`);
const subs = Array.from({ length: SUBS }, (_, i) => new Sub(i));
for (let i = 0; i < SUBS; i += 100) await Promise.all(subs.slice(i, i + 100).map((s) => s.open()));
const base = procStats(gw.pid);
log(`connected; gateway ${JSON.stringify(base)}`);

// samples: node 0's stats (as before); nodeRss[k]: node k's RSS per sample; redisMems: Redis used_memory.
const samples = [], nodeRss = gws.map(() => []), redisMems = [];
const t0 = Date.now();
const sample = async () => {
  samples.push({ t: (Date.now() - t0) / 1000, ...procStats(gw.pid) });
  gws.forEach((g, k) => nodeRss[k].push(procStats(g.pid).rssKb));
  redisMems.push(await redisMem());
};
const sampler = setInterval(sample, 10000);
await sample();
const dropper = setInterval(() => { for (const s of subs) if (Math.random() < DROP) s.drop(); }, 1000);

// Publisher: RATE events/s round-robin over the channels, with keep-alive fetch.
let n = 0;
while (Date.now() - t0 < SECONDS * 1000) {
  const due = t0 + (n * 1000) / RATE;
  if (due > Date.now()) await sleep(due - Date.now());
  const ch = n % CHANNELS;
  const r = await fetch(`${gws[n % NODES].url}/v1/realtime/publish?channel=soak:${ch}&topic=t`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ n }),
  });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`publish ${r.status} ${JSON.stringify(j)}`);
  published[ch] = n;
  stats.published++;
  n++;
  if (n % (RATE * 60) === 0) log(`${Math.round((Date.now() - t0) / 1000)} s: ${JSON.stringify(stats)} rss=${procStats(gw.pid).rssKb} kB`);
}
clearInterval(dropper);
clearInterval(sampler);

// Let everyone come back and catch up (bounded).
const deadline = Date.now() + 60000;
while (Date.now() < deadline && !subs.every((s) => s.up && s.lastN === published[s.ch])) await sleep(200);
const behind = subs.filter((s) => !(s.up && s.lastN === published[s.ch])).length;
stopping = true;
const end = procStats(gw.pid);
for (const s of subs) s.ws.terminate();
await sleep(2000);
const after = procStats(gw.pid);
for (const g of gws) await g.stop();
if (redis) await redis.stop();

const xs = samples.map((s) => s.t / 60), ys = samples.map((s) => s.rssKb);
const half = samples.filter((s) => s.t >= SECONDS / 2);
const result = {
  seconds: SECONDS, subscribers: SUBS, channels: CHANNELS, rate: RATE, ...stats, behind_at_end: behind,
  expected_deliveries: subs.reduce((a, s) => a + (published[s.ch] === null ? 0 : (published[s.ch] - s.ch) / CHANNELS + 1), 0),
  rss_kb: { start: base.rssKb, end: end.rssKb, min: Math.min(...ys), max: Math.max(...ys) },
  rss_slope_kb_per_min: Math.round(slope(xs, ys) * 10) / 10,
  rss_slope_second_half_kb_per_min: half.length > 2 ? Math.round(slope(half.map((s) => s.t / 60), half.map((s) => s.rssKb)) * 10) / 10 : null,
  fds: { start: base.fds, end: end.fds, after_disconnect: after.fds }, threads: { start: base.threads, end: end.threads },
  samples: samples.map((s) => [Math.round(s.t), s.rssKb]),
};
if (NODES > 1) {
  const last = (a) => a.slice(Math.max(0, a.length - 300)); // the last 50 minutes of 10-s samples
  result.nodes = nodeRss.map((ys, k) => ({
    node: k, rss_kb: { start: ys[0], end: ys[ys.length - 1], min: Math.min(...ys), max: Math.max(...ys) },
    rss_slope_kb_per_min: Math.round(slope(xs, ys) * 10) / 10,
    rss_slope_last_50min_kb_per_min: Math.round(slope(last(xs), last(ys)) * 10) / 10,
    samples: ys,
  }));
  result.redis_used_memory = { start: redisMems[0], end: redisMems[redisMems.length - 1], min: Math.min(...redisMems),
    max: Math.max(...redisMems), slope_bytes_per_min: Math.round(slope(xs, redisMems)), samples: redisMems };
}
console.log(JSON.stringify(result));
process.exit(stats.gaps || stats.duplicates || stats.unrecovered || behind ? 1 : 0);
