// Run `rtgw doctor` from a test and judge its report.
//
//   const r = await doctor([url, "--signing-key", gw.key]);   // --json added
//   r.code, r.out, r.err, r.json, r.byName.<check>, r.failed (the failed check)
//   assertFailedAt(r, "upgrade", /found text/, /fix text/);
//   assertNoWarnings(r);   // exit 0, every check ok (tls may be skipped on plain http)
//
// options: env, cwd, json (default true), timeoutMs, nofile (run under that
// RLIMIT_NOFILE through sh's ulimit), input (written to stdin, for --signing-key -).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import os from "node:os";
import { RTGW_BIN } from "./gateway.mjs";

export function doctor(args, { env = {}, cwd = os.tmpdir(), json = true, timeoutMs = 25000, nofile, input } = {}) {
  return new Promise((resolve, reject) => {
    const argv = ["doctor", ...args, ...(json ? ["--json"] : [])];
    const [bin, binArgs] = nofile ? ["sh", ["-c", `ulimit -n ${nofile} && exec "$0" "$@"`, RTGW_BIN, ...argv]] : [RTGW_BIN, argv];
    const child = spawn(bin, binArgs, {
      env: { PATH: process.env.PATH, ...env }, cwd, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) child.stdin.end(input);
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const r = { code, out, err };
      if (json && code !== 2) {
        try { r.json = JSON.parse(out); } catch (e) { return reject(new Error(`doctor printed no JSON (exit ${code}):\n${out}\n${err}`)); }
        r.byName = Object.fromEntries(r.json.checks.map((c) => [c.name, c]));
        r.failed = r.json.checks.find((c) => c.status === "fail");
      }
      resolve(r);
    });
  });
}

export const show = (r) => `exit ${r.code}\n${JSON.stringify(r.json, null, 2)}\n${r.err}`;

// Asserts doctor failed at check `name` (the last check it ran) with text matching re,
// and a fix matching fixRe.
export function assertFailedAt(r, name, re, fixRe) {
  assert.equal(r.code, 1, show(r));
  assert.equal(r.json.ok, false, show(r));
  assert.ok(r.failed, `no failed check:\n${show(r)}`);
  assert.equal(r.failed.name, name, show(r));
  assert.equal(r.json.checks.at(-1).name, name, `doctor went on after the failure:\n${show(r)}`);
  assert.match(r.failed.found, re, show(r));
  if (fixRe) assert.match(r.failed.fix || "", fixRe, show(r));
}

// Asserts a clean report: exit 0 and every check ok (a plain URL skips tls).
export function assertNoWarnings(r) {
  assert.equal(r.code, 0, show(r));
  for (const c of r.json.checks) {
    if (c.name === "tls" && c.status === "skip") continue;
    assert.equal(c.status, "ok", `${c.name} is ${c.status}:\n${show(r)}`);
  }
}
