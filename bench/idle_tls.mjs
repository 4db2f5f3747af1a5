// bench/idle_tls.mjs — what an idle subscriber costs rtgw over ws and over
// wss (rtgw terminating TLS itself): resident memory and threads per
// connection, measured from /proc of a real `rtgw serve` on loopback.
//
//   node bench/idle_tls.mjs [BUILD_DIR]      (BENCH_IDLE_SUBS, default 2000)
//
// For each transport: start a gateway, read its VmRSS and thread count, open
// BENCH_IDLE_SUBS subscribers (one token each, batches of 100) that then stay
// idle, wait for the RSS to settle, read again, and print the difference per
// connection. Needs tests/node_modules (scripts/deps.sh test). Bounded: each
// transport takes a few seconds, the whole run stops by itself.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const build = path.resolve(root, process.argv[2] || "build");
process.env.RTGW_BIN = process.env.RTGW_BIN || path.join(build, "rtgw");
const { startGateway, mint } = await import(`${root}/tests/lib/gateway.mjs`);
const { selfSigned } = await import(`${root}/tests/lib/certs.mjs`);
const { connect, wsUrl } = await import(`${root}/tests/lib/ws.mjs`);
const { sleep } = await import(`${root}/tests/lib/wait.mjs`);

const N = Number(process.env.BENCH_IDLE_SUBS || 2000);

function status(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return { rssKiB: Number(s.match(/^VmRSS:\s+(\d+)/m)[1]), threads: Number(s.match(/^Threads:\s+(\d+)/m)[1]) };
}

// The RSS once it stops moving: at least 2 s after the last connection (the
// front door gives a burst of handshakes' memory back within a second), then
// until two reads 500 ms apart agree within 64 KiB.
async function settle(pid) {
  await sleep(2000);
  let last = status(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(500);
    const now = status(pid);
    if (Math.abs(now.rssKiB - last.rssKiB) < 64) return now;
    last = now;
  }
  return last;
}

async function measure(tls) {
  const cleanups = [];
  const t = { cleanup: (f) => cleanups.push(f) };
  const dir = fs.mkdtempSync("/tmp/rtgw-idle-tls-");
  const gw = await startGateway(t, {
    tls: tls ? selfSigned(dir, "gw") : undefined,
    env: { RTGW_MAX_CONNECTIONS: String(N + 100), RTGW_LOG_LEVEL: "warn" },
  });
  try {
    const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
    // Warm up: one connection, so first-use allocations are not counted.
    const warm = await connect(wsUrl(gw, jwt), { wsOpts: { ca: gw.ca } });
    const base = await settle(gw.pid);
    const subs = [warm];
    for (let i = 0; i < N; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 100); j++) batch.push(connect(wsUrl(gw, jwt), { wsOpts: { ca: gw.ca }, ms: 30000 }));
      subs.push(...(await Promise.all(batch)));
    }
    const loaded = await settle(gw.pid);
    for (const s of subs) s.ws.terminate();
    return {
      transport: tls ? "wss" : "ws",
      perConnKiB: (loaded.rssKiB - base.rssKiB) / N,
      threadsBefore: base.threads, threadsWith: loaded.threads,
      rssBaseMiB: base.rssKiB / 1024, rssWithMiB: loaded.rssKiB / 1024,
    };
  } finally {
    for (const f of cleanups) f();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [await measure(false), await measure(true)];
console.log(`idle subscribers: ${N} per transport; rtgw ${process.env.RTGW_BIN}`);
console.log("transport | KiB per idle connection | threads before → with them | RSS before → with (MiB)");
for (const r of rows)
  console.log(`${r.transport} | ${r.perConnKiB.toFixed(2)} | ${r.threadsBefore} → ${r.threadsWith} | ${r.rssBaseMiB.toFixed(1)} → ${r.rssWithMiB.toFixed(1)}`);
console.log(`wss / ws: ${(rows[1].perConnKiB / rows[0].perConnKiB).toFixed(2)}×`);
process.exit(0);
