// SIGHUP: rtgw re-reads its --env-file and swaps in the signing keys (current
// and fallback) and the allowed origins, without dropping a connection; a bad
// file keeps the running configuration and says why. Also the systemd
// readiness datagrams (READY, RELOADING, STOPPING) over $NOTIFY_SOCKET.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish, keygen } from "../lib/gateway.mjs";
import { http, topic } from "../lib/http.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { waitFor } from "../lib/wait.mjs";
import { connect, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

// A gateway whose keys come from an env file only (none in its environment).
async function fileGateway(t, lines) {
  const dir = tmpDir(t, "rtgw-reload-");
  const file = path.join(dir, "rtgw.env");
  fs.writeFileSync(file, lines.join("\n") + "\n");
  const gw = await startGateway(t, { key: null, args: ["--env-file", file] });
  const write = (l) => fs.writeFileSync(file, l.join("\n") + "\n");
  return { gw, file, write };
}

// SIGHUP, then wait for the n-th reload line (reloaded or refused) in the log.
async function hup(gw, n) {
  process.kill(gw.pid, "SIGHUP");
  await waitFor(() => (gw.logs().match(/configuration reloaded|reload refused: keeping/g) || []).length >= n,
    3000, `reload #${n} in the log`);
  return gw.logs().split("\n").filter((l) => /configuration reloaded|reload refused: keeping/.test(l)).slice(-1)[0];
}

function noSecrets(gw, keys) {
  for (const k of keys) {
    const hex = k.replace(/^signkey-\w+-/, "");
    assert.ok(!gw.logs().includes(hex) && !gw.stdout().includes(hex), "a key was logged");
  }
}

defcase("sighup_rotates_keys_keeping_connections", async (t) => {
  const A = keygen("prod"), B = keygen("prod");
  const { gw, write } = await fileGateway(t, [`RTGW_SIGNING_KEY=${A}`]);
  const oldJwt = await mint(gw, [topic("u:1", "ai")], { key: A, ttl: 600 });
  const sub = await connect(wsUrl(gw, oldJwt), { t });

  // Rotation starts: B is current, A still accepted as the fallback.
  write([`RTGW_SIGNING_KEY=${B}`, `RTGW_SIGNING_KEY_FALLBACK=${A}`]);
  const line = await hup(gw, 1);
  assert.match(line, /changed=RTGW_SIGNING_KEY,RTGW_SIGNING_KEY_FALLBACK/);
  assert.match(line, /restart_needed=none/);
  assert.equal((await publish(gw, "u:1", "ai", { n: 1 }, { key: B })).status, 200);
  assert.equal((await sub.next()).data.n, 1, "the subscriber kept its connection across SIGHUP");
  const newJwt = await mint(gw, [topic("u:1", "ai")], { key: B });
  (await connect(wsUrl(gw, newJwt), { t })).close();
  assert.equal((await publish(gw, "u:1", "ai", { n: 2 }, { key: A })).status, 200, "A is the fallback");
  assert.equal((await sub.next()).data.n, 2);
  (await connect(wsUrl(gw, oldJwt), { t })).close(); // signed with A: still verifies

  // Rotation ends: A is gone.
  write([`RTGW_SIGNING_KEY=${B}`]);
  assert.match(await hup(gw, 2), /changed=RTGW_SIGNING_KEY_FALLBACK /);
  assert.equal((await publish(gw, "u:1", "ai", { n: 3 }, { key: A })).status, 401);
  await assert.rejects(mint(gw, [topic("u:1", "ai")], { key: A }), /401/);
  const r = await refusedUpgrade(wsUrl(gw, oldJwt));
  assert.equal(r.status, 401);
  assert.equal((await publish(gw, "u:1", "ai", { n: 4 }, { key: B })).status, 200);
  assert.equal((await sub.next()).data.n, 4, "still connected after the key it was admitted with went");
  assert.equal(sub.closeInfo, null);
  noSecrets(gw, [A, B]);
});

defcase("sighup_bad_env_file_keeps_config", async (t) => {
  const A = keygen("prod");
  const { gw, write, file } = await fileGateway(t, [`RTGW_SIGNING_KEY=${A}`]);
  const bad = A.slice(0, -2) + "zz";
  write([`RTGW_SIGNING_KEY=${bad}`, "RTGW_MAX_CONNECTIONS=lots"]);
  const line = await hup(gw, 1);
  assert.match(line, /reload refused: keeping the running configuration/);
  assert.match(line, new RegExp(`env_file=${file} problems=2`));
  assert.match(gw.logs(), /problem="?RTGW_SIGNING_KEY: .*hex/);
  assert.match(gw.logs(), /problem="?RTGW_MAX_CONNECTIONS: /);
  assert.equal((await publish(gw, "c", "t", { ok: 1 }, { key: A })).status, 200, "old key still current");
  // An unreadable file too.
  fs.rmSync(file);
  assert.match(await hup(gw, 2), /reload refused/);
  assert.match(gw.logs(), /cannot read it/);
  assert.equal((await publish(gw, "c", "t", { ok: 2 }, { key: A })).status, 200);
  assert.equal((await http(gw, "GET", "/health")).status, 200);
  noSecrets(gw, [A, bad]);
});

defcase("sighup_reloads_allowed_origins", async (t) => {
  const A = keygen("prod");
  const { gw, write } = await fileGateway(t, [`RTGW_SIGNING_KEY=${A}`, "RTGW_ALLOWED_ORIGINS=https://a.example"]);
  const jwt = await mint(gw, [topic("c", "t")], { key: A, ttl: 600 });
  const kept = await connect(wsUrl(gw, jwt), { t, origin: "https://a.example" });
  assert.equal((await refusedUpgrade(wsUrl(gw, jwt), { origin: "https://b.example" })).status, 403);
  write([`RTGW_SIGNING_KEY=${A}`, "RTGW_ALLOWED_ORIGINS=https://b.example", "RTGW_MAX_BATCH=5"]);
  const line = await hup(gw, 1);
  assert.match(line, /changed=RTGW_ALLOWED_ORIGINS /);
  assert.match(line, /restart_needed=RTGW_MAX_BATCH/);
  (await connect(wsUrl(gw, jwt), { t, origin: "https://b.example" })).close();
  assert.equal((await refusedUpgrade(wsUrl(gw, jwt), { origin: "https://a.example" })).status, 403);
  // An open connection is not re-judged by the new list.
  assert.equal((await publish(gw, "c", "t", { n: 1 }, { key: A })).status, 200);
  assert.equal((await kept.next()).data.n, 1);
});

defcase("sd_notify_ready_reloading_stopping", async (t) => {
  const dir = tmpDir(t, "rtgw-notify-");
  const sock = path.join(dir, "notify.sock");
  // A datagram listener standing in for systemd: one line per datagram.
  const py = spawn("python3", ["-u", "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " "), flush=True)
`, sock], { stdio: ["ignore", "pipe", "inherit"] });
  t.cleanup(() => py.kill("SIGKILL"));
  let got = "";
  py.stdout.on("data", (d) => (got += d));
  await waitFor(() => got.includes("bound"), 5000, "the notify listener");
  const A = keygen("prod");
  const dir2 = tmpDir(t, "rtgw-reload-");
  const file = path.join(dir2, "rtgw.env");
  fs.writeFileSync(file, `RTGW_SIGNING_KEY=${A}\n`);
  const gw = await startGateway(t, { key: null, args: ["--env-file", file], env: { NOTIFY_SOCKET: sock } });
  await waitFor(() => /^READY=1$/m.test(got), 3000, "READY=1");
  process.kill(gw.pid, "SIGHUP");
  await waitFor(() => /^RELOADING=1 MONOTONIC_USEC=\d+$/m.test(got) && got.match(/^READY=1$/gm).length === 2,
    3000, "RELOADING=1 then READY=1");
  await gw.stop();
  await waitFor(() => /^STOPPING=1$/m.test(got), 3000, "STOPPING=1");
  assert.deepEqual(got.trim().split("\n").slice(1).map((l) => l.split(" ")[0]),
    ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
});

await run();
