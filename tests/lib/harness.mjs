// Node test harness: every case is its own CTest entry.
//
//   import { defcase, run } from "../lib/harness.mjs";
//   defcase("name", async (t) => { ... });   // one per line start, so CMake can scan it
//   await run();
//
//   node file.mjs <case>   runs one case: exit 0 pass, 1 fail, 77 skip
//   node file.mjs --list   lists cases
//
// t.cleanup(fn) registers teardown (run in reverse order, also on failure);
// cases time out after RT_CASE_TIMEOUT_MS (default 60 s).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cases = new Map();
export function defcase(name, fn) {
  if (cases.has(name)) throw new Error(`duplicate case ${name}`);
  cases.set(name, fn);
}

export class Skip extends Error {}

const testsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export function requireNodeModules(...pkgs) {
  for (const p of pkgs) {
    if (!fs.existsSync(path.join(testsDir, "node_modules", p, "package.json"))) {
      console.error(`FAIL: tests/node_modules/${p} is missing: run scripts/deps.sh test (or cd tests && npm ci)`);
      process.exit(1);
    }
  }
}

export async function run() {
  const name = process.argv[2];
  if (!name || name === "--list") {
    for (const n of cases.keys()) console.log(n);
    process.exit(name ? 0 : 2);
  }
  const fn = cases.get(name);
  if (!fn) {
    console.error(`no case named ${name} (try --list)`);
    process.exit(2);
  }
  const cleanups = [];
  const t = { cleanup: (f) => cleanups.push(f), name };
  const timeoutMs = Number(process.env.RT_CASE_TIMEOUT_MS || 60000);
  let timer;
  let code = 0;
  try {
    await Promise.race([
      fn(t),
      new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`case timed out after ${timeoutMs} ms`)), timeoutMs); }),
    ]);
    console.log(`PASS ${name}`);
  } catch (e) {
    if (e instanceof Skip) {
      console.log(`SKIP ${name}: ${e.message}`);
      code = 77;
    } else {
      console.error(`FAIL ${name}\n${e && e.stack ? e.stack : e}`);
      code = 1;
    }
  } finally {
    clearTimeout(timer);
    for (const f of cleanups.reverse()) {
      try { await f(); } catch (e) { console.error(`cleanup: ${e.message}`); }
    }
  }
  process.exit(code);
}
