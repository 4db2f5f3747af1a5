// Processes for tests: temporary directories, running rtgw to completion, a
// long-running helper process (a proxy) stopped by its PID, and what /proc says
// about a process (RSS, fds, threads). One Node thread; every process and
// directory made here is removed by the case's t.cleanup.
//
//   const d = tmpDir(t)                                   removed at cleanup
//   const r = await runRtgw(["check"], env)               { code, signal, stdout, stderr, ms }
//   const p = await spawnService(t, "caddy", bin, args, { env, cwd })   p.child, p.logs()
//   procStats(pid) → { rssKb, threads, fds }; rssKb(pid); sanitizedBuild()
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import { RTGW_BIN } from "./gateway.mjs";
import { sleep } from "./wait.mjs";

export function tmpDir(t, prefix = "rtgw-it-") {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (t) t.cleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// Run rtgw to completion (bounded); resolves { code, signal, stdout, stderr, ms }.
export function runRtgw(args, env, { cwd, ms = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(RTGW_BIN, args, { env: { PATH: process.env.PATH, ...env }, cwd: cwd || os.tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`rtgw ${args.join(" ")} did not exit within ${ms} ms:\n${stderr}`)); }, ms);
    child.on("exit", (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

// Spawn a service (a proxy) in the foreground, its stdout and stderr kept in
// logs(); t.cleanup stops it by its PID (SIGTERM, then SIGKILL after 5 s).
export async function spawnService(t, name, bin, args, { env, cwd } = {}) {
  const child = spawn(bin, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stdout.on("data", (d) => (logs += d));
  child.stderr.on("data", (d) => (logs += d));
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  child.on("error", (e) => (logs += `spawn ${name}: ${e.message}\n`));
  t.cleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const r = await Promise.race([exited, sleep(5000).then(() => null)]);
    if (!r) { child.kill("SIGKILL"); await exited; }
  });
  return { child, exited, logs: () => logs };
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

// RSS (kB) of a process; NaN if /proc does not say.
export const rssKb = (pid) => procStats(pid).rssKb;
