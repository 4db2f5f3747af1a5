// examples/caddy/Caddyfile in front of a real rtgw, with Debian's real caddy (2.6).
//
// Each case starts its own rtgw and caddy (`caddy run --adapter caddyfile`, as the current
// user, on a free loopback port, with HOME and the XDG dirs in a private tmpdir, the admin
// API off and automatic HTTPS off). Test copies of the example shorten the read timeout
// or take lines out, to pin what each line does and what a misconfiguration looks like.
//   node tests/proxy/caddy.mjs <case>     (RTGW_BIN, CADDY_BIN=/usr/bin/caddy)
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, freePort, mint } from "../lib/gateway.mjs";
import { sub, publishVia, sse, startProxyProcess, checkStreamNotBuffered, checkWsThroughProxy } from "./common.mjs";

requireNodeModules("ws");
const { sleep, withTimeout, waitFor } = await import("../lib/wait.mjs");
const { connect } = await import("../lib/ws.mjs");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = path.join(root, "examples", "caddy", "Caddyfile");
const CADDY_BIN = process.env.CADDY_BIN || "/usr/bin/caddy";

async function startCaddy(t, gw, edit = (c) => c) {
  if (!fs.existsSync(CADDY_BIN)) throw new Error(`${CADDY_BIN} is missing: run scripts/deps.sh test (Debian package caddy)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-caddy-"));
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let conf = fs.readFileSync(EXAMPLE, "utf8");
  // Test-only global options: no admin endpoint, no ACME, no waiting on open streams at exit.
  conf = sub(conf, /^\{\n/m, "{\n\tadmin off\n\tauto_https off\n\tgrace_period 1s\n");
  conf = sub(conf, /^rt\.example\.com \{\n/m, `http://127.0.0.1:${port} {\n\tbind 127.0.0.1\n`);
  conf = sub(conf, /to 127\.0\.0\.1:8288/, `to 127.0.0.1:${gw.port}`);
  conf = edit(conf);
  const file = path.join(dir, "Caddyfile");
  fs.writeFileSync(file, conf);
  const env = {
    PATH: process.env.PATH, HOME: dir,
    XDG_DATA_HOME: path.join(dir, "data"), XDG_CONFIG_HOME: path.join(dir, "config"),
  };
  const p = await startProxyProcess(t, "caddy", CADDY_BIN, ["run", "--config", file, "--adapter", "caddyfile"], { env, cwd: dir });
  const cd = { port, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, dir, conf, logs: p.logs, child: p.child };
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`caddy exited ${p.child.exitCode}:\n${p.logs()}\n--- Caddyfile ---\n${conf}`);
    try { return (await fetch(`${cd.url}/health`)).status === 200; } catch { return false; }
  }, 10000, "caddy to proxy /health");
  return cd;
}

// The transport's read/write timeouts in a test copy.
const shortTimeouts = (s) => (c) => sub(sub(c, "read_timeout 1h", `read_timeout ${s}s`), "write_timeout 1h", `write_timeout ${s}s`);

// ---------------------------------------------------------------------------------

defcase("ws_subscribe_and_publish", async (t) => {
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  await checkWsThroughProxy(t, gw, cd, "caddy");
  // /metrics is answered for loopback (the test's own address).
  assert.equal((await fetch(`${cd.url}/metrics`)).status, 200);
  assert.equal((await fetch(`${cd.url}/ready`)).status, 200);
});

defcase("sse_delivers_promptly", async (t) => {
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  const jwt = await mint(gw, [{ channel: "user:7", name: "status", kind: "run" }]);
  const s = await sse(`${cd.url}/v1/realtime/sse?token=${jwt}`, t);
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  await waitFor(() => s.frames.length >= 1, 2000, "the rtgw.subscribed ack through caddy");
  assert.equal(s.frames[0].msg.kind, "rtgw.subscribed");
  for (let i = 1; i <= 3; i++) {
    const sent = Date.now();
    const r = await publishVia(cd.url, gw, "user:7", "status", { i });
    assert.equal(r.status, 200);
    const f = await waitFor(() => s.frames.find((x) => x.msg.data?.i === i), 1000, `event ${i} within 1 s`);
    assert.ok(f.at - sent < 1000, `event ${i} took ${f.at - sent} ms`);
    await sleep(200);
  }
});

defcase("publish_batch_token_and_limits", async (t) => {
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  const jwt = await mint(gw, [{ channel: "c", name: "*", kind: "run" }]);
  const s = await sse(`${cd.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  const r1 = await publishVia(cd.url, gw, "c", "t", "plain text");
  assert.equal(r1.status, 200);
  const batch = await fetch(`${cd.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "c", topic: "t", data: 1 }, { channel: "c", topic: "*", data: 2 }]),
  });
  assert.equal(batch.status, 200);
  const bj = await batch.json();
  assert.equal(bj.published, 1);
  assert.equal(bj.failed, 1);
  const a = await publishVia(cd.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  const b = await publishVia(cd.url, gw, "c", "t", "x", { "Idempotency-Key": "k1" });
  assert.equal(b.body.duplicate, true, "Idempotency-Key passes through caddy");
  assert.deepEqual(b.body.ids, a.body.ids);
  await waitFor(() => s.frames.length >= 4, 2000, "3 events");
  assert.deepEqual(s.frames.slice(1).map((f) => f.msg.data), ["plain text", 1, "x"]);
  // Over the limits: rtgw's own JSON 413 on publish (caddy allows 32MB there)…
  const big = "x".repeat(600 * 1024);
  const p = await publishVia(cd.url, gw, "c", "t", big);
  assert.equal(p.status, 413);
  assert.equal(p.body.error, "body_too_large");
  assert.match(p.body.message, /RTGW_MAX_BODY_BYTES/);
  // …and caddy's request_body max_size 512KB on the rest of the API, refused by caddy
  // itself (rtgw never sees it).
  const before = (await (await fetch(`${gw.url}/metrics`)).text()).match(/^rtgw_publish_requests_total (\d+)/m)?.[1];
  const tb = await fetch(`${cd.url}/v1/realtime/publish/batch`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: JSON.stringify([{ channel: "c", topic: "t", data: big }]),
  });
  const tbody = await tb.text();
  // Without the example's handle_errors, Caddy 2.6 answers this with an empty 502.
  assert.equal(tb.status, 413, `caddy's answer: ${tb.status} ${tbody.slice(0, 200)}`);
  assert.match(tb.headers.get("content-type"), /^application\/json/);
  assert.equal(JSON.parse(tbody).error, "body_too_large", "caddy's 413 is JSON with rtgw's error name");
  const after = (await (await fetch(`${gw.url}/metrics`)).text()).match(/^rtgw_publish_requests_total (\d+)/m)?.[1];
  assert.equal(after, before, "the oversized batch did not reach rtgw");
});

defcase("stream_publish_not_buffered", async (t) => {
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  await checkStreamNotBuffered(t, gw, cd.url, "caddy does not buffer requests");
});

defcase("idle_ws_kept_alive_by_pings", async (t) => {
  // The transport's read_timeout cut to 3 s in a test copy, rtgw pinging every second:
  // an idle WebSocket survives 6 s, because every ping resets caddy's read deadline.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const cd = await startCaddy(t, gw, shortTimeouts(3));
  assert.match(cd.conf, /read_timeout 3s/);
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const c = await connect(`${cd.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  await sleep(6000);
  assert.equal(c.closeInfo, null, `closed while idle: ${JSON.stringify(c.closeInfo)}`);
  assert.ok(c.pings >= 4, `pings through caddy: ${c.pings}`);
  const r = await publishVia(cd.url, gw, "idle", "t", { after: "6s idle" });
  assert.equal(r.body.delivered, 1);
  assert.deepEqual((await c.next()).data, { after: "6s idle" });
});

defcase("idle_ws_dropped_by_short_read_timeout", async (t) => {
  // The broken copy: read_timeout (3 s) below rtgw's ping interval (20 s here, like a
  // `read_timeout 10s` against the default 15 s). caddy's read deadline still applies
  // after the upgrade, so it cuts the idle WebSocket. Signature: 1006, no close frame,
  // about read_timeout after the last frame from rtgw.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "20000" } });
  const cd = await startCaddy(t, gw, shortTimeouts(3));
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const opened = Date.now();
  const c = await connect(`${cd.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal((await c.next()).kind, "rtgw.subscribed");
  const info = await withTimeout(c.closed, 10000, "caddy to drop the idle WebSocket");
  const after = Date.now() - opened;
  assert.equal(info.code, 1006, `close ${JSON.stringify(info)}`);
  assert.ok(after >= 2500 && after < 6000, `dropped after ${after} ms (read_timeout 3 s)`);
  assert.equal(c.pings, 0);
});

defcase("idle_sse_kept_alive_by_comments", async (t) => {
  // The same short read_timeout on an SSE stream: rtgw's keep-alive comment every
  // RTGW_PING_INTERVAL_MS resets it, so an idle stream outlives it and still delivers.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "1000" } });
  const cd = await startCaddy(t, gw, shortTimeouts(3));
  const jwt = await mint(gw, [{ channel: "idle", name: "t", kind: "run" }]);
  const s = await sse(`${cd.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  await sleep(6000);
  assert.equal(s.ended, null, "the idle SSE stream was cut");
  assert.ok(s.comments >= 4, `keep-alive comments through caddy: ${s.comments}`);
  await publishVia(cd.url, gw, "idle", "t", { after: "6s idle" });
  await waitFor(() => s.frames.find((f) => f.msg.data?.after), 1000, "the event after 6 s idle");
});

defcase("sse_without_flush_interval_still_prompt", async (t) => {
  // Not a failure in Caddy 2.6: without `flush_interval -1`, reverse_proxy still flushes
  // at once because rtgw answers text/event-stream (and streams with no Content-Length).
  // The example keeps `flush_interval -1` as a guarantee, and the README says so.
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw, (c) => sub(c, /\n\s*flush_interval -1\n/, "\n"));
  assert.doesNotMatch(cd.conf, /flush_interval/);
  const jwt = await mint(gw, [{ channel: "s", name: "t", kind: "run" }]);
  const s = await sse(`${cd.url}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  const sent = Date.now();
  await publishVia(cd.url, gw, "s", "t", { unbuffered: true });
  const f = await waitFor(() => s.frames.find((x) => x.msg.data?.unbuffered), 1000, "the event within 1 s");
  assert.ok(f.at - sent < 1000);
});

defcase("encode_kept_off_realtime_paths", async (t) => {
  // A site that compresses its own pages keeps `encode` off /v1/realtime/* (the README's
  // rule). A compressed event stream is held in the gzip writer: with a site-wide
  // `encode gzip`, Caddy 2.6 compresses a text/event-stream reply whose first flush is
  // ≥ 512 bytes (minimum_length), Cache-Control: no-transform or not, and then sends
  // nothing until the compressor's buffer fills. Whether rtgw's first flush (headers and
  // ": rtgw") is read alone or together with the subscribed ack is a matter of timing,
  // so only the recommended form is pinned here.
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw, (c) => sub(c, /^(http:\/\/127\.0\.0\.1:\d+ \{\n\tbind 127\.0\.0\.1\n)/m,
    "$1\t@compress not path /v1/realtime/*\n\tencode @compress gzip\n"));
  assert.match(cd.conf, /encode @compress gzip/);
  // Long topic names make the subscribed ack well over 512 bytes.
  const topics = Array.from({ length: 30 }, (_, i) => ({ channel: "g", name: `a-long-topic-name-${i}`, kind: "run" }));
  const jwt = await mint(gw, [{ channel: "g", name: "t", kind: "run" }, ...topics]);
  const res = await withTimeout(new Promise((resolve, reject) => {
    const req = http.get(`${cd.url}/v1/realtime/sse?token=${jwt}`, { headers: { Accept: "text/event-stream", "Accept-Encoding": "gzip" } }, resolve);
    req.on("error", reject);
    t.cleanup(() => req.destroy());
  }), 5000, "SSE response headers");
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["content-encoding"], undefined, "SSE must not be gzipped");
  let text = "";
  res.setEncoding("utf8");
  res.on("data", (d) => (text += d));
  res.on("error", () => {});
  await waitFor(() => text.includes("rtgw.subscribed"), 2000, "the ack");
  const sent = Date.now();
  await publishVia(cd.url, gw, "g", "t", { gz: 1 });
  await waitFor(() => text.includes('"gz":1'), 1000, "the event within 1 s");
  assert.ok(Date.now() - sent < 1000);
  // The encode line is live for the other paths: /metrics (text, > 512 bytes) is gzipped.
  const m = await new Promise((resolve, reject) => {
    http.get(`${cd.url}/metrics`, { headers: { "Accept-Encoding": "gzip" } }, (r) => { r.resume(); resolve(r); }).on("error", reject);
  });
  assert.equal(m.statusCode, 200);
  assert.equal(m.headers["content-encoding"], "gzip");
});

defcase("rtgw_down_is_not_a_413", async (t) => {
  // The handle_errors block only rewrites the body-size error: with rtgw gone, caddy
  // still answers 502 (or 503 once the /ready health check has marked it down).
  const gw = await startGateway(t);
  const cd = await startCaddy(t, gw);
  await gw.stop();
  const r = await fetch(`${cd.url}/v1/realtime/token`, { method: "POST", headers: { Authorization: `Bearer ${gw.key}` }, body: "[]" });
  assert.ok([502, 503].includes(r.status), `status ${r.status}`);
});

await run();
