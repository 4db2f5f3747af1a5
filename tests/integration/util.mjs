// Helpers for the integration tier: WebSocket clients (npm ws), a hand-written
// raw WebSocket client over net.Socket, metrics parsing, process runners.
// Everything is bounded in time: every wait takes a timeout and rejects.
// Timeouts are generous (10 s) so that a loaded CI machine does not fail a case;
// a hang still ends well inside the per-case limit.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import WebSocket from "ws";
import { RTGW_BIN } from "../lib/gateway.mjs";

export { WebSocket };
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

// Poll fn() until it returns a truthy value; returns that value.
export async function waitFor(fn, ms, what, step = 25) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(step);
  }
}

// ---- WebSocket client (npm ws) ------------------------------------------------

// Opens a WebSocket and resolves once open. The client records every text
// message (parsed JSON), pings and the close; next() waits for the next message.
export function connect(url, { protocols, headers, origin, t, ms = 10000, raw = false, wsOpts = {} } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, origin, perMessageDeflate: false, ...wsOpts });
    const c = {
      ws, msgs: [], pings: 0, closeInfo: null, waiters: [], read: 0,
      closed: null,
      next(ms2 = 3000, what = "a message") {
        if (c.read < c.msgs.length) return Promise.resolve(c.msgs[c.read++]);
        if (c.closeInfo) return Promise.reject(new Error(`socket closed (${c.closeInfo.code} ${c.closeInfo.reason}) while waiting for ${what}`));
        return withTimeout(new Promise((res, rej) => c.waiters.push({ res, rej })), ms2, what);
      },
      // Resolves with the messages received in the next `ms2` ms (none expected, usually).
      async quiet(ms2 = 150) { await sleep(ms2); const extra = c.msgs.slice(c.read); c.read = c.msgs.length; return extra; },
      close() { try { ws.close(); } catch {} },
    };
    c.closed = new Promise((res) => ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      for (const w of c.waiters.splice(0)) w.rej(new Error(`socket closed (${code} ${reason}) while waiting for a message`));
      res(c.closeInfo);
    }));
    ws.on("message", (data, isBinary) => {
      let m = data;
      if (!raw) {
        const s = data.toString();
        try { m = JSON.parse(s); } catch { m = { __not_json: s, isBinary }; }
      }
      c.msgs.push(m);
      if (c.waiters.length) { c.read++; c.waiters.shift().res(m); }
    });
    ws.on("ping", () => c.pings++);
    ws.on("open", () => resolve(c));
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.on("error", (e) => reject(e));
    if (t) t.cleanup(() => ws.terminate());
  }), ms, `WebSocket open ${url.replace(/token=[^&]+/, "token=…")}`);
}

// Expects the upgrade to be refused with an HTTP status; resolves { status, json, headers }.
export function refusedUpgrade(url, { protocols, headers, origin, ms = 10000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, origin, perMessageDeflate: false });
    ws.on("open", () => { ws.terminate(); reject(new Error("upgrade unexpectedly succeeded")); });
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        let json; try { json = JSON.parse(body); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, body, headers: res.headers });
        req.destroy();
      });
    });
    ws.on("error", (e) => reject(e));
  }), ms, "refused upgrade");
}

// Extended protocol refusal: the upgrade completes and the server closes with a code.
export function refusedExt(url, { headers, origin, protocols = ["rtgw.v1"], ms = 10000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, origin, perMessageDeflate: false });
    let opened = false; const msgs = [];
    ws.on("open", () => { opened = true; });
    ws.on("message", (d) => msgs.push(d.toString()));
    ws.on("unexpected-response", (req, res) => reject(new Error(`ext refusal answered with HTTP ${res.statusCode} instead of a close frame`)));
    ws.on("close", (code, reason) => resolve({ opened, code, reason: reason.toString(), msgs, protocol: ws.protocol }));
    ws.on("error", (e) => { if (!opened) reject(e); });
  }), ms, "extended-protocol refusal");
}

export const wsUrl = (gw, token, extra = "") => `${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(token)}${extra}`;

// ---- HTTP ----------------------------------------------------------------------

export async function http(gw, method, p, { body, headers = {}, key } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  const res = await withTimeout(fetch(`${gw.url}${p}`, { method, headers: h, body }), 10000, `${method} ${p}`);
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text, headers: res.headers };
}

export async function mintBody(gw, body, key = gw.key) {
  return http(gw, "POST", "/v1/realtime/token", { body: typeof body === "string" ? body : JSON.stringify(body), key, headers: { "Content-Type": "application/json" } });
}

export const topic = (channel, name) => ({ channel, name, kind: "run" });

// ---- metrics ---------------------------------------------------------------------

export async function metrics(gw) {
  const r = await http(gw, "GET", "/metrics");
  assert.equal(r.status, 200);
  return r.text;
}

// Value of one sample, e.g. metric(text, 'rtgw_disconnects_total{reason="idle_timeout"}'); undefined if absent.
export function metric(text, sample) {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (line.slice(0, sp) === sample) return Number(line.slice(sp + 1));
  }
  return undefined;
}

export function rssKb(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = s.match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}

// ---- raw WebSocket over net.Socket -------------------------------------------------

// Server frames parsed from a byte stream.
export function frameParser(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0], b1 = buf[1];
      let len = b1 & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (b1 & 0x80) off += 4; // server frames are never masked; tolerate it anyway
      if (buf.length < off + len) return;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      onFrame({ fin: !!(b0 & 0x80), opcode: b0 & 0x0f, payload });
    }
  };
}

// A masked client frame.
export function clientFrame(opcode, payload = Buffer.alloc(0), { fin = true, declaredLen } = {}) {
  const len = declaredLen ?? payload.length;
  let hdr;
  if (len < 126) { hdr = Buffer.alloc(2); hdr[1] = 0x80 | len; }
  else if (len < 65536) { hdr = Buffer.alloc(4); hdr[1] = 0x80 | 126; hdr.writeUInt16BE(len, 2); }
  else { hdr = Buffer.alloc(10); hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
  hdr[0] = (fin ? 0x80 : 0) | opcode;
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([hdr, mask, body]);
}

export const closePayload = (p) => ({ code: p.length >= 2 ? p.readUInt16BE(0) : undefined, reason: p.subarray(2).toString() });

// Upgrade by hand. Resolves { sock, status, headers, frames, onFrame, ended } after the
// response head; frames (after the head) are parsed into `frames` unless paused.
export function rawUpgrade(gw, pathAndQuery, { headers = {}, pauseAfter = false, t, ms = 10000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(gw.port, "127.0.0.1");
    const key = crypto.randomBytes(16).toString("base64");
    const r = { sock, frames: [], ended: null, endedAt: 0, listeners: [], bytes: 0 };
    r.ended = new Promise((res) => sock.on("close", () => { r.endedAt = Date.now(); res(); }));
    sock.on("error", () => {});
    if (t) t.cleanup(() => sock.destroy());
    const parse = frameParser((f) => { r.frames.push(f); for (const l of r.listeners) l(f); });
    let head = Buffer.alloc(0), gotHead = false;
    sock.on("data", (d) => {
      r.bytes += d.length;
      if (gotHead) return parse(d);
      head = Buffer.concat([head, d]);
      const i = head.indexOf("\r\n\r\n");
      if (i < 0) return;
      gotHead = true;
      const lines = head.subarray(0, i).toString().split("\r\n");
      r.status = Number(lines[0].split(" ")[1]);
      r.headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      r.upgradedAt = Date.now();
      if (pauseAfter) sock.pause();
      const rest = head.subarray(i + 4);
      resolve(r);
      if (rest.length) parse(rest);
    });
    sock.on("connect", () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      sock.write(`GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    });
    sock.on("close", () => { if (!gotHead) reject(new Error("connection closed before the upgrade response")); });
  }), ms, "raw upgrade");
}

// Waits for a raw frame matching pred (looking at frames already received too).
export function rawNextFrame(r, pred, ms, what) {
  const hit = r.frames.find(pred);
  if (hit) return Promise.resolve(hit);
  return withTimeout(new Promise((res) => r.listeners.push((f) => { if (pred(f)) res(f); })), ms, what);
}

// ---- processes ------------------------------------------------------------------------

export function tmpDir(t) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-it-"));
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

// SHA-256 form of a signing key, as the Inngest SDKs send it.
export function hashKey(key) {
  const m = key.match(/^(signkey-\w+-)(.*)$/);
  return m[1] + crypto.createHash("sha256").update(Buffer.from(m[2], "hex")).digest("hex");
}

export const b64url = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
export const jwtParts = (jwt) => { const [h, p, s] = jwt.split("."); return { h: JSON.parse(Buffer.from(h, "base64url")), p: JSON.parse(Buffer.from(p, "base64url")), s }; };
