// @rtgw/client/node — backend and worker side: mint tokens offline, ask the gateway
// for tokens, publish events. Node.js ≥ 18, zero dependencies (node:crypto, fetch).
//
//   import { mintToken, getToken, publish, publishBatch, publishStream } from "@rtgw/client/node";
//
// Key derivation and claims: docs/protocol.md §2. Publish: §8.
import crypto from "node:crypto";

const DEFAULT_BASE_URL = "http://127.0.0.1:8288";
const DEFAULT_TIMEOUT_MS = 10000;

/** An HTTP refusal from the gateway: `status` and the stable `error` name of its JSON body. */
export class RtgwHttpError extends Error {
  constructor(status, error, message, body) {
    super(`rtgw: HTTP ${status} ${error}${message ? `: ${message}` : ""}`);
    this.name = "RtgwHttpError";
    this.status = status;
    this.error = error;
    this.body = body;
  }
}

// ---------------------------------------------------------------------------
// Keys

/**
 * Splits a signing key `signkey-<env>-<hex>` into its parts.
 * @returns {{ env: string, bytes: Buffer }}
 */
export function parseSigningKey(signingKey) {
  const m = /^signkey-([a-z0-9_]{1,64})-([0-9a-fA-F]+)$/.exec(String(signingKey || ""));
  if (!m || m[2].length % 2 || m[2].length < 64 || m[2].length > 512) {
    throw new TypeError("rtgw: signingKey must be signkey-<env>-<hex> with 32–256 bytes of hex (rtgw keygen makes one)");
  }
  return { env: m[1], bytes: Buffer.from(m[2], "hex") };
}

/** The hashed form of a key, as Inngest SDKs send it: signkey-<env>-hex(sha256(bytes)). */
export function hashSigningKey(signingKey) {
  const { env, bytes } = parseSigningKey(signingKey);
  return `signkey-${env}-${crypto.createHash("sha256").update(bytes).digest("hex")}`;
}

const hmac = (key, msg) => crypto.createHmac("sha256", key).update(msg).digest();

/**
 * The token keys the gateway derives from a signing key (docs/protocol.md §2).
 * @param {string} signingKey
 * @param {"HS256"|"EdDSA"} [alg]
 */
export function deriveTokenKey(signingKey, alg = "HS256") {
  const { env, bytes } = parseSigningKey(signingKey);
  const kid = hmac(bytes, `rtgw/v1/kid/${alg}`).subarray(0, 8).toString("hex");
  if (alg === "HS256") return { alg, env, kid, secret: hmac(bytes, "rtgw/v1/hs256") };
  if (alg === "EdDSA") {
    const seed = hmac(bytes, "rtgw/v1/ed25519");
    // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
    const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
    const privateKey = crypto.createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    return { alg, env, kid, privateKey, publicKey: crypto.createPublicKey(privateKey) };
  }
  throw new TypeError(`rtgw: alg must be "HS256" or "EdDSA", not ${JSON.stringify(alg)}`);
}

function normalizeTopics(channel, topics) {
  if (topics === undefined) throw new TypeError("rtgw: topics is required (topic names, \"*\" for every topic of the channel, or {channel,name} objects)");
  const list = Array.isArray(topics) ? topics : [topics];
  if (!list.length) throw new TypeError("rtgw: topics must not be empty");
  return list.map((t) => {
    if (typeof t === "string") {
      if (!channel) throw new TypeError("rtgw: channel is required when topics are names");
      return { channel: String(channel), name: t, kind: "run" };
    }
    if (t && typeof t === "object" && (t.channel || channel) && t.name) {
      return { channel: String(t.channel || channel), name: String(t.name), kind: t.kind || "run" };
    }
    throw new TypeError(`rtgw: bad topic ${JSON.stringify(t)}: a name, or {channel, name}`);
  });
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/**
 * Mints a subscription token offline, exactly as the gateway would (no network).
 * @param {object} o
 * @param {string} o.signingKey         signkey-<env>-<hex>, the gateway's RTGW_SIGNING_KEY
 * @param {string} [o.channel]          channel of the topics given by name
 * @param {Array<string|{channel?:string,name:string,kind?:string}>|string} o.topics
 * @param {number} [o.ttl=60]           lifetime in seconds
 * @param {boolean} [o.publish=false]   the token may also publish to its topics
 * @param {"HS256"|"EdDSA"} [o.alg]     must match the gateway's RTGW_TOKEN_ALG
 * @param {string} [o.issuer="rtgw"]    must match RTGW_TOKEN_ISSUER
 * @param {string} [o.sub]              subject (default: the first topic's channel)
 * @param {number} [o.now]              Unix seconds (tests)
 * @returns {string} the JWT
 */
export function mintToken(o = {}) {
  const alg = o.alg || "HS256";
  const key = deriveTokenKey(o.signingKey, alg);
  const topics = normalizeTopics(o.channel, o.topics);
  const ttl = o.ttl === undefined ? 60 : Number(o.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) throw new TypeError("rtgw: ttl must be a positive integer (seconds)");
  const iat = o.now === undefined ? Math.floor(Date.now() / 1000) : Math.floor(o.now);
  const claims = {
    iss: o.issuer || "rtgw",
    sub: o.sub || topics[0].channel,
    iat,
    exp: iat + ttl,
    jti: b64url(crypto.randomBytes(16)),
    env: key.env,
    topics,
    publish: !!o.publish,
  };
  const header = { alg, typ: "JWT", kid: key.kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = alg === "HS256"
    ? crypto.createHmac("sha256", key.secret).update(input).digest()
    : crypto.sign(null, Buffer.from(input), key.privateKey);
  return `${input}.${b64url(sig)}`;
}

// ---------------------------------------------------------------------------
// HTTP

function baseOf(o) {
  const b = o.baseUrl || process.env.RTGW_URL || DEFAULT_BASE_URL;
  return String(b).replace(/\/+$/, "");
}

function credentials(o) {
  if (o.token) return [o.token];
  if (!o.signingKey) throw new TypeError("rtgw: pass signingKey (or a publish token as token)");
  // Send the hashed form (the raw key never leaves the process); the gateway takes both.
  const list = [hashSigningKey(o.signingKey)];
  if (o.signingKeyFallback) list.push(hashSigningKey(o.signingKeyFallback));
  return list;
}

async function request(o, method, path, { body, headers = {}, duplex, timeout = true } = {}) {
  const url = `${baseOf(o)}${path}`;
  const signals = [];
  if (o.signal) signals.push(o.signal);
  const ms = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : o.timeoutMs;
  if (timeout && ms) signals.push(AbortSignal.timeout(ms));
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  const creds = credentials(o);
  for (let i = 0; i < creds.length; i++) {
    const res = await fetch(url, {
      method, body, signal, ...(duplex ? { duplex } : {}),
      headers: { "Content-Type": "application/json", ...headers, Authorization: `Bearer ${creds[i]}` },
    });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    // 401: the key is not (or no longer) the gateway's; try the fallback key once.
    // (A streamed body cannot be sent twice.)
    if (res.status === 401 && i + 1 < creds.length && !duplex) continue;
    if (!res.ok) {
      const name = json && typeof json.error === "string" ? json.error : `http_${res.status}`;
      throw new RtgwHttpError(res.status, name, json && json.message ? json.message : text.slice(0, 200), json ?? text);
    }
    return json;
  }
  /* unreachable */
}

/**
 * Asks the gateway to mint a token (POST /v1/realtime/token).
 * @returns {Promise<{jwt: string, expires_at: number}>}
 */
export async function getToken(o = {}) {
  const topics = normalizeTopics(o.channel, o.topics);
  const body = { topics };
  if (o.ttl !== undefined) body.ttl = o.ttl;
  if (o.publish !== undefined) body.publish = !!o.publish;
  if (o.sub !== undefined) body.sub = o.sub;
  return request(o, "POST", "/v1/realtime/token", { body: JSON.stringify(body) });
}

function publishQuery(channel, topic, o) {
  if (!channel) throw new TypeError("rtgw: channel is required");
  const topics = Array.isArray(topic) ? topic : [topic];
  if (!topics.length || topics.some((t) => !t)) throw new TypeError("rtgw: topic is required");
  const q = new URLSearchParams({ channel });
  for (const t of topics) q.append("topic", t);
  if (o.runId) q.set("run_id", o.runId);
  if (o.fnId) q.set("fn_id", o.fnId);
  return q.toString();
}

/**
 * Publishes one event (POST /v1/realtime/publish). `data` is sent as JSON, so
 * subscribers receive exactly this value (a string stays a string).
 * @returns {Promise<{ok: true, ids: string[], delivered: number, duplicate?: boolean}>}
 */
export async function publish(o = {}) {
  const headers = o.idempotencyKey ? { "Idempotency-Key": String(o.idempotencyKey) } : {};
  const body = JSON.stringify(o.data === undefined ? null : o.data);
  return request(o, "POST", `/v1/realtime/publish?${publishQuery(o.channel, o.topic, o)}`, { body, headers });
}

/**
 * Publishes many events in one request (POST /v1/realtime/publish/batch); each is
 * validated and published on its own.
 * @param {{events: Array<{channel, topic, data, runId?, fnId?, idempotencyKey?}>}} o
 * @returns {Promise<{results: Array<{ok: boolean, id?: string, delivered?: number, error?: string, message?: string}>, published: number, failed: number}>}
 */
export async function publishBatch(o = {}) {
  if (!Array.isArray(o.events)) throw new TypeError("rtgw: events must be an array");
  const events = o.events.map((e) => {
    const out = { channel: e.channel ?? o.channel, topic: e.topic, data: e.data === undefined ? null : e.data };
    if (e.runId ?? o.runId) out.run_id = e.runId ?? o.runId;
    if (e.fnId ?? o.fnId) out.fn_id = e.fnId ?? o.fnId;
    if (e.idempotencyKey) out.idempotency_key = String(e.idempotencyKey);
    return out;
  });
  return request(o, "POST", "/v1/realtime/publish/batch", { body: JSON.stringify(events) });
}

function toReadable(stream) {
  const enc = new TextEncoder();
  const bytes = (c) => (typeof c === "string" ? enc.encode(c) : c instanceof Uint8Array ? c : enc.encode(String(c)));
  if (stream && typeof stream.getReader === "function") {
    return stream.pipeThrough(new TransformStream({ transform(c, ctl) { ctl.enqueue(bytes(c)); } }));
  }
  if (stream && typeof stream[Symbol.asyncIterator] === "function") {
    const it = stream[Symbol.asyncIterator]();
    return new ReadableStream({
      async pull(ctl) {
        const { value, done } = await it.next();
        if (done) ctl.close(); else ctl.enqueue(bytes(value));
      },
      async cancel(reason) { if (it.return) await it.return(reason); },
    });
  }
  throw new TypeError("rtgw: stream must be an AsyncIterable<string|Uint8Array> or a ReadableStream");
}

/**
 * Streams a body (Content-Type: text/stream): subscribers on rtgw.v1 get
 * datastream-start, one chunk per piece, datastream-end.
 * @returns {Promise<{ok: true, stream_id: string, chunks: number, bytes: number}>}
 */
export async function publishStream(o = {}) {
  const headers = { "Content-Type": "text/stream" };
  if (o.idempotencyKey) headers["Idempotency-Key"] = String(o.idempotencyKey);
  // A stream may legitimately last long: only the caller's signal (or timeoutMs if set) bounds it.
  return request({ ...o, timeoutMs: o.timeoutMs ?? 0 }, "POST", `/v1/realtime/publish?${publishQuery(o.channel, o.topic, o)}`, {
    body: toReadable(o.stream), headers, duplex: "half",
  });
}
