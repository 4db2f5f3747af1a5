// rtgw terminating TLS itself: https:// and wss:// with a certificate made at
// test time by the openssl CLI, and one clear startup refusal per bad setup.
import { execFileSync, spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, keygen, RTGW_BIN, freePort } from "../lib/gateway.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { clientFrame } from "../lib/rawws.mjs";
import { selfSigned, httpsRequest } from "../lib/certs.mjs";

requireNodeModules("ws");
const { default: WebSocket } = await import("ws");

const tmpdir = (t) => tmpDir(t, "rtgw-tls-test-");

function expired(dir) {
  // `openssl ca -selfsign` is the portable way to pick the validity dates.
  fs.writeFileSync(path.join(dir, "ca.cnf"), [
    "[ ca ]", "default_ca = d", "[ d ]", `dir = ${dir}`, `database = ${dir}/index.txt`,
    `new_certs_dir = ${dir}`, `serial = ${dir}/serial`, "default_md = sha256", "policy = p",
    "[ p ]", "commonName = supplied", ""].join("\n"));
  fs.writeFileSync(path.join(dir, "index.txt"), "");
  fs.writeFileSync(path.join(dir, "serial"), "01\n");
  const key = path.join(dir, "old.key"), csr = path.join(dir, "old.csr"), cert = path.join(dir, "old.crt");
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], { stdio: "ignore" });
  execFileSync("openssl", ["ca", "-batch", "-config", path.join(dir, "ca.cnf"), "-selfsign", "-keyfile", key,
    "-in", csr, "-out", cert, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], { stdio: "ignore" });
  return { key, cert };
}

function serveRefused(env) {
  const r = spawnSync(RTGW_BIN, ["serve"], {
    env: { PATH: process.env.PATH, RTGW_SIGNING_KEY: keygen(), RTGW_LISTEN: "127.0.0.1:1", ...env },
    encoding: "utf8", timeout: 10000, cwd: os.tmpdir(),
  });
  return { code: r.status, err: r.stderr };
}

const get = (url, ca) => httpsRequest(url, { ca });

defcase("tls_serves_https_and_wss", async (t) => {
  const dir = tmpdir(t);
  const { key, cert } = selfSigned(dir, "ok");
  const gw = await startGateway(t, { env: { RTGW_TLS_CERT: cert, RTGW_TLS_KEY: key } });
  assert.match(gw.stdout(), /listening on https:\/\//);
  const ca = fs.readFileSync(cert);
  const base = `https://localhost:${gw.port}`;
  const health = await get(`${base}/health`, ca);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, "ok");
  // Plain http to the TLS port is not served: it is answered, in plain HTTP,
  // with the reason (a TLS alert would reach the user as an opaque failure).
  const plain = await fetch(`http://127.0.0.1:${gw.port}/health`, { signal: AbortSignal.timeout(3000) });
  assert.equal(plain.status, 400);
  const why = await plain.json();
  assert.equal(why.error, "plain_http_on_tls_port");
  assert.match(why.message, /use https:\/\/ \(or wss:\/\/ for WebSockets\)/);
  // Mint and publish over https, receive over wss.
  const post = (p, body) => new Promise((resolve, reject) => {
    const req = https.request(`${base}${p}`, { method: "POST", ca, headers: { Authorization: `Bearer ${gw.key}` } }, (res) => {
      let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => resolve({ status: res.statusCode, body: b }));
    });
    req.on("error", reject); req.end(body);
  });
  const tok = await post("/v1/realtime/token", JSON.stringify([{ channel: "tls", name: "t", kind: "run" }]));
  assert.equal(tok.status, 201);
  const jwt = JSON.parse(tok.body).jwt;
  const ws = new WebSocket(`wss://localhost:${gw.port}/v1/realtime/connect?token=${jwt}`, { ca });
  t.cleanup(() => ws.terminate());
  const got = new Promise((resolve) => ws.on("message", (d) => resolve(JSON.parse(d))));
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  const pub = await post("/v1/realtime/publish?channel=tls&topic=t", JSON.stringify({ secure: true }));
  assert.equal(pub.status, 200);
  const msg = await got;
  assert.deepEqual(msg.data, { secure: true });
  assert.equal(msg.channel, "tls");
  // The combined key file civetweb loads is removed once the server started.
  // Other TLS cases running in parallel create theirs for a moment, so wait
  // (bounded) for an instant with none left behind.
  const leftovers = () => fs.readdirSync(os.tmpdir())
    .filter((n) => n.startsWith("rtgw-tls-") && !n.startsWith("rtgw-tls-test-"))
    .filter((n) => fs.existsSync(path.join(os.tmpdir(), n, "server.pem")));
  let left = leftovers();
  for (let i = 0; i < 60 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = leftovers();
  }
  assert.deepEqual(left, [], "no key file left on disk");
});

// A gateway serving TLS with a self-signed certificate, a token minted over
// https, and an open wss session (ws client options wsOpts). Resolves with
// { gw, ws, closed }, closed resolving with the close's { code, reason }.
async function tlsSession(t, wsOpts = {}) {
  const dir = tmpdir(t);
  const { key, cert } = selfSigned(dir, "ok");
  const gw = await startGateway(t, { env: { RTGW_TLS_CERT: cert, RTGW_TLS_KEY: key } });
  const ca = fs.readFileSync(cert);
  const tok = await new Promise((resolve, reject) => {
    const req = https.request(`https://localhost:${gw.port}/v1/realtime/token`,
      { method: "POST", ca, headers: { Authorization: `Bearer ${gw.key}` } }, (res) => {
        let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => resolve(JSON.parse(b).jwt));
      });
    req.on("error", reject); req.end(JSON.stringify([{ channel: "tls", name: "t", kind: "run" }]));
  });
  const ws = new WebSocket(`wss://localhost:${gw.port}/v1/realtime/connect?token=${tok}`, { ca, ...wsOpts });
  t.cleanup(() => ws.terminate());
  await new Promise((resolve, reject) => { ws.on("open", resolve); ws.on("error", reject); });
  const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on("error", () => {});
  return { gw, ws, closed };
}

// The close the gateway sends within 10 s (null if none).
const closeWithin10s = (closed) => Promise.race([closed, new Promise((r) => setTimeout(() => r(null), 10000))]);

defcase("tls_oversized_client_frame_refused_from_header", async (t) => {
  // Over TLS the frame guard reads decrypted bytes through the libssl shim.
  const { ws, closed } = await tlsSession(t, { maxPayload: 0 });
  ws.send(Buffer.alloc(4 << 20, 0x61)); // 4 MiB against the 64 KiB default
  const info = await closeWithin10s(closed);
  assert.ok(info, "the gateway closes the connection");
  assert.equal(info.code, 1009);
  assert.match(info.reason, /message_too_big/);
});

// Over TLS, civetweb reads the frames: the guard (through the libssl shim) judges
// their headers, the data handler their payloads. Raw frames go through the
// ws client's own TLS socket, so the bytes are exactly the ones written here.
async function tlsSessionCloses(t, frame) {
  const { ws, closed } = await tlsSession(t);
  ws._socket.write(frame);
  const info = await closeWithin10s(closed);
  assert.ok(info, "the gateway closes the connection");
  return info;
}

defcase("tls_rsv_bits_closed_1002", async (t) => {
  const info = await tlsSessionCloses(t, clientFrame(1, "hi", { rsv: 4 }));
  assert.equal(info.code, 1002, JSON.stringify(info));
  assert.match(info.reason, /protocol_error/);
});

defcase("tls_invalid_utf8_text_closed_1007", async (t) => {
  const info = await tlsSessionCloses(t, clientFrame(1, Buffer.from([0x6f, 0xc0, 0xaf])));
  assert.equal(info.code, 1007, JSON.stringify(info));
  assert.match(info.reason, /invalid_payload/);
});

defcase("tls_mismatched_key_refused", async (t) => {
  const dir = tmpdir(t);
  const a = selfSigned(dir, "a"), b = selfSigned(dir, "b");
  const r = serveRefused({ RTGW_TLS_CERT: a.cert, RTGW_TLS_KEY: b.key });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /RTGW_TLS_KEY: the key in .* does not match the certificate/);
});

defcase("tls_expired_cert_refused", async (t) => {
  const dir = tmpdir(t);
  const old = expired(dir);
  const r = serveRefused({ RTGW_TLS_CERT: old.cert, RTGW_TLS_KEY: old.key });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /RTGW_TLS_CERT: the certificate in .* has expired/);
});

defcase("tls_wrong_host_refused", async (t) => {
  const dir = tmpdir(t);
  const c = selfSigned(dir, "c");
  const r = serveRefused({ RTGW_TLS_CERT: c.cert, RTGW_TLS_KEY: c.key, RTGW_PUBLIC_URL: "https://rt.example.com" });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /does not cover rt\.example\.com/);
});

defcase("tls_unreadable_or_partial_refused", async (t) => {
  const dir = tmpdir(t);
  const c = selfSigned(dir, "c");
  let r = serveRefused({ RTGW_TLS_CERT: path.join(dir, "missing.crt"), RTGW_TLS_KEY: c.key });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /RTGW_TLS_CERT: cannot read .*missing\.crt/);
  r = serveRefused({ RTGW_TLS_CERT: c.cert });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /RTGW_TLS_KEY: set together with RTGW_TLS_CERT/);
  fs.writeFileSync(path.join(dir, "junk.pem"), "not a certificate\n");
  r = serveRefused({ RTGW_TLS_CERT: path.join(dir, "junk.pem"), RTGW_TLS_KEY: c.key });
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /holds no PEM certificate/);
});

await run();
