// Start and stop real rtgw processes for tests.
//
//   const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "10" }, dev: false });
//   gw.url ("http://127.0.0.1:PORT"), gw.ws ("ws://…"), gw.key (signing key), gw.logs()
//   gw.pid                   rtgw's pid (a wrapper such as valgrind execs it in place)
//   await gw.stop()          SIGTERM, waits for exit, returns { code, signal }
//   gw.kill9()               SIGKILL
//   const jwt = await mint(gw, [{ channel, name, kind: "run" }], { ttl, publish })
//   const r = await publish(gw, channel, topic, data)   { status, body, headers }
// The process is always stopped by t.cleanup. Binary: $RTGW_BIN or build/rtgw.
// One Node thread; the caller owns gw until t.cleanup.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "./http.mjs";
import { sleep } from "./wait.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const RTGW_BIN = process.env.RTGW_BIN || path.join(root, "build", "rtgw");

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function keygen(env = "test") {
  return execFileSync(RTGW_BIN, ["keygen", "--env", env], { encoding: "utf8" }).trim();
}

// opts: port, key (null: none), env, dev, args, cwd, bin (another rtgw binary,
// e.g. an installed copy; RTGW_BIN by default); expectFail (do not wait for
// "listening on"); wrap (argv run in front of rtgw, e.g. ["valgrind", …]);
// startMs (how long it may take to listen, 10 s).
export async function startGateway(t, opts = {}) {
  // freePort() closes its probe before rtgw binds, so a case running in
  // parallel can take the port in between: rtgw then exits "Address already in
  // use". Such a start is tried again on another port (never with opts.port).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(t, opts, opts.port || (await freePort()));
    } catch (e) {
      if (opts.port || attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
    }
  }
}

async function startOnce(t, opts, port) {
  const key = opts.key === undefined ? keygen() : opts.key;
  const startMs = opts.startMs || 10000;
  const env = {
    PATH: process.env.PATH,
    RTGW_LISTEN: `127.0.0.1:${port}`,
    RTGW_LOG_LEVEL: "debug",
    ...(key ? { RTGW_SIGNING_KEY: key } : {}),
    ...(opts.tls ? { RTGW_TLS_CERT: opts.tls.cert, RTGW_TLS_KEY: opts.tls.key } : {}),
    ...(opts.env || {}),
  };
  const argv = [...(opts.wrap || []), opts.bin || RTGW_BIN, "serve", ...(opts.dev ? ["--dev"] : []), ...(opts.args || [])];
  const child = spawn(argv[0], argv.slice(1), { env, cwd: opts.cwd || "/tmp", stdio: ["ignore", "pipe", "pipe"] });
  // A binary that cannot be started (a wrong RTGW_BIN) is an error of this
  // start, not an unhandled 'error' event that ends the process before the
  // case's cleanups (a Redis it started) run.
  let spawnError = null;
  child.on("error", (e) => (spawnError = e));
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  // "close", not "exit": the exit can come before the last of stderr has been read.
  const exited = new Promise((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal }));
    child.on("error", () => resolve({ code: null, signal: null, error: spawnError }));
  });
  const gw = {
    port, key, child, pid: child.pid,
    // opts.tls ({ key, cert } files, lib/certs.mjs): rtgw terminates TLS, and
    // gw.ca is the PEM that clients trust (mint and publish use it).
    url: opts.tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    ws: opts.tls ? `wss://localhost:${port}` : `ws://127.0.0.1:${port}`,
    ca: opts.tls ? fs.readFileSync(opts.tls.cert) : undefined,
    logs: () => err,
    stdout: () => out,
    exited,
    async stop(sig = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return exited;
    },
    kill9() { if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); return exited; },
  };
  if (t) t.cleanup(() => gw.kill9());
  if (opts.expectFail) return gw;
  const deadline = Date.now() + startMs;
  while (!/listening on/.test(out)) {
    if (spawnError) throw new Error(`cannot start ${argv[0]}: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`rtgw exited ${child.exitCode} before listening:\n${err}`);
    if (Date.now() > deadline) throw new Error(`rtgw did not start within ${startMs} ms:\n${err}`);
    await sleep(20);
  }
  if (opts.dev) {
    const m = out.match(/signing key\s+(\S+)/);
    if (m) gw.key = m[1];
  }
  return gw;
}

// POST a JSON body to the gateway (or to `base`, a proxy in front of it), with
// `key` as the Bearer token; `fresh`: on a connection of its own (lib/http.mjs).
// No time bound without `fresh`, as before; { status, json, text, headers }.
function post(gw, p, body, { key = gw.key, headers = {}, base = gw.url, fresh = false } = {}) {
  return request(`${base}${p}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    fresh, ca: gw.ca, ms: fresh || gw.ca ? 15000 : 0,
  });
}

// A token for `topics`; throws unless the gateway answers 201.
export async function mint(gw, topics, { key = gw.key, ttl, publish, fresh } = {}) {
  const body = ttl || publish ? { topics, ttl, publish } : topics;
  const r = await post(gw, "/v1/realtime/token", body, { key, fresh });
  if (r.status !== 201) throw new Error(`mint failed ${r.status}: ${JSON.stringify(r.json ?? r.text)}`);
  return r.json.jwt;
}

// Publish `data` (a string is sent as is); `query` is appended to the URL, `base`
// sends it through a proxy. body is the parsed JSON reply, or its text.
export async function publish(gw, channel, topic, data, { key = gw.key, query = "", headers = {}, base, fresh } = {}) {
  const r = await post(gw, `/v1/realtime/publish?channel=${encodeURIComponent(channel)}&topic=${encodeURIComponent(topic)}${query}`,
    data, { key, headers, base, fresh });
  return { status: r.status, body: r.json === undefined ? r.text : r.json, headers: r.headers };
}
