// Configuration refusals: `rtgw serve` with a bad environment exits 2 with one
// clear stderr line naming the variable; a port in use exits 1.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { defcase, run } from "../lib/harness.mjs";
import { keygen, freePort, startGateway } from "../lib/gateway.mjs";
import { runRtgw, tmpDir } from "../lib/proc.mjs";
import { withTimeout } from "../lib/wait.mjs";

// Runs `rtgw serve` in an empty directory (no .env) and expects exit 2 with
// exactly one problem line, which names `name` and matches `re`. Secrets in
// `env` must not be echoed.
async function refused(t, env, name, re, { args = [], secrets = [] } = {}) {
  const dir = tmpDir(t);
  const port = await freePort();
  const r = await runRtgw(["serve", ...args], { RTGW_LISTEN: `127.0.0.1:${port}`, ...env }, { cwd: dir });
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.ok(r.ms < 3000, `took ${r.ms} ms to refuse`);
  const lines = r.stderr.trim().split("\n");
  assert.match(lines[0], /^rtgw: configuration refused \(1 problem\):$/, r.stderr);
  assert.equal(lines.length, 2, `one problem line expected:\n${r.stderr}`);
  assert.ok(lines[1].trim().startsWith(`${name}:`), `line names ${name}: ${lines[1]}`);
  assert.match(lines[1], re);
  assert.doesNotMatch(r.stdout, /listening/);
  for (const s of secrets) {
    assert.ok(!r.stderr.includes(s) && !r.stdout.includes(s), "a secret was echoed");
    const hex = s.replace(/^signkey-\w+-/, "");
    if (hex.length >= 16) assert.ok(!r.stderr.includes(hex), "the key's hex was echoed");
  }
  return r;
}

defcase("missing_signing_key", async (t) => {
  await refused(t, {}, "RTGW_SIGNING_KEY", /not set.*rtgw keygen.*--dev/);
  // An empty value counts as unset.
  await refused(t, { RTGW_SIGNING_KEY: "" }, "RTGW_SIGNING_KEY", /not set/);
});

defcase("malformed_signing_key", async (t) => {
  for (const k of ["notakey", "signkey-test", "signkey--" + "ab".repeat(32), "signkey-Te-st-" + "ab".repeat(32)]) {
    await refused(t, { RTGW_SIGNING_KEY: k }, "RTGW_SIGNING_KEY", /signkey-<env>-<hex>|environment/, { secrets: [k] });
  }
  // Too short a secret.
  await refused(t, { RTGW_SIGNING_KEY: "signkey-test-abcd" }, "RTGW_SIGNING_KEY", /shorter than 32 bytes/);
});

defcase("non_hex_signing_key", async (t) => {
  const good = keygen();
  const bad = good.slice(0, -2) + "zz";
  await refused(t, { RTGW_SIGNING_KEY: bad }, "RTGW_SIGNING_KEY", /not an even-length hex string/, { secrets: [bad] });
  const odd = good.slice(0, -1);
  await refused(t, { RTGW_SIGNING_KEY: odd }, "RTGW_SIGNING_KEY", /hex/, { secrets: [odd] });
  // The fallback key is checked the same way, and named as itself.
  await refused(t, { RTGW_SIGNING_KEY: good, RTGW_SIGNING_KEY_FALLBACK: bad }, "RTGW_SIGNING_KEY_FALLBACK", /hex/, { secrets: [bad, good] });
});

defcase("placeholder_signing_key", async (t) => {
  // The templates' placeholder (.env.example, the package's /etc/rtgw/rtgw.env)
  // is named as such, so a service that was never configured says why it stops.
  const ph = fs.readFileSync(new URL("../../packaging/rtgw.env", import.meta.url), "utf8").match(/^RTGW_SIGNING_KEY=(.*)$/m)[1];
  const ex = fs.readFileSync(new URL("../../.env.example", import.meta.url), "utf8").match(/^RTGW_SIGNING_KEY=(.*)$/m)[1];
  for (const k of new Set([ph, ex])) {
    const dir = tmpDir(t);
    const f = path.join(dir, "rtgw.env");
    fs.writeFileSync(f, `RTGW_SIGNING_KEY=${k}\n`);
    await refused(t, {}, "RTGW_SIGNING_KEY", /placeholder.*rtgw keygen/, { args: ["--env-file", f] });
    await refused(t, { RTGW_SIGNING_KEY: keygen(), RTGW_SIGNING_KEY_FALLBACK: k }, "RTGW_SIGNING_KEY_FALLBACK", /placeholder/);
  }
});

defcase("listen_garbage", async (t) => {
  const key = keygen();
  for (const v of ["garbage", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1", "[::1"]) {
    const dir = tmpDir(t);
    const r = await runRtgw(["serve"], { RTGW_SIGNING_KEY: key, RTGW_LISTEN: v }, { cwd: dir });
    assert.equal(r.code, 2, `${v}: ${r.stderr}`);
    assert.match(r.stderr, /^rtgw: configuration refused \(1 problem\):\n {2}RTGW_LISTEN: .* is not host:port/, v);
  }
});

defcase("public_url_plain_http_non_local", async (t) => {
  const key = keygen();
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_PUBLIC_URL: "http://rt.example.com" }, "RTGW_PUBLIC_URL", /plain http:\/\/.*non-local/);
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_PUBLIC_URL: "ws://rt.example.com:8080" }, "RTGW_PUBLIC_URL", /non-local/);
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_PUBLIC_URL: "ftp://rt.example.com" }, "RTGW_PUBLIC_URL", /https:\/\//);
});

defcase("public_url_trailing_slash", async (t) => {
  const key = keygen();
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_PUBLIC_URL: "https://rt.example.com/" }, "RTGW_PUBLIC_URL", /trailing slash.*use https:\/\/rt\.example\.com$/);
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_PUBLIC_URL: "https://rt.example.com/rtgw" }, "RTGW_PUBLIC_URL", /no path/);
});

// Accepted public URLs start the gateway (the negative cases above are not vacuous).
defcase("public_url_accepted_forms", async (t) => {
  for (const u of ["https://rt.example.com", "wss://rt.example.com:8443", "http://localhost:8288", "http://127.0.0.1:9000"]) {
    const gw = await startGateway(t, { env: { RTGW_PUBLIC_URL: u }, cwd: tmpDir(t) });
    assert.match(gw.stdout(), /listening on/, u);
    const h = await fetch(`${gw.url}/health`);
    assert.equal(h.status, 200, u);
    await gw.kill9(); // graceful exit is covered by lifecycle.graceful_shutdown_*
  }
});

defcase("max_connections_not_a_number", async (t) => {
  const key = keygen();
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_MAX_CONNECTIONS: "abc" }, "RTGW_MAX_CONNECTIONS", /'abc' is not a whole number/);
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_MAX_CONNECTIONS: "10k" }, "RTGW_MAX_CONNECTIONS", /not a whole number/);
  await refused(t, { RTGW_SIGNING_KEY: key, RTGW_MAX_CONNECTIONS: "0" }, "RTGW_MAX_CONNECTIONS", /out of range/);
});

defcase("env_file_unreadable", async (t) => {
  const key = keygen();
  const dir = tmpDir(t);
  const missing = path.join(dir, "missing.env");
  await refused(t, { RTGW_SIGNING_KEY: key }, `env file ${missing}`, /cannot read it/, { args: ["--env-file", missing] });
  // A directory opens but cannot be read.
  await refused(t, { RTGW_SIGNING_KEY: key }, `env file ${dir}`, /cannot read it/, { args: ["--env-file", dir] });
  // A readable file with a bad line names the file and line.
  const f = path.join(dir, "bad.env");
  fs.writeFileSync(f, `RTGW_SIGNING_KEY=${key}\nthis line has no equals sign\n`);
  await refused(t, {}, `env file ${f}:2`, /expected NAME=value/, { args: ["--env-file", f] });
  // And a good env file is used (the key comes only from it).
  fs.writeFileSync(f, `# comment\nexport RTGW_SIGNING_KEY="${key}"\nRTGW_MAX_CONNECTIONS=abc\n`);
  await refused(t, {}, "RTGW_MAX_CONNECTIONS", /not a whole number/, { args: ["--env-file", f], secrets: [key] });
});

defcase("port_in_use_exit_1", async (t) => {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  t.cleanup(() => new Promise((r) => srv.close(r)));
  const port = srv.address().port;
  const dir = tmpDir(t);
  const r = await runRtgw(["serve"], { RTGW_SIGNING_KEY: keygen(), RTGW_LISTEN: `127.0.0.1:${port}` }, { cwd: dir });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => /level=error/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /cannot start the HTTP server/);
  assert.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.match(lines[0], /port in use/);
  assert.doesNotMatch(r.stdout, /listening/);
});

await run();
