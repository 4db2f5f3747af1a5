// examples/kong/kong.yml, linted: Kong is not packaged for Debian, so it cannot run in CI.
// The file is parsed with the `yaml` package and checked against the rules its README
// explains (field report 004 and the timeouts, paths and limits every proxy needs).
//   node tests/proxy/kong.mjs <case>
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defcase, run, requireNodeModules } from "../lib/harness.mjs";

requireNodeModules("yaml");
const YAML = await import("yaml");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const EXAMPLE = path.join(root, "examples", "kong", "kong.yml");
const PING_INTERVAL_MS = 15000;      // RTGW_PING_INTERVAL_MS default
const MAX_BODY_BYTES = 512 * 1024;   // RTGW_MAX_BODY_BYTES default

function load() {
  const doc = YAML.parseDocument(fs.readFileSync(EXAMPLE, "utf8"), { prettyErrors: true, uniqueKeys: true });
  assert.deepEqual(doc.errors.map(String), [], "kong.yml is valid YAML");
  return doc.toJS();
}
const rtgw = (cfg) => {
  const s = cfg.services.find((x) => x.name === "rtgw");
  assert.ok(s, "a service named rtgw");
  return s;
};
// The path a Kong route path matches, for our purposes: "~/v1/x$" → "/v1/x".
const plainPath = (p) => p.replace(/^~/, "").replace(/\$$/, "");
const realtimeRoutes = (svc) => svc.routes.filter((r) => r.paths.some((p) => plainPath(p).startsWith("/v1/realtime/")));
const routeFor = (svc, p) => {
  // Kong evaluates regex paths first, then prefixes, longest first.
  const rx = svc.routes.find((r) => r.paths.some((x) => x.startsWith("~") && new RegExp(x.slice(1)).test(p)));
  if (rx) return rx;
  let best = null, len = -1;
  for (const r of svc.routes) for (const x of r.paths) if (!x.startsWith("~") && p.startsWith(x) && x.length > len) { best = r; len = x.length; }
  return best;
};
const PROTOCOLS_OSS = new Set(["http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp"]);

defcase("format_and_service", async () => {
  const cfg = load();
  assert.equal(cfg._format_version, "3.0");
  const svc = rtgw(cfg);
  assert.match(svc.url, /^http:\/\/[^/]+:8288$/, "rtgw's URL, with no path (the paths stay as they are)");
  assert.equal(svc.retries, 0, "a publish is never resent by Kong");
});

defcase("timeouts_above_ping_interval", async () => {
  const svc = rtgw(load());
  for (const k of ["read_timeout", "write_timeout"]) {
    assert.equal(typeof svc[k], "number", `${k} is set (milliseconds)`);
    assert.ok(svc[k] > 60000, `${k} ${svc[k]} ms must be above Kong's default 60000`);
    assert.ok(svc[k] >= 4 * PING_INTERVAL_MS, `${k} well above RTGW_PING_INTERVAL_MS`);
    assert.ok(svc[k] <= 2 ** 31 - 2, `${k} within Kong's range`);
  }
});

defcase("realtime_routes_at_the_root", async () => {
  const svc = rtgw(load());
  const routes = realtimeRoutes(svc);
  assert.ok(routes.length >= 1);
  for (const r of routes) {
    for (const p of r.paths) assert.ok(plainPath(p).startsWith("/v1/realtime/"), `${r.name}: ${p} is at the root`);
    assert.equal(r.strip_path, false, `${r.name}: strip_path false keeps /v1/realtime/… for rtgw`);
    assert.equal(r.preserve_host, true, `${r.name}: preserve_host`);
  }
  // Every endpoint lands on the route meant for it.
  assert.equal(routeFor(svc, "/v1/realtime/connect").name, "rtgw-subscribe");
  assert.equal(routeFor(svc, "/v1/realtime/sse").name, "rtgw-subscribe");
  assert.equal(routeFor(svc, "/v1/realtime/publish").name, "rtgw-publish");
  assert.equal(routeFor(svc, "/v1/realtime/publish/batch").name, "rtgw-api");
  assert.equal(routeFor(svc, "/v1/realtime/token").name, "rtgw-api");
  assert.equal(routeFor(svc, "/ready").name, "rtgw-ops");
  assert.equal(routeFor(svc, "/metrics"), null, "/metrics is not published through Kong");
});

defcase("route_protocols", async () => {
  // Field report 004 added ws/wss to make upgrades work. In Kong Gateway (open source)
  // they are refused ("Kong Enterprise-only features") and so is the whole file; Kong
  // proxies upgrades on http/https routes. Each realtime route carries both http and
  // https, and only protocols open-source Kong accepts.
  const svc = rtgw(load());
  for (const r of realtimeRoutes(svc)) {
    assert.ok(r.protocols.includes("http") && r.protocols.includes("https"), `${r.name}: http and https`);
    for (const p of r.protocols) assert.ok(PROTOCOLS_OSS.has(p), `${r.name}: ${p} is not accepted by open-source Kong`);
  }
});

defcase("streams_not_buffered", async () => {
  const svc = rtgw(load());
  const sub = routeFor(svc, "/v1/realtime/sse");
  assert.equal(sub.response_buffering, false, "SSE events go out at once");
  const pub = routeFor(svc, "/v1/realtime/publish");
  assert.equal(pub.request_buffering, false, "a streamed publish reaches rtgw as it is produced");
  assert.ok(!(pub.plugins || []).some((p) => p.name === "request-size-limiting"), "no size plugin reads a streamed publish whole");
});

defcase("body_limit_matches_rtgw", async () => {
  const svc = rtgw(load());
  const api = routeFor(svc, "/v1/realtime/token");
  const lim = (api.plugins || []).find((p) => p.name === "request-size-limiting");
  assert.ok(lim, "request-size-limiting on the API route");
  const unit = { bytes: 1, kilobytes: 1024, megabytes: 1024 * 1024 }[lim.config.size_unit];
  assert.ok(unit, `size_unit ${lim.config.size_unit}`);
  assert.equal(lim.config.allowed_payload_size * unit, MAX_BODY_BYTES, "= RTGW_MAX_BODY_BYTES");
  assert.ok(!(svc.plugins || []).some((p) => p.name === "request-size-limiting"), "not service-wide (it would cover streamed publishes)");
});

defcase("cors_allows_websocket_headers", async () => {
  const svc = rtgw(load());
  const all = [...(svc.plugins || []), ...svc.routes.flatMap((r) => r.plugins || [])];
  const cors = all.filter((p) => p.name === "cors");
  for (const c of cors) {
    const h = new Set((c.config.headers || []).map((x) => x.toLowerCase()));
    for (const need of ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
      "Upgrade", "Connection", "Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"]) {
      assert.ok(h.has(need.toLowerCase()), `cors headers include ${need}`);
    }
    assert.ok(!(c.config.origins || []).includes("*") || c.config.credentials !== true, "no wildcard origin with credentials");
  }
});

await run();
