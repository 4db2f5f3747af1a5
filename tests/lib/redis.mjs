// Start and stop a real redis-server (Debian's) on a free loopback port.
//
//   const r = await startRedis(t, { password: "pw", appendonly: false });
//   r.url ("redis://:pw@127.0.0.1:PORT/0"), r.port, await r.cli("PUBSUB", "CHANNELS")
//   await r.stop()      SIGTERM by PID, waits for exit
//   await r.kill9()     SIGKILL by PID
//   await r.restart()   start again on the same port and directory
// Persistence is off (--save "" --appendonly no) unless appendonly is set.
// The process is always stopped by t.cleanup; its directory is removed.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "./gateway.mjs";
import { Skip } from "./harness.mjs";

function which(bin) {
  try { return execFileSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).trim(); } catch { return ""; }
}

export const REDIS_SERVER = process.env.REDIS_SERVER || which("redis-server");
export const REDIS_CLI = process.env.REDIS_CLI || which("redis-cli");

export async function startRedis(t, opts = {}) {
  if (!REDIS_SERVER || !REDIS_CLI)
    throw new Skip("redis-server/redis-cli not installed (scripts/deps.sh test installs redis-server)");
  const port = opts.port || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-redis-"));
  let child = null, exited = null, log = "";
  const args = () => [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no",
    "--save", "", "--appendonly", opts.appendonly ? "yes" : "no",
    ...(opts.password ? ["--requirepass", opts.password] : []),
    "--loglevel", "warning",
  ];
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  const r = {
    port, dir,
    url: `redis://${auth}127.0.0.1:${port}/0`,
    logs: () => log,
    async start() {
      child = spawn(REDIS_SERVER, args(), { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.on("data", (d) => (log += d));
      child.stderr.on("data", (d) => (log += d));
      exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
      const deadline = Date.now() + 10000;
      for (;;) {
        try { if ((await r.cli("PING")).trim() === "PONG") return; } catch {}
        if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}:\n${log}`);
        if (Date.now() > deadline) throw new Error(`redis-server did not answer within 10 s:\n${log}`);
        await new Promise((res) => setTimeout(res, 30));
      }
    },
    async cli(...cmd) {
      const a = ["-h", "127.0.0.1", "-p", String(port), ...(opts.password ? ["--no-auth-warning", "-a", opts.password] : []), ...cmd];
      return execFileSync(REDIS_CLI, a, { encoding: "utf8", timeout: 5000 });
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGTERM");
      return exited;
    },
    async kill9() {
      if (child && child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL");
      return exited;
    },
    async restart() { await r.stop(); await r.start(); },
    // Freeze (SIGSTOP) and thaw (SIGCONT) the server: connections stay open and
    // every command waits, as with a stalled or partitioned Redis.
    pause() { if (child && child.exitCode === null) process.kill(child.pid, "SIGSTOP"); },
    resume() { if (child && child.exitCode === null) process.kill(child.pid, "SIGCONT"); },
  };
  if (t) t.cleanup(async () => { r.resume(); await r.kill9(); fs.rmSync(dir, { recursive: true, force: true }); });
  await r.start();
  return r;
}
