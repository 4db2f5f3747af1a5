// sdk/js as an npm package: `npm pack` ships exactly the library (no tests, no
// stray files), every export's "types" and code are in the tarball, and the
// tarball installs (offline: it has no dependencies) and imports by its
// public names only. One defcase per CTest entry "sdk-js.pack.<case>".
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defcase, run } from "../lib/harness.mjs";
import { tmpDir } from "../lib/proc.mjs";

const sdkDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../sdk/js");
const pkg = JSON.parse(fs.readFileSync(path.join(sdkDir, "package.json"), "utf8"));
const npm = (args, cwd) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"],
  { cwd, encoding: "utf8", timeout: 60000 });

// Every file an export names ("./x.js"), without the leading "./".
function exportTargets() {
  const out = [];
  for (const [name, v] of Object.entries(pkg.exports)) {
    if (typeof v === "string") out.push(v);
    else out.push(...Object.values(v));
    assert.ok(name === "./package.json" || typeof v === "object" && v.types, `export ${name} has types`);
  }
  return out.map((f) => f.replace(/^\.\//, ""));
}

defcase("npm_pack_lists_only_the_library", async (t) => {
  const [r] = JSON.parse(npm(["pack", "--dry-run", "--json"], sdkDir));
  const files = r.files.map((f) => f.path).sort();
  console.log(`tarball ${r.filename}:\n  ${files.join("\n  ")}`);
  assert.deepEqual(files, ["README.md", "codes.d.ts", "codes.js", "index.d.ts", "index.js", "node.d.ts",
    "node.js", "package.json", "react.d.ts", "react.js"]);
  for (const f of files) assert.doesNotMatch(f, /test|spec|\.mjs$|node_modules/i);
  for (const f of exportTargets()) assert.ok(files.includes(f), `export target ${f} is in the tarball`);
  assert.ok(files.includes(pkg.types.replace(/^\.\//, "")));
});

defcase("npm_pack_installs_and_imports", async (t) => {
  const dir = tmpDir(t, "rtgw-npm-");
  npm(["pack", "--pack-destination", dir], sdkDir);
  const tgz = fs.readdirSync(dir).find((f) => f.endsWith(".tgz"));
  assert.ok(tgz, "npm pack wrote a tarball");
  const app = path.join(dir, "app");
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  npm(["install", "--offline", path.join(dir, tgz)], app);
  const probe = `
    const root = await import("@rtgw/client");
    const node = await import("@rtgw/client/node");
    const codes = await import("@rtgw/client/codes");
    const react = await import("@rtgw/client/react").catch((e) => e);
    const internal = await import("@rtgw/client/index.js").then(() => "imported", (e) => e.code);
    console.log(JSON.stringify({ root: Object.keys(root).sort(), node: Object.keys(node).sort(),
      codes: Object.keys(codes).length, internal, react: react instanceof Error ? react.code : "ok" }));`;
  const out = JSON.parse(execFileSync("node", ["--input-type=module", "-e", probe], { cwd: app, encoding: "utf8" }));
  assert.ok(out.root.includes("subscribe"), JSON.stringify(out.root));
  assert.ok(out.node.includes("mintToken") && out.node.includes("publish"), JSON.stringify(out.node));
  assert.ok(out.codes > 0);
  assert.equal(out.internal, "ERR_PACKAGE_PATH_NOT_EXPORTED", "only the exports are reachable");
  // Installed files come from the tarball, with their types beside them.
  const inst = path.join(app, "node_modules/@rtgw/client");
  for (const f of exportTargets()) assert.ok(fs.existsSync(path.join(inst, f)), `installed ${f}`);
  console.log(`react export: ${out.react}`);
});

await run();
