// Start and stop a real nginx (Debian's /usr/sbin/nginx) for tests, as the current
// user, on a free loopback port, with a generated configuration and every path it
// writes under a private tmpdir.
//
//   const ng = await startNginx(t, `location / { proxy_pass http://127.0.0.1:${gw.port}; }`);
//   const tls = await startNginx(t, body, { tls: { cert, key } });   // listen … ssl
//   ng.port, ng.url ("http(s)://127.0.0.1:PORT"), ng.host ("127.0.0.1:PORT"), ng.logs()
//
// `server` is the body of one server {} block (locations and directives); `http` is
// extra text for the http {} block (maps, upstreams). The master is stopped by its
// PID in t.cleanup (SIGTERM, then SIGKILL if it hangs); its workers exit with it.
// NGINX_BIN overrides the binary.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { Skip } from "./harness.mjs";
import { freePort } from "./gateway.mjs";

export const NGINX_BIN = process.env.NGINX_BIN || "/usr/sbin/nginx";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The map every WebSocket-aware config needs: "upgrade" only when the client asked.
export const CONNECTION_UPGRADE_MAP = `map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}`;

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

export async function startNginx(t, server, { http = "", tls = null } = {}) {
  if (!fs.existsSync(NGINX_BIN)) throw new Skip(`${NGINX_BIN} is missing (Debian package nginx)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtgw-nginx-"));
  fs.chmodSync(dir, 0o755);
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const asRoot = process.getuid && process.getuid() === 0;
  const conf = `${asRoot ? "user root;\n" : ""}worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http}
  server {
    listen 127.0.0.1:${port}${tls ? " ssl" : ""};
    server_name localhost;
${tls ? `    ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};\n` : ""}${server}
  }
}
`;
  fs.writeFileSync(path.join(dir, "nginx.conf"), conf);
  const child = spawn(NGINX_BIN, ["-e", "stderr", "-p", `${dir}/`, "-c", `${dir}/nginx.conf`,
    "-g", `daemon off; pid ${dir}/nginx.pid; error_log stderr;`], { stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stdout.on("data", (d) => (logs += d));
  child.stderr.on("data", (d) => (logs += d));
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  t.cleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const r = await Promise.race([exited, sleep(5000).then(() => null)]);
    if (!r) { child.kill("SIGKILL"); await exited; }
  });
  const deadline = Date.now() + 10000;
  while (!(await tcpOpen(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}:\n${logs}\n--- nginx.conf ---\n${conf}`);
    if (Date.now() > deadline) throw new Error(`nginx did not listen within 10 s:\n${logs}`);
    await sleep(25);
  }
  const scheme = tls ? "https" : "http";
  return { port, dir, conf, child, host: `127.0.0.1:${port}`, url: `${scheme}://127.0.0.1:${port}`, logs: () => logs };
}
