// Start and stop real rtgw processes for tests.
//
//   const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "10" }, dev: false });
//   gw.url ("http://127.0.0.1:PORT"), gw.ws ("ws://…"), gw.key (signing key), gw.logs()
//   await gw.stop()          SIGTERM, waits for exit, returns { code, signal }
//   gw.kill9()               SIGKILL
// The process is always stopped by t.cleanup. Binary: $RTGW_BIN or build/rtgw.
import { spawn, execFileSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

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

export async function startGateway(t, opts = {}) {
  const port = opts.port || (await freePort());
  const key = opts.key === undefined ? keygen() : opts.key;
  const env = {
    PATH: process.env.PATH,
    RTGW_LISTEN: `127.0.0.1:${port}`,
    RTGW_LOG_LEVEL: "debug",
    ...(key ? { RTGW_SIGNING_KEY: key } : {}),
    ...(opts.env || {}),
  };
  const args = ["serve", ...(opts.dev ? ["--dev"] : []), ...(opts.args || [])];
  const child = spawn(RTGW_BIN, args, { env, cwd: opts.cwd || "/tmp", stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const gw = {
    port, key, child,
    url: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
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
  const deadline = Date.now() + 10000;
  while (!/listening on/.test(out)) {
    if (child.exitCode !== null) throw new Error(`rtgw exited ${child.exitCode} before listening:\n${err}`);
    if (Date.now() > deadline) throw new Error(`rtgw did not start within 10 s:\n${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  if (opts.dev) {
    const m = out.match(/signing key\s+(\S+)/);
    if (m) gw.key = m[1];
  }
  return gw;
}

export async function mint(gw, topics, { key = gw.key, ttl, publish } = {}) {
  const body = ttl || publish ? { topics, ttl, publish } : topics;
  const res = await fetch(`${gw.url}/v1/realtime/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 201) throw new Error(`mint failed ${res.status}: ${JSON.stringify(json)}`);
  return json.jwt;
}

export async function publish(gw, channel, topic, data, { key = gw.key, query = "", headers = {} } = {}) {
  const res = await fetch(`${gw.url}/v1/realtime/publish?channel=${encodeURIComponent(channel)}&topic=${encodeURIComponent(topic)}${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}`, ...headers },
    body: typeof data === "string" ? data : JSON.stringify(data),
  });
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, body: json, headers: res.headers };
}
