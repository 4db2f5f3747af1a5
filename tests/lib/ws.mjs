// WebSocket clients for tests, over npm ws (tests/node_modules): a client that
// queues parsed messages, counts pings and records the close; and the two ways an
// upgrade is refused (an HTTP status, or an extended-protocol close code).
// Every wait is bounded (lib/wait.mjs). One Node thread; the caller owns each
// client it gets and closes it (or passes `t`, and t.cleanup terminates it).
//
//   const c = await connect(wsUrl(gw, jwt), { protocols: ["rtgw.v1"], t });
//   (await c.next()).kind === "rtgw.subscribed"; c.pings; c.closeInfo; await c.closed
import WebSocket from "ws";
import { sleep, withTimeout } from "./wait.mjs";

export { WebSocket };

export const wsUrl = (gw, token, extra = "") => `${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(token)}${extra}`;

// Opens a WebSocket and resolves once open. The client records every text
// message (parsed JSON), pings and the close; next() waits (nextMs by default)
// for the next message. ms bounds the opening.
export function connect(url, { protocols, headers, origin, t, ms = 10000, nextMs = 3000, raw = false, wsOpts = {} } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, origin, perMessageDeflate: false, ...wsOpts });
    const c = {
      ws, msgs: [], pings: 0, closeInfo: null, waiters: [], read: 0,
      closed: null,
      next(ms2 = nextMs, what = "a message") {
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
