// rtgw doctor against real, deliberately broken setups: a real rtgw, Debian's real
// nginx with the misconfigurations of the field reports, bad certificates, expired
// tokens, refused origins, a closed port and bad configuration files. Each case
// asserts the check doctor stops at and the diagnosis it names (--json).
//   node tests/doctor/doctor.mjs <case>     (RTGW_BIN, TOKENTOOL, NGINX_BIN)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, freePort, keygen, mint, publish } from "../lib/gateway.mjs";
import { doctor, show, assertFailedAt } from "../lib/doctor.mjs";
import { startNginx, wsLocationBody, CONNECTION_UPGRADE_MAP } from "../lib/nginx.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { sleep } from "../lib/wait.mjs";


const tmpdir = (t) => tmpDir(t, "rtgw-doctor-test-");

// A certificate made with the openssl CLI. `expiredCert` uses `openssl ca -selfsign`,
// the portable way to choose the validity dates.
function cert(dir, name, { cn = "localhost", san = "DNS:localhost,IP:127.0.0.1", days = 30 } = {}) {
  const key = path.join(dir, `${name}.key`), crt = path.join(dir, `${name}.crt`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", crt, "-days", String(days), "-subj", `/CN=${cn}`, "-addext", `subjectAltName=${san}`],
    { stdio: "ignore" });
  return { key, cert: crt };
}

function expiredCert(dir) {
  fs.writeFileSync(path.join(dir, "ca.cnf"), [
    "[ ca ]", "default_ca = d", "[ d ]", `dir = ${dir}`, `database = ${dir}/index.txt`,
    `new_certs_dir = ${dir}`, `serial = ${dir}/serial`, "default_md = sha256", "policy = p",
    "copy_extensions = copy", "[ p ]", "commonName = supplied", ""].join("\n"));
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), "01\n");
  const key = path.join(dir, "old.key"), csr = path.join(dir, "old.csr"), crt = path.join(dir, "old.crt");
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", csr, "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], { stdio: "ignore" });
  execFileSync("openssl", ["ca", "-batch", "-config", path.join(dir, "ca.cnf"), "-selfsign", "-keyfile", key,
    "-in", csr, "-out", crt, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], { stdio: "ignore" });
  return { key, cert: crt };
}

// nginx locations that proxy everything to rtgw correctly (upgrade, no buffering),
// with `extra` directives added to the catch-all location.
const goodProxy = (gw, extra = "") => `
    location / {${wsLocationBody(gw.port, { extra })}
    }`;

// ---------------------------------------------------------------------------------

defcase("healthy_direct_gateway_passes_every_check", async (t) => {
  const gw = await startGateway(t);
  const r = await doctor([gw.url, "--signing-key", gw.key, "--idle", "2"]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.json.ok, true, show(r));
  const names = r.json.checks.map((c) => c.name);
  assert.deepEqual(names, ["url", "dns", "tcp", "tls", "http", "route", "clock", "token", "upgrade", "subscribe",
    "delivery", "sse", "idle"]);
  for (const c of r.json.checks) {
    if (c.name === "tls") assert.equal(c.status, "skip", show(r)); // plain http to loopback
    else assert.equal(c.status, "ok", `${c.name}: ${show(r)}`);
  }
  assert.match(r.byName.http.found, /rtgw \d+\.\d+\.\d+/);
  assert.match(r.byName.sse.found, /received the probe over SSE/);
  assert.match(r.byName.idle.found, /stayed open 2 s idle/);
  // The key and the minted token never reach the output, in either format.
  const human = await doctor([gw.url, "--signing-key", gw.key], { json: false });
  assert.equal(human.code, 0, human.out + human.err);
  assert.match(human.out, /^✓ upgrade +101 Switching Protocols/m);
  assert.match(human.out, /checks passed/);
  for (const o of [r.out, human.out, human.err]) {
    assert.ok(!o.includes(gw.key), "the signing key is printed");
    assert.ok(!/eyJ[\w-]+\.[\w-]+\./.test(o), "a token is printed");
  }
});

defcase("without_credentials_the_upgrade_is_still_checked", async (t) => {
  const gw = await startGateway(t);
  const r = await doctor([gw.url]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.byName.token.status, "skip");
  assert.match(r.byName.token.found, /skipping the authenticated checks/);
  assert.equal(r.byName.upgrade.status, "ok");
  assert.match(r.byName.upgrade.found, /4401 token_missing as expected/);
});

defcase("nginx_without_upgrade_headers", async (t) => {
  const gw = await startGateway(t);
  // Field reports 001/002: a location that proxies everything but the upgrade.
  const ng = await startNginx(t, `location / { proxy_pass http://127.0.0.1:${gw.port}; }`);
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assert.equal(r.byName.http.status, "ok", show(r)); // /health works through it
  assert.match(r.byName.http.found, /via nginx/);
  assert.equal(r.byName.token.status, "ok", show(r));
  // rtgw's probe record shows what arrived: no Upgrade, over HTTP/1.0.
  assertFailedAt(r, "upgrade", /Upgrade: websocket was sent but did not arrive: rtgw's probe record shows GET \/v1\/realtime\/connect with no Upgrade header \(Connection: close, HTTP\/1\.0\), and rtgw answered 426 upgrade_required, via nginx\/[\d.]+: the proxy does not pass the upgrade/,
    /proxy_http_version 1\.1;[\s\S]*proxy_set_header Upgrade \$http_upgrade;[\s\S]*proxy_set_header Connection "upgrade";[\s\S]*Kong[\s\S]*ws, wss/);
  // Without credentials the upgrade is still probed (no token), and the clock is read
  // from nginx's Date header.
  const anon = await doctor([ng.url]);
  assert.match(anon.byName.clock.found, /the server's clock matches this machine's \(from the Date header/, show(anon));
  // Without the key the record cannot be read: both causes are named, and how to tell.
  assertFailedAt(anon, "upgrade", /rtgw \(X-Rtgw\) answered 426 upgrade_required.*two causes remain: the Upgrade header is not passed .* or Connection does not say upgrade .*run doctor with --signing-key/,
    /proxy_set_header Upgrade \$http_upgrade;[\s\S]*proxy_set_header Connection "upgrade";/);
});

defcase("nginx_connection_header_stripped", async (t) => {
  const gw = await startGateway(t);
  // Upgrade passed but Connection left at nginx's default ("close"): civetweb sees an
  // Upgrade without Connection: upgrade.
  const ng = await startNginx(t, `location / {
      proxy_pass http://127.0.0.1:${gw.port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
    }`);
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "upgrade", /Connection: Upgrade was sent but arrived as "close" \(Upgrade: websocket did arrive; rtgw's probe record\)/,
    /proxy_set_header Connection "upgrade";/);
});

defcase("nginx_buffers_sse", async (t) => {
  const gw = await startGateway(t);
  // Buffering on for SSE, rtgw's X-Accel-Buffering: no ignored, and buffers large
  // enough that a small event sits in them.
  const sseLoc = `location /v1/realtime/sse {
      proxy_pass http://127.0.0.1:${gw.port};
      proxy_http_version 1.1;
      proxy_buffering on;
      proxy_ignore_headers X-Accel-Buffering;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
    }`;
  const ng = await startNginx(t, goodProxy(gw) + "\n" + sseLoc, { http: CONNECTION_UPGRADE_MAP });

  // First, show the stall is real, independently of doctor: an event published to an
  // open SSE stream through this nginx does not arrive within 2.5 s.
  const jwt = await mint(gw, [{ channel: "buf", name: "t", kind: "run" }]);
  let got = "";
  const req = http.get(`${ng.url}/v1/realtime/sse?token=${jwt}`, (res) => {
    res.on("data", (d) => (got += d));
    res.on("error", () => {}); // "aborted" when destroyed below
  });
  req.on("error", () => {}); // destroyed below
  t.cleanup(() => req.destroy());
  await sleep(500);
  assert.equal((await publish(gw, "buf", "t", { marker: "stalled?" })).status, 200);
  await sleep(2500);
  assert.ok(!got.includes("stalled?"), `the event came through nginx unbuffered:\n${got}`);
  req.destroy();

  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assert.equal(r.byName.delivery.status, "ok", show(r)); // the WebSocket works
  assertFailedAt(r, "sse", /did not arrive over SSE within 2 s while the WebSocket got it .*a proxy buffers the SSE stream/,
    /proxy_buffering off;/);
});

defcase("nginx_read_timeout_shorter_than_idle", async (t) => {
  // No ping for a minute, and a proxy that cuts a tunnel after 2 s of silence.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "60000" } });
  const ng = await startNginx(t, goodProxy(gw).replace("proxy_read_timeout 3600s;", "proxy_read_timeout 2s;"),
    { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key, "--idle", "4"]);
  assert.equal(r.byName.delivery.status, "ok", show(r));
  assert.equal(r.byName.sse.status, "ok", show(r));
  assertFailedAt(r, "idle", /closed after [12]\.\d s idle .*a proxy read timeout shorter than the idle period/,
    /nginx: proxy_read_timeout 3600s;[\s\S]*RTGW_PING_INTERVAL_MS=\d+ /);
  // The heartbeat advised beats strictly below the timeout doctor saw.
  const seen = Number(/closed after ([\d.]+) s/.exec(r.failed.found)[1]) * 1000;
  const hb = Number(/RTGW_PING_INTERVAL_MS=(\d+)/.exec(r.failed.fix)[1]);
  assert.ok(hb < seen, `heartbeat ${hb} ms is not below the ${seen} ms seen:\n${show(r)}`);
});

defcase("nginx_idle_with_heartbeat_survives", async (t) => {
  // The same 2 s proxy timeout, but rtgw pings every second: the idle check passes.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const ng = await startNginx(t, goodProxy(gw).replace("proxy_read_timeout 3600s;", "proxy_read_timeout 2s;"),
    { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key, "--idle", "4"]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.byName.idle.found, /stayed open 4 s idle, [2-5] pings answered/);
  assert.equal(r.byName.clock.status, "ok");
  assert.match(r.byName.clock.found, /the gateway's clock matches this machine's \(from the iat of a token/);
});

defcase("nginx_dead_backend", async (t) => {
  const dead = await freePort(); // nothing listens there
  const ng = await startNginx(t, `location / { proxy_pass http://127.0.0.1:${dead}; }`);
  const r = await doctor([ng.url, "--signing-key", keygen()]);
  assertFailedAt(r, "http", /HTTP 502 .*the proxy answers but the backend is down/, /start rtgw/);
});

defcase("closed_port_is_tcp_refused", async (t) => {
  const port = await freePort();
  const r = await doctor([`http://127.0.0.1:${port}`]);
  assertFailedAt(r, "tcp", new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port}: is rtgw \\(or the proxy\\) running\\? is the port right\\?`),
    new RegExp(`start it: rtgw serve[\\s\\S]*ss -ltnp \\| grep :${port}`));
});

defcase("something_else_answers", async (t) => {
  // An app's HTML page where rtgw should be (the catch-all location took the path).
  const ng = await startNginx(t, `location / { default_type text/html; return 200 "<html><head><title>My App</title></head></html>"; }`);
  const r = await doctor([ng.url]);
  assert.equal(r.byName.http.status, "warn", show(r));
  assert.match(r.byName.http.found, /GET \/health is answered by the app: HTTP 200 with an HTML page titled "My App"/);
  assertFailedAt(r, "route", /GET \/v1\/realtime\/connect never reached rtgw: the app: HTTP 200 with an HTML page titled "My App", Server: nginx\/[\d.]+ answered \(no X-Rtgw header\); two causes remain/,
    /location \^~ \/v1\/realtime\/ \{/);
});

defcase("clock_skew", async (t) => {
  // A server whose clock is 10 minutes behind (its Date header), answering /health
  // as rtgw does.
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    res.setHeader("Date", new Date(Date.now() - 600_000).toUTCString());
    res.setHeader("Content-Type", "application/json");
    res.setHeader("X-Rtgw", "0.1.0"); // rtgw's mark
    res.end(JSON.stringify({ status: "ok", uptime_s: 1, connections: 0, version: "0.1.0", dev: false }));
  });
  await new Promise((r) => srv.listen(port, "127.0.0.1", r));
  t.cleanup(() => new Promise((r) => srv.close(r)));
  const r = await doctor([`http://127.0.0.1:${port}`]);
  assertFailedAt(r, "clock", /the server's clock is behind this machine's by (599|600|601) s/,
    /NTP[\s\S]*issued in the future/);
});

defcase("tls_expired_certificate", async (t) => {
  const gw = await startGateway(t);
  const dir = tmpdir(t);
  const old = expiredCert(dir); // rtgw refuses to start with it, so nginx serves it
  const ng = await startNginx(t, goodProxy(gw), { tls: old, http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([`https://localhost:${ng.port}`, "--cacert", old.cert, "--signing-key", gw.key]);
  assertFailedAt(r, "tls", /the certificate for localhost expired \d+ days ago/, /renew it/);
});

defcase("tls_wrong_host_certificate", async (t) => {
  const gw = await startGateway(t);
  const dir = tmpdir(t);
  const other = cert(dir, "other", { cn: "other.example", san: "DNS:other.example" });
  const ng = await startNginx(t, goodProxy(gw), { tls: other, http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([`https://localhost:${ng.port}`, "--cacert", other.cert]);
  assertFailedAt(r, "tls", /wrong host: the certificate names other\.example, not localhost/,
    /covers localhost \(subjectAltName DNS:localhost\)/);
});

defcase("tls_self_signed_without_ca", async (t) => {
  const gw = await startGateway(t);
  const dir = tmpdir(t);
  const self = cert(dir, "self");
  const ng = await startNginx(t, goodProxy(gw), { tls: self, http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([`https://localhost:${ng.port}`]);
  assertFailedAt(r, "tls", /self-signed certificate \(localhost, 127\.0\.0\.1\)/, /public CA[\s\S]*--cacert/);
});

defcase("tls_through_nginx_passes", async (t) => {
  const gw = await startGateway(t);
  const dir = tmpdir(t);
  const good = cert(dir, "good");
  const ng = await startNginx(t, goodProxy(gw), { tls: good, http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([`wss://localhost:${ng.port}`, "--cacert", good.cert, "--signing-key", gw.key,
    "--origin", "https://app.example.com"]);
  assert.equal(r.code, 0, show(r));
  assert.match(r.byName.tls.found, /TLSv1\.[23], certificate for localhost, 127\.0\.0\.1 .*valid for (29|30) more days/);
  assert.equal(r.byName.sse.status, "ok", show(r));
});

defcase("tls_served_by_rtgw_itself", async (t) => {
  const dir = tmpdir(t);
  const c = cert(dir, "rtgw", { days: 10 }); // inside the 14-day warning window
  const gw = await startGateway(t, { env: { RTGW_TLS_CERT: c.cert, RTGW_TLS_KEY: c.key } });
  // The key from stdin: it stays out of the process list.
  const r = await doctor([`https://localhost:${gw.port}`, "--cacert", c.cert, "--signing-key", "-"], { input: `${gw.key}\n` });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.byName.tls.status, "warn", show(r));
  assert.match(r.byName.tls.found, /expires in (9|10) days/);
  for (const n of ["upgrade", "subscribe", "delivery", "sse"]) assert.equal(r.byName[n].status, "ok", show(r));
  // Plain http to a TLS port, and TLS to a plain port, are named as such.
  const plain = await doctor([`http://127.0.0.1:${gw.port}`]);
  assertFailedAt(plain, "http", /this port speaks TLS/, /use https:\/\/127\.0\.0\.1:\d+ or wss:/);
  const gw2 = await startGateway(t);
  const tlsToPlain = await doctor([`https://127.0.0.1:${gw2.port}`]);
  assertFailedAt(tlsToPlain, "tls", /does not speak TLS on this port/, /use http:\/\/ or ws:\/\//);
});

defcase("expired_token", async (t) => {
  const gw = await startGateway(t);
  // Minted offline an hour ago with a 60 s lifetime: long expired, beyond any leeway.
  const tok = execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", "user:1", "ai", "60"], {
    env: { ...process.env, RT_TOKENTOOL_NOW: String(Math.floor(Date.now() / 1000) - 3600) }, encoding: "utf8",
  }).trim();
  assert.match(tok, /^eyJ/);
  const r = await doctor([gw.url, "--token", tok]);
  assert.equal(r.byName.token.status, "warn", show(r));
  assert.match(r.byName.token.found, /expired \d+ s ago by this machine's clock/);
  assertFailedAt(r, "upgrade", /closed with 4409 token_expired/, /check clocks[\s\S]*RTGW_CLOCK_LEEWAY/);
  assert.ok(!r.out.includes(tok), "the token is printed");
});

defcase("token_from_another_key", async (t) => {
  const gw = await startGateway(t);
  const tok = execFileSync(process.env.TOKENTOOL, ["mint", keygen(), "HS256", "user:1", "ai", "60"], { encoding: "utf8" }).trim();
  const r = await doctor([gw.url, "--token", tok]);
  assertFailedAt(r, "upgrade", /4402 token_invalid .*token_(unknown_kid|bad_signature)/, /another key than the gateway's/);
});

defcase("wrong_signing_key", async (t) => {
  const gw = await startGateway(t);
  const wrong = keygen();
  const r = await doctor([gw.url, "--signing-key", wrong]);
  assertFailedAt(r, "token", /401 .*the signing key does not match the gateway's/, /RTGW_SIGNING_KEY/);
  assert.ok(!r.out.includes(wrong));
});

defcase("origin_not_allowed", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "http://app.example.com" } });
  const r = await doctor([gw.url, "--signing-key", gw.key, "--origin", "http://other.example.com"]);
  assertFailedAt(r, "upgrade", /4405 origin_not_allowed: the page origin http:\/\/other\.example\.com is not in RTGW_ALLOWED_ORIGINS/,
    /RTGW_ALLOWED_ORIGINS=.*http:\/\/other\.example\.com/);
  const ok = await doctor([gw.url, "--signing-key", gw.key, "--origin", "http://app.example.com"]);
  assert.equal(ok.code, 0, show(ok));
});

defcase("mixed_content", async (t) => {
  const gw = await startGateway(t);
  const r = await doctor([gw.ws, "--origin", "https://app.example.com", "--signing-key", gw.key]);
  assertFailedAt(r, "url", /mixed content: a page on https:\/\/app\.example\.com cannot open ws:\/\/127\.0\.0\.1/, /wss:\/\/127\.0\.0\.1/);
  assert.equal(r.json.checks.length, 1);
});

defcase("url_path_prefix_and_trailing_slash_warn", async (t) => {
  const gw = await startGateway(t);
  const p = await doctor([`${gw.url}/realtime`]);
  assert.equal(p.code, 0, show(p));
  assert.equal(p.byName.url.status, "warn");
  assert.match(p.byName.url.found, /the path \/realtime is dropped/);
  const s = await doctor([`${gw.url}/`]);
  assert.equal(s.byName.url.status, "warn");
  assert.match(s.byName.url.found, /trailing slash/);
});

defcase("config_bad_env_file", async (t) => {
  const dir = tmpdir(t);
  const env = path.join(dir, "rtgw.env");
  fs.writeFileSync(env, ["RTGW_SIGNING_KEY=signkey-prod-nothex", "RTGW_LISTEN=nowhere",
    "RTGW_PING_INTERVAL_MS=90000", "RTGW_PUBLIC_URL=https://rt.example.com/", ""].join("\n"));
  const r = await doctor(["--config", "--env-file", env], { cwd: dir });
  assert.equal(r.code, 1, show(r));
  const fails = r.json.checks.filter((c) => c.status === "fail").map((c) => c.name).sort();
  assert.deepEqual(fails, ["RTGW_LISTEN", "RTGW_PUBLIC_URL", "RTGW_SIGNING_KEY"], show(r));
  assert.match(r.byName.RTGW_LISTEN.found, /'nowhere' is not host:port/);
  assert.match(r.byName.RTGW_PUBLIC_URL.found, /no path or trailing slash/);
  assert.equal(r.byName.RTGW_PING_INTERVAL_MS.status, "warn");
  assert.match(r.byName.RTGW_PING_INTERVAL_MS.found, /90000 ms: a proxy's default 60 s read timeout/);
  assert.equal(r.byName.RTGW_ALLOWED_ORIGINS.status, "warn");
  assert.ok(!r.out.includes("nothex"), "a key fragment is printed");

  const missing = await doctor(["--config", "--env-file", path.join(dir, "nope.env")], { cwd: dir });
  assert.equal(missing.code, 1);
  assert.equal(missing.byName.env_file.status, "fail");
});

defcase("config_good_env_file", async (t) => {
  const dir = tmpdir(t);
  const env = path.join(dir, "rtgw.env");
  const key = keygen("prod");
  fs.writeFileSync(env, [`RTGW_SIGNING_KEY=${key}`, "RTGW_ALLOWED_ORIGINS=https://app.example.com",
    "RTGW_PUBLIC_URL=https://rt.example.com", "RTGW_MAX_CONNECTIONS=100", ""].join("\n"));
  const r = await doctor(["--config", "--env-file", env], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.byName.config.status, "ok");
  assert.match(r.byName.config.found, /listen 127\.0\.0\.1:8288/);
  assert.ok(!r.out.includes(key));
  // The same rules as startup: a tiny file limit makes RTGW_MAX_CONNECTIONS a warning.
  fs.appendFileSync(env, "RTGW_MAX_CONNECTIONS=100000\n");
  const w = await doctor(["--config", "--env-file", env], { cwd: dir, nofile: 4096 });
  assert.equal(w.code, 0, show(w));
  assert.equal(w.byName.RTGW_MAX_CONNECTIONS?.status, "warn", show(w));
  assert.match(w.byName.RTGW_MAX_CONNECTIONS.fix, /LimitNOFILE=201024/);
});

defcase("bad_usage_exits_2", async (t) => {
  for (const args of [[], ["http://x", "--signing-key", "a", "--token", "b"], ["--bogus"],
    ["http://x", "--idle", "soon"], ["--config", "http://x"], ["http://x", "--origin", "app.example.com"]]) {
    const r = await doctor(args, { json: false });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.out}${r.err}`);
  }
  const h = await doctor(["--help"], { json: false });
  assert.equal(h.code, 0);
  assert.match(h.out, /rtgw doctor <url>/);
});

await run();
