// Helpers for the hardening tier: start rtgw (optionally under a wrapper such as
// valgrind), read its RSS / file descriptors / threads from /proc, and small
// bounded WebSocket and HTTP clients. Loopback only; every wait is bounded.
import fs from "node:fs";
import nodeHttp from "node:http";
import { spawn, execFileSync } from "node:child_process";
import WebSocket from "ws";
import { RTGW_BIN, freePort, keygen } from "../lib/gateway.mjs";

export { WebSocket, RTGW_BIN };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// Start `rtgw serve` (wrap: e.g. ["valgrind", "--leak-check=full"]). Resolves once it
// prints "listening on". gw.pid is rtgw's pid (the wrapper execs it in place).
export async function startGateway(t, { env = {}, wrap = [], startMs = 15000, dev = false } = {}) {
  const port = await freePort();
  const key = keygen();
  const fullEnv = {
    PATH: process.env.PATH,
    RTGW_LISTEN: `127.0.0.1:${port}`,
    RTGW_LOG_LEVEL: "warn",
    RTGW_SIGNING_KEY: key,
    ...env,
  };
  const argv = [...wrap, RTGW_BIN, "serve", ...(dev ? ["--dev"] : [])];
  const child = spawn(argv[0], argv.slice(1), { env: fullEnv, cwd: "/tmp", stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const gw = {
    port, key, child, pid: child.pid, exited,
    url: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    logs: () => err,
    async stop(sig = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return exited;
    },
  };
  if (t) t.cleanup(() => { if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); });
  const deadline = Date.now() + startMs;
  while (!/listening on/.test(out)) {
    if (child.exitCode !== null) throw new Error(`rtgw exited ${child.exitCode} before listening:\n${err}`);
    if (Date.now() > deadline) throw new Error(`rtgw did not start within ${startMs} ms:\n${err}`);
    await sleep(25);
  }
  return gw;
}

// True when rtgw is an AddressSanitizer build (-DRT_SANITIZE=ON, `make test-asan`):
// valgrind cannot run it, LeakSanitizer checks leaks at exit instead (a leak makes
// the exit code non-zero), and ASan's quarantine makes RSS meaningless.
export function sanitizedBuild(bin = RTGW_BIN) {
  try { return /libasan/.test(execFileSync("ldd", [bin], { encoding: "utf8" })); } catch { return false; }
}

// RSS (kB), open file descriptors and threads of a process, from /proc.
export function procStats(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const num = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+)`, "m")) || [])[1]);
  return { rssKb: num("VmRSS"), threads: num("Threads"), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

// One HTTP request on a connection of its own, closed after: a keep-alive
// socket left in a client pool would count as a gateway fd in the checks.
export function http(gw, method, path, { body, headers = {}, key } = {}) {
  const h = { Connection: "close", ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (body !== undefined) h["Content-Length"] = Buffer.byteLength(body);
  return withTimeout(new Promise((resolve, reject) => {
    const req = nodeHttp.request(`${gw.url}${path}`, { method, headers: h, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let json; try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text, headers: res.headers });
      });
    });
    req.on("error", reject);
    req.end(body);
  }), 15000, `${method} ${path}`);
}

export async function mint(gw, topics, { ttl = 600, publish = false } = {}) {
  const r = await http(gw, "POST", "/v1/realtime/token", {
    key: gw.key, headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ topics: topics.map(([channel, name]) => ({ channel, name, kind: "run" })), ttl, publish }),
  });
  if (r.status !== 201) throw new Error(`mint ${r.status} ${r.text}`);
  return r.json.jwt;
}

export async function publish(gw, channel, topic, data, extra = "") {
  return http(gw, "POST", `/v1/realtime/publish?channel=${encodeURIComponent(channel)}&topic=${encodeURIComponent(topic)}${extra}`, {
    key: gw.key, headers: { "Content-Type": "application/json" }, body: JSON.stringify(data),
  });
}

// A WebSocket client that queues parsed messages; next() waits (bounded) for the next.
export function wsClient(url, { protocols = ["rtgw.v1"], ms = 15000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    const c = {
      ws, msgs: [], read: 0, waiters: [], closeInfo: null,
      next(ms2 = 10000, what = "a message") {
        if (c.read < c.msgs.length) return Promise.resolve(c.msgs[c.read++]);
        if (c.closeInfo) return Promise.reject(new Error(`closed (${c.closeInfo.code} ${c.closeInfo.reason}) waiting for ${what}`));
        return withTimeout(new Promise((res, rej) => c.waiters.push({ res, rej })), ms2, what);
      },
      close() { try { ws.close(); } catch {} },
    };
    c.closed = new Promise((res) => ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      for (const w of c.waiters.splice(0)) w.rej(new Error(`closed (${code} ${reason})`));
      res(c.closeInfo);
    }));
    ws.on("message", (d) => {
      let m; try { m = JSON.parse(d.toString()); } catch { m = { __not_json: d.toString() }; }
      c.msgs.push(m);
      if (c.waiters.length) { c.read++; c.waiters.shift().res(m); }
    });
    ws.on("open", () => resolve(c));
    ws.on("unexpected-response", (req, res) => { req.destroy(); reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })); });
    ws.on("error", reject);
  }), ms, "WebSocket open");
}

// Least-squares slope of y over x.
export function slope(xs, ys) {
  const n = xs.length, mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2; }
  return den ? num / den : 0;
}
