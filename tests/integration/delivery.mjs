// Delivery guarantees of the extended protocol (rtgw.v1), against real rtgw
// processes on loopback: resume from history (WebSocket and SSE), reconnect
// storms and the replay/live seam, history bounds and epochs, idempotent and
// batch publish, in-band token refresh, documented close codes, and streamed
// publishes. Every wait is bounded.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import net from "node:net";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, mint, publish, keygen } from "../lib/gateway.mjs";
import { topic as T } from "../lib/http.mjs";
import { sleep, withTimeout } from "../lib/wait.mjs";

requireNodeModules("ws");
const { default: WebSocket } = await import("ws");

// ---- helpers -----------------------------------------------------------------------

const jwtPayload = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
const idEpoch = (id) => id.split("-")[0];
const idOffset = (id) => Number(id.split("-")[1]);

function sinceQuery(since) {
  if (since === undefined || since === null) return "";
  const list = Array.isArray(since) ? since : [since];
  return list.map((s) => `&since=${encodeURIComponent(s)}`).join("");
}

// A WebSocket subscriber. ext (default) opts in with the rtgw.v1 subprotocol.
// c.frames: every parsed text frame; c.data: the data frames; c.ack: the
// rtgw.subscribed frame; c.closeInfo / c.closed: {code, reason}.
// c.until(pred) waits (bounded) until pred() holds, re-checked on every frame.
function openWs(gw, jwt, { since, ext = true, query = "", headers, origin, t, ms = 5000, onFrame } = {}) {
  const url = `${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(jwt)}${sinceQuery(since)}${query}`;
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ext ? ["rtgw.v1"] : [], { headers, origin, perMessageDeflate: false });
    const c = {
      ws, frames: [], data: [], ack: null, closeInfo: null, waiters: new Set(),
      check() { for (const w of [...c.waiters]) w(); },
      until(pred, ms2 = 5000, what = "a condition") {
        return withTimeout(new Promise((res, rej) => {
          const w = () => {
            let v;
            try { v = pred(); } catch (e) { c.waiters.delete(w); return rej(e); }
            if (v) { c.waiters.delete(w); res(v); } else if (c.closeInfo) {
              c.waiters.delete(w);
              rej(new Error(`socket closed (${c.closeInfo.code} ${c.closeInfo.reason}) while waiting for ${what}; ${c.data.length} data frames`));
            }
          };
          c.waiters.add(w);
          w();
        }), ms2, `${what} (${c.data.length} data frames so far)`);
      },
      waitData(n, ms2 = 5000) { return c.until(() => c.data.length >= n, ms2, `${n} data frames`); },
      waitKind(kind, ms2 = 5000) { return c.until(() => c.frames.find((f) => f.kind === kind), ms2, `a ${kind} frame`); },
      send(o) { ws.send(typeof o === "string" ? o : JSON.stringify(o)); },
      close() { try { ws.close(); } catch {} return c.closed; },
    };
    c.closed = new Promise((res) => ws.on("close", (code, reason) => {
      c.closeInfo = { code, reason: reason.toString() };
      c.check();
      res(c.closeInfo);
    }));
    ws.on("message", (d, isBinary) => {
      let m;
      try { m = JSON.parse(d.toString()); } catch { m = { __not_json: d.toString(), isBinary }; }
      c.frames.push(m);
      if (m.kind === "rtgw.subscribed" && !c.ack) c.ack = m;
      if (m.kind === "data") c.data.push(m);
      if (onFrame) onFrame(m, c);
      c.check();
    });
    ws.on("open", () => resolve(c));
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (x) => (body += x));
      res.on("end", () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.on("error", (e) => { if (!c.closeInfo) reject(e); });
    if (t) t.cleanup(() => ws.terminate());
  }), ms, "WebSocket open");
}

// Opens and waits for the subscription ack (extended clients get it first).
async function subscribe(gw, jwt, opts = {}) {
  const c = await openWs(gw, jwt, opts);
  await c.until(() => c.ack, 3000, "the rtgw.subscribed ack");
  assert.equal(c.frames[0].kind, "rtgw.subscribed", "the ack is the first frame");
  return c;
}

// An SSE subscriber over node:http. c.events: [{event, id, data}] (data parsed);
// c.data: the events with an id; c.pings: keep-alive comments seen.
function openSse(gw, jwt, { since, lastEventId, t, ms = 5000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const headers = {};
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const req = http.get(`${gw.url}/v1/realtime/sse?token=${encodeURIComponent(jwt)}${sinceQuery(since)}`, { headers });
    const c = {
      req, events: [], data: [], pings: 0, ended: false, status: 0, waiters: new Set(),
      until(pred, ms2 = 5000, what = "a condition") {
        return withTimeout(new Promise((res, rej) => {
          const w = () => {
            const v = pred();
            if (v) { c.waiters.delete(w); res(v); } else if (c.ended) { c.waiters.delete(w); rej(new Error(`SSE stream ended while waiting for ${what}`)); }
          };
          c.waiters.add(w);
          w();
        }), ms2, `${what} (${c.data.length} SSE data events so far)`);
      },
      waitData(n, ms2 = 5000) { return c.until(() => c.data.length >= n, ms2, `${n} SSE events`); },
      close() { req.destroy(); },
    };
    let buf = "";
    req.on("response", (res) => {
      c.status = res.statusCode;
      c.headers = res.headers;
      res.setEncoding("utf8");
      res.on("data", (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: "message", id: undefined, data: undefined, raw: block };
          let dataLines = [], comment = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) { comment = true; if (/^: ?ping/.test(line)) c.pings++; continue; }
            const k = line.indexOf(":");
            const field = k < 0 ? line : line.slice(0, k);
            const val = k < 0 ? "" : line.slice(k + 1).replace(/^ /, "");
            if (field === "event") ev.event = val;
            else if (field === "id") ev.id = val;
            else if (field === "data") dataLines.push(val);
          }
          if (!dataLines.length) { if (comment) for (const w of [...c.waiters]) w(); continue; }
          ev.text = dataLines.join("\n");
          try { ev.data = JSON.parse(ev.text); } catch { ev.data = ev.text; }
          c.events.push(ev);
          if (ev.event === "rtgw.subscribed" && !c.ack) c.ack = ev.data;
          if (ev.id !== undefined) c.data.push(ev);
          for (const w of [...c.waiters]) w();
        }
      });
      res.on("end", () => { c.ended = true; for (const w of [...c.waiters]) w(); });
      res.on("error", () => {});
      resolve(c);
    });
    req.on("error", (e) => { if (!c.status) reject(e); else { c.ended = true; for (const w of [...c.waiters]) w(); } });
    if (t) t.cleanup(() => req.destroy());
  }), ms, "SSE open");
}

// Extended refusal: the upgrade completes, then the server closes with a code.
function refusedExt(gw, jwt, { query = "", origin, headers, noToken = false, ms = 5000 } = {}) {
  const url = noToken ? `${gw.ws}/v1/realtime/connect${query ? `?${query.replace(/^&/, "")}` : ""}`
    : `${gw.ws}/v1/realtime/connect?token=${encodeURIComponent(jwt)}${query}`;
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["rtgw.v1"], { headers, origin, perMessageDeflate: false });
    let opened = false; const msgs = [];
    ws.on("open", () => { opened = true; });
    ws.on("message", (d) => msgs.push(d.toString()));
    ws.on("unexpected-response", (req, res) => reject(new Error(`refusal answered with HTTP ${res.statusCode} instead of a close frame`)));
    ws.on("close", (code, reason) => resolve({ opened, code, reason: reason.toString(), msgs, protocol: ws.protocol }));
    ws.on("error", (e) => { if (!opened) reject(e); });
  }), ms, "extended-protocol refusal");
}

function assertClose(info, code, name) {
  assert.equal(info.code, code, `close code (reason ${JSON.stringify(info.reason)})`);
  assert.ok(info.reason === name || info.reason.startsWith(`${name}: `), `close reason ${JSON.stringify(info.reason)} is ${name}`);
}

async function httpJson(gw, method, p, { body, headers = {} } = {}) {
  const res = await withTimeout(fetch(`${gw.url}${p}`, { method, headers, body }), 5000, `${method} ${p}`);
  const text = await res.text();
  let json; try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

async function batch(gw, events, { key = gw.key } = {}) {
  return httpJson(gw, "POST", "/v1/realtime/publish/batch", {
    body: typeof events === "string" ? events : JSON.stringify(events),
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
  });
}

async function pub(gw, ch, topic, data, opts) {
  const r = await publish(gw, ch, topic, data, opts);
  assert.equal(r.status, 200, `publish ${ch}/${topic}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.ok, true);
  return r.body;
}

// Upgrade by hand (no automatic pong), parsing server frames.
function rawWs(gw, pathAndQuery, { protocol = "rtgw.v1", t, ms = 5000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(gw.port, "127.0.0.1");
    const r = { sock, frames: [], status: 0, listeners: [] };
    r.ended = new Promise((res) => sock.on("close", res));
    sock.on("error", () => {});
    if (t) t.cleanup(() => sock.destroy());
    let buf = Buffer.alloc(0), gotHead = false;
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const f = { opcode: buf[0] & 0x0f, payload: buf.subarray(off, off + len) };
        buf = buf.subarray(off + len);
        r.frames.push(f);
        for (const l of r.listeners) l(f);
      }
    };
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!gotHead) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        gotHead = true;
        r.status = Number(buf.subarray(0, i).toString().split(" ")[1]);
        buf = buf.subarray(i + 4);
        resolve(r);
      }
      parse();
    });
    sock.on("connect", () => {
      sock.write(`GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : "") + "\r\n");
    });
    sock.on("close", () => { if (!gotHead) reject(new Error("closed before the upgrade response")); });
  }), ms, "raw upgrade");
}

const rawNext = (r, pred, ms, what) => {
  const hit = r.frames.find(pred);
  if (hit) return Promise.resolve(hit);
  return withTimeout(new Promise((res) => r.listeners.push((f) => { if (pred(f)) res(f); })), ms, what);
};

// Publishes one event per line of `seqs`, sequentially, returning their ids.
async function pubSeq(gw, ch, topic, from, n, extra = {}) {
  const ids = [];
  for (let i = from; i < from + n; i++) ids.push((await pub(gw, ch, topic, { seq: i, ...extra })).ids[0]);
  return ids;
}

// ---- 1. resume ---------------------------------------------------------------------------

defcase("resume_replays_missed", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("res", "a")]);
  const c1 = await subscribe(gw, jwt, { t });
  assert.equal(c1.ack.recovered, undefined, "no since: no recovered field");
  assert.equal(c1.ack.channels.res.recovered, undefined);
  assert.deepEqual(c1.ack.topics, [{ channel: "res", name: "a" }]);
  const first = await pubSeq(gw, "res", "a", 0, 5);
  await c1.waitData(5);
  assert.deepEqual(c1.data.map((m) => m.id), first, "frame ids are the ids publish returned");
  const last = c1.data.at(-1).id;
  await c1.close();

  const missed = await pubSeq(gw, "res", "a", 5, 7);
  const c2 = await subscribe(gw, jwt, { since: last, t });
  assert.equal(c2.ack.recovered, true);
  assert.deepEqual(c2.ack.channels.res, { id: missed.at(-1), recovered: true, replayed: 7 });
  await c2.waitData(7);
  assert.deepEqual(c2.data.map((m) => m.data.seq), [5, 6, 7, 8, 9, 10, 11]);
  assert.deepEqual(c2.data.map((m) => m.id), missed);
  // Live continues after the replay, with nothing doubled.
  const live = await pubSeq(gw, "res", "a", 12, 2);
  await c2.waitData(9);
  assert.deepEqual(c2.data.slice(7).map((m) => m.id), live);
  await sleep(150);
  assert.equal(c2.data.length, 9, "nothing extra");

  // Resuming from the latest id replays nothing and is recovered.
  const c3 = await subscribe(gw, jwt, { since: live.at(-1), t });
  assert.deepEqual(c3.ack.channels.res, { id: live.at(-1), recovered: true, replayed: 0 });
  await sleep(150);
  assert.equal(c3.data.length, 0);
});

// ---- 2. reconnect storm ------------------------------------------------------------------

defcase("reconnect_storm", async (t) => {
  const gw = await startGateway(t, {
    env: {
      RTGW_HISTORY_MAX: "5000", RTGW_QUEUE_MAX_MESSAGES: "128", RTGW_SOCKET_SNDBUF: "4096",
      RTGW_MAX_CONNECTIONS: "200", RTGW_LOG_LEVEL: "warn",
    },
  });
  const TOTAL = 2000, NSUB = 20;
  const jwt = await mint(gw, [T("storm", "e")], { ttl: 600 });
  const pad = "p".repeat(1500); // fills socket buffers fast enough for slow-consumer kicks
  let publishing = true;
  const seed = Number(process.env.RT_STORM_SEED || Date.now() % 100000);
  let rnd = seed;
  const rand = () => ((rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648);
  const stats = { closes: {}, resumes: 0, replayed: 0, notRecovered: 0 };

  const firstAcks = [];
  async function agent(i, acked) {
    const st = { i, next: 0, last: null, errors: [], conns: 0 };
    const pauser = i % 5 === 0; // some subscribers stop reading and get kicked
    while (st.next < TOTAL) {
      if (st.conns > 400) throw new Error(`subscriber ${i}: too many reconnects`);
      st.conns++;
      const from = st.last;
      const c = await openWs(gw, jwt, {
        since: from ?? undefined, ms: 5000,
        onFrame: (m) => {
          if (m.kind !== "data") return;
          const seq = m.data.seq;
          if (seq !== st.next) st.errors.push(`sub ${i}: got seq ${seq}, expected ${st.next} (conn ${st.conns})`);
          if (seq >= st.next) st.next = seq + 1;
          st.last = m.id;
        },
      });
      await c.until(() => c.ack || c.closeInfo, 5000, "ack");
      if (st.conns === 1) acked();
      // The ack's id is the channel's position: a client that has seen no
      // event yet resumes from there.
      if (c.ack && !st.last && !from) st.last = c.ack.channels.storm.id;
      if (c.ack && from) {
        stats.resumes++;
        stats.replayed += c.ack.channels.storm.replayed;
        if (!c.ack.recovered) { stats.notRecovered++; st.errors.push(`sub ${i}: resume not recovered ${JSON.stringify(c.ack)}`); }
      }
      const r = rand();
      if (!publishing) {
        await c.until(() => st.next >= TOTAL, 15000, `sub ${i} to catch up`).catch(() => {});
        if (st.next >= TOTAL) c.close();
      } else if (pauser && st.conns % 3 === 1) {
        // Stop reading on a fresh connection (its receive window is still
        // small), so the gateway's queue bound is reached: kicked with 4429.
        c.ws.pause();
        await Promise.race([c.closed, sleep(700)]);
        c.ws.resume(); // read again: the close frame (4429) is waiting behind the buffered events
        await Promise.race([c.closed, sleep(500)]);
        if (!c.closeInfo) c.ws.terminate();
      } else {
        await Promise.race([c.closed, sleep(30 + rand() * 500)]);
        if (r < 0.45) c.ws.close();
        else c.ws.terminate();
      }
      const info = await withTimeout(c.closed, 5000, `sub ${i} close`);
      stats.closes[info.code] = (stats.closes[info.code] || 0) + 1;
      if (st.errors.length > 5) break;
    }
    return st;
  }

  const agents = Array.from({ length: NSUB }, (_, i) => {
    let acked;
    firstAcks.push(new Promise((r) => (acked = r)));
    return agent(i, acked);
  });
  // Everyone is subscribed before the first event: each must see all of them.
  await withTimeout(Promise.all(firstAcks), 10000, "every subscriber to connect");
  // The publisher: 2000 events, sequence numbers in order, about 8 s.
  const t0 = Date.now();
  // Single publishes and batches of 8 (a batch publishes in order).
  for (let s = 0, round = 0; s < TOTAL; round++) {
    if (round % 2 === 0) {
      const r = await publish(gw, "storm", "e", { seq: s, pad });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      s++;
    } else {
      const n = Math.min(8, TOTAL - s);
      const r = await batch(gw, Array.from({ length: n }, (_, k) => ({ channel: "storm", topic: "e", data: { seq: s + k, pad } })));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.published, n);
      s += n;
    }
    if (round % 4 === 3) await sleep(20);
  }
  publishing = false;
  const pubMs = Date.now() - t0;
  const results = await withTimeout(Promise.all(agents), 25000, "all subscribers to finish");
  const errors = results.flatMap((r) => r.errors);
  console.log(`storm seed=${seed} publish ${pubMs} ms, resumes ${stats.resumes}, replayed ${stats.replayed}, closes ${JSON.stringify(stats.closes)}`);
  assert.deepEqual(errors, [], `seed ${seed}`);
  for (const r of results) assert.equal(r.next, TOTAL, `subscriber ${r.i} got every event`);
  assert.ok(stats.resumes >= NSUB * 3, `resumed often enough (${stats.resumes})`);
  assert.ok(stats.replayed > 0, "resumes replayed missed events");
  assert.ok((stats.closes[4429] || 0) > 0, `some subscribers were kicked as slow consumers (${JSON.stringify(stats.closes)})`);
});

// ---- 3. the replay/live seam -------------------------------------------------------------

defcase("seam_no_gap_no_dup", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_HISTORY_MAX: "100000", RTGW_LOG_LEVEL: "warn" } });
  const jwt = await mint(gw, [T("seam", "s")], { ttl: 600 });
  let stop = false, published = 0, publisher = null;
  // Started once the first subscription is acknowledged: an event published
  // before any subscription exists is (rightly) not delivered to it.
  const startPublisher = () => (async () => {
    while (!stop) {
      // Two concurrent publishers would not define an order; one sequential one does.
      const r = await publish(gw, "seam", "s", { seq: published });
      assert.equal(r.status, 200);
      published++;
    }
  })();
  let next = 0, last = null, reconnects = 0, replayed = 0;
  const errors = [];
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && reconnects < 40) {
    const want = 1 + Math.floor(Math.random() * 20);
    let got = 0;
    const from = last;
    const c = await openWs(gw, jwt, {
      since: from ?? undefined,
      onFrame: (m) => {
        if (m.kind !== "data") return;
        if (m.data.seq !== next) errors.push(`got ${m.data.seq}, expected ${next} (reconnect ${reconnects})`);
        next = m.data.seq + 1;
        last = m.id;
        got++;
      },
    });
    await c.until(() => c.ack, 3000, "ack");
    if (!publisher)
      publisher = startPublisher();
    if (from !== null) {
      assert.equal(c.ack.recovered, true, JSON.stringify(c.ack));
      replayed += c.ack.channels.seam.replayed;
    }
    await c.until(() => got >= want, 3000, `${want} events`);
    // Alternate: a clean close, and an abrupt drop mid-stream.
    if (reconnects % 2) c.ws.terminate(); else c.ws.close();
    await withTimeout(c.closed, 3000, "close");
    reconnects++;
    if (errors.length) break;
  }
  stop = true;
  await publisher;
  // A last resume collects the tail.
  const c = await openWs(gw, jwt, {
    since: last, t,
    onFrame: (m) => {
      if (m.kind !== "data") return;
      if (m.data.seq !== next) errors.push(`tail: got ${m.data.seq}, expected ${next}`);
      next = m.data.seq + 1;
    },
  });
  await c.until(() => next >= published || errors.length, 5000, "the tail");
  assert.deepEqual(errors, []);
  assert.equal(next, published);
  assert.ok(reconnects >= 5, `reconnected ${reconnects} times`);
  assert.ok(replayed > 0, "some resumes replayed events across the seam");
  console.log(`seam: ${published} events, ${reconnects} reconnects, ${replayed} replayed`);
});

// ---- 4. history bounds and epochs ---------------------------------------------------------

defcase("gap_beyond_history_not_recovered", async (t) => {
  const key = keygen();
  const gw = await startGateway(t, { key, env: { RTGW_HISTORY_MAX: "5" } });
  const jwt = await mint(gw, [T("gap", "g")], { ttl: 600 });
  const c1 = await subscribe(gw, jwt, { t });
  const [id0] = await pubSeq(gw, "gap", "g", 0, 1);
  await c1.waitData(1);
  await c1.close();
  const ids = [id0, ...(await pubSeq(gw, "gap", "g", 1, 20))]; // offsets of ids[k]: k+1; history holds ids[16..20]

  const c2 = await subscribe(gw, jwt, { since: id0, t });
  assert.equal(c2.ack.recovered, false, JSON.stringify(c2.ack));
  assert.deepEqual(c2.ack.channels.gap, { id: ids[20], recovered: false, replayed: 0 });
  await sleep(150);
  assert.equal(c2.data.length, 0, "nothing replayed when history does not cover the gap");
  const [live] = await pubSeq(gw, "gap", "g", 21, 1);
  await c2.waitData(1);
  assert.equal(c2.data[0].id, live, "live continues");
  ids.push(live);

  // Boundary: history holds the last 5 (ids[17..21]); since = ids[16] is just covered, ids[15] is not.
  const c3 = await subscribe(gw, jwt, { since: ids[16], t });
  assert.deepEqual(c3.ack.channels.gap, { id: live, recovered: true, replayed: 5 });
  await c3.waitData(5);
  assert.deepEqual(c3.data.map((m) => m.data.seq), [17, 18, 19, 20, 21]);
  const c4 = await subscribe(gw, jwt, { since: ids[15], t });
  assert.equal(c4.ack.channels.gap.recovered, false);
  // An id ahead of the channel (same epoch) is not recovered either.
  const ahead = `${idEpoch(live)}-${idOffset(live) + 10}`;
  const c5 = await subscribe(gw, jwt, { since: ahead, t });
  assert.equal(c5.ack.channels.gap.recovered, false);
  for (const c of [c2, c3, c4, c5]) await c.close();

  // A restart loses the in-memory history: new epoch, so the old id is not recovered.
  const st = await gw.stop();
  assert.equal(st.code, 0);
  const gw2 = await startGateway(t, { key, env: { RTGW_HISTORY_MAX: "5" } });
  const c6 = await subscribe(gw2, jwt, { since: live, t });
  assert.equal(c6.ack.recovered, false);
  assert.equal(c6.ack.channels.gap.recovered, false);
  assert.equal(c6.ack.channels.gap.replayed, 0);
  assert.notEqual(idEpoch(c6.ack.channels.gap.id), idEpoch(live), "the epoch changed");
  const [after] = await pubSeq(gw2, "gap", "g", 100, 1);
  await c6.waitData(1);
  assert.equal(c6.data[0].id, after);
  assert.notEqual(idEpoch(after), idEpoch(live));
  assert.equal(idOffset(after), 1, "positions restart with the new epoch");
});

defcase("history_age_bound_not_recovered", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_HISTORY_MAX_AGE: "1" } });
  const jwt = await mint(gw, [T("age", "a")], { ttl: 600 });
  const ids = await pubSeq(gw, "age", "a", 0, 3);
  // Within the age bound: recovered.
  const c1 = await subscribe(gw, jwt, { since: ids[0], t });
  assert.deepEqual(c1.ack.channels.age, { id: ids[2], recovered: true, replayed: 2 });
  await c1.close();
  await sleep(1600);
  // Older than RTGW_HISTORY_MAX_AGE (checked at resume, not only by the periodic sweep).
  const c2 = await subscribe(gw, jwt, { since: ids[0], t });
  assert.deepEqual(c2.ack.channels.age, { id: ids[2], recovered: false, replayed: 0 });
  await sleep(100);
  assert.equal(c2.data.length, 0, "expired events are not replayed");
  // The latest id is still a complete position: nothing was missed.
  const c3 = await subscribe(gw, jwt, { since: ids[2], t });
  assert.deepEqual(c3.ack.channels.age, { id: ids[2], recovered: true, replayed: 0 });
  const [next] = await pubSeq(gw, "age", "a", 3, 1);
  for (const c of [c2, c3]) { await c.waitData(1); assert.equal(c.data[0].id, next); }
});

defcase("resume_replays_only_granted_topics", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("flt", "a"), T("flt", "c")], { ttl: 600 });
  const c1 = await subscribe(gw, jwt, { t });
  await pub(gw, "flt", "a", { n: 0 });
  await c1.waitData(1);
  await c1.close();
  for (let n = 1; n <= 6; n++) await pub(gw, "flt", ["a", "b", "c"][n % 3], { n });
  const c2 = await subscribe(gw, jwt, { since: c1.data[0].id, t });
  assert.deepEqual(c2.ack.channels.flt.replayed, 4, "b is not granted: not replayed, not counted");
  assert.equal(c2.ack.channels.flt.recovered, true);
  await c2.waitData(4);
  await sleep(100);
  assert.deepEqual(c2.data.map((m) => [m.topic, m.data.n]), [["a", 3], ["c", 2], ["a", 6], ["c", 5]].sort((x, y) => x[1] - y[1]));
});

// ---- 5. several channels -----------------------------------------------------------------

defcase("multi_channel_resume", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("mc1", "a"), T("mc2", "b")], { ttl: 600 });
  const c1 = await subscribe(gw, jwt, { t });
  assert.deepEqual(Object.keys(c1.ack.channels).sort(), ["mc1", "mc2"]);
  const a0 = await pubSeq(gw, "mc1", "a", 0, 3);
  const b0 = await pubSeq(gw, "mc2", "b", 0, 3);
  await c1.waitData(6);
  assert.notEqual(idEpoch(a0[0]), idEpoch(b0[0]), "each channel has its own epoch");
  await c1.close();
  const a1 = await pubSeq(gw, "mc1", "a", 3, 2);
  const b1 = await pubSeq(gw, "mc2", "b", 3, 4);

  const check = (c, aFrom, bFrom) => {
    const byCh = (ch) => c.data.filter((m) => m.channel === ch).map((m) => m.data.seq);
    assert.deepEqual(byCh("mc1"), [3, 4].slice(aFrom));
    assert.deepEqual(byCh("mc2"), [3, 4, 5, 6].slice(bFrom));
  };
  // Repeated since (any order: matched by epoch).
  const c2 = await subscribe(gw, jwt, { since: [b0.at(-1), a0.at(-1)], t });
  assert.equal(c2.ack.recovered, true);
  assert.deepEqual(c2.ack.channels.mc1, { id: a1.at(-1), recovered: true, replayed: 2 });
  assert.deepEqual(c2.ack.channels.mc2, { id: b1.at(-1), recovered: true, replayed: 4 });
  await c2.waitData(6);
  check(c2, 0, 0);
  // A comma list, each channel from its own point.
  const c3 = await subscribe(gw, jwt, { since: `${a1[0]},${b1[1]}`, t });
  assert.deepEqual(c3.ack.channels.mc1, { id: a1.at(-1), recovered: true, replayed: 1 });
  assert.deepEqual(c3.ack.channels.mc2, { id: b1.at(-1), recovered: true, replayed: 2 });
  await c3.waitData(3);
  check(c3, 1, 2);
  // Only one channel's id: that one resumes, the other reports not recovered.
  const c4 = await subscribe(gw, jwt, { since: a0.at(-1), t });
  assert.equal(c4.ack.recovered, false);
  assert.deepEqual(c4.ack.channels.mc1, { id: a1.at(-1), recovered: true, replayed: 2 });
  assert.equal(c4.ack.channels.mc2.recovered, false);
  assert.equal(c4.ack.channels.mc2.replayed, 0);
  await c4.waitData(2);
  await sleep(150);
  check(c4, 0, 4);
  // Live on both afterwards, in every connection.
  await pubSeq(gw, "mc1", "a", 5, 1);
  await pubSeq(gw, "mc2", "b", 7, 1);
  for (const [c, n] of [[c2, 8], [c3, 5], [c4, 4]]) await c.waitData(n);
  for (const c of [c2, c3, c4]) {
    assert.deepEqual(c.data.slice(-2).map((m) => [m.channel, m.data.seq]), [["mc1", 5], ["mc2", 7]]);
  }
});

// ---- 6. SSE ------------------------------------------------------------------------------

defcase("sse_resume_last_event_id", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "200" } });
  const jwt = await mint(gw, [T("sse", "x")], { ttl: 600 });
  const s1 = await openSse(gw, jwt, { t });
  assert.equal(s1.status, 200);
  assert.match(s1.headers["content-type"], /^text\/event-stream/);
  await s1.until(() => s1.ack, 3000, "the rtgw.subscribed event");
  assert.equal(s1.events[0].event, "rtgw.subscribed", "the ack comes first");
  assert.equal(s1.ack.kind, "rtgw.subscribed");
  const first = await pubSeq(gw, "sse", "x", 0, 3);
  await s1.waitData(3);
  assert.deepEqual(s1.data.map((e) => e.id), first, "SSE id lines are the event ids");
  assert.deepEqual(s1.data.map((e) => e.data.id), first, "and match the JSON id");
  assert.deepEqual(s1.data.map((e) => e.event), ["message", "message", "message"]);
  await s1.until(() => s1.pings > 0, 2000, "a keep-alive comment");
  s1.close();

  const missed = await pubSeq(gw, "sse", "x", 3, 4);
  const s2 = await openSse(gw, jwt, { lastEventId: first.at(-1), t });
  await s2.until(() => s2.ack, 3000, "ack");
  assert.equal(s2.ack.recovered, true);
  assert.deepEqual(s2.ack.channels.sse, { id: missed.at(-1), recovered: true, replayed: 4 });
  await s2.waitData(4);
  assert.deepEqual(s2.data.map((e) => e.id), missed);
  const [live] = await pubSeq(gw, "sse", "x", 7, 1);
  await s2.waitData(5);
  assert.equal(s2.data[4].id, live);

  // since= works over SSE too.
  const s3 = await openSse(gw, jwt, { since: missed[1], t });
  await s3.until(() => s3.ack, 3000, "ack");
  assert.deepEqual(s3.ack.channels.sse, { id: live, recovered: true, replayed: 3 });
  await s3.waitData(3);
  assert.deepEqual(s3.data.map((e) => e.data.data.seq), [5, 6, 7]);
  // A Last-Event-ID beyond history (other epoch) is reported.
  const s4 = await openSse(gw, jwt, { lastEventId: "abc-5", t });
  await s4.until(() => s4.ack, 3000, "ack");
  assert.equal(s4.ack.recovered, false);
  // A malformed since is refused with 400 before the stream starts.
  const bad = await httpJson(gw, "GET", `/v1/realtime/sse?token=${encodeURIComponent(jwt)}&since=garbage`);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, "bad_request");
});

defcase("sse_ws_same_stream", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("same", "*")], { ttl: 600 });
  const ws = await subscribe(gw, jwt, { t });
  const sse = await openSse(gw, jwt, { t });
  await sse.until(() => sse.ack, 3000, "ack");
  assert.deepEqual(sse.ack.channels, ws.ack.channels);
  const payloads = [
    { obj: { nested: [1, 2, { x: null }] } },
    "plain text\nwith a newline",
    [1, "two", 3.5],
    42,
    { unicode: "héllo ✓ 😀", quote: "\"q\"", backslash: "a\\b" },
    "",
    true,
  ];
  const ids = [];
  for (let i = 0; i < payloads.length; i++) {
    const d = payloads[i];
    const body = typeof d === "string" ? d : JSON.stringify(d);
    const r = await publish(gw, "same", `t${i % 3}`, body, { query: i % 2 ? "&run_id=run-7&fn_id=fn-3" : "" });
    assert.equal(r.status, 200);
    ids.push(r.body.ids[0]);
  }
  await ws.waitData(payloads.length);
  await sse.waitData(payloads.length);
  assert.deepEqual(ws.data.map((m) => m.id), ids);
  assert.deepEqual(sse.data.map((e) => e.id), ids);
  assert.deepEqual(sse.data.map((e) => e.data), ws.data, "the same JSON objects, in the same order");
  for (let i = 0; i < payloads.length; i++) assert.deepEqual(ws.data[i].data, payloads[i]);
});

// ---- 7. idempotency ----------------------------------------------------------------------

defcase("idempotent_publish_once", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_IDEMPOTENCY_WINDOW: "1" } });
  const jwt = await mint(gw, [T("idem", "a")], { ttl: 600 });
  const c = await subscribe(gw, jwt, { t });

  const r1 = await pub(gw, "idem", "a", { n: 1 }, { headers: { "Idempotency-Key": "k1" } });
  assert.equal(r1.delivered, 1);
  assert.equal(r1.duplicate, undefined);
  const r2 = await pub(gw, "idem", "a", { n: 1 }, { headers: { "Idempotency-Key": "k1" } });
  assert.deepEqual(r2, { ok: true, ids: r1.ids, delivered: 0, duplicate: true });
  const r3 = await pub(gw, "idem", "a", { n: 1 }, { query: "&idempotency_key=k1" });
  assert.deepEqual(r3.ids, r1.ids, "the query parameter is the same key");
  assert.equal(r3.duplicate, true);

  // A lost response: the request reaches the gateway, the client never reads the reply.
  const body = JSON.stringify({ n: 2 });
  await new Promise((resolve, reject) => {
    const s = net.connect(gw.port, "127.0.0.1", () => {
      s.end(`POST /v1/realtime/publish?channel=idem&topic=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${gw.key}\r\n` +
        `Content-Type: application/json\r\nIdempotency-Key: k2\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      s.destroy(); // drop the connection: the reply is lost
      resolve();
    });
    s.on("error", reject);
  });
  await c.waitData(2); // it was published once
  const lostId = c.data[1].id;
  const retry = await pub(gw, "idem", "a", { n: 2 }, { headers: { "Idempotency-Key": "k2" } });
  assert.deepEqual(retry.ids, [lostId], "the retry gets the id of the lost publish");
  assert.equal(retry.duplicate, true);
  assert.equal(retry.delivered, 0);
  await sleep(200);
  assert.deepEqual(c.data.map((m) => m.data.n), [1, 2], "each event delivered exactly once");

  // After the window the key is free again.
  await sleep(1100);
  const r4 = await pub(gw, "idem", "a", { n: 3 }, { headers: { "Idempotency-Key": "k1" } });
  assert.equal(r4.duplicate, undefined);
  assert.notDeepEqual(r4.ids, r1.ids);
  await c.waitData(3);
  // A key that is not printable is refused.
  const bad = await publish(gw, "idem", "a", { n: 9 }, { headers: { "Idempotency-Key": "a\tb" } });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  await sleep(150);
  assert.equal(c.data.length, 3);
});

defcase("idempotency_per_topic", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("ipt", "*"), T("ipt2", "a")], { ttl: 600 });
  const c = await subscribe(gw, jwt, { t });
  const h = { headers: { "Idempotency-Key": "same-key" } };
  const ra = await pub(gw, "ipt", "a", { t: "a" }, h);
  const rb = await pub(gw, "ipt", "b", { t: "b" }, h);
  const rc = await pub(gw, "ipt2", "a", { t: "ipt2" }, h);
  for (const r of [ra, rb, rc]) { assert.equal(r.duplicate, undefined); assert.equal(r.delivered, 1); }
  assert.notDeepEqual(ra.ids, rb.ids);
  const ra2 = await pub(gw, "ipt", "a", { t: "a" }, h);
  const rb2 = await pub(gw, "ipt", "b", { t: "b" }, h);
  assert.deepEqual([ra2.ids, ra2.duplicate], [ra.ids, true]);
  assert.deepEqual([rb2.ids, rb2.duplicate], [rb.ids, true]);
  // Batch entries share the same key space.
  const b = await batch(gw, [
    { channel: "ipt", topic: "a", data: { t: "a" }, idempotency_key: "same-key" },
    { channel: "ipt", topic: "c", data: { t: "c" }, idempotency_key: "same-key" },
    { channel: "ipt", topic: "c", data: { t: "c" }, idempotency_key: "same-key" },
  ]);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.results[0].id, ra.ids[0]);
  assert.equal(b.json.results[0].duplicate, true);
  assert.equal(b.json.results[1].duplicate, undefined);
  assert.equal(b.json.results[2].duplicate, true);
  assert.equal(b.json.results[2].id, b.json.results[1].id);
  await c.waitData(4);
  await sleep(150);
  assert.deepEqual(c.data.map((m) => `${m.channel}/${m.topic}`), ["ipt/a", "ipt/b", "ipt2/a", "ipt/c"]);
});

// ---- 8. batch ----------------------------------------------------------------------------

defcase("batch_partial_failure", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("bat", "*")], { ttl: 600 });
  const c = await subscribe(gw, jwt, { t });
  const events = [
    { channel: "bat", topic: "ok", data: { i: 0 } },
    { channel: "bat", topic: "", data: { i: 1 } }, // empty name
    { channel: "bat\u0001x", topic: "ok", data: { i: 2 } }, // control character
    { channel: "bat", topic: "*", data: { i: 3 } }, // the wildcard is not a topic
    42, // not an object
    { channel: "bat", topic: "ok", data: { i: 5 }, run_id: "" }, // bad run_id
    { channel: "bat", topic: "ok", data: { i: 6 }, run_id: 7 },
    { channel: "bat", topic: "ok", data: { i: 7 }, run_id: "run-1", fn_id: "fn-1" },
    { channel: "bat", topic: "other", data: "text" },
    { channel: "bat", data: { i: 9 } }, // no topic
    { channel: "bat", topic: "ok" }, // no data: null
  ];
  const r = await batch(gw, events);
  assert.equal(r.status, 200, r.text);
  const okIdx = [0, 7, 8, 10];
  assert.equal(r.json.published, okIdx.length);
  assert.equal(r.json.failed, events.length - okIdx.length);
  assert.equal(r.json.results.length, events.length);
  r.json.results.forEach((res, i) => {
    if (okIdx.includes(i)) {
      assert.equal(res.ok, true, `event ${i}: ${JSON.stringify(res)}`);
      assert.match(res.id, /^[0-9a-f]+-\d+$/);
    } else {
      assert.equal(res.ok, false, `event ${i} must fail`);
      assert.equal(typeof res.error, "string");
      assert.equal(typeof res.message, "string");
    }
  });
  assert.equal(r.json.results[3].error, "bad_request");
  assert.equal(r.json.results[4].error, "bad_request");
  await c.waitData(okIdx.length);
  await sleep(150);
  assert.equal(c.data.length, okIdx.length, "exactly the good events");
  assert.deepEqual(c.data.map((m) => m.id), okIdx.map((i) => r.json.results[i].id));
  assert.deepEqual(c.data.map((m) => m.data), [{ i: 0 }, { i: 7 }, "text", null]);
  assert.equal(c.data[1].run_id, "run-1");
  assert.equal(c.data[1].fn_id, "fn-1");
  assert.equal(c.data[0].run_id, undefined);
  // Offsets are consecutive: failed entries take no position.
  const offs = c.data.map((m) => idOffset(m.id));
  assert.deepEqual(offs, [offs[0], offs[0] + 1, offs[0] + 2, offs[0] + 3]);
  // Bodies that are not an array of events are refused whole.
  for (const bad of ["{}", "[]", "not json", JSON.stringify({ channel: "bat", topic: "ok" })]) {
    const rb = await batch(gw, bad);
    assert.equal(rb.status, 400, `${bad}: ${rb.text}`);
  }
  await sleep(100);
  assert.equal(c.data.length, okIdx.length);
});

defcase("batch_too_large", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_BATCH: "3" } });
  const jwt = await mint(gw, [T("big", "a")], { ttl: 600 });
  const c = await subscribe(gw, jwt, { t });
  const ev = (i) => ({ channel: "big", topic: "a", data: { i } });
  const r = await batch(gw, [ev(0), ev(1), ev(2), ev(3)]);
  assert.equal(r.status, 413, r.text);
  assert.equal(r.json.error, "batch_too_large");
  await sleep(150);
  assert.equal(c.data.length, 0, "nothing of a refused batch is published");
  const ok = await batch(gw, [ev(0), ev(1), ev(2)]);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.published, 3);
  await c.waitData(3);
  assert.deepEqual(c.data.map((m) => m.data.i), [0, 1, 2]);
});

defcase("batch_publish_token_limited_to_grant", async (t) => {
  const gw = await startGateway(t);
  const sub = await mint(gw, [T("bt", "*"), T("bt2", "*")], { ttl: 600 });
  const c = await subscribe(gw, sub, { t });
  const ptok = await mint(gw, [T("bt", "a")], { ttl: 600, publish: true });
  const r = await batch(gw, [
    { channel: "bt", topic: "a", data: 1 },
    { channel: "bt", topic: "b", data: 2 },
    { channel: "bt2", topic: "a", data: 3 },
    { channel: "bt", topic: "a", data: 4 },
  ], { key: ptok });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.results.map((x) => x.ok), [true, false, false, true]);
  assert.equal(r.json.results[1].error, "topic_not_allowed");
  assert.equal(r.json.results[2].error, "topic_not_allowed");
  assert.deepEqual([r.json.published, r.json.failed], [2, 2]);
  await c.waitData(2);
  await sleep(150);
  assert.deepEqual(c.data.map((m) => m.data), [1, 4]);
  // A token without publish rights is refused as a whole; so is a bad key.
  const notPub = await mint(gw, [T("bt", "a")], { ttl: 600 });
  const r2 = await batch(gw, [{ channel: "bt", topic: "a", data: 5 }], { key: notPub });
  assert.equal(r2.status, 403, r2.text);
  const r3 = await batch(gw, [{ channel: "bt", topic: "a", data: 6 }], { key: keygen() });
  assert.equal(r3.status, 401, r3.text);
  await sleep(150);
  assert.equal(c.data.length, 2);
});

// ---- 9. close codes on an rtgw.v1 client ------------------------------------------------

defcase("close_4400_bad_since", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("cc", "a")]);
  for (const since of ["garbage", "abc", "abc-", "-5", "abc-01", "xyz-1", "abc-1,nope"]) {
    const r = await refusedExt(gw, jwt, { query: `&since=${encodeURIComponent(since)}` });
    assert.equal(r.opened, true, "the upgrade completes");
    assert.equal(r.protocol, "rtgw.v1");
    assertClose(r, 4400, "bad_request");
    assert.deepEqual(r.msgs, [], "no events before the close");
  }
});

defcase("close_4401_token_missing", async (t) => {
  const gw = await startGateway(t);
  const r = await refusedExt(gw, null, { noToken: true });
  assertClose(r, 4401, "token_missing");
  const r2 = await refusedExt(gw, "", {});
  assertClose(r2, 4401, "token_missing");
});

defcase("close_4402_token_invalid", async (t) => {
  const gw = await startGateway(t);
  const other = await startGateway(t);
  const foreign = await mint(other, [T("cc", "a")]);
  for (const tok of ["abc.def.ghi", "not-a-jwt", foreign]) {
    const r = await refusedExt(gw, tok);
    assertClose(r, 4402, "token_invalid");
  }
});

defcase("close_4405_origin_not_allowed", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://good.example" } });
  const jwt = await mint(gw, [T("cc", "a")]);
  const r = await refusedExt(gw, jwt, { origin: "https://evil.example" });
  assertClose(r, 4405, "origin_not_allowed");
  const ok = await subscribe(gw, jwt, { origin: "https://good.example", t });
  assert.equal(ok.ack.kind, "rtgw.subscribed");
});

defcase("close_4408_idle_timeout", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "200", RTGW_PONG_TIMEOUT_MS: "200" } });
  const jwt = await mint(gw, [T("cc", "a")]);
  const raw = await rawWs(gw, `/v1/realtime/connect?token=${encodeURIComponent(jwt)}`, { t });
  assert.equal(raw.status, 101);
  const t0 = Date.now();
  const f = await rawNext(raw, (x) => x.opcode === 8, 4000, "a close frame");
  const code = f.payload.readUInt16BE(0), reason = f.payload.subarray(2).toString();
  assertClose({ code, reason }, 4408, "idle_timeout");
  assert.ok(raw.frames.some((x) => x.opcode === 9), "pings were sent first");
  assert.ok(Date.now() - t0 < 3000, "closed near the deadline");
  await withTimeout(raw.ended, 4000, "the socket to end");
  // A client that answers pings (npm ws does) stays connected.
  const c = await subscribe(gw, jwt, { t });
  await sleep(1000);
  assert.equal(c.closeInfo, null, "a ponging client is not idle");
});

defcase("close_4409_token_expired", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_PING_INTERVAL_MS: "200" } });
  const jwt = await mint(gw, [T("cc", "a")], { ttl: 1 });
  const exp = jwtPayload(jwt).exp;
  const c = await subscribe(gw, jwt, { t });
  assert.equal(c.ack.expires_at, exp);
  const info = await withTimeout(c.closed, 5000, "close on expiry");
  assertClose(info, 4409, "token_expired");
  assert.ok(Date.now() / 1000 >= exp, "not before the token expired");
});

defcase("close_4429_slow_consumer", async (t) => {
  // A queue bound of 128 leaves a reading subscriber plenty of room on a
  // loaded CI machine, while one that stops reading overflows it for sure.
  const gw = await startGateway(t, { env: { RTGW_QUEUE_MAX_MESSAGES: "128", RTGW_SOCKET_SNDBUF: "16384" } });
  const kicks = async () => Number((await (await fetch(`${gw.url}/metrics`)).text())
    .match(/^rtgw_slow_consumer_kicks_total (\d+)/m)[1]);
  const jwt = await mint(gw, [T("cc", "a")], { ttl: 600 });
  const fast = await subscribe(gw, jwt, { t });
  const slow = await subscribe(gw, jwt, { t });
  const pad = "z".repeat(4000);
  let n = 0;
  for (; n < 10; n++) await pub(gw, "cc", "a", { n, pad });
  await slow.waitData(10);
  slow.ws.pause(); // from here on it never reads
  // Publish until the gateway reports the kick, then read again at once: the
  // gateway holds the close frame for a while, waiting for room in the socket.
  for (; n < 1000; n++) {
    await pub(gw, "cc", "a", { n, pad });
    if (n % 20 === 0) {
      await sleep(1); // let the reading subscriber's event loop run
      if ((await kicks()) >= 1) { n++; break; }
    }
  }
  slow.ws.resume();
  const info = await withTimeout(slow.closed, 5000, "slow-consumer close");
  assertClose(info, 4429, "slow_consumer");
  await fast.waitData(n);
  assert.equal(fast.closeInfo, null, "a reading subscriber is not kicked");
  // It resumes from history and loses nothing, even with a gap larger than its queue.
  const last = slow.data.at(-1)?.id;
  assert.ok(last, "the slow subscriber got some events before its kick");
  const again = await subscribe(gw, jwt, { since: last, t });
  assert.equal(again.ack.recovered, true);
  assert.ok(again.ack.channels.cc.replayed > 128, `replayed ${again.ack.channels.cc.replayed} > queue bound`);
  await again.waitData(again.ack.channels.cc.replayed);
  const seqs = [...slow.data, ...again.data].map((m) => m.data.n);
  assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i));
});

defcase("close_4503_over_capacity", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "2" } });
  const jwt = await mint(gw, [T("cc", "a")]);
  const a = await subscribe(gw, jwt, { t });
  await subscribe(gw, jwt, { t });
  const r = await refusedExt(gw, jwt);
  assertClose(r, 4503, "over_capacity");
  // A slot frees when a connection closes.
  await a.close();
  const c = await (async () => {
    for (let i = 0; i < 40; i++) {
      const x = await openWs(gw, jwt, { t });
      const v = await x.until(() => x.ack || x.closeInfo, 3000, "ack or close");
      if (v === x.ack) return x;
      await sleep(50);
    }
    throw new Error("no slot freed");
  })();
  assert.equal(c.ack.kind, "rtgw.subscribed");
});

defcase("close_1001_shutting_down", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("cc", "a")]);
  const c = await subscribe(gw, jwt, { t });
  await pub(gw, "cc", "a", { last: true });
  await c.waitData(1);
  const exited = gw.stop("SIGTERM");
  const info = await withTimeout(c.closed, 6000, "close on SIGTERM");
  assertClose(info, 1001, "shutting_down");
  assert.equal(c.frames.at(-1).kind, "closing", "a closing frame precedes the close");
  const st = await withTimeout(exited, 8000, "exit");
  assert.equal(st.code, 0);
});

// ---- 10. in-band refresh ------------------------------------------------------------------

async function refreshCase(t, env = {}) {
  const gw = await startGateway(t, { env });
  const jwt = await mint(gw, [T("rf", "a"), T("rf", "b")], { ttl: 600 });
  const c = await subscribe(gw, jwt, { t });
  const refresh = async (token) => {
    const n = c.frames.length;
    c.send({ kind: "rtgw.refresh", token });
    return c.until(() => c.frames.slice(n).find((f) => f.kind === "rtgw.refreshed" || f.kind === "rtgw.error"), 3000, "a refresh answer");
  };
  // The next data frame after publishing `noise` then a sentinel must be the sentinel.
  const only = async (expectTopics) => {
    const n = c.data.length;
    for (const tp of ["a", "b"]) await pub(gw, "rf", tp, { tp });
    await c.until(() => c.data.length >= n + expectTopics.length, 3000, "events");
    await sleep(150);
    assert.deepEqual(c.data.slice(n).map((m) => m.topic), expectTopics);
  };
  return { gw, c, refresh, only };
}

defcase("refresh_same_grant", async (t) => {
  const { gw, c, refresh, only } = await refreshCase(t);
  await only(["a", "b"]);
  const next = await mint(gw, [T("rf", "b"), T("rf", "a")], { ttl: 900 });
  const ans = await refresh(next);
  assert.deepEqual(ans, { kind: "rtgw.refreshed", expires_at: jwtPayload(next).exp });
  await only(["a", "b"]);
  assert.equal(c.closeInfo, null);
});

defcase("refresh_extends_expiry", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_CLOSE_ON_EXPIRY: "1", RTGW_PING_INTERVAL_MS: "200" } });
  const jwt = await mint(gw, [T("rf", "a")], { ttl: 1 });
  const c = await subscribe(gw, jwt, { t });
  c.send({ kind: "rtgw.refresh", token: await mint(gw, [T("rf", "a")], { ttl: 60 }) });
  await c.waitKind("rtgw.refreshed", 2000);
  await sleep(3000);
  assert.equal(c.closeInfo, null, "the refreshed token keeps the connection open");
  await pub(gw, "rf", "a", { still: "here" });
  await c.waitData(1);
});

defcase("refresh_narrower_drops_topic", async (t) => {
  const { gw, c, refresh, only } = await refreshCase(t);
  await only(["a", "b"]);
  const ans = await refresh(await mint(gw, [T("rf", "a")], { ttl: 600 }));
  assert.equal(ans.kind, "rtgw.refreshed");
  await only(["a"]);
  // Narrower again: the channel dropped entirely.
  const none = await mint(gw, [T("other", "z")], { ttl: 600 });
  const ans2 = await refresh(none);
  assert.equal(ans2.kind, "rtgw.error", "other/z is broader than rf/a");
  assert.equal(ans2.error, "refresh_broader_grant");
  await only(["a"]);
});

defcase("refresh_narrower_from_wildcard", async (t) => {
  const gw = await startGateway(t);
  const c = await subscribe(gw, await mint(gw, [T("rw", "*"), T("rw2", "x")], { ttl: 600 }), { t });
  const send = async () => {
    const n = c.data.length;
    for (const [ch, tp] of [["rw", "a"], ["rw", "b"], ["rw2", "x"], ["rw", "c"]]) await pub(gw, ch, tp, { ch, tp });
    await sleep(150);
    await pub(gw, "rw", "a", { sentinel: true });
    await c.until(() => c.data.some((m, i) => i >= n && m.data.sentinel), 3000, "the sentinel");
    return c.data.slice(n, -1).map((m) => `${m.channel}/${m.topic}`);
  };
  assert.deepEqual(await send(), ["rw/a", "rw/b", "rw2/x", "rw/c"]);
  c.send({ kind: "rtgw.refresh", token: await mint(gw, [T("rw", "a"), T("rw", "c")], { ttl: 600 }) });
  await c.waitKind("rtgw.refreshed");
  assert.deepEqual(await send(), ["rw/a", "rw/c"], "the wildcard narrowed to a and c; rw2 dropped");
});

defcase("refresh_broader_refused", async (t) => {
  const { gw, c, refresh, only } = await refreshCase(t);
  for (const topics of [[T("rf", "a"), T("rf", "b"), T("rf", "c")], [T("rf", "*")], [T("rf2", "a")]]) {
    const ans = await refresh(await mint(gw, topics, { ttl: 600 }));
    assert.equal(ans.kind, "rtgw.error");
    assert.equal(ans.error, "refresh_broader_grant");
  }
  await only(["a", "b"]);
  await pub(gw, "rf", "c", { no: true });
  await sleep(150);
  assert.ok(!c.data.some((m) => m.topic === "c"), "the refused grant gave nothing");
  assert.equal(c.closeInfo, null);
});

defcase("refresh_bad_token_keeps_old", async (t) => {
  const { gw, c, refresh, only } = await refreshCase(t);
  const other = await startGateway(t);
  const foreign = await mint(other, [T("rf", "a")], { ttl: 600 });
  for (const tok of ["garbage", "a.b.c", foreign]) {
    const ans = await refresh(tok);
    assert.equal(ans.kind, "rtgw.error");
    assert.ok(ans.error && ans.error !== "refresh_broader_grant", JSON.stringify(ans));
    assert.equal(typeof ans.message, "string");
  }
  // Messages that are not refreshes get an error too, and change nothing.
  for (const m of ["not json", JSON.stringify({ kind: "rtgw.nope" }), JSON.stringify({ kind: "rtgw.refresh" })]) {
    const n = c.frames.length;
    c.send(m);
    const e = await c.until(() => c.frames.slice(n).find((f) => f.kind === "rtgw.error"), 3000, "an error frame");
    assert.equal(typeof e.error, "string");
  }
  await only(["a", "b"]);
  assert.equal(c.closeInfo, null);
});

// ---- 11. streamed publish -----------------------------------------------------------------

defcase("stream_frames_to_ext_client", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [T("st", "out")], { ttl: 600 });
  const ext = await subscribe(gw, jwt, { t });
  const plain = await openWs(gw, jwt, { ext: false, t });
  // Bytes with multibyte characters, sent in pieces that split them.
  const text = Array.from({ length: 300 }, (_, i) => `línea ${i} — ✓ 😀 `).join("");
  const bytes = Buffer.from(text);
  const res = await new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}/v1/realtime/publish?channel=st&topic=out`, {
      method: "POST",
      headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream", "Transfer-Encoding": "chunked" },
    }, (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => resolve({ status: r.statusCode, body: b })); });
    req.on("error", reject);
    (async () => {
      for (let off = 0; off < bytes.length; off += 777) {
        req.write(bytes.subarray(off, off + 777));
        await sleep(5);
      }
      req.end();
    })();
  });
  assert.equal(res.status, 200, res.body);
  const summary = JSON.parse(res.body);
  assert.equal(summary.ok, true);
  assert.equal(summary.bytes, bytes.length);
  await ext.until(() => ext.frames.find((f) => f.kind === "datastream-end"), 5000, "datastream-end");
  const sf = ext.frames.filter((f) => f.kind !== "rtgw.subscribed");
  assert.equal(sf[0].kind, "datastream-start");
  assert.equal(sf.at(-1).kind, "datastream-end");
  const chunks = sf.slice(1, -1);
  assert.ok(chunks.length >= 2, `several chunks (${chunks.length})`);
  for (const f of sf) {
    assert.equal(f.channel, "st");
    assert.equal(f.topic, "out");
    assert.equal(f.stream_id, summary.stream_id, "every frame carries the stream id");
  }
  for (const f of chunks) { assert.equal(f.kind, "chunk"); assert.equal(typeof f.data, "string"); }
  assert.equal(chunks.map((f) => f.data).join(""), text, "the chunks concatenate to the body");
  assert.equal(summary.chunks, chunks.length);
  // The official protocol client gets the stream's plain form: each chunk as a data
  // frame (same position, stream id and text), no start or end; then the next event.
  await pub(gw, "st", "out", { after: true });
  await plain.until(() => plain.frames.find((f) => f.data && f.data.after), 3000, "the event after the stream");
  const pf = plain.frames;
  assert.ok(pf.every((f) => f.kind === "data" && f.channel === "st" && f.topic === "out"), JSON.stringify(pf.slice(0, 2)));
  assert.deepEqual(pf.slice(0, -1).map((f) => [f.data, f.id, f.stream_id]), chunks.map((f) => [f.data, f.id, f.stream_id]));
  assert.deepEqual(pf.at(-1).data, { after: true });
  await ext.waitData(1);
  // A resume replays the stream frames to an extended client only.
  const r = await subscribe(gw, jwt, { since: `${idEpoch(ext.data[0].id)}-0`, t });
  await r.waitData(1);
  const kinds = r.frames.slice(1).map((f) => f.kind);
  assert.deepEqual(kinds, ["datastream-start", ...chunks.map(() => "chunk"), "datastream-end", "data"]);
});

await run();
