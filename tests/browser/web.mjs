// Helpers for the browser tier: headless Chromium (playwright-core with the
// system's /usr/bin/chromium), a tiny loopback web server that serves sdk/js and a
// test page and can proxy the gateway (optionally refusing WebSocket upgrades, like
// a misconfigured proxy, or freezing event streams), and a self-signed certificate.
// It also serves the OFFICIAL `inngest` client's browser ESM build unmodified from
// tests/node_modules (/official.html, /nm/inngest/…, /nm/zod/…), with an import map;
// its CommonJS dependencies (`debug`; `react` and `react-dom` for `inngest/react`'s
// useRealtime on /react.html) are linked as ES modules from their own files
// (/cjs/…), the way a bundler would. No bundler is needed. /rtgw-react.html renders
// rtgw's own hook (sdk/js/react.js) with React's development build (/cjs/dev/…),
// where StrictMode really mounts every effect twice.
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { requireNodeModules } from "../lib/harness.mjs";
import { tmpDir } from "../lib/proc.mjs";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CHROMIUM = process.env.RT_CHROMIUM || "/usr/bin/chromium";

// A fresh headless Chromium with an empty profile. Fails (never skips) without Chromium.
export async function launch(t, { https: ignoreHTTPSErrors = false } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Chromium (apt-get install -y chromium, or scripts/deps.sh test)`);
  }
  requireNodeModules("playwright-core");
  const { chromium } = await import("playwright-core");
  const profile = tmpDir(t, "rtgw-chromium-");
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 20000,
  });
  t.cleanup(() => ctx.close());
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(15000);
  return { ctx, page, problems };
}

export function selfSignedCert(t) {
  const d = tmpDir(t, "rtgw-cert-");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(d, "key.pem"),
    "-out", path.join(d, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
  { stdio: "ignore" });
  return { key: fs.readFileSync(path.join(d, "key.pem")), cert: fs.readFileSync(path.join(d, "cert.pem")) };
}

// The page the SDK cases drive: it loads the SDK, records every WebSocket URL the
// page opens, and exposes start(opts) that keeps statuses, messages and errors.
export const TEST_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>rtgw sdk test</title></head>
<body><p id="state">loading</p>
<script type="module">
import * as rtgw from "/sdk/index.js";
window.rtgw = rtgw;
window.__ws = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native { constructor(url, protocols) { window.__ws.push(String(url)); super(url, protocols); } };
window.start = (opts) => {
  window.__st = []; window.__msgs = []; window.__errs = [];
  window.__sub = rtgw.subscribe({
    ...opts,
    onStatus: (s) => { const { error, ...plain } = s; window.__st.push(plain); document.getElementById("state").textContent = s.status; },
    onMessage: (m) => window.__msgs.push(m),
    onError: (e) => window.__errs.push({ reason: e.reason, message: e.message, fatal: e.fatal, code: e.code }),
  });
  return true;
};
document.getElementById("state").textContent = "ready";
</script></body></html>`;

// The official client's page: imports `inngest/realtime` through an import map and
// exposes start({ key, apiBaseUrl, channel, topics }), which calls its subscribe()
// and keeps every message (window.__msgs) and the text of string data (#out).
export const OFFICIAL_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>official inngest client</title>
<script type="importmap">{"imports":{"inngest/realtime":"/nm/inngest/realtime.js",
"zod/v3":"/nm/zod/v3/index.js","debug":"/cjs/debug.js"}}</script></head>
<body><p id="state">loading</p><pre id="out"></pre>
<script type="module">
import { subscribe } from "inngest/realtime";
window.__msgs = [];
window.start = async ({ key, apiBaseUrl, channel, topics }) => {
  window.__sub = await subscribe({ channel, topics, key, apiBaseUrl, onMessage: (m) => {
    window.__msgs.push({ kind: m.kind, channel: m.channel, topic: m.topic, data: m.data });
    if (typeof m.data === "string") document.getElementById("out").textContent += m.data;
  } });
  return true;
};
document.getElementById("state").textContent = "ready";
</script></body></html>`;

// The same client's useRealtime (inngest/react) in a React root: startReact({ key,
// apiBaseUrl, channel, topics }) renders the text of its string messages (#react-out)
// and its connection status (#react-status), as an app would.
export const REACT_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>official useRealtime</title>
<script type="importmap">{"imports":{"inngest/react":"/nm/inngest/react.js",
"zod/v3":"/nm/zod/v3/index.js","debug":"/cjs/debug.js","react":"/cjs/react.js",
"react-dom/client":"/cjs/react-dom-client.js"}}</script></head>
<body><p id="state">loading</p><div id="root"></div>
<script type="module">
import React from "react";
import { createRoot } from "react-dom/client";
import { useRealtime } from "inngest/react";
const h = React.createElement;
window.startReact = ({ key, apiBaseUrl, channel, topics }) => {
  function App() {
    // token: the { key, apiBaseUrl } a backend hands out (getClientSubscriptionToken's form)
    const rt = useRealtime({ channel, topics, token: { key, apiBaseUrl }, historyLimit: null, pauseOnHidden: false });
    const text = rt.messages.all.filter((m) => typeof m.data === "string").map((m) => m.data).join("");
    window.__all = rt.messages.all.map((m) => ({ kind: m.kind, topic: m.topic, data: m.data }));
    return h("div", null, h("p", { id: "react-status" }, rt.connectionStatus),
      h("p", { id: "react-error" }, rt.error ? String(rt.error.message) : ""), h("pre", { id: "react-out" }, text));
  }
  createRoot(document.getElementById("root")).render(h(App));
  return true;
};
document.getElementById("state").textContent = "ready";
</script></body></html>`;

// rtgw's own hook (sdk/js/react.js) in a React 19 root, development build (StrictMode
// mounts effects twice there). mount(props, { strict }) / update(props) / unmount()
// drive one <App>; props: opts (useRealtime options, plain JSON), channel (in deps),
// tokenFromPage (getToken calls window.rtgwToken(channel), which a case exposes with
// page.exposeFunction). The DOM shows what an app would: #status, #transport, #error,
// #recovered, and one <li> per message (data-id, data-channel, text = JSON of data).
// window.__ws lists the WebSocket URLs the page opened; window.__statuses every onStatus;
// window.__commits, after each commit, the channel prop and the channels of the messages shown.
export const RTGW_REACT_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>rtgw useRealtime</title>
<script type="importmap">{"imports":{"react":"/cjs/dev/react.js","react-dom/client":"/cjs/dev/react-dom-client.js",
"@rtgw/client/react":"/sdk/react.js"}}</script></head>
<body><p id="state">loading</p><div id="root"></div>
<script type="module">
import * as React from "react";
import { createRoot } from "react-dom/client";
import { createUseRealtime } from "@rtgw/client/react";
window.__ws = [];
window.__statuses = [];
window.__commits = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native { constructor(url, protocols) { window.__ws.push(String(url)); super(url, protocols); } };
const useRealtime = createUseRealtime(React);
const h = React.createElement;
function App({ opts = {}, channel, tokenFromPage }) {
  const rt = useRealtime({
    ...opts,
    getToken: tokenFromPage ? () => window.rtgwToken(channel) : undefined,
    onStatus: (s) => window.__statuses.push({ status: s.status, reason: s.reason, transport: s.transport }),
    deps: [channel],
  });
  React.useEffect(() => { window.__commits.push({ channel, shown: rt.messages.map((m) => m.channel) }); });
  return h("div", null,
    h("p", { id: "status" }, rt.status),
    h("p", { id: "transport" }, rt.info && rt.info.transport ? rt.info.transport : ""),
    h("p", { id: "error" }, rt.error ? rt.error.reason || rt.error.message : ""),
    h("p", { id: "recovered" }, String(rt.recovered)),
    h("ul", { id: "msgs" }, rt.messages.map((m) => h("li", { key: m.channel + " " + m.id, "data-id": m.id,
      "data-channel": m.channel }, JSON.stringify(m.data)))));
}
let root = null, strict = false;
const tree = (props) => (strict ? h(React.StrictMode, null, h(App, props)) : h(App, props));
window.mount = (props, o = {}) => { strict = !!o.strict; root = createRoot(document.getElementById("root")); root.render(tree(props)); return true; };
window.update = (props) => { root.render(tree(props)); return true; };
window.unmount = () => { root.unmount(); root = null; return true; };
document.getElementById("state").textContent = "ready";
</script></body></html>`;

const nmDir = path.join(root, "tests/node_modules");

// CommonJS files as one ES module, as a bundler links them: each file of `defs`
// (require name → file under tests/node_modules) runs once with a module object and
// a require over defs; `imports` (require name → ES module URL) are shared instances
// (react-dom must use the page's one React). Exports the entry's module.exports as
// default, and `names` of it as named exports. process.env.NODE_ENV is `env`.
function cjsAsEsm(defs, entry, names = [], imports = {}, env = "production") {
  const src = (f) => fs.readFileSync(path.join(nmDir, f), "utf8");
  const fns = Object.entries(defs).map(([n, f]) => `${JSON.stringify(n)}: function (module, exports, require) {\n${src(f)}\n}`);
  const ims = Object.entries(imports).map(([n, url], i) => [`import __cjs_im${i} from ${JSON.stringify(url)};`,
    `__cjs_cache[${JSON.stringify(n)}] = { exports: __cjs_im${i} };`]);
  // Internal names are prefixed so that no named export (React has `cache`) collides.
  return `${ims.map((x) => x[0]).join("\n")}
const process = { env: { NODE_ENV: ${JSON.stringify(env)} } };
const __cjs_defs = {${fns.join(",\n")}};
const __cjs_cache = {};
${ims.map((x) => x[1]).join("\n")}
function __cjs_req(n) {
  if (__cjs_cache[n]) return __cjs_cache[n].exports;
  const module = { exports: {} };
  __cjs_cache[n] = module;
  __cjs_defs[n](module, module.exports, __cjs_req);
  return module.exports;
}
const __cjs_main = __cjs_req(${JSON.stringify(entry)});
export default __cjs_main;
${names.filter((k) => k !== "process").map((k) => `export const ${k} = __cjs_main.${k};`).join("\n")}\n`;
}

// React and react-dom/client as ES modules, in their production or development
// build (`build`); react-dom links the React at `reactUrl`, the page's one React.
function reactEsm(build) {
  const file = `react/cjs/react.${build}.js`;
  const names = Object.keys(createRequire(import.meta.url)(path.join(nmDir, file))).filter((k) => k !== "default" && /^[A-Za-z_$][\w$]*$/.test(k));
  return cjsAsEsm({ react: file }, "react", names, {}, build);
}
const reactDomEsm = (build, reactUrl) => cjsAsEsm({
  "react-dom/client": `react-dom/cjs/react-dom-client.${build}.js`,
  "react-dom": `react-dom/cjs/react-dom.${build}.js`,
  scheduler: `scheduler/cjs/scheduler.${build}.js`,
}, "react-dom/client", ["createRoot", "hydrateRoot"], { react: reactUrl }, build);

// The CommonJS packages the pages import, by URL.
const CJS = {
  "/cjs/debug.js": () => cjsAsEsm({ debug: "debug/src/browser.js", "./common": "debug/src/common.js", ms: "ms/index.js" }, "debug"),
  "/cjs/react.js": () => reactEsm("production"),
  "/cjs/react-dom-client.js": () => reactDomEsm("production", "/cjs/react.js"),
  "/cjs/dev/react.js": () => reactEsm("development"),
  "/cjs/dev/react-dom-client.js": () => reactDomEsm("development", "/cjs/dev/react.js"),
};

// GET /official.html, /react.html, /rtgw-react.html, /nm/{inngest,zod}/<file> and
// /cjs/<package>.js; false if u is none of them.
function servePages(u, res) {
  const send = (type, body) => { res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store" }); res.end(body); };
  if (u.pathname === "/official.html") return send(TYPES[".html"], OFFICIAL_PAGE), true;
  if (u.pathname === "/react.html") return send(TYPES[".html"], REACT_PAGE), true;
  if (u.pathname === "/rtgw-react.html") return send(TYPES[".html"], RTGW_REACT_PAGE), true;
  if (CJS[u.pathname]) return send(TYPES[".js"], CJS[u.pathname]()), true;
  const m = u.pathname.match(/^\/nm\/((?:inngest|zod)\/[\w./-]+\.js)$/);
  if (!m || m[1].includes("..")) return false;
  const f = path.join(nmDir, m[1]);
  if (!fs.existsSync(f)) return false;
  return send(TYPES[".js"], fs.readFileSync(f)), true;
}

const TYPES = { ".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8", ".css": "text/css", ".png": "image/png" };

// A web server on loopback: GET /test.html, GET /sdk/<file> from sdk/js; with
// `gateway` (a port) it proxies /v1/realtime/* and /health there, and tunnels
// WebSocket upgrades unless refuseUpgrades. Returns { url, origin, port, dropStreams(),
// freezeStreams(), refuseUpgrades(bool) }.
export async function startWeb(t, { tls, gateway, refuseUpgrades = false } = {}) {
  const streams = new Set();
  const handler = (req, res) => {
    const u = new URL(req.url, "http://x");
    if (gateway && (u.pathname.startsWith("/v1/realtime/") || u.pathname === "/health")) {
      const up = http.request({ host: "127.0.0.1", port: gateway, path: req.url, method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        const s = { ur, res };
        streams.add(s);
        ur.on("data", (d) => { if (!s.frozen) res.write(d); });
        ur.on("end", () => { streams.delete(s); res.end(); });
        res.on("close", () => { streams.delete(s); ur.destroy(); });
      });
      up.on("error", () => { res.writeHead(502); res.end(); });
      req.pipe(up);
      return;
    }
    if (servePages(u, res)) return;
    if (u.pathname === "/test.html") {
      res.writeHead(200, { "Content-Type": TYPES[".html"], "Cache-Control": "no-store" });
      return res.end(TEST_PAGE);
    }
    if (u.pathname.startsWith("/sdk/")) {
      const f = path.join(root, "sdk/js", path.basename(u.pathname));
      if (fs.existsSync(f)) {
        res.writeHead(200, { "Content-Type": TYPES[path.extname(f)] || "application/octet-stream", "Cache-Control": "no-store" });
        return res.end(fs.readFileSync(f));
      }
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found");
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  const sockets = new Set();
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  server.on("upgrade", (req, socket, head) => {
    if (!gateway || refuseUpgrades) {
      // What a proxy that does not forward Upgrade does: no 101, the browser sees 1006.
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    const up = net.connect(gateway, "127.0.0.1", () => {
      let h = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) h += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(h + "\r\n");
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  t.cleanup(() => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  const origin = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  return {
    port, origin, url: `${origin}/test.html`,
    // Cut every proxied HTTP stream (SSE) as a network failure would.
    dropStreams() { for (const s of streams) { s.res.destroy(); s.ur.destroy(); } streams.clear(); },
    // Stop forwarding the bytes of the streams open now (their connections stay up):
    // a silently dead path. Later streams flow normally.
    freezeStreams() { for (const s of streams) s.frozen = true; },
    // Start or stop refusing WebSocket upgrades (a proxy fixed, or broken, later).
    refuseUpgrades(on) { refuseUpgrades = on; },
  };
}
