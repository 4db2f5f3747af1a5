// A minimal backend for rtgw: fake cookie login, a token endpoint that mints a
// token only for the logged-in user's own channel (user:<id>), a "start run" endpoint
// that publishes like a worker, and the static page in ../browser. No dependencies:
// node:http plus sdk/js/node.js.
//
//   RTGW_SIGNING_KEY=signkey-… RTGW_URL=http://127.0.0.1:8288 node examples/backend-node/server.mjs
//   open http://127.0.0.1:3000
//
// Environment: RTGW_SIGNING_KEY (required; the gateway's key), RTGW_URL (the gateway,
// default http://127.0.0.1:8288), RTGW_PUBLIC_URL (what browsers use, default RTGW_URL),
// PORT (3000), HOST (127.0.0.1).
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { mintToken, publish } from "../../sdk/js/node.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const pageDir = path.resolve(here, "../browser");
const sdkDir = path.resolve(here, "../../sdk/js");

const key = process.env.RTGW_SIGNING_KEY;
if (!key) {
  console.error("RTGW_SIGNING_KEY is required (the gateway's signing key; `rtgw keygen` makes one)");
  process.exit(2);
}
const gateway = (process.env.RTGW_URL || "http://127.0.0.1:8288").replace(/\/+$/, "");
const publicUrl = (process.env.RTGW_PUBLIC_URL || gateway).replace(/\/+$/, "");
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";

// session id → user id. A real app has a real login; this one believes anybody.
const sessions = new Map();

function userOf(req) {
  const m = /(?:^|;\s*)sid=([A-Za-z0-9_-]+)/.exec(req.headers.cookie || "");
  return m ? sessions.get(m[1]) : undefined;
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  let body = "";
  for await (const c of req) { body += c; if (body.length > 10000) throw new Error("body too large"); }
  return body ? JSON.parse(body) : {};
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

function serveFile(res, dir, name) {
  const file = path.join(dir, path.basename(name));
  if (!fs.existsSync(file)) return json(res, 404, { error: "not_found" });
  res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream", "Cache-Control": "no-cache" });
  fs.createReadStream(file).pipe(res);
}

async function simulateRun(user) {
  const runId = "run_" + crypto.randomBytes(4).toString("hex");
  const send = (data) => publish({ baseUrl: gateway, signingKey: key, channel: `user:${user}`, topic: "run", data, runId, fnId: "example-fn" });
  await send({ status: "started" });
  for (let i = 1; i <= 3; i++) { await new Promise((r) => setTimeout(r, 200)); await send({ status: "step", step: i, of: 3 }); }
  await send({ status: "finished" });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://x");
  try {
    if (req.method === "POST" && url.pathname === "/login") {
      const { user } = await readJson(req);
      if (typeof user !== "string" || !/^[a-z0-9_-]{1,32}$/.test(user)) return json(res, 400, { error: "bad_user", message: "user: 1-32 of a-z 0-9 _ -" });
      const sid = crypto.randomBytes(18).toString("base64url");
      sessions.set(sid, user);
      return json(res, 200, { user }, { "Set-Cookie": `sid=${sid}; HttpOnly; SameSite=Lax; Path=/` });
    }
    if (req.method === "POST" && url.pathname === "/logout") {
      return json(res, 200, {}, { "Set-Cookie": "sid=; Max-Age=0; Path=/" });
    }
    const user = userOf(req);
    if (url.pathname === "/api/me") {
      return user ? json(res, 200, { user, channel: `user:${user}`, realtimeUrl: publicUrl }) : json(res, 401, { error: "not_logged_in" });
    }
    if (req.method === "POST" && url.pathname === "/api/realtime-token") {
      if (!user) return json(res, 401, { error: "not_logged_in" });
      // The only place that decides what a browser may read: its own channel.
      const ttl = 300;
      const jwt = mintToken({ signingKey: key, channel: `user:${user}`, topics: ["*"], ttl });
      return json(res, 200, { jwt, expires_at: Math.floor(Date.now() / 1000) + ttl });
    }
    if (req.method === "POST" && url.pathname === "/api/runs") {
      if (!user) return json(res, 401, { error: "not_logged_in" });
      simulateRun(user).catch((e) => console.error("run failed:", e.message));
      return json(res, 202, { started: true });
    }
    if (req.method === "GET" && url.pathname.startsWith("/sdk/")) return serveFile(res, sdkDir, url.pathname);
    if (req.method === "GET") return serveFile(res, pageDir, url.pathname === "/" ? "index.html" : url.pathname);
    json(res, 404, { error: "not_found" });
  } catch (e) {
    json(res, 500, { error: "internal_error", message: e.message });
  }
});

server.listen(port, host, () => console.log(`backend-node listening on http://${host}:${port} (gateway ${gateway})`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
