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

// A token signed like `jwt` (HS256, same header and kid) with its payload changed by
// edit(payload): claims the gateway's own mint endpoint would not issue, validly
// signed. secretHex is the key's derived HS256 secret (`tokentool secret <key>`).
export function resignHs256(jwt, secretHex, edit) {
  const { h, p } = jwtParts(jwt);
  const head = `${b64url(h)}.${b64url(edit(p) ?? p)}`;
  const sig = crypto.createHmac("sha256", Buffer.from(secretHex, "hex")).update(head).digest("base64url");
  return `${head}.${sig}`;
}
