// Start a real reverse proxy (nginx, caddy, haproxy) for tests: as the current
// user, on a free loopback port, with its configuration files written into a
// private tmpdir. One Node thread; the process (stopped by its PID) and the
// tmpdir are removed by the case's t.cleanup.
//
//   const px = await startProxy(t, {
//     name: "caddy", bin: CADDY_BIN, pkg: "caddy",
//     files: (dir, port) => ({ Caddyfile: text }), config: "Caddyfile",
//     args: (dir) => ["run", "--config", `${dir}/Caddyfile`], env: (dir) => ({ … }),
//   });
//   px.port, px.url ("http(s)://127.0.0.1:PORT"), px.ws, px.host, px.dir, px.conf, px.logs()
//
// missing: "fail" (the default; the proxy suites need the binary) or "skip".
// ready: "health" (GET /health answers 200 through the proxy, the default) or
// "tcp" (the port accepts connections). The wait is 10 s; a proxy that exits
// first fails the case with its logs and its configuration.
//
//   sub(text, from, to)   a config edit that throws when `from` is not there
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Skip } from "./harness.mjs";
import { freePort } from "./gateway.mjs";
import { spawnService } from "./proc.mjs";
import { waitFor } from "./wait.mjs";

// Replace `from` (string or RegExp) in `text`; throws if it is not there, so a test
// never silently runs against an unmodified config.
export function sub(text, from, to) {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`test config edit found nothing to replace: ${from}`);
  return out;
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

export async function startProxy(t, { name, bin, pkg = name, missing = "fail", files, config, args, env = () => undefined,
  cwd = true, tls = false, ready = "health" }) {
  if (!fs.existsSync(bin)) {
    if (missing === "skip") throw new Skip(`${bin} is missing (Debian package ${pkg})`);
    throw new Error(`${bin} is missing: run scripts/deps.sh test (Debian package ${pkg})`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rtgw-${name}-`));
  fs.chmodSync(dir, 0o755); // as root, nginx's workers run as another user and need to reach the temp paths
  t.cleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const written = files(dir, port);
  for (const [f, text] of Object.entries(written)) fs.writeFileSync(path.join(dir, f), text);
  const p = await spawnService(t, name, bin, args(dir), { env: env(dir), cwd: cwd ? dir : undefined });
  const scheme = tls ? "https" : "http";
  const px = {
    port, dir, child: p.child, logs: p.logs, conf: written[config], files: written,
    host: `127.0.0.1:${port}`, url: `${scheme}://127.0.0.1:${port}`, ws: `${tls ? "wss" : "ws"}://127.0.0.1:${port}`,
  };
  await waitFor(async () => {
    if (p.child.exitCode !== null) {
      const shown = Object.entries(written).map(([f, text]) => `--- ${f} ---\n${text}`).join("\n");
      throw new Error(`${name} exited ${p.child.exitCode}:\n${p.logs()}\n${shown}`);
    }
    if (ready === "tcp") return tcpOpen(port);
    try { return (await fetch(`${px.url}/health`)).status === 200; } catch { return false; }
  }, 10000, ready === "tcp" ? `${name} to listen` : `${name} to proxy /health`);
  return px;
}
