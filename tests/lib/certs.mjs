// TLS for tests: certificates made by the openssl CLI, and an https request
// that trusts a given CA (fetch cannot). One Node thread; files land in the
// directory the caller gives (a tmpDir, removed at its cleanup).
//
//   const { key, cert } = selfSigned(dir, "gw")     EC P-256, 30 days, for localhost/127.0.0.1
//   const r = await httpsRequest(url, { ca, method, headers, body })   { status, body }
// (startGateway({ tls }) in gateway.mjs gives mint and publish the CA already.)
import { execFileSync } from "node:child_process";
import https from "node:https";
import path from "node:path";

export function selfSigned(dir, name, { cn = "localhost", san = "DNS:localhost,IP:127.0.0.1", days = 30 } = {}) {
  const key = path.join(dir, `${name}.key`), cert = path.join(dir, `${name}.crt`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", String(days), "-subj", `/CN=${cn}`, "-addext", `subjectAltName=${san}`],
  { stdio: "ignore" });
  return { key, cert };
}

export function httpsRequest(url, { ca, method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers }, (res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve({ status: res.statusCode, body: b }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
