// The proxy examples (examples/nginx/rtgw.conf, examples/caddy/Caddyfile,
// examples/haproxy/haproxy.cfg) started for real in front of a test rtgw: each
// reads the example, points it at `gw` and a free loopback port, applies
// `edit` (a test copy's change, see lib/proxy.mjs sub), and resolves once
// /health answers through it (lib/proxy.mjs startProxy: px.url, px.conf, …).
//
//   const px = await startNginxExample(t, gw, (conf) => conf);
//   const px = await startCaddyExample(t, gw);   // CADDY_BIN, default /usr/bin/caddy
//   const px = await startHaproxyExample(t, gw); // HAPROXY_BIN, default /usr/sbin/haproxy
// A last argument opts goes to startProxy (e.g. { ready: "tcp" } when rtgw is down).
//   const cd = await runCaddy(t, (port, dir) => caddyfileText, opts);   // any Caddyfile
// Used by tests/proxy (what each line of an example does) and tests/doctor (doctor
// finds nothing wrong with them).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runNginx } from "./nginx.mjs";
import { startProxy, sub } from "./proxy.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const EXAMPLES = {
  nginx: path.join(root, "examples", "nginx", "rtgw.conf"),
  caddy: path.join(root, "examples", "caddy", "Caddyfile"),
  haproxy: path.join(root, "examples", "haproxy", "haproxy.cfg"),
};
const CADDY_BIN = process.env.CADDY_BIN || "/usr/bin/caddy";
const HAPROXY_BIN = process.env.HAPROXY_BIN || "/usr/sbin/haproxy";

export function startNginxExample(t, gw, edit = (c) => c) {
  return runNginx(t, {
    config: "rtgw.conf",
    http: (dir) => `  include ${dir}/rtgw.conf;`,
    files: (dir, port) => {
      let conf = fs.readFileSync(EXAMPLES.nginx, "utf8");
      conf = sub(conf, /server 127\.0\.0\.1:8288;/, `server 127.0.0.1:${gw.port};`);
      conf = sub(conf, /listen 80;/, `listen 127.0.0.1:${port};`);
      return { "rtgw.conf": edit(conf) };
    },
  });
}

export function startCaddyExample(t, gw, edit = (c) => c, opts = {}) {
  return runCaddy(t, (port) => {
    let conf = fs.readFileSync(EXAMPLES.caddy, "utf8");
    // Test-only global options: no admin endpoint, no ACME, no waiting on open streams at exit.
    conf = sub(conf, /^\{\n/m, "{\n\tadmin off\n\tauto_https off\n\tgrace_period 1s\n");
    conf = sub(conf, /^rt\.example\.com \{\n/m, `http://127.0.0.1:${port} {\n\tbind 127.0.0.1\n`);
    conf = sub(conf, /to 127\.0\.0\.1:8288/, `to 127.0.0.1:${gw.port}`);
    return edit(conf);
  }, opts);
}

// Caddy with the Caddyfile text(port) returns (a whole file: give it the test-only
// global options "admin off" and "auto_https off"); opts go to startProxy (ready, tls).
export function runCaddy(t, text, opts = {}) {
  return startProxy(t, {
    name: "caddy", bin: CADDY_BIN, config: "Caddyfile", ...opts,
    files: (dir, port) => ({ Caddyfile: text(port, dir) }),
    args: (dir) => ["run", "--config", path.join(dir, "Caddyfile"), "--adapter", "caddyfile"],
    env: (dir) => ({
      PATH: process.env.PATH, HOME: dir,
      XDG_DATA_HOME: path.join(dir, "data"), XDG_CONFIG_HOME: path.join(dir, "config"),
    }),
  });
}

export function startHaproxyExample(t, gw, edit = (c) => c, opts = {}) {
  return startProxy(t, {
    ...opts,
    name: "haproxy", bin: HAPROXY_BIN, config: "haproxy.cfg",
    files: (dir, port) => {
      let conf = fs.readFileSync(EXAMPLES.haproxy, "utf8");
      conf = sub(conf, /^    maxconn 20000$/m, "    maxconn 1000"); // within a CI container's fd limit
      conf = sub(conf, /^    bind :80$/m, `    bind 127.0.0.1:${port}`);
      conf = sub(conf, /server rtgw1 127\.0\.0\.1:8288 /, `server rtgw1 127.0.0.1:${gw.port} `);
      return { "haproxy.cfg": edit(conf) };
    },
    args: (dir) => ["-db", "-f", path.join(dir, "haproxy.cfg")],
    env: () => ({ PATH: process.env.PATH }),
  });
}
