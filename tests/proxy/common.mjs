// Shared by the proxy tests that run a real proxy in front of a real rtgw
// (nginx.mjs, caddy.mjs, haproxy.mjs): config edits that fail loudly, publish and SSE through the
// proxy, and a proxy child process stopped by its PID.
import http from "node:http";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { mint } from "../lib/gateway.mjs";
import { withTimeout, waitFor } from "../lib/wait.mjs";
import { connect } from "../lib/ws.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Replace `from` (string or RegExp) in `text`; throws if it is not there, so a test
// never silently runs against an unmodified config.
export function sub(text, from, to) {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`test config edit found nothing to replace: ${from}`);
  return out;
}

export async function publishVia(base, gw, channel, topic, data, headers = {}) {
  const res = await fetch(`${base}/v1/realtime/publish?channel=${encodeURIComponent(channel)}&topic=${encodeURIComponent(topic)}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "application/json", ...headers },
    body: typeof data === "string" ? data : JSON.stringify(data),
  });
  const text = await res.text();
  let body; try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body, headers: res.headers };
}

// An SSE reader over node:http; records every frame with its arrival time, and `ended`
// (the time the stream ended, or null).
export function sse(url, t) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: "text/event-stream" } }, (res) => {
      const c = { status: res.statusCode, headers: res.headers, frames: [], comments: 0, raw: "", ended: null, res, req };
      res.on("close", () => { c.ended = Date.now(); });
      if (res.statusCode !== 200) {
        res.on("data", (d) => (c.raw += d));
        res.on("end", () => resolve(c));
        return;
      }
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        c.raw += d;
        buf += d;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith(":")) c.comments++;
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
          if (data.length) c.frames.push({ at: Date.now(), msg: JSON.parse(data.join("\n")) });
        }
      });
      res.on("error", () => {});
      resolve(c);
    });
    req.on("error", reject);
    t.cleanup(() => req.destroy());
  }), 5000, `SSE ${url.replace(/token=[^&]+/, "token=…")}`);
}

// Spawn a proxy in the foreground; t.cleanup stops it by its PID (SIGTERM, then SIGKILL
// after 5 s).
export async function startProxyProcess(t, name, bin, args, { env, cwd } = {}) {
  const child = spawn(bin, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stdout.on("data", (d) => (logs += d));
  child.stderr.on("data", (d) => (logs += d));
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  child.on("error", (e) => (logs += `spawn ${name}: ${e.message}\n`));
  t.cleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const r = await Promise.race([exited, sleep(5000).then(() => null)]);
    if (!r) { child.kill("SIGKILL"); await exited; }
  });
  return { child, exited, logs: () => logs };
}

// A streamed publish (text/stream) through the proxy at `base` reaches an SSE
// subscriber (also through the proxy) chunk by chunk, before the request ends:
// the proxy must not buffer the request body. `what` names that in failures.
export async function checkStreamNotBuffered(t, gw, base, what) {
  const jwt = await mint(gw, [{ channel: "c", name: "ai", kind: "run" }]);
  const s = await sse(`${base}/v1/realtime/sse?token=${jwt}`, t);
  await waitFor(() => s.frames.length >= 1, 2000, "ack");
  const u = new URL(`${base}/v1/realtime/publish?channel=c&topic=ai`);
  const req = http.request(u, { method: "POST", headers: { Authorization: `Bearer ${gw.key}`, "Content-Type": "text/stream" } });
  const done = new Promise((res, rej) => {
    req.on("response", (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => res({ status: r.statusCode, body: JSON.parse(b) })); });
    req.on("error", rej);
  });
  t.cleanup(() => req.destroy());
  const first = "a".repeat(1500);
  req.write(first);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "chunk"), 3000, `a chunk before the stream ends (${what})`);
  req.end("b".repeat(10));
  const r = await done;
  assert.equal(r.status, 200);
  await waitFor(() => s.frames.some((f) => f.msg.kind === "datastream-end"), 2000, "datastream-end");
  const text = s.frames.filter((f) => f.msg.kind === "chunk").map((f) => f.msg.data).join("");
  assert.equal(text, first + "b".repeat(10));
}

// Through the proxy `px` ({url, ws}) named `name`: a token is minted, an rtgw.v1
// client (subprotocol passed through) and a plain client (as the official client)
// both receive a publish with its id, and a refused token is rtgw's JSON 401.
export async function checkWsThroughProxy(t, gw, px, name) {
  const res = await fetch(`${px.url}/v1/realtime/token`, {
    method: "POST", headers: { Authorization: `Bearer ${gw.key}` },
    body: JSON.stringify([{ channel: "user:42", name: "ai", kind: "run" }]),
  });
  assert.equal(res.status, 201, `token minted through ${name}`);
  const { jwt } = await res.json();
  const ext = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { protocols: ["rtgw.v1"], t });
  assert.equal(ext.ws.protocol, "rtgw.v1", `the subprotocol passes through ${name}`);
  assert.equal((await ext.next()).kind, "rtgw.subscribed");
  const plain = await connect(`${px.ws}/v1/realtime/connect?token=${jwt}`, { t }); // as the official client
  await sleep(100);
  const r = await publishVia(px.url, gw, "user:42", "ai", { hello: `via ${name}` });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.delivered, 2);
  for (const c of [ext, plain]) {
    const m = await c.next();
    assert.equal(m.kind, "data");
    assert.deepEqual(m.data, { hello: `via ${name}` });
    assert.equal(m.id, r.body.ids[0]);
  }
  const bad = await connect(`${px.ws}/v1/realtime/connect?token=nope`, { t }).catch((e) => e);
  assert.equal(bad.status, 401);
  assert.match(bad.body, /"error":"token_/);
}
