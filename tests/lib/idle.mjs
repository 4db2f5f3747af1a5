// Idle sockets: TCP connections that connect and never send a byte (the cheapest
// attack on a server that gives each connection a thread), and the latency of a
// request made while they are open. One Node thread; the caller owns the sockets
// (pass `t` and t.cleanup destroys them).
//
//   const idle = await openIdle(gw.port, 300, { t, localAddress: "127.0.0.2" });
//   idle.open()                  how many the server has not closed yet
//   await idle.allClosed(5000)   waits until the server closed every one (throws after ms)
//   idle.conns                   [{ openedAt, closedAt }] (Date.now() values; closedAt null while open)
//   idle.destroy()
//   const ms = await timedGet(`${gw.url}/health`)   one GET on a fresh connection: its ms
//   fdLimit()                    this process's soft RLIMIT_NOFILE (Infinity if unknown)
//   const ka = await openKeptAlive(gw.port, 100, { t, ca })   100 connections that each made one
//                                keep-alive GET /health, then idle; ka.again(i) makes another on
//                                connection i ({ status }); ka.open() as above
import fs from "node:fs";
import nodeHttp from "node:http";
import nodeHttps from "node:https";
import net from "node:net";
import tls from "node:tls";
import { sleep, withTimeout } from "./wait.mjs";

// Opens n connections to host:port, `batch` at a time, each sending nothing.
// Resolves once every one has connected (or failed: counted in `failed`).
export async function openIdle(port, n, { host = "127.0.0.1", localAddress, t, batch = 100 } = {}) {
  const conns = [];
  let failed = 0;
  for (let i = 0; i < n; i += batch) {
    const wave = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      wave.push(new Promise((resolve) => {
        const c = { openedAt: null, closedAt: null, sock: null };
        const sock = net.connect({ port, host, localAddress });
        c.sock = sock;
        const closed = () => { if (c.closedAt === null) c.closedAt = Date.now(); };
        sock.on("connect", () => { c.openedAt = Date.now(); conns.push(c); resolve(); });
        sock.on("end", closed);
        sock.on("close", () => { closed(); if (c.openedAt === null) { failed++; resolve(); } });
        sock.on("error", () => {});
      }));
    }
    await Promise.all(wave);
  }
  const idle = {
    conns,
    get failed() { return failed; },
    open: () => conns.filter((c) => c.closedAt === null).length,
    async allClosed(ms) {
      const until = Date.now() + ms;
      while (idle.open() > 0) {
        if (Date.now() > until) throw new Error(`${idle.open()} of ${conns.length} idle sockets still open after ${ms} ms`);
        await sleep(10);
      }
    },
    destroy() { for (const c of conns) c.sock.destroy(); },
  };
  if (t) t.cleanup(() => idle.destroy());
  return idle;
}

// One keep-alive GET /health on sock; resolves with the response's status once
// its whole body (Content-Length) has arrived.
function keepAliveGet(sock, ms = 10000) {
  return withTimeout(new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = Number((buf.slice(0, end).match(/\r\ncontent-length:\s*(\d+)/i) || [])[1] || 0);
      if (buf.length < end + 4 + len) return;
      sock.off("data", onData);
      resolve({ status: Number(buf.slice(9, 12)), head: buf.slice(0, end) });
    };
    sock.on("data", onData);
    sock.once("close", () => reject(new Error("the server closed the kept-alive connection")));
    sock.write("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n");
  }), ms, "a keep-alive GET /health");
}

// n connections (TLS with `ca`), `batch` at a time, each making one keep-alive
// GET /health and then sending nothing.
export async function openKeptAlive(port, n, { ca, t, batch = 50 } = {}) {
  const conns = [];
  for (let i = 0; i < n; i += batch) {
    const wave = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      wave.push((async () => {
        const sock = ca ? tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca })
          : net.connect({ port, host: "127.0.0.1" });
        const c = { sock, closedAt: null };
        sock.on("error", () => {});
        sock.on("close", () => { c.closedAt = Date.now(); });
        await new Promise((resolve, reject) => {
          sock.once(ca ? "secureConnect" : "connect", resolve);
          sock.once("close", () => reject(new Error("closed before connecting")));
        });
        const r = await keepAliveGet(sock);
        if (r.status !== 200) throw new Error(`GET /health: ${r.status}`);
        conns.push(c);
      })());
    }
    await Promise.all(wave);
  }
  const ka = {
    conns,
    open: () => conns.filter((c) => c.closedAt === null).length,
    again: (i) => keepAliveGet(conns[i].sock),
    destroy() { for (const c of conns) c.sock.destroy(); },
  };
  if (t) t.cleanup(() => ka.destroy());
  return ka;
}

// One GET on a connection of its own (no keep-alive pool); resolves with
// { ms, status }. `ca` for https.
export function timedGet(url, { ca, ms = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const mod = url.startsWith("https:") ? nodeHttps : nodeHttp;
    const req = mod.get(url, { agent: false, ca, headers: { Connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.setTimeout(ms, () => req.destroy(new Error(`GET ${url}: no answer within ${ms} ms`)));
    req.on("error", reject);
  });
}

// The soft limit on open files of this process (Linux /proc), Infinity if unknown.
export function fdLimit() {
  try {
    const m = fs.readFileSync("/proc/self/limits", "utf8").match(/^Max open files\s+(\S+)/m);
    return m && m[1] !== "unlimited" ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}
