// Certificates made at test time by the openssl CLI (P-256, 30 days), for
// gateways that terminate TLS themselves and for proxies in front of them.
//
//   const { key, cert } = selfSigned(dir, "gw");   // CN=localhost, SAN localhost + 127.0.0.1
import { execFileSync } from "node:child_process";
import path from "node:path";

export function selfSigned(dir, name, { cn = "localhost", san = "DNS:localhost,IP:127.0.0.1", days = 30 } = {}) {
  const key = path.join(dir, `${name}.key`), cert = path.join(dir, `${name}.crt`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", String(days), "-subj", `/CN=${cn}`, "-addext", `subjectAltName=${san}`],
  { stdio: "ignore" });
  return { key, cert };
}
