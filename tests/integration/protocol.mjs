// rtgw's extended protocol (subprotocol rtgw.v1): subscription ack and
// refusals as close codes; and the SSE transport.
import assert from "node:assert/strict";
import http from "node:http";
import { execFileSync } from "node:child_process";
import { defcase, run } from "../lib/harness.mjs";
import { startGateway, mint, publish } from "../lib/gateway.mjs";
import { topic } from "../lib/http.mjs";
import { withTimeout } from "../lib/wait.mjs";
import { connect, refusedExt, refusedUpgrade, wsUrl } from "../lib/ws.mjs";

defcase("ext_first_frame_subscribed", async (t) => {
  const gw = await startGateway(t);
  // An event published before the subscription is not replayed without `since`.
  await publish(gw, "user:42", "ai", { before: true });
  const jwt = await mint(gw, [topic("user:42", "ai"), topic("user:42", "b")]);
  const sub = await connect(wsUrl(gw, jwt), { t, protocols: ["rtgw.v1"] });
  assert.equal(sub.ws.protocol, "rtgw.v1", "the server selects the subprotocol");
  const ack = await sub.next(3000, "the subscription ack");
  assert.equal(ack.kind, "rtgw.subscribed");
  assert.deepEqual(ack.topics, [{ channel: "user:42", name: "ai" }, { channel: "user:42", name: "b" }]);
  assert.equal(typeof ack.expires_at, "number");
  assert.ok(Math.abs(ack.expires_at - (Math.floor(Date.now() / 1000) + 60)) <= 5, `expires_at ${ack.expires_at}`);
  // (The per-channel resume position in the ack is covered by the resume tests.)
  const r = await publish(gw, "user:42", "b", { after: true });
  const m = await sub.next();
  assert.equal(m.kind, "data");
  assert.deepEqual(m.data, { after: true });
  assert.equal(m.id, r.body.ids[0]);
  // Without the subprotocol there is no ack: the first frame is data (official clients).
  const plain = await connect(wsUrl(gw, jwt), { t });
  assert.equal(plain.ws.protocol, "");
  await publish(gw, "user:42", "ai", 2);
  assert.equal((await plain.next()).kind, "data");
});

async function extRefusal(url, code, reasonRe, opts) {
  const r = await refusedExt(url, opts);
  assert.equal(r.opened, true, "the upgrade completes so the browser can read the close code");
  assert.equal(r.protocol, opts?.protocols ? "" : "rtgw.v1");
  assert.equal(r.code, code, `close code (reason '${r.reason}')`);
  assert.match(r.reason, reasonRe);
  assert.deepEqual(r.msgs, [], "no data before the refusal");
  return r;
}

defcase("ext_refusal_token_missing", async (t) => {
  const gw = await startGateway(t);
  await extRefusal(`${gw.ws}/v1/realtime/connect`, 4401, /^token_missing/);
});

defcase("ext_refusal_token_invalid", async (t) => {
  const gw = await startGateway(t);
  const other = await startGateway(t);
  await extRefusal(wsUrl(gw, "not.a.token"), 4402, /^token_invalid: token_(malformed|bad_base64|bad_json)$/);
  await extRefusal(wsUrl(gw, await mint(other, [topic("a", "b")])), 4402, /^token_invalid: token_unknown_kid$/);
});

defcase("ext_refusal_token_expired", async (t) => {
  const gw = await startGateway(t);
  const jwt = execFileSync(process.env.TOKENTOOL, ["mint", gw.key, "HS256", "user:42", "ai", "60"], {
    encoding: "utf8", env: { ...process.env, RT_TOKENTOOL_NOW: String(Math.floor(Date.now() / 1000) - 3600) },
  }).trim();
  await extRefusal(wsUrl(gw, jwt), 4409, /^token_expired/);
});

defcase("ext_refusal_origin_not_allowed", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_ALLOWED_ORIGINS: "https://app.example.com" } });
  const jwt = await mint(gw, [topic("a", "b")]);
  await extRefusal(wsUrl(gw, jwt), 4405, /^origin_not_allowed/, { origin: "https://evil.example" });
  // The rtgw=1 query flag opts in as well (no subprotocol).
  await extRefusal(wsUrl(gw, jwt, "&rtgw=1"), 4405, /^origin_not_allowed/, { origin: "https://evil.example", protocols: [] });
  // Without opting in, the same refusal is an HTTP status.
  const r = await refusedUpgrade(wsUrl(gw, jwt), { origin: "https://evil.example" });
  assert.equal(r.status, 403);
  assert.equal(r.json.error, "origin_not_allowed");
});

defcase("ext_refusal_over_capacity", async (t) => {
  const gw = await startGateway(t, { env: { RTGW_MAX_CONNECTIONS: "1" } });
  const jwt = await mint(gw, [topic("a", "b")]);
  const first = await connect(wsUrl(gw, jwt), { t });
  await extRefusal(wsUrl(gw, jwt), 4503, /^over_capacity/);
  // The held connection is unaffected.
  await publish(gw, "a", "b", 1);
  assert.equal((await first.next()).data, 1);
});

// ---- SSE ----

function sseOpen(url, headers = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const s = { res, req, status: res.statusCode, headers: res.headers, text: "", events: [], waiters: [] };
      res.setEncoding("utf8");
      res.on("data", (d) => {
        s.text += d;
        let i;
        while ((i = s.text.indexOf("\n\n")) >= 0) {
          const rec = s.text.slice(0, i); s.text = s.text.slice(i + 2);
          const ev = { lines: rec.split("\n") };
          for (const l of ev.lines) {
            const c = l.indexOf(":");
            if (c === 0) continue;
            const k = l.slice(0, c), v = l.slice(c + 1).replace(/^ /, "");
            if (k === "data") ev.data = (ev.data === undefined ? "" : ev.data + "\n") + v; else ev[k] = v;
          }
          if (ev.data === undefined && !ev.event) continue; // comment-only record (": rtgw", ": ping")
          s.events.push(ev);
          if (s.waiters.length) s.waiters.shift()();
        }
      });
      s.next = async (ms = 3000) => {
        if (!s.events.length) await withTimeout(new Promise((r) => s.waiters.push(r)), ms, "an SSE event");
        return s.events.shift();
      };
      resolve(s);
    });
    req.on("error", reject);
  }), 5000, "SSE open");
}

defcase("sse_streams_events_with_ids", async (t) => {
  const gw = await startGateway(t);
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  const s = await sseOpen(`${gw.url}/v1/realtime/sse?token=${jwt}`);
  t.cleanup(() => s.req.destroy());
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  const ack = await s.next();
  assert.equal(ack.event, "rtgw.subscribed");
  assert.equal(JSON.parse(ack.data).kind, "rtgw.subscribed");
  const ids = [];
  for (let i = 1; i <= 3; i++) {
    const r = await publish(gw, "user:42", i === 2 ? "other" : "ai", { i });
    if (i !== 2) ids.push(r.body.ids[0]);
  }
  for (const [n, want] of [[1, ids[0]], [3, ids[1]]]) {
    const ev = await s.next();
    assert.equal(ev.id, want, "id: line is the event's position");
    const d = JSON.parse(ev.data);
    assert.equal(d.kind, "data");
    assert.equal(d.channel, "user:42");
    assert.equal(d.topic, "ai");
    assert.deepEqual(d.data, { i: n });
    assert.equal(d.id, want);
  }
  // Resume with Last-Event-ID: the event after the first one is replayed.
  s.req.destroy();
  const s2 = await sseOpen(`${gw.url}/v1/realtime/sse?token=${jwt}`, { "Last-Event-ID": ids[0] });
  t.cleanup(() => s2.req.destroy());
  assert.equal((await s2.next()).event, "rtgw.subscribed");
  const rep = await s2.next();
  assert.equal(rep.id, ids[1]);
  assert.deepEqual(JSON.parse(rep.data).data, { i: 3 });
});

defcase("sse_refusals_are_http_errors", async (t) => {
  const gw = await startGateway(t);
  for (const [url, status, error] of [
    [`${gw.url}/v1/realtime/sse`, 401, /^token_missing$/],
    [`${gw.url}/v1/realtime/sse?token=a.b.c`, 401, /^token_(bad_base64|malformed|bad_json)$/],
    [`${gw.url}/v1/realtime/sse?token=${await mint(gw, [topic("a", "b")])}&since=nonsense`, 400, /^bad_request$/],
  ]) {
    const res = await withTimeout(fetch(url), 5000, url);
    assert.equal(res.status, status, url);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    assert.match((await res.json()).error, error);
  }
  const res = await fetch(`${gw.url}/v1/realtime/sse?token=x`, { method: "POST" });
  assert.equal(res.status, 405);
  assert.equal((await res.json()).error, "method_not_allowed");
});

defcase("plain_client_after_ext_client_gets_no_subprotocol", async (t) => {
  // civetweb reuses a worker's connection state: after an rtgw.v1 session the
  // next plain client on that worker must not be answered with the subprotocol
  // (ws rejects that) nor be treated as extended (no ack, no stream frames).
  const gw = await startGateway(t, { env: { RTGW_HTTP_THREADS: "2" } });
  const jwt = await mint(gw, [topic("user:42", "ai")]);
  for (let i = 0; i < 50; i++) {
    const ext = await connect(wsUrl(gw, jwt), { protocols: ["rtgw.v1"], t });
    assert.equal(ext.ws.protocol, "rtgw.v1");
    assert.equal((await ext.next()).kind, "rtgw.subscribed");
    ext.close();
    await ext.closed;
    const plain = await connect(wsUrl(gw, jwt), { t });
    assert.equal(plain.ws.protocol, "", `iteration ${i}: no subprotocol for a client that offered none`);
    assert.deepEqual(await plain.quiet(30), [], `iteration ${i}: no ack for a plain client`);
    plain.close();
    await plain.closed;
  }
});

await run();
