// wss sessions (issue 13): rtgw terminates TLS itself, in its front door, so a
// wss session leaves civetweb's thread after its handshake like a ws one, and
// its writer encrypts and decrypts. Real TLS clients (node's ws over
// node:tls, raw TLS sockets) against a real gateway.
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { defcase, run, Skip } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { topic } from "../lib/http.mjs";
import { fdLimit } from "../lib/idle.mjs";
import { selfSigned } from "../lib/certs.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { clientFrame } from "../lib/rawws.mjs";
import { sleep, waitFor } from "../lib/wait.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";

function tlsGateway(t, env = {}) {
  const dir = tmpDir(t, "rtgw-wss-");
  return startGateway(t, { tls: selfSigned(dir, "gw"), env });
}

function threadsOf(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^Threads:\s+(\d+)/m)[1]);
}

// Opens n wss subscribers of channel `ch`, topic "t", in batches.
async function subscribers(t, gw, ch, n) {
  const jwt = await mint(gw, [topic(ch, "t")]);
  const subs = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++)
      batch.push(connect(wsUrl(gw, jwt), { t, wsOpts: { ca: gw.ca }, nextMs: 10000 }));
    subs.push(...(await Promise.all(batch)));
  }
  return subs;
}

defcase("wss_subscribers_hold_no_thread", async (t) => {
  const n = 300;
  if (fdLimit() < 2 * n + 200) throw new Skip(`needs ${2 * n + 200} open files (ulimit -n)`);
  const gw = await tlsGateway(t, { RTGW_MAX_CONNECTIONS: String(n + 50) });
  const before = threadsOf(gw.pid);
  const subs = await subscribers(t, gw, "wssthreads", n);
  await sleep(200);
  const during = threadsOf(gw.pid);
  // Before rtgw terminated TLS itself, each wss session kept a civetweb worker,
  // started up front (RTGW_MAX_CONNECTIONS + RTGW_HTTP_THREADS of them). Now
  // there are the HTTP workers, the writers and a few more, however many
  // subscribers.
  const msg = `${n} wss subscribers: ${before} threads before, ${during} with them`;
  assert.ok(during <= before + 8, msg);
  assert.ok(during < n / 2, msg);
  assert.doesNotMatch(gw.logs(), /session stays on its civetweb thread/);
  assert.equal((await publish(gw, "wssthreads", "t", { hello: "all" })).status, 200);
  for (const s of subs) assert.deepEqual((await s.next(10000, "the event")).data, { hello: "all" });
});

defcase("wss_large_burst_to_a_paused_reader_arrives_whole_in_order", async (t) => {
  // A reader that pauses makes the writer's TLS writes come back short or
  // "again": TLS then wants the same bytes retried. 40 × 64 KiB must arrive
  // whole and in order.
  const gw = await tlsGateway(t, { RTGW_QUEUE_MAX_BYTES: String(16 << 20) });
  const [s] = await subscribers(t, gw, "wssburst", 1);
  s.ws._socket.pause();
  const blob = "x".repeat(64 * 1024);
  for (let i = 0; i < 40; i++)
    assert.equal((await publish(gw, "wssburst", "t", { i, blob })).status, 200);
  await sleep(300);
  s.ws._socket.resume();
  for (let i = 0; i < 40; i++) {
    const m = await s.next(10000, `event ${i}`);
    assert.equal(m.data.i, i);
    assert.equal(m.data.blob.length, blob.length);
  }
});

defcase("wss_client_ping_answered_by_the_detached_session", async (t) => {
  // After the handshake the session's writer reads and writes its TLS: a
  // client ping gets its pong, a text frame is read, the session lives on.
  const gw = await tlsGateway(t);
  const [s] = await subscribers(t, gw, "wssping", 1);
  const pong = new Promise((resolve) => s.ws.once("pong", (d) => resolve(d.toString())));
  s.ws.ping("are-you-there");
  assert.equal(await pong, "are-you-there");
  assert.equal((await publish(gw, "wssping", "t", { after: "ping" })).status, 200);
  assert.deepEqual((await s.next(5000, "the event")).data, { after: "ping" });
});

defcase("wss_oversized_frame_after_detach_closed_1009", async (t) => {
  const gw = await tlsGateway(t, { RTGW_MAX_CLIENT_FRAME_BYTES: "1024" });
  const jwt = await mint(gw, [topic("wssbig", "t")]);
  // Raw TLS: the upgrade, then one frame announcing 1 MiB (its header only).
  const sock = tls.connect({ host: "127.0.0.1", port: gw.port, servername: "localhost", ca: gw.ca });
  t.cleanup(() => sock.destroy());
  await new Promise((resolve, reject) => { sock.once("secureConnect", resolve); sock.once("error", reject); });
  let got = Buffer.alloc(0);
  sock.on("data", (d) => (got = Buffer.concat([got, d])));
  sock.write(`GET /v1/realtime/connect?token=${jwt} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  await waitFor(() => got.includes("\r\n\r\n"), 5000, "the 101");
  assert.match(got.toString("latin1"), /^HTTP\/1\.1 101/);
  await sleep(100); // the session has detached: its writer reads from here on
  sock.write(clientFrame(0x2, Buffer.alloc(0), { declaredLen: 1 << 20 })); // its header only
  const start = got.indexOf("\r\n\r\n") + 4;
  await waitFor(() => got.length >= start + 4, 5000, "the close frame");
  assert.equal(got[start], 0x88);
  assert.equal(got.readUInt16BE(start + 2), 1009);
});

defcase("wss_tls12_client_keeps_openssl_records", async (t) => {
  // TLS 1.2 connections keep their SSL object (only TLS 1.3 ones move to
  // rtgw's record layer): a TLS 1.2 subscriber gets its events, big ones too.
  const gw = await tlsGateway(t, { RTGW_QUEUE_MAX_BYTES: String(16 << 20) });
  const jwt = await mint(gw, [topic("wss12", "t")]);
  const s = await connect(wsUrl(gw, jwt), { t, wsOpts: { ca: gw.ca, maxVersion: "TLSv1.2" } });
  assert.equal(s.ws._socket.getProtocol(), "TLSv1.2");
  s.ws._socket.pause();
  const blob = "y".repeat(100 * 1024);
  for (let i = 0; i < 10; i++) assert.equal((await publish(gw, "wss12", "t", { i, blob })).status, 200);
  await sleep(200);
  s.ws._socket.resume();
  for (let i = 0; i < 10; i++) assert.equal((await s.next(10000, `event ${i}`)).data.i, i);
});

// openssl s_client, interactive: a line "K" sends a KeyUpdate that asks the
// server to update too (RFC 8446 §4.6.3). Requests before and after it on one
// keep-alive connection must both be answered: the server read the client's
// new keys and moved its own.
defcase("tls13_key_update_from_the_client_both_ways", async (t) => {
  const gw = await tlsGateway(t);
  const { spawn } = await import("node:child_process");
  const dir = tmpDir(t, "rtgw-ku-");
  const caFile = `${dir}/ca.pem`;
  fs.writeFileSync(caFile, gw.ca);
  const sc = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${gw.port}`, "-servername", "localhost",
    "-tls1_3", "-CAfile", caFile, "-verify_return_error", "-crlf", "-msg"], { stdio: ["pipe", "pipe", "pipe"] });
  t.cleanup(() => sc.kill("SIGKILL"));
  let out = "", err = "";
  sc.stdout.on("data", (d) => (out += d));
  sc.stderr.on("data", (d) => (err += d));
  const answers = () => (out.match(/HTTP\/1\.1 200 OK/g) || []).length;
  await waitFor(() => /Verify return code: 0/.test(out), 5000, "the handshake");
  sc.stdin.write("GET /health HTTP/1.1\nHost: localhost\n\n");
  await waitFor(() => answers() === 1, 5000, "the first answer");
  sc.stdin.write("K\n");
  await waitFor(() => /KEYUPDATE/.test(out + err), 5000, "s_client's KEYUPDATE");
  await sleep(100);
  sc.stdin.write("GET /health HTTP/1.1\nHost: localhost\n\n");
  await waitFor(() => answers() === 2, 5000, `the answer after the key update\n${out}\n${err}`);
  // -msg shows each handshake message: ours went out, and the server's came back.
  assert.match(out, />>> TLS 1\.3, Handshake \[length 0005\], KeyUpdate/);
  assert.match(out, /<<< TLS 1\.3, Handshake \[length 0005\], KeyUpdate/);
  assert.equal((await publish(gw, "ku", "t", { still: "up" })).status, 200);
});

defcase("tls13_forged_record_after_handshake_closes_only_that_connection", async (t) => {
  // A record that does not decrypt (bad_record_mac) ends its connection and
  // nothing else: written on the raw TCP socket under a finished TLS 1.3
  // session, the way an on-path attacker would inject it.
  const gw = await tlsGateway(t);
  const [s] = await subscribers(t, gw, "forged", 1);
  const raw = net.connect(gw.port, "127.0.0.1");
  t.cleanup(() => raw.destroy());
  await new Promise((resolve) => raw.once("connect", resolve));
  const sec = tls.connect({ socket: raw, servername: "localhost", ca: gw.ca });
  await new Promise((resolve, reject) => { sec.once("secureConnect", resolve); sec.once("error", reject); });
  assert.equal(sec.getProtocol(), "TLSv1.3");
  const closed = new Promise((resolve) => sec.once("close", resolve));
  let err = null;
  sec.on("error", (e) => (err = e));
  const body = Buffer.alloc(64, 0x41);
  raw.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0, body.length]), body]));
  await Promise.race([closed, sleep(5000).then(() => { throw new Error("the connection stayed open"); })]);
  // Told why before the close (RFC 8446 §5.2: bad_record_mac; OpenSSL's, in the front door).
  assert.match(String(err?.code), /BAD_RECORD_MAC/, String(err));
  assert.equal((await publish(gw, "forged", "t", { other: "fine" })).status, 200);
  assert.deepEqual((await s.next(5000, "the event")).data, { other: "fine" });
});

// The same on a wss session, in rtgw's own record layer (tlsrec.c): each
// protocol error is answered with its fatal alert (RFC 8446 §6.2) before the
// close, as OpenSSL does for the connections it still holds. A record that
// does not decrypt: bad_record_mac; a record of another outer type:
// unexpected_message; one longer than 2^14 + 256: record_overflow.
defcase("tls13_protocol_errors_on_a_wss_session_answered_with_their_alert", async (t) => {
  const gw = await tlsGateway(t);
  const tok = await mint(gw, [topic("alerts", "t")]);
  const head = `GET /v1/realtime/connect?token=${tok} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const cases = [
    ["BAD_RECORD_MAC", Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0, 64]), Buffer.alloc(64, 0x41)])],
    ["UNEXPECTED_MESSAGE", Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0, 64]), Buffer.alloc(64, 0x41)])],
    ["RECORD_OVERFLOW", Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x41, 0x01]), Buffer.alloc(64, 0x41)])],
  ];
  for (const [want, bytes] of cases) {
    const raw = net.connect(gw.port, "127.0.0.1");
    t.cleanup(() => raw.destroy());
    await new Promise((resolve) => raw.once("connect", resolve));
    const sec = tls.connect({ socket: raw, servername: "localhost", ca: gw.ca });
    await new Promise((resolve, reject) => { sec.once("secureConnect", resolve); sec.once("error", reject); });
    let got = "", err = null;
    sec.on("data", (d) => (got += d.toString("latin1")));
    sec.on("error", (e) => (err = e));
    const closed = new Promise((resolve) => sec.once("close", resolve));
    sec.write(head);
    await waitFor(() => got.includes("\r\n\r\n"), 5000, "the 101");
    assert.ok(got.startsWith("HTTP/1.1 101"), got);
    await sleep(100); // the session is its writer's now, with rtgw's record layer
    raw.write(bytes);
    await Promise.race([closed, sleep(5000).then(() => { throw new Error(`${want}: the connection stayed open`); })]);
    assert.match(String(err?.code), new RegExp(want), `${want}: ${err}`);
  }
});

// CPU ticks (user + system) of a process, from /proc.
function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(f[11]) + Number(f[12]);
}
async function ticksOver(pid, ms) {
  const a = cpuTicks(pid);
  await sleep(ms);
  return cpuTicks(pid) - a;
}

// Raw TLS to the gateway: the socket, and what it has received so far.
async function tlsSocket(t, gw, opts = {}) {
  const sock = tls.connect({ host: "127.0.0.1", port: gw.port, servername: "localhost", ca: gw.ca, ...opts });
  t.cleanup(() => sock.destroy());
  await new Promise((resolve, reject) => { sock.once("secureConnect", resolve); sock.once("error", reject); });
  const st = { sock, got: Buffer.alloc(0), closed: false };
  sock.on("data", (d) => (st.got = Buffer.concat([st.got, d])));
  sock.on("close", () => (st.closed = true));
  sock.on("error", () => {});
  return st;
}

defcase("tls_sse_client_sending_bytes_does_not_spin", async (t) => {
  // An SSE client that sends a byte after its request: the byte is dropped,
  // the session detaches, and no thread spins on it (before: a worker thread
  // busy-looped on "readable" forever).
  const gw = await tlsGateway(t);
  const jwt = await mint(gw, [topic("ssespin", "t")]);
  const st = await tlsSocket(t, gw);
  st.sock.write(`GET /v1/realtime/sse?token=${jwt} HTTP/1.1\r\nHost: localhost\r\n\r\nX`);
  await waitFor(() => /rtgw\.subscribed/.test(st.got.toString()), 5000, "the SSE stream");
  const ticks = await ticksOver(gw.pid, 3000);
  assert.ok(ticks < 40, `rtgw used ${ticks} CPU ticks in 3 s with one idle SSE client`);
  assert.equal((await publish(gw, "ssespin", "t", { still: "served" })).status, 200);
  await waitFor(() => /still/.test(st.got.toString()), 5000, "the event over SSE");
});

defcase("frontdoor_idle_after_handshakes_with_many_pending", async (t) => {
  // 20 connections pending in the front door and 70 TLS handshakes: the
  // front door must sleep (before: epoll_wait(0) in a loop, a whole core).
  const gw = await tlsGateway(t);
  const idle = [];
  for (let i = 0; i < 20; i++) idle.push(net.connect(gw.port, "127.0.0.1"));
  t.cleanup(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 70; i++) { // each handshake finished on the server's side: a request answered
    const st = await tlsSocket(t, gw);
    st.sock.write("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    await waitFor(() => st.closed, 5000, "the answer and close");
  }
  await sleep(300);
  const ticks = await ticksOver(gw.pid, 3000);
  assert.ok(ticks < 40, `rtgw used ${ticks} CPU ticks in 3 s, idle`);
});

defcase("tls_body_in_small_records_not_stalled", async (t) => {
  // A publish whose head is one TLS record and whose body comes in 1 KiB
  // records (so a read can end on a record boundary): answered at once
  // (before: whole records waited unseen and the request stalled 30 s).
  const gw = await tlsGateway(t);
  const body = JSON.stringify({ pad: "p".repeat(26 * 1024) });
  // TLS over a TCP socket we cork: every record is sealed (one per write),
  // then all of them leave together, as one burst the server reads at once.
  const raw = net.connect(gw.port, "127.0.0.1");
  await new Promise((resolve) => raw.once("connect", resolve));
  const st = await tlsSocket(t, gw, { socket: raw });
  const head = `POST /v1/realtime/publish?channel=small&topic=t HTTP/1.1\r\nHost: localhost\r\n` +
    `Authorization: Bearer ${gw.key}\r\nContent-Length: ${body.length}\r\nX-Pad: `;
  raw.cork();
  st.sock.write(head + "x".repeat(512 - head.length - 4) + "\r\n\r\n");
  for (let i = 0; i < body.length; i += 1024) {
    st.sock.write(body.slice(i, i + 1024));
    await new Promise((resolve) => setImmediate(resolve)); // one SSL_write each
  }
  raw.uncork();
  const t0 = Date.now();
  await waitFor(() => /^HTTP\/1\.1 \d+/.test(st.got.toString()), 8000, "the answer");
  assert.match(st.got.toString(), /^HTTP\/1\.1 200/);
  assert.ok(Date.now() - t0 < 3000, `answered after ${Date.now() - t0} ms`);
});

defcase("stop_while_a_worker_waits_for_a_tls_body_within_a_second", async (t) => {
  // A publish over TLS whose body never comes: a civetweb worker waits in
  // poll for it. A stop ends that poll within a slice, as for plain ones
  // (before: ~1.5 s, civetweb's TLS poll ran its own course: 3bff7ce).
  const gw = await tlsGateway(t, { RTGW_REQUEST_TIMEOUT_MS: "8000" });
  const st = await tlsSocket(t, gw);
  st.sock.write(`POST /v1/realtime/publish?channel=stalled&topic=t HTTP/1.1\r\nHost: localhost\r\n` +
    `Authorization: Bearer ${gw.key}\r\nContent-Length: 100\r\n\r\n{"a":`);
  await sleep(500); // the head is in civetweb's hands, its worker polls for the rest
  const t0 = Date.now();
  const { code } = await gw.stop("SIGTERM");
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 1000, `the gateway took ${Date.now() - t0} ms to stop`);
});

defcase("tls13_max_fragment_length_client_served", async (t) => {
  // A client that negotiates max_fragment_length (RFC 6066: small devices)
  // keeps OpenSSL's records, which honour it.
  const gw = await tlsGateway(t);
  const { spawnSync } = await import("node:child_process");
  const dir = tmpDir(t, "rtgw-mfl-");
  fs.writeFileSync(`${dir}/ca.pem`, gw.ca);
  const r = spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${gw.port}`, "-servername", "localhost",
    "-tls1_3", "-maxfraglen", "512", "-CAfile", `${dir}/ca.pem`, "-quiet", "-crlf"],
  { input: "GET /metrics HTTP/1.1\nHost: localhost\nConnection: close\n\n", encoding: "utf8", timeout: 10000 });
  assert.match(r.stdout, /HTTP\/1\.1 200/, r.stderr);
  assert.match(r.stdout, /rtgw_connections/);
});

defcase("tls13_keyupdate_flood_closed", async (t) => {
  // 40 KeyUpdates in a row, no data: past 32 records that carry nothing the
  // connection is closed (before: every one was accepted, 3 key derivations
  // each, on a thread other connections share).
  const gw = await tlsGateway(t);
  const { spawn } = await import("node:child_process");
  const dir = tmpDir(t, "rtgw-kuf-");
  fs.writeFileSync(`${dir}/ca.pem`, gw.ca);
  const sc = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${gw.port}`, "-servername", "localhost",
    "-tls1_3", "-CAfile", `${dir}/ca.pem`, "-crlf"], { stdio: ["pipe", "pipe", "pipe"] });
  t.cleanup(() => sc.kill("SIGKILL"));
  let out = "";
  sc.stdout.on("data", (d) => (out += d));
  sc.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => sc.on("exit", resolve));
  // s_client exits when rtgw closes the connection, which may come before the
  // last write to its stdin: that write's EPIPE is the expected outcome.
  sc.stdin.on("error", () => {});
  await waitFor(() => /Verify return code: 0/.test(out), 5000, "the handshake");
  for (let i = 0; i < 40; i++) { sc.stdin.write("k\n"); await sleep(5); }
  await sleep(200);
  sc.stdin.write("GET /health HTTP/1.1\nHost: localhost\n\n");
  await Promise.race([exited, sleep(5000)]);
  assert.doesNotMatch(out, /HTTP\/1\.1 200/, "answered after the flood");
  assert.equal((await publish(gw, "kuf", "t", { still: "up" })).status, 200);
});

defcase("plain_http_and_ws_on_the_tls_port_named", async (t) => {
  const gw = await tlsGateway(t);
  for (const req of ["GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /v1/realtime/connect?token=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"]) {
    const sock = net.connect(gw.port, "127.0.0.1");
    t.cleanup(() => sock.destroy());
    let got = "";
    sock.on("data", (d) => (got += d.toString("latin1")));
    const ended = new Promise((resolve) => sock.on("close", resolve));
    sock.write(req);
    await Promise.race([ended, sleep(5000)]);
    assert.match(got, /^HTTP\/1\.1 400 /);
    assert.match(got, /"error":"plain_http_on_tls_port"/);
    assert.match(got, /use https:\/\/ \(or wss:\/\/ for WebSockets\)/);
  }
});

await run();
