// A hand-written WebSocket client over net.Socket, for what npm ws will not do:
// frames with a declared length that lies, a reader that stops reading (pauseAfter),
// the exact bytes and timing of the server's frames. Every wait is bounded.
// One Node thread; the socket is the caller's (pass `t` and t.cleanup destroys it).
//
//   const r = await rawUpgrade(gw, `/v1/realtime/connect?token=${jwt}`, { t });
//   r.status, r.headers, r.frames; r.sock.write(clientFrame(0x1, Buffer.from("{}")))
//   const f = await rawNextFrame(r, (f) => f.opcode === 0x8, 3000, "a close frame")
import crypto from "node:crypto";
import net from "node:net";
import { withTimeout } from "./wait.mjs";

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

// A masked client frame (rsv: the three RSV bits, 0..7, for protocol violations).
export function clientFrame(opcode, payload = Buffer.alloc(0), { fin = true, declaredLen, rsv = 0 } = {}) {
  const len = declaredLen ?? payload.length;
  let hdr;
  if (len < 126) { hdr = Buffer.alloc(2); hdr[1] = 0x80 | len; }
  else if (len < 65536) { hdr = Buffer.alloc(4); hdr[1] = 0x80 | 126; hdr.writeUInt16BE(len, 2); }
  else { hdr = Buffer.alloc(10); hdr[1] = 0x80 | 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
  hdr[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
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
