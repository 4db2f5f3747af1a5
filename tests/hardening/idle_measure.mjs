// The figures of docs/hardening.md, "Idle connections": the latency of GET /health
// on a fresh connection while N connections that never send a byte are open.
// Not a CTest entry (the old gateway takes minutes at 2 000).
//
//   ulimit -n 20000; node tests/hardening/idle_measure.mjs [N ...]   (default 0 300 2000)
//   RTGW_BIN=/path/to/rtgw node tests/hardening/idle_measure.mjs 300
//
// For each N: a fresh gateway (defaults, RTGW_LISTEN on 127.0.0.1), N idle sockets
// from 127.0.0.2, then 5 GETs one after the other from 127.0.0.1; prints the
// first one's time (the one that meets the idle sockets), the median and the
// worst, in ms, and how many got no answer at all (the time until the
// connection was dropped counts as their latency).
import os from "node:os";
import { startGateway, RTGW_BIN } from "../lib/gateway.mjs";
import { openIdle, timedGet, fdLimit } from "../lib/idle.mjs";

const counts = process.argv.slice(2).map(Number);
if (!counts.length) counts.push(0, 300, 2000);
if (fdLimit() < Math.max(...counts) + 200) {
  console.error(`the open-files limit (${fdLimit()}) is too low: ulimit -n ${Math.max(...counts) + 200}`);
  process.exit(77);
}
console.log(`# ${RTGW_BIN}\n# ${os.cpus().length} x ${os.cpus()[0].model}, ${os.type()} ${os.release()}, node ${process.version}`);
for (const n of counts) {
  const cleanups = [];
  const t = { cleanup: (f) => cleanups.push(f) };
  const gw = await startGateway(t);
  await timedGet(`${gw.url}/health`); // warm
  const idle = await openIdle(gw.port, n, { t, localAddress: "127.0.0.2" });
  const ms = [];
  let failed = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    try {
      ms.push((await timedGet(`${gw.url}/health`, { ms: 600000 })).ms);
    } catch { /* the old gateway drops a request that waited past its deadline */
      ms.push(Date.now() - t0);
      failed++;
    }
  }
  const first = ms[0];
  ms.sort((a, b) => a - b);
  console.log(`idle=${n} first_ms=${first.toFixed(1)} median_ms=${ms[2].toFixed(1)} max_ms=${ms[4].toFixed(1)} ` +
    `unanswered=${failed}/5 idle_still_open=${idle.open()}`);
  for (const f of cleanups.reverse()) await f();
}
