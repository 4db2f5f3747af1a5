#!/usr/bin/env node
// Token interop between rtgw's tokens library (through tests/interop/tokentool)
// and independent implementations: jose for JWTs, node:crypto for the documented
// key derivation, and the official `inngest` packages for the hashed signing key.
//
//   node tests/interop/tokens_jose.mjs <case>      run one case (exit 0 = pass)
//   node tests/interop/tokens_jose.mjs --list      list the cases
//
// TOKENTOOL names the tokentool binary (CMake sets it). The npm packages come
// from tests/node_modules (scripts/deps.sh test installs them); if they are
// missing every case FAILS with a message saying so — it never skips.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import assert from "node:assert/strict";

const here = path.dirname(fileURLToPath(import.meta.url));
const testsDir = path.resolve(here, "..");
const nodeModules = path.join(testsDir, "node_modules");

function die(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

for (const pkg of ["jose", "inngest", "@inngest/realtime"]) {
  if (!fs.existsSync(path.join(nodeModules, pkg, "package.json"))) {
    die(`${path.join(nodeModules, pkg)} is missing — the npm test packages are not installed.\n` +
        `      Run: scripts/deps.sh test   (or: cd tests && npm ci)`);
  }
}
// Bare specifiers resolve upwards from this file, i.e. from tests/node_modules.
const jose = await import("jose");

const TOKENTOOL = process.env.TOKENTOOL ||
  path.resolve(testsDir, "..", "build", "tests", "interop", "tokentool");
if (!fs.existsSync(TOKENTOOL)) die(`tokentool not found at ${TOKENTOOL} (build first, or set TOKENTOOL)`);

// ---- helpers ----------------------------------------------------------------------
function tool(...args) {
  try {
    return { code: 0, out: execFileSync(TOKENTOOL, args, { encoding: "utf8" }).trim() };
  } catch (e) {
    if (typeof e.status !== "number") throw e;
    return { code: e.status, out: String(e.stdout || "").trim(), err: String(e.stderr || "").trim() };
  }
}
function toolOk(...args) {
  const r = tool(...args);
  if (r.code !== 0) throw new Error(`tokentool ${args[0]} failed (${r.code}): ${r.out} ${r.err || ""}`);
  return r.out;
}

const ENV = "test";
const KEY = `signkey-${ENV}-` + crypto.createHash("sha256").update("rtgw interop key").digest("hex");
const OTHER_KEY = `signkey-${ENV}-` + crypto.createHash("sha256").update("some other key").digest("hex");
const ISSUER = "rtgw"; // rt_token_opts_default
const CHANNEL = "user:42";
const TOPIC = "ai";

const keyBytes = (k) => Buffer.from(k.replace(/^signkey-[a-z0-9_]+-/, ""), "hex");
const hmac = (k, msg) => crypto.createHmac("sha256", keyBytes(k)).update(msg).digest();
// Documented in tokens/include/rt_tokens.h ("Token keys").
const hsSecret = (k) => hmac(k, "rtgw/v1/hs256");
const edSeed = (k) => hmac(k, "rtgw/v1/ed25519");
const kidFor = (k, alg) => hmac(k, "rtgw/v1/kid/" + alg).subarray(0, 8).toString("hex");

function edPrivateKey(k) {
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), edSeed(k)]);
  return crypto.createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

function baseClaims(overrides = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER, sub: CHANNEL, iat: now, exp: now + 60,
    jti: crypto.randomBytes(16).toString("base64url"), env: ENV,
    topics: [{ channel: CHANNEL, name: TOPIC, kind: "run" }], publish: false,
    ...overrides,
  };
}

async function joseSign(claims, alg, key, kid) {
  return new jose.SignJWT(claims).setProtectedHeader({ alg, typ: "JWT", kid }).sign(key);
}

function b64json(o) { return Buffer.from(JSON.stringify(o)).toString("base64url"); }

function expectRefused(jwt, alg, errname) {
  const r = tool("verify", KEY, alg, jwt);
  assert.equal(r.code, 1, `rtgw accepted a token it must refuse (${errname}): ${r.out}`);
  assert.equal(r.out, errname, `wrong refusal reason`);
}

function checkRtgwClaims(payload, header, alg) {
  assert.equal(header.alg, alg);
  assert.equal(header.kid, kidFor(KEY, alg), "kid differs from the documented derivation");
  assert.ok(!header.typ || header.typ === "JWT");
  assert.equal(payload.iss, ISSUER);
  assert.equal(payload.env, ENV);
  assert.equal(typeof payload.sub, "string");
  assert.equal(typeof payload.jti, "string");
  assert.ok(payload.jti.length >= 16);
  assert.equal(typeof payload.iat, "number");
  assert.equal(payload.exp - payload.iat, 120, "ttl argument not honoured");
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 30, "iat is not now");
  assert.deepEqual(payload.topics, [{ channel: CHANNEL, name: TOPIC, kind: "run" }]);
  assert.equal(payload.publish, false);
}

// ---- cases ------------------------------------------------------------------------
const cases = {
  // (a) rtgw-minted HS256 verifies with jose using the derived secret.
  async hs256_rtgw_to_jose() {
    const secret = toolOk("secret", KEY);
    assert.equal(secret, hsSecret(KEY).toString("hex"), "tokentool secret != documented derivation");
    const jwt = toolOk("mint", KEY, "HS256", CHANNEL, TOPIC, "120");
    const { payload, protectedHeader } = await jose.jwtVerify(jwt, new Uint8Array(hsSecret(KEY)), {
      algorithms: ["HS256"], issuer: ISSUER,
    });
    checkRtgwClaims(payload, protectedHeader, "HS256");
    // and rtgw itself agrees on the claims
    const mine = JSON.parse(toolOk("verify", KEY, "HS256", jwt));
    assert.equal(mine.jti, payload.jti);
    assert.deepEqual(mine.topics, payload.topics);
  },

  // (b) rtgw-minted EdDSA verifies with jose against rtgw's JWKS.
  async eddsa_rtgw_to_jose() {
    const jwks = JSON.parse(toolOk("jwks", KEY));
    assert.equal(jwks.keys.length, 1);
    const [k] = jwks.keys;
    assert.equal(k.kty, "OKP");
    assert.equal(k.crv, "Ed25519");
    assert.equal(k.kid, kidFor(KEY, "EdDSA"));
    assert.ok(!("d" in k), "JWKS leaks the private key");
    // the public key is the one derived from the documented seed
    const pub = crypto.createPublicKey(edPrivateKey(KEY)).export({ format: "jwk" });
    assert.equal(k.x, pub.x, "JWKS x != public key of the documented seed");
    const jwt = toolOk("mint", KEY, "EdDSA", CHANNEL, TOPIC, "120");
    const { payload, protectedHeader } = await jose.jwtVerify(jwt, jose.createLocalJWKSet(jwks), {
      algorithms: ["EdDSA"], issuer: ISSUER,
    });
    checkRtgwClaims(payload, protectedHeader, "EdDSA");
  },

  // (c) jose-minted HS256 with the same claims and kid verifies in rtgw.
  async hs256_jose_to_rtgw() {
    const claims = baseClaims({ topics: [{ channel: CHANNEL, name: TOPIC, kind: "run" },
                                         { channel: CHANNEL, name: "*", kind: "run" }] });
    const jwt = await joseSign(claims, "HS256", new Uint8Array(hsSecret(KEY)), kidFor(KEY, "HS256"));
    const r = tool("verify", KEY, "HS256", jwt);
    assert.equal(r.code, 0, `rtgw refused a valid jose HS256 token: ${r.out}`);
    const got = JSON.parse(r.out);
    for (const f of ["iss", "sub", "iat", "exp", "jti", "env", "topics", "publish"]) {
      assert.deepEqual(got[f], claims[f], `claim ${f}`);
    }
    assert.equal(got.kid, kidFor(KEY, "HS256"));
  },

  // (d) jose-minted EdDSA (private key derived in JS from the seed) verifies in rtgw.
  async eddsa_jose_to_rtgw() {
    const claims = baseClaims({ publish: true });
    const jwt = await joseSign(claims, "EdDSA", edPrivateKey(KEY), kidFor(KEY, "EdDSA"));
    const r = tool("verify", KEY, "EdDSA", jwt);
    assert.equal(r.code, 0, `rtgw refused a valid jose EdDSA token: ${r.out}`);
    const got = JSON.parse(r.out);
    for (const f of ["iss", "sub", "iat", "exp", "jti", "env", "topics", "publish"]) {
      assert.deepEqual(got[f], claims[f], `claim ${f}`);
    }
  },

  // (e) tokentool's hashed key == the official packages' own hashSigningKey.
  async hashed_key_matches_inngest() {
    const v4dir = path.join(nodeModules, "inngest");
    const v3dir = path.join(nodeModules, "@inngest", "realtime", "node_modules", "inngest");
    const v4 = await import(pathToFileURL(path.join(v4dir, "helpers", "strings.js")).href);
    const { Inngest } = await import(pathToFileURL(path.join(v4dir, "index.js")).href);
    assert.equal(typeof v4.hashSigningKey, "function", "inngest v4 no longer has helpers/strings.js hashSigningKey");
    let v3 = null;
    if (fs.existsSync(v3dir)) v3 = await import(pathToFileURL(path.join(v3dir, "helpers", "strings.js")).href);
    const keys = [
      KEY,
      OTHER_KEY,
      "signkey-prod-" + "AB".repeat(32),                       // upper-case hex
      "signkey-branch-" + crypto.randomBytes(32).toString("hex"),
      "signkey-test_env2-" + crypto.randomBytes(256).toString("hex"), // longest allowed secret
    ];
    for (const k of keys) {
      const mine = toolOk("hash", k);
      assert.equal(mine, v4.hashSigningKey(k), `inngest v4 hashSigningKey differs for ${k.slice(0, 20)}…`);
      // the value the v4 client really puts in Authorization: Bearer …
      const client = new Inngest({ id: "rtgw-interop", signingKey: k, isDev: false });
      assert.equal(mine, client["inngestApi"].hashedKey, "inngest v4 client inngestApi.hashedKey differs");
      if (v3) assert.equal(mine, v3.hashSigningKey(k), "inngest v3 (@inngest/realtime's) hashSigningKey differs");
    }
  },

  // (f) alg swapped: an HS256 token whose kid names the EdDSA key → token_bad_alg.
  async jose_alg_swap_refused() {
    const claims = baseClaims();
    // HS256 with the (public) Ed25519 key bytes as the HMAC secret: classic key confusion.
    const pubRaw = Buffer.from(crypto.createPublicKey(edPrivateKey(KEY)).export({ format: "jwk" }).x, "base64url");
    const t1 = await joseSign(claims, "HS256", new Uint8Array(pubRaw), kidFor(KEY, "EdDSA"));
    expectRefused(t1, "EdDSA", "token_bad_alg");
    // HS256 ring, token claims EdDSA with the HS256 kid.
    const t2 = await joseSign(claims, "EdDSA", edPrivateKey(KEY), kidFor(KEY, "HS256"));
    expectRefused(t2, "HS256", "token_bad_alg");
    // HS384 under the right kid
    const t3 = await joseSign(claims, "HS384", new Uint8Array(hsSecret(KEY)), kidFor(KEY, "HS256"));
    expectRefused(t3, "HS256", "token_bad_alg");
  },

  // (f) alg none → token_alg_none.
  async jose_alg_none_refused() {
    const jwt = `${b64json({ alg: "none", typ: "JWT", kid: kidFor(KEY, "HS256") })}.${b64json(baseClaims())}.`;
    expectRefused(jwt, "HS256", "token_alg_none");
    const jwt2 = `${b64json({ alg: "none", typ: "JWT", kid: kidFor(KEY, "HS256") })}.${b64json(baseClaims())}.` +
      Buffer.alloc(32).toString("base64url");
    expectRefused(jwt2, "HS256", "token_alg_none");
  },

  // (f) bad signature: right kid and alg, wrong key / tampered payload → token_bad_signature.
  async jose_bad_signature_refused() {
    const claims = baseClaims();
    const t1 = await joseSign(claims, "HS256", new Uint8Array(hsSecret(OTHER_KEY)), kidFor(KEY, "HS256"));
    expectRefused(t1, "HS256", "token_bad_signature");
    const t2 = await joseSign(claims, "EdDSA", edPrivateKey(OTHER_KEY), kidFor(KEY, "EdDSA"));
    expectRefused(t2, "EdDSA", "token_bad_signature");
    // valid token, payload swapped for one granting another channel
    const good = await joseSign(claims, "HS256", new Uint8Array(hsSecret(KEY)), kidFor(KEY, "HS256"));
    const [h, , s] = good.split(".");
    const evil = b64json(baseClaims({ topics: [{ channel: "user:1", name: "*", kind: "run" }] }));
    expectRefused(`${h}.${evil}.${s}`, "HS256", "token_bad_signature");
  },

  // jose tokens that are well signed but whose claims rtgw must refuse.
  async jose_claims_refused() {
    const sign = (c) => joseSign(c, "HS256", new Uint8Array(hsSecret(KEY)), kidFor(KEY, "HS256"));
    const now = Math.floor(Date.now() / 1000);
    expectRefused(await sign(baseClaims({ iat: now - 7200, exp: now - 3600 })), "HS256", "token_expired");
    expectRefused(await sign(baseClaims({ env: "prod" })), "HS256", "token_wrong_env");
    expectRefused(await sign(baseClaims({ iss: "rt.inngest.com" })), "HS256", "token_wrong_issuer");
    const noTopics = baseClaims();
    delete noTopics.topics;
    expectRefused(await sign(noTopics), "HS256", "token_missing_claim");
    // unknown kid (a different key's kid)
    const t = await joseSign(baseClaims(), "HS256", new Uint8Array(hsSecret(OTHER_KEY)), kidFor(OTHER_KEY, "HS256"));
    expectRefused(t, "HS256", "token_unknown_kid");
  },
};

// ---- main -------------------------------------------------------------------------
const name = process.argv[2];
if (name === "--list") {
  console.log(Object.keys(cases).join("\n"));
  process.exit(0);
}
if (!name || !cases[name]) die(`unknown case '${name}'; known: ${Object.keys(cases).join(", ")}`);
try {
  await cases[name]();
  console.log(`ok ${name}`);
} catch (e) {
  console.error(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
}
