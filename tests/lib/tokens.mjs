// Token and key helpers for tests: the hashed form of a signing key, and the parts
// of a JWT. Pure functions; no state, no I/O.
//
//   hashKey("signkey-test-00ab…") → "signkey-test-<sha256 of the key bytes>"
//   jwtParts(jwt) → { h, p, s }      b64url(obj|string) → base64url text
import crypto from "node:crypto";

// SHA-256 form of a signing key, as the Inngest SDKs send it.
export function hashKey(key) {
  const m = key.match(/^(signkey-\w+-)(.*)$/);
  return m[1] + crypto.createHash("sha256").update(Buffer.from(m[2], "hex")).digest("hex");
}

export const b64url = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
export const jwtParts = (jwt) => { const [h, p, s] = jwt.split("."); return { h: JSON.parse(Buffer.from(h, "base64url")), p: JSON.parse(Buffer.from(p, "base64url")), s }; };
