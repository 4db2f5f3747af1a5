// Start and stop a real nginx (Debian's /usr/sbin/nginx) for tests, as the current
// user, on a free loopback port, with a generated nginx.conf and every path it
// writes under a private tmpdir (lib/proxy.mjs does the process and the tmpdir).
//
//   const ng = await startNginx(t, `location / { proxy_pass http://127.0.0.1:${gw.port}; }`);
//   const tls = await startNginx(t, body, { tls: { cert, key } });   // listen … ssl
//   ng.port, ng.url ("http(s)://127.0.0.1:PORT"), ng.host ("127.0.0.1:PORT"), ng.logs()
// `server` is the body of one server {} block (locations and directives); `http` is
// extra text for the http {} block (maps, upstreams). Skips when nginx is missing.
//
//   const ng = await runNginx(t, { http: (dir, port) => text, files: (dir, port) => ({ "rtgw.conf": … }), … })
//   wsLocationBody(gw.port, { pass, extra })   a location body that passes WebSockets
// the general form: `http` is the rest of the http {} block, `files` more files in
// the tmpdir; the other options are lib/proxy.mjs startProxy's.
// NGINX_BIN overrides the binary.
import { startProxy } from "./proxy.mjs";

export const NGINX_BIN = process.env.NGINX_BIN || "/usr/sbin/nginx";

// The map every WebSocket-aware config needs: "upgrade" only when the client asked.
export const CONNECTION_UPGRADE_MAP = `map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}`;

// The body of a location that passes everything, WebSockets included, to rtgw on
// `port` (needs CONNECTION_UPGRADE_MAP in the http block): pass replaces the
// proxy_pass target (a URI part, $uri …), extra adds directives.
export const wsLocationBody = (port, { pass = `http://127.0.0.1:${port}`, extra = "" } = {}) => `
      proxy_pass ${pass};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_read_timeout 3600s;
      ${extra}`;

export function runNginx(t, { http, files = () => ({}), ...opts }) {
  const asRoot = process.getuid && process.getuid() === 0;
  return startProxy(t, {
    name: "nginx", bin: NGINX_BIN, cwd: false, config: "nginx.conf", ...opts,
    files: (dir, port) => ({
      ...files(dir, port),
      "nginx.conf": `${asRoot ? "user root;\n" : ""}worker_processes 1;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http(dir, port)}
}
`,
    }),
    args: (dir) => ["-e", "stderr", "-p", `${dir}/`, "-c", `${dir}/nginx.conf`,
      "-g", `daemon off; pid ${dir}/nginx.pid; error_log stderr;`],
  });
}

export function startNginx(t, server, { http = "", tls = null } = {}) {
  return runNginx(t, {
    missing: "skip", ready: "tcp", tls: !!tls,
    http: (dir, port) => `${http}
  server {
    listen 127.0.0.1:${port}${tls ? " ssl" : ""};
    server_name localhost;
${tls ? `    ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};\n` : ""}${server}
  }`,
  });
}
