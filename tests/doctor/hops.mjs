// rtgw doctor names the hop that broke (issue 14): each case is a real broken setup
// from the field reports — Debian's nginx, Caddy and HAProxy with the misconfiguration,
// a real rtgw (or none), Python's http.server, Node's own HTTP/2 server, and a small
// Kong stand-in (Kong is not packaged for Debian) that answers an upgrade the way a
// Kong route without the WebSocket protocols does. Each asserts the cause doctor names
// (with its evidence) and the fix it prints. The "no false alarm" cases run doctor
// against the healthy examples in examples/ and assert a clean report.
//   node tests/doctor/hops.mjs <case>     (RTGW_BIN, NGINX_BIN, CADDY_BIN, HAPROXY_BIN)
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, freePort, keygen } from "../lib/gateway.mjs";
import { doctor, show, assertFailedAt, assertNoWarnings } from "../lib/doctor.mjs";
import { startNginx, wsLocationBody, CONNECTION_UPGRADE_MAP } from "../lib/nginx.mjs";
import { startNginxExample, startCaddyExample, startHaproxyExample, runCaddy } from "../lib/examples.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { sub } from "../lib/proxy.mjs";
import { waitFor } from "../lib/wait.mjs";

// An app that serves its own HTML page on every path (what a catch-all route reaches).
async function startApp(t) {
  const port = await freePort();
  const srv = http.createServer((req, res) => {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end("<!doctype html><html><head><title>Acme Dashboard</title></head><body>app</body></html>");
  });
  await new Promise((r) => srv.listen(port, "127.0.0.1", r));
  t.cleanup(() => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }));
  return { port, url: `http://127.0.0.1:${port}` };
}

const wsProxy = wsLocationBody;

// A Kong stand-in: plain requests are proxied to rtgw with Kong's headers added; an
// upgrade is answered by "Kong" itself with 426, as a route without ws/wss does.
async function startKongStandIn(t, gw) {
  const port = await freePort();
  const kongHeaders = { "Via": "kong/3.4.2", "X-Kong-Proxy-Latency": "0", "Server": "kong/3.4.2" };
  const srv = http.createServer((req, res) => {
    const up = http.request({ host: "127.0.0.1", port: gw.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, { ...ur.headers, ...kongHeaders, "X-Kong-Upstream-Latency": "1" });
      ur.pipe(res);
    });
    up.on("error", () => { res.writeHead(502, kongHeaders); res.end(); });
    req.pipe(up);
  });
  srv.on("upgrade", (req, socket) => {
    const body = "Upgrade Required";
    socket.end(`HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=UTF-8\r\n` +
      `Content-Length: ${body.length}\r\nConnection: keep-alive\r\nServer: kong/3.4.2\r\nVia: kong/3.4.2\r\n` +
      `X-Kong-Response-Latency: 0\r\n\r\n${body}`);
  });
  await new Promise((r) => srv.listen(port, "127.0.0.1", r));
  t.cleanup(() => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }));
  return { port, url: `http://127.0.0.1:${port}` };
}

function cert(dir, name) {
  const key = path.join(dir, `${name}.key`), crt = path.join(dir, `${name}.crt`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    { stdio: "ignore" });
  return { key, cert: crt };
}

const tcpOpen = (port) => new Promise((resolve) => {
  const s = net.connect({ host: "127.0.0.1", port });
  s.once("connect", () => { s.destroy(); resolve(true); });
  s.once("error", () => resolve(false));
});

// -- never reached rtgw ------------------------------------------------------------

defcase("nginx_catch_all_app_answers", async (t) => {
  // Field report 002: the realtime location was never deployed; location / (the app) takes it.
  const app = await startApp(t);
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / { proxy_pass ${app.url}; }`);
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assert.equal(r.byName.http.status, "warn", show(r));
  assertFailedAt(r, "route", /never reached rtgw: the app: HTTP 200 with an HTML page titled "Acme Dashboard", Server: nginx\/[\d.]+ answered \(no X-Rtgw header\); two causes remain: no location for \/v1\/realtime\/ .* or a regex location/,
    /location \^~ \/v1\/realtime\/ \{[\s\S]*proxy_pass http:\/\/127\.0\.0\.1:8288;[\s\S]*precedence: an exact match/);
  assert.doesNotMatch(r.out, /gateway's log/, "the gateway was never reached");
});

defcase("nginx_default_site_answers", async (t) => {
  // Field report 002: the site with the realtime location was written but is not in
  // force; nginx's default site (its "Welcome to nginx!" page) answers the host.
  await startGateway(t);
  const ng = await startNginx(t, `root /usr/share/nginx/html; location / { index index.html; }`);
  const r = await doctor([ng.url]);
  assertFailedAt(r, "route", /never reached rtgw: nginx's own 404 error page .* answered, and \/ is nginx's default page "Welcome to nginx!" .*: nginx's default site answers this host/,
    /sites-enabled[\s\S]*server_name[\s\S]*nginx -t && systemctl reload nginx/);
});

defcase("nginx_regex_location_wins_over_prefix", async (t) => {
  // The realtime prefix location exists, but a regex location listed for the app takes
  // /v1/realtime/connect first (regex locations beat plain prefixes).
  const app = await startApp(t);
  const gw = await startGateway(t);
  const ng = await startNginx(t, `
    location ~ /connect$ { proxy_pass ${app.url}; }
    location /v1/realtime/ {${wsProxy(gw.port)}
    }
    location / { proxy_pass ${app.url}; }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "route", /\/v1\/realtime\/token, \/v1\/realtime\/sse reach rtgw, but \/v1\/realtime\/connect does not: the app: .*"Acme Dashboard".* answers it .*a regex location, location ~ …, wins over a plain prefix location/,
    /location \^~ \/v1\/realtime\/ \{/);
});

defcase("haproxy_earlier_acl_takes_connect", async (t) => {
  // The example plus an app rule listed first: HAProxy uses the first use_backend whose
  // ACL matches, so /v1/realtime/connect goes to the app.
  const app = await startApp(t);
  const gw = await startGateway(t);
  const hp = await startHaproxyExample(t, gw, (c) => {
    c = sub(c, "    use_backend rtgw if rtgw_path\n", "    use_backend app if { path_end /connect }\n    use_backend rtgw if rtgw_path\n");
    return `${c}\nbackend app\n    server app1 127.0.0.1:${app.port}\n`;
  });
  const r = await doctor([hp.url, "--signing-key", gw.key]);
  assertFailedAt(r, "route", /\/v1\/realtime\/token, \/v1\/realtime\/sse reach rtgw, but \/v1\/realtime\/connect does not: the app: .*"Acme Dashboard".*HAProxy: an earlier use_backend/,
    /HAProxy: use_backend rtgw if \{ path_beg \/v1\/realtime\/ \} before other rules/);
});

defcase("nginx_sends_upgrades_to_the_apps_websocket_server", async (t) => {
  // Field report 003's shape: every upgrade goes to the app's own WebSocket server (it
  // greets with CONNECTION_ESTABLISHED); plain requests reach rtgw.
  requireNodeModules("ws");
  const { WebSocketServer } = await import("ws");
  const appPort = await freePort();
  const wss = new WebSocketServer({ host: "127.0.0.1", port: appPort });
  wss.on("connection", (ws) => ws.send(JSON.stringify({ type: "CONNECTION_ESTABLISHED" })));
  t.cleanup(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(r); }));
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / {${wsProxy(gw.port, { pass: "http://$backend" })}
    }`, { http: `${CONNECTION_UPGRADE_MAP}
  map $http_upgrade $backend { default 127.0.0.1:${gw.port}; websocket 127.0.0.1:${appPort}; }` });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assert.equal(r.byName.route.status, "ok", show(r));
  assertFailedAt(r, "subscribe", /the first frame is not rtgw\.subscribed: '\{"type":"CONNECTION_ESTABLISHED"\}'; rtgw's probe record holds no upgrade request: another WebSocket server answered/,
    /route \/v1\/realtime\/connect to rtgw, not to a WebSocket server of the app/);
});

defcase("app_at_root_rtgw_mounted_under_ws", async (t) => {
  // The app at /, rtgw under /ws/ (proxy_pass with a URI strips it): the clients ask for
  // /v1/realtime/… at the root, which is the app.
  const app = await startApp(t);
  const gw = await startGateway(t);
  const ng = await startNginx(t, `
    location /ws/ {${wsProxy(gw.port, { pass: `http://127.0.0.1:${gw.port}/` })}
    }
    location / { proxy_pass ${app.url}; }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "route", /never reached rtgw: the app: .*"Acme Dashboard".*; rtgw answers under \/ws\/ instead \(GET \/ws\/health is rtgw's\), but clients ask for \/v1\/realtime\/… at the root/,
    /location \^~ \/v1\/realtime\/ \{/);
});

defcase("plain_web_server_answers", async (t) => {
  // Python's http.server where rtgw should be: the URL points at the wrong service.
  const port = await freePort();
  const dir = tmpDir(t, "rtgw-doctor-www-");
  const py = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], { stdio: "ignore" });
  t.cleanup(() => py.kill());
  await waitFor(() => tcpOpen(port), 10000, "python http.server to listen");
  const r = await doctor([`http://127.0.0.1:${port}`, "--signing-key", keygen()]);
  assert.match(r.byName.http.found, /GET \/health is answered by Python's http\.server \(Server: SimpleHTTP\/[\d.]+ Python\/[\d.]+, HTTP 404\), not rtgw/, show(r));
  assertFailedAt(r, "route", /never reached rtgw: Python's http\.server .* answered \(no X-Rtgw header\); no proxy names itself, so two causes remain: this URL points at another server than rtgw/,
    /point the URL at rtgw \(RTGW_LISTEN, default 127\.0\.0\.1:8288\)/);
});

// -- reached rtgw, changed on the way ---------------------------------------------

defcase("nginx_proxy_pass_uri_rewrites_path", async (t) => {
  // proxy_pass http://…/; with a URI part: /v1/realtime/sse arrives as /sse.
  const gw = await startGateway(t);
  const ng = await startNginx(t, `
    location /v1/realtime/ {${wsProxy(gw.port, { pass: `http://127.0.0.1:${gw.port}/` })}
    }
    location = /health { proxy_pass http://127.0.0.1:${gw.port}; }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "route", /the request reached rtgw at another path: doctor sent GET \/v1\/realtime\/sse, rtgw saw GET \/sse \(rtgw's probe record\) and answered 404: the proxy rewrites the path/,
    /nginx: write proxy_pass without a URI part: proxy_pass http:\/\/127\.0\.0\.1:8288;/);
  // Without the key: rtgw's own 404 for a path it always serves is the evidence.
  const anon = await doctor([ng.url]);
  assertFailedAt(anon, "route", /rtgw \(X-Rtgw\) answered 404 not_found for \/v1\/realtime\/connect, a path it always serves: the proxy rewrites the path/,
    /proxy_pass without a URI part/);
});

defcase("caddy_handle_path_strips_prefix", async (t) => {
  const gw = await startGateway(t);
  const cd = await runCaddy(t, (port) => `{
\tadmin off
\tauto_https off
}
http://127.0.0.1:${port} {
\tbind 127.0.0.1
\thandle_path /v1/realtime/* {
\t\treverse_proxy 127.0.0.1:${gw.port}
\t}
\thandle /health {
\t\treverse_proxy 127.0.0.1:${gw.port}
\t}
}
`, { env: (dir) => ({ PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: path.join(dir, "data"), XDG_CONFIG_HOME: path.join(dir, "config") }) });
  const r = await doctor([cd.url, "--signing-key", gw.key]);
  assertFailedAt(r, "route", /doctor sent GET \/v1\/realtime\/sse, rtgw saw GET \/sse .*the proxy rewrites the path/,
    /Caddy: use handle \/v1\/realtime\/\* instead of handle_path/);
});

defcase("nginx_strips_authorization", async (t) => {
  // The proxy blanks Authorization: rtgw never sees the key, so this is not a key mismatch.
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / {${wsProxy(gw.port, { extra: 'proxy_set_header Authorization "";' })}
    }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "token", /Authorization was sent but did not arrive: the proxy strips it \(rtgw answered POST \/v1\/realtime\/token 401 "unauthorized: missing Authorization.*"; the record request lost its Authorization the same way\); the signing key itself was never compared/,
    /nginx: remove proxy_set_header Authorization "";/);
  assert.doesNotMatch(r.failed.fix, /RTGW_SIGNING_KEY/, "the key is not blamed");
});

defcase("nginx_drops_query_string", async (t) => {
  // proxy_pass with $uri: the query (and the token in it) never reaches rtgw.
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / {${wsProxy(gw.port, { pass: `http://127.0.0.1:${gw.port}$uri` })}
    }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "upgrade", /the query string \(with the token\) was sent but did not arrive: rtgw's probe record shows GET \/v1\/realtime\/connect without a query, and rtgw .*token_missing.*: the proxy drops the query, so the token never arrives \(a fresh token would not help\)/,
    /nginx: proxy_pass http:\/\/127\.0\.0\.1:8288; \(no \$uri/);
  assert.doesNotMatch(r.failed.fix, /mint a fresh token/);
});

defcase("nginx_connection_keep_alive", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / {${wsProxy(gw.port).replace("proxy_set_header Connection $connection_upgrade;", 'proxy_set_header Connection "keep-alive";')}
    }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "upgrade", /Connection: Upgrade was sent but arrived as "keep-alive" \(Upgrade: websocket did arrive; rtgw's probe record\), so rtgw saw a plain GET and answered 426 upgrade_required/,
    /proxy_set_header Connection "upgrade";/);
});

defcase("nginx_connection_emptied", async (t) => {
  // proxy_set_header Connection ""; (the keep-alive-to-upstream recipe) removes it.
  const gw = await startGateway(t);
  const ng = await startNginx(t, `location / {${wsProxy(gw.port).replace("proxy_set_header Connection $connection_upgrade;", 'proxy_set_header Connection "";')}
    }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key]);
  assertFailedAt(r, "upgrade", /Connection: Upgrade was sent but did not arrive at all \(Upgrade: websocket did arrive; rtgw's probe record\)/,
    /proxy_set_header Connection "upgrade";/);
});

defcase("kong_route_without_ws_protocols", async (t) => {
  // Field report 004: Kong answers the upgrade itself; Connection is not the problem.
  const gw = await startGateway(t);
  const kong = await startKongStandIn(t, gw);
  const r = await doctor([kong.url, "--signing-key", gw.key]);
  assert.match(r.byName.route.found, /reach rtgw .*through Kong/, show(r));
  assertFailedAt(r, "upgrade", /Kong itself \(HTTP 426 .*Server: kong\/3\.4\.2\) answered the upgrade itself with HTTP 426: the Kong route for \/v1\/realtime\/ does not carry the WebSocket protocols, so Kong never proxied it to rtgw/,
    /protocols: \[http, https, ws, wss\]/);
  assert.doesNotMatch(r.failed.found, /Connection/);
});

// -- the proxy is up, rtgw is down ------------------------------------------------

defcase("haproxy_up_rtgw_down", async (t) => {
  const dead = { port: await freePort() };
  const hp = await startHaproxyExample(t, dead, (c) => c, { ready: "tcp" });
  const r = await doctor([hp.url, "--signing-key", keygen()]);
  assertFailedAt(r, "http", /HTTP 503 on GET \/health from HAProxy's own 503 page \("No server is available to handle this request"\): the proxy answers but the backend is down .*not a routing problem/,
    /start rtgw/);
  assert.doesNotMatch(r.failed.fix, /location|route \/v1/);
});

defcase("caddy_up_rtgw_down", async (t) => {
  const dead = { port: await freePort() };
  const cd = await startCaddyExample(t, dead, (c) => c, { ready: "tcp" });
  const r = await doctor([cd.url, "--signing-key", keygen()]);
  assertFailedAt(r, "http", /HTTP 50[23] on GET \/health from Caddy itself \(HTTP 50[23] with an empty body, Server: Caddy\): the proxy answers but the backend is down .*not a routing problem/,
    /start rtgw/);
});

// -- the way in ------------------------------------------------------------------

defcase("http_redirects_to_https", async (t) => {
  const gw = await startGateway(t);
  const dir = tmpDir(t, "rtgw-doctor-redirect-");
  const c = cert(dir, "tls");
  const tls = await startNginx(t, `location / {${wsProxy(gw.port)}
    }`, { tls: c, http: CONNECTION_UPGRADE_MAP });
  const plain = await startNginx(t, `location / { return 301 https://localhost:${tls.port}$request_uri; }`);
  const r = await doctor([plain.url, "--signing-key", gw.key, "--cacert", c.cert]);
  assertFailedAt(r, "http", new RegExp(`http://127\\.0\\.0\\.1:${plain.port} redirects \\(HTTP 301, Location: https://localhost:${tls.port}/health\\?rtgw_probe=\\w+\\): WebSocket clients do not follow redirects.*followed once: rtgw 0\\.\\d+\\.\\d+ answers GET /health there \\(HTTP 200\\)`),
    new RegExp(`use https://localhost:${tls.port} as the gateway URL \\(wss://localhost:${tls.port} for WebSocket clients\\)`));
  const ok = await doctor([`https://localhost:${tls.port}`, "--signing-key", gw.key, "--cacert", c.cert, "--idle", "1"]);
  assert.equal(ok.code, 0, show(ok));
});

defcase("tls_front_end_offers_only_h2", async (t) => {
  // Node's own HTTP/2 server without HTTP/1.1 (allowHTTP1: false): ALPN h2 only.
  const dir = tmpDir(t, "rtgw-doctor-h2-");
  const c = cert(dir, "h2");
  const port = await freePort();
  const srv = http2.createSecureServer({ key: fs.readFileSync(c.key), cert: fs.readFileSync(c.cert), allowHTTP1: false },
    (req, res) => res.end("h2"));
  await new Promise((r) => srv.listen(port, "127.0.0.1", r));
  t.cleanup(() => new Promise((r) => srv.close(r)));
  const r = await doctor([`https://localhost:${port}`, "--cacert", c.cert]);
  assertFailedAt(r, "tls", /the TLS front end offers only HTTP\/2 \(ALPN h2\): it refuses a handshake that offers http\/1\.1, and WebSockets \(RFC 6455\) need HTTP\/1\.1/,
    /offer http\/1\.1 in ALPN next to h2[\s\S]*allowHTTP1: true/);
});

// -- idle ------------------------------------------------------------------------

defcase("idle_not_checked_warns_and_names_the_flag", async (t) => {
  const gw = await startGateway(t);
  const r = await doctor([gw.url, "--signing-key", gw.key]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.byName.idle.status, "warn", show(r));
  assert.match(r.byName.idle.found, /idle timeouts were not checked/);
  assert.match(r.byName.idle.fix, /--idle 75/);
});

defcase("idle_heartbeat_advice_below_observed_timeout", async (t) => {
  // A 4 s proxy read timeout and rtgw pinging every 60 s: the advice must beat below 4 s.
  const gw = await startGateway(t, { env: { RTGW_PING_INTERVAL_MS: "60000" } });
  const ng = await startNginx(t, `location / {${wsProxy(gw.port).replace("proxy_read_timeout 3600s;", "proxy_read_timeout 4s;")}
    }`, { http: CONNECTION_UPGRADE_MAP });
  const r = await doctor([ng.url, "--signing-key", gw.key, "--idle", "6"]);
  assertFailedAt(r, "idle", /closed after [34]\.\d s idle/, /nginx: proxy_read_timeout 3600s;/);
  const hb = Number(/RTGW_PING_INTERVAL_MS=(\d+)/.exec(r.failed.fix)?.[1]);
  assert.ok(hb > 0 && hb < 4000, `heartbeat ${hb} ms is not below the 4 s timeout:\n${show(r)}`);
});

// -- no false alarm ----------------------------------------------------------------

defcase("healthy_nginx_example_no_warnings", async (t) => {
  const gw = await startGateway(t);
  const ng = await startNginxExample(t, gw);
  assertNoWarnings(await doctor([ng.url, "--signing-key", gw.key, "--idle", "2"]));
});

defcase("healthy_caddy_example_no_warnings", async (t) => {
  const gw = await startGateway(t);
  const cd = await startCaddyExample(t, gw);
  assertNoWarnings(await doctor([cd.url, "--signing-key", gw.key, "--idle", "2"]));
});

defcase("healthy_haproxy_example_no_warnings", async (t) => {
  const gw = await startGateway(t);
  const hp = await startHaproxyExample(t, gw);
  assertNoWarnings(await doctor([hp.url, "--signing-key", gw.key, "--idle", "2"]));
});

await run();
