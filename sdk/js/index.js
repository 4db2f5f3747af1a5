// @rtgw/client — browser subscribe for rtgw (docs/protocol.md), zero dependencies.
//
//   import { subscribe } from "@rtgw/client";
//   const sub = subscribe({ baseUrl: "https://rt.example.com", getToken, onMessage, onStatus });
//   for await (const msg of subscribe({ token })) { … }
//
// What it does beyond `new WebSocket(url)`:
//   - opts into the extended protocol (subprotocol rtgw.v1): an acknowledgement,
//     positions, and a named close code for every refusal and disconnect;
//   - reconnects with capped exponential backoff and full jitter, and resumes with
//     since=<last id per channel>, so nothing is lost within the gateway's history;
//     when the gateway cannot replay (its history was lost) it says so and the
//     SDK reports recovered:false (onStatus, onGap) so the app can refetch its state;
//   - waits while the browser is offline or the page hidden before reconnecting;
//   - fetches a new token (getToken) when the current one expires, when the gateway
//     refuses it (4402, 4409), and refreshes it in band shortly before expiry;
//   - falls back to Server-Sent Events when WebSocket upgrades keep failing while the
//     gateway answers HTTP (a proxy that refuses upgrades);
//   - picks wss:// on an https page and refuses an explicit ws:// URL there.
import { CLOSE_CODES, describeClose, describeHttpRefusal } from "./codes.js";

export { CLOSE_CODES, describeClose };

const CONNECT_PATH = "/v1/realtime/connect";
const SSE_PATH = "/v1/realtime/sse";
const PROTOCOL = "rtgw.v1";
const MAX_SINCE = 16; // the gateway takes at most 16 since ids

const DEFAULTS = {
  transport: "auto",
  backoffBaseMs: 500,
  backoffMaxMs: 30000,
  stableMs: 10000,
  connectTimeoutMs: 15000,
  heartbeatMs: 0,
  refreshBeforeMs: 15000,
  sseAfterFailures: 3,
  wsRetryMs: 60000,
  pauseWhenHidden: true,
};

/** An error with the gateway's (or the SDK's) reason name. */
export class RealtimeError extends Error {
  /**
   * @param {string} reason   stable name, e.g. "token_expired", "connection_lost", "insecure_url"
   * @param {string} message
   * @param {object} [extra]  code, detail, hint, status, fatal
   */
  constructor(reason, message, extra = {}) {
    super(message);
    this.name = "RealtimeError";
    this.reason = reason;
    this.code = extra.code;
    this.detail = extra.detail || "";
    this.hint = extra.hint || "";
    this.status = extra.status;
    this.fatal = !!extra.fatal;
  }
}

/**
 * Opens a subscription. Throws RealtimeError synchronously for a configuration that
 * can never work (no token source, a ws:// URL from an https page, no WebSocket nor fetch).
 * @param {import("./index.js").SubscribeOptions} opts
 * @returns {Subscription}
 */
export function subscribe(opts = {}) {
  const sub = new Subscription(opts);
  sub._start();
  return sub;
}

// ---------------------------------------------------------------------------
// URLs

function pageLocation(opts) {
  if (opts.location) return opts.location;
  return typeof location !== "undefined" && location && location.href ? location : null;
}

function insecure(target) {
  return new RealtimeError(
    "insecure_url",
    `rtgw: refusing ${target} from an https page: the browser would block it as mixed content. ` +
      "Use a wss:// (or https://) URL, or pass a relative baseUrl and the SDK picks wss:// itself.",
    { fatal: true },
  );
}

/** Resolves { wsUrl, sseUrl, healthUrl } (URL objects) from url / baseUrl and the page. */
export function resolveEndpoints(opts, loc = pageLocation(opts)) {
  const pageHttps = !!loc && loc.protocol === "https:";
  const href = loc ? loc.href : undefined;
  let u;
  if (opts.url) {
    try { u = new URL(opts.url, href); } catch { throw new RealtimeError("bad_url", `rtgw: cannot parse url ${JSON.stringify(opts.url)}`, { fatal: true }); }
    if (pageHttps && (u.protocol === "ws:" || u.protocol === "http:")) throw insecure(`${u.protocol}//${u.host}`);
    if (u.pathname === "/" || u.pathname === "") u.pathname = CONNECT_PATH;
  } else {
    const base = opts.baseUrl === undefined || opts.baseUrl === "" ? "/" : String(opts.baseUrl);
    try { u = new URL(base, href); } catch { throw new RealtimeError("bad_url", `rtgw: cannot parse baseUrl ${JSON.stringify(base)} (a relative baseUrl needs a page)`, { fatal: true }); }
    if (pageHttps && (u.protocol === "ws:" || u.protocol === "http:")) throw insecure(`${u.protocol}//${u.host}`);
    u.pathname = u.pathname.replace(/\/+$/, "") + CONNECT_PATH;
    u.search = "";
  }
  u.hash = "";
  const secure = u.protocol === "wss:" || u.protocol === "https:";
  if (!/^(wss?|https?):$/.test(u.protocol)) throw new RealtimeError("bad_url", `rtgw: unsupported scheme ${u.protocol}`, { fatal: true });
  u.searchParams.delete("token");
  u.searchParams.delete("since");
  const wsUrl = new URL(u.href);
  wsUrl.protocol = secure ? "wss:" : "ws:";
  const sseUrl = new URL(u.href);
  sseUrl.protocol = secure ? "https:" : "http:";
  sseUrl.pathname = sseUrl.pathname.endsWith("/connect") ? sseUrl.pathname.slice(0, -"/connect".length) + "/sse"
    : sseUrl.pathname.replace(/\/+$/, "") + SSE_PATH;
  const healthUrl = new URL(sseUrl.href);
  healthUrl.pathname = healthUrl.pathname.replace(/\/v1\/realtime\/sse$/, "") + "/health";
  healthUrl.search = "";
  return { wsUrl, sseUrl, healthUrl };
}

/** The url with its token hidden, for status events and logs. */
export function redactUrl(url) {
  return String(url).replace(/([?&]token=)[^&]*/, "$1…");
}

// ---------------------------------------------------------------------------
// Tokens

/** Reads `exp`/`iat` of a JWT without verifying it (the gateway verifies). */
export function tokenTimes(jwt) {
  try {
    const part = String(jwt).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
    const json = decodeURIComponent(Array.from(atob(b64), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    const claims = JSON.parse(json);
    return { exp: typeof claims.exp === "number" ? claims.exp : undefined, iat: typeof claims.iat === "number" ? claims.iat : undefined };
  } catch {
    return {};
  }
}

function normalizeToken(r) {
  if (typeof r === "string") return { token: r, ...tokenTimes(r) };
  if (r && typeof r === "object") {
    const token = r.jwt || r.token;
    if (typeof token !== "string") throw new RealtimeError("token_source_failed", "rtgw: getToken resolved an object without jwt/token");
    const times = tokenTimes(token);
    const exp = typeof r.expires_at === "number" ? r.expires_at : typeof r.expiresAt === "number" ? r.expiresAt : times.exp;
    return { token, exp, iat: times.iat };
  }
  throw new RealtimeError("token_source_failed", "rtgw: getToken must resolve a token string or {jwt, expires_at}");
}

// ---------------------------------------------------------------------------

/** A live subscription: see index.d.ts for the public surface. */
export class Subscription {
  constructor(opts) {
    this._o = { ...DEFAULTS, ...opts };
    const o = this._o;
    if (!o.token && typeof o.getToken !== "function") throw new RealtimeError("token_missing", "rtgw: pass token or getToken", { fatal: true });
    if (!["auto", "websocket", "sse"].includes(o.transport)) throw new RealtimeError("bad_option", `rtgw: transport must be "auto", "websocket" or "sse", not ${JSON.stringify(o.transport)}`, { fatal: true });
    this._WS = o.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : undefined);
    this._fetch = o.fetch || (typeof fetch !== "undefined" ? fetch.bind(globalThis) : undefined);
    const ep = resolveEndpoints(o);
    this._wsUrl = ep.wsUrl;
    this._sseUrl = ep.sseUrl;
    this._healthUrl = ep.healthUrl;
    this._mode = o.transport === "sse" || (o.transport === "auto" && !this._WS) ? "sse" : "websocket";
    if (this._mode === "websocket" && !this._WS) throw new RealtimeError("unsupported", "rtgw: no WebSocket here; pass opts.WebSocket or transport:\"sse\"", { fatal: true });
    if (this._mode === "sse" && !this._fetch) throw new RealtimeError("unsupported", "rtgw: no fetch here for the SSE transport", { fatal: true });

    this._ids = new Map(); // channel → last id seen (or the ack's position)
    if (o.since && typeof o.since === "object") for (const [ch, id] of Object.entries(o.since)) this._ids.set(ch, String(id));
    this._token = o.token || null;
    const t = this._token ? tokenTimes(this._token) : {};
    this._exp = t.exp;
    this._iat = t.iat;
    this._status = "idle";
    this._closed = false;
    this._gen = 0; // bumps on every teardown: callbacks of an old connection are ignored
    this._attempt = 0; // backoff exponent
    this._wsFailures = 0; // consecutive WebSocket attempts that never opened while HTTP worked
    this._tokenRefusals = 0; // consecutive 4402 after a fresh token
    this._openedAt = 0;
    this._everOpen = false;
    this._conn = null;
    this._timers = {};
    this._iters = new Set();
    this._lastUrl = "";
    this._listeners = [];
  }

  /** "idle" | "connecting" | "open" | "reconnecting" | "closed" */
  get status() { return this._status; }
  /** "websocket" | "sse": the transport in use (or next to be tried). */
  get transport() { return this._mode; }
  /** The last id seen per channel: what a reconnect resumes from. A copy. */
  get lastIds() { return Object.fromEntries(this._ids); }
  /** When the current token expires (Unix seconds), if known. */
  get expiresAt() { return this._exp; }
  /** The last URL tried, token hidden. */
  get url() { return this._lastUrl; }

  /** Closes the subscription for good (and ends any `for await` loop). */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._teardown(1000, "client closed");
    this._unlisten();
    this._setStatus("closed", { reason: "client_closed" });
    for (const it of this._iters) it.end(null);
  }

  [Symbol.asyncIterator]() {
    const queue = [];
    const waiters = [];
    let ended = false, failure = null;
    const it = {
      push(m) { if (waiters.length) waiters.shift().resolve({ value: m, done: false }); else queue.push(m); },
      end(err) {
        ended = true; failure = err;
        for (const w of waiters.splice(0)) err ? w.reject(err) : w.resolve({ value: undefined, done: true });
      },
    };
    this._iters.add(it);
    if (this._closed) it.end(null);
    const self = this;
    return {
      next() {
        if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
        if (ended) return failure ? Promise.reject(failure) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
      },
      return() { self._iters.delete(it); self.close(); return Promise.resolve({ value: undefined, done: true }); },
      [Symbol.asyncIterator]() { return this; },
    };
  }

  // ---- lifecycle -----------------------------------------------------------

  _start() {
    const o = this._o;
    if (o.signal) {
      if (o.signal.aborted) { queueMicrotask(() => this.close()); return; }
      this._listen(o.signal, "abort", () => this.close());
    }
    const g = globalThis;
    if (typeof g.addEventListener === "function") {
      this._listen(g, "online", () => this._resume("online"));
      this._listen(g, "offline", () => this._goneOffline());
    }
    if (typeof document !== "undefined" && document && typeof document.addEventListener === "function") {
      this._listen(document, "visibilitychange", () => { if (document.visibilityState === "visible") this._resume("visible"); });
    }
    this._setStatus("connecting", {});
    queueMicrotask(() => this._connect());
  }

  _listen(target, type, fn) {
    target.addEventListener(type, fn);
    this._listeners.push(() => target.removeEventListener(type, fn));
  }

  _unlisten() {
    for (const off of this._listeners.splice(0)) { try { off(); } catch { /* ignore */ } }
    for (const k of Object.keys(this._timers)) this._clear(k);
  }

  _paused() {
    if (typeof navigator !== "undefined" && navigator && navigator.onLine === false) return "offline";
    if (this._o.pauseWhenHidden && typeof document !== "undefined" && document && document.visibilityState === "hidden") return "hidden";
    return null;
  }

  _resume(why) {
    if (this._closed || !this._waiting) return;
    this._waiting = false;
    this._clear("reconnect");
    if (why === "online") this._attempt = 0;
    this._connect();
  }

  _goneOffline() {
    // A socket usually hangs rather than closes when the network goes away.
    if (this._closed || !this._conn) return;
    this._drop({ ...describeClose(1006), name: "offline", detail: "the browser went offline" }, { opened: true });
  }

  async _connect() {
    if (this._closed) return;
    const paused = this._paused();
    if (paused) {
      this._waiting = true;
      this._setStatus(this._everOpen ? "reconnecting" : "connecting", { paused });
      return;
    }
    this._waiting = false;
    const gen = ++this._gen;
    let token;
    try {
      token = await this._ensureToken();
    } catch (e) {
      if (gen !== this._gen || this._closed) return;
      const err = e instanceof RealtimeError ? e : new RealtimeError("token_source_failed", `rtgw: getToken failed: ${e && e.message ? e.message : e}`);
      this._emitError(err);
      if (err.fatal) return this._fail(err);
      return this._scheduleReconnect({ name: err.reason, detail: err.message, code: undefined, hint: "getToken threw; retrying" });
    }
    if (gen !== this._gen || this._closed) return;
    if (this._mode === "sse") this._openSse(token, gen);
    else this._openWs(token, gen);
  }

  _buildUrl(base, token) {
    const u = new URL(base.href);
    u.searchParams.set("token", token);
    let n = 0;
    for (const id of this._ids.values()) if (n++ < MAX_SINCE) u.searchParams.append("since", id);
    this._sentSince = n > 0;
    this._lastUrl = redactUrl(u.href);
    return u.href;
  }

  // ---- tokens --------------------------------------------------------------

  _marginMs() {
    const life = this._exp && this._iat ? (this._exp - this._iat) * 1000 : Infinity;
    return Math.max(1000, Math.min(this._o.refreshBeforeMs, life / 4));
  }

  async _fetchToken() {
    const r = normalizeToken(await this._o.getToken());
    this._token = r.token;
    this._exp = r.exp;
    this._iat = r.iat;
    return r.token;
  }

  async _ensureToken(force = false) {
    const expiring = this._exp && this._exp * 1000 - Date.now() < this._marginMs();
    if (this._token && !force && !expiring) return this._token;
    if (typeof this._o.getToken !== "function") {
      if (this._token) return this._token; // the gateway will say whether it still works
      throw new RealtimeError("token_missing", "rtgw: no token and no getToken", { fatal: true });
    }
    return this._fetchToken();
  }

  _scheduleRefresh(gen) {
    this._clear("refresh");
    if (typeof this._o.getToken !== "function" || !this._exp || this._mode !== "websocket") return;
    const inMs = this._exp * 1000 - Date.now() - this._marginMs();
    this._timers.refresh = setTimeout(async () => {
      if (gen !== this._gen || this._closed) return;
      const before = this._exp;
      let token;
      try {
        token = await this._fetchToken();
      } catch (e) {
        this._emitError(new RealtimeError("token_source_failed", `rtgw: getToken failed during refresh: ${e && e.message ? e.message : e}`));
        if (gen === this._gen) this._retryRefresh(gen, before);
        return;
      }
      if (gen !== this._gen || this._closed || !this._conn || !this._conn.send) return;
      if (this._exp && before && this._exp <= before) {
        this._emitError(new RealtimeError("token_not_renewed", "rtgw: getToken returned a token that expires no later than the current one"));
        return this._retryRefresh(gen, before);
      }
      try { this._conn.send(JSON.stringify({ kind: "rtgw.refresh", token })); } catch { /* the close handler reconnects */ }
    }, Math.max(0, inMs));
  }

  _retryRefresh(gen, exp) {
    const left = exp * 1000 - Date.now();
    if (left <= 0) return; // expired: the gateway keeps the connection (or closes with 4409, then we reconnect)
    this._clear("refresh");
    this._timers.refresh = setTimeout(() => { if (gen === this._gen) { this._exp = exp; this._scheduleRefresh(gen); } }, Math.min(5000, left / 2));
  }

  // ---- WebSocket -----------------------------------------------------------

  _openWs(token, gen) {
    let ws;
    const url = this._buildUrl(this._wsUrl, token);
    try {
      ws = new this._WS(url, [PROTOCOL]);
    } catch (e) {
      return this._drop({ ...describeClose(1006), detail: String(e && e.message ? e.message : e) }, { opened: false });
    }
    let opened = false;
    this._conn = {
      kind: "websocket",
      send: (s) => ws.send(s),
      close: (code, reason) => { try { ws.close(code, reason); } catch { /* already closing */ } },
    };
    this._armConnectTimeout(gen);
    ws.onopen = () => {
      if (gen !== this._gen) return;
      opened = true;
      this._wsFailures = 0;
      this._armHeartbeat(gen);
      // A gateway that does not speak rtgw.v1 sends no acknowledgement.
      if (ws.protocol !== PROTOCOL) this._onAck({ channels: {} }, gen);
    };
    ws.onmessage = (ev) => {
      if (gen !== this._gen) return;
      this._armHeartbeat(gen);
      if (typeof ev.data === "string") this._frame(ev.data, gen);
    };
    ws.onclose = (ev) => {
      if (gen !== this._gen) return;
      this._drop(describeClose(ev.code, ev.reason), { opened });
    };
    ws.onerror = () => { /* the close event that follows carries the code */ };
  }

  // ---- SSE (read with fetch: EventSource hides HTTP statuses and ": ping" comments) ----

  async _openSse(token, gen) {
    const ctrl = new AbortController();
    this._conn = { kind: "sse", close: () => ctrl.abort() };
    const url = this._buildUrl(this._sseUrl, token);
    this._armConnectTimeout(gen);
    let res;
    try {
      res = await this._fetch(url, { headers: { Accept: "text/event-stream" }, cache: "no-store", signal: ctrl.signal });
    } catch (e) {
      if (gen === this._gen) this._drop({ ...describeClose(1006), detail: String(e && e.message ? e.message : e) }, { opened: false });
      return;
    }
    if (gen !== this._gen) { ctrl.abort(); return; }
    if (!res.ok) {
      let body = {};
      try { body = await res.json(); } catch { /* not JSON */ }
      if (gen === this._gen) this._drop(describeHttpRefusal(res.status, body.error, body.message), { opened: true });
      return;
    }
    this._armHeartbeat(gen);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "", data = [], event = "", closing = false;
    const line = (l) => {
      if (l === "") {
        if (data.length) {
          const text = data.join("\n");
          if (event === "closing") closing = true;
          else this._frame(text, gen);
        }
        data = []; event = "";
        return;
      }
      if (l[0] === ":") return; // comment: ": ping" keep-alive (already counted by the watchdog)
      const i = l.indexOf(":");
      const field = i < 0 ? l : l.slice(0, i);
      const value = i < 0 ? "" : l.slice(i + 1).replace(/^ /, "");
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (gen !== this._gen) { try { await reader.cancel(); } catch { /* ignore */ } return; }
        if (done) break;
        this._armHeartbeat(gen);
        buf += dec.decode(value, { stream: true });
        let m;
        while ((m = /\r\n|\r|\n/.exec(buf))) {
          // a lone \r at the end may be the first half of \r\n: wait for more
          if (m[0] === "\r" && m.index === buf.length - 1) break;
          const l = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          line(l);
          if (gen !== this._gen) return;
        }
      }
    } catch (e) {
      if (gen === this._gen) this._drop({ ...describeClose(1006), detail: String(e && e.message ? e.message : e) }, { opened: true });
      return;
    }
    if (gen === this._gen) this._drop(closing ? describeClose(1001) : { ...describeClose(1006), detail: "the event stream ended" }, { opened: true });
  }

  // ---- frames --------------------------------------------------------------

  _frame(text, gen) {
    let m;
    try { m = JSON.parse(text); } catch {
      this._emitError(new RealtimeError("bad_frame", "rtgw: a frame was not JSON", { detail: text.slice(0, 200) }));
      return;
    }
    if (!m || typeof m !== "object") return;
    switch (m.kind) {
      case "rtgw.subscribed": return this._onAck(m, gen);
      case "rtgw.refreshed":
        if (typeof m.expires_at === "number") this._exp = m.expires_at;
        this._tokenRefusals = 0;
        return this._scheduleRefresh(gen);
      case "rtgw.error":
        // A refused refresh: the old token stays in force on this connection.
        this._emitError(new RealtimeError(m.error || "error", `rtgw: ${m.error}: ${m.message || ""}`, { detail: m.message }));
        return;
      case "closing": return; // a 1001 close follows; the reconnect resumes
      default:
        if (typeof m.channel === "string" && typeof m.id === "string") this._ids.set(m.channel, m.id);
        this._call(this._o.onMessage, m);
        for (const it of this._iters) it.push(m);
    }
  }

  _onAck(m, gen) {
    this._clear("connect");
    const gaps = [];
    const channels = m.channels && typeof m.channels === "object" ? m.channels : {};
    const granted = new Map();
    for (const [ch, info] of Object.entries(channels)) {
      const id = info && typeof info.id === "string" ? info.id : undefined;
      if (info && info.recovered === false) gaps.push(ch);
      // Unknown channel, or history lost: continue from the gateway's position.
      // A recovered channel keeps ours: replayed events follow and move it.
      const keep = this._ids.has(ch) && !(info && info.recovered === false);
      granted.set(ch, keep ? this._ids.get(ch) : id);
    }
    if (granted.size) this._ids = new Map([...granted].filter(([, id]) => id !== undefined));
    if (typeof m.expires_at === "number") this._exp = m.expires_at;
    this._tokenRefusals = 0;
    this._openedAt = Date.now();
    this._everOpen = true;
    const recovered = m.recovered !== false && gaps.length === 0;
    this._setStatus("open", { resumed: !!this._sentSince, recovered, gaps, channels });
    if (gaps.length) this._call(this._o.onGap, { channels: gaps });
    this._scheduleRefresh(gen);
  }

  // ---- timers --------------------------------------------------------------

  _clear(name) {
    if (this._timers[name] !== undefined) { clearTimeout(this._timers[name]); delete this._timers[name]; }
  }

  _armConnectTimeout(gen) {
    this._clear("connect");
    const ms = this._o.connectTimeoutMs;
    if (!ms) return;
    this._timers.connect = setTimeout(() => {
      if (gen !== this._gen || this._status === "open") return;
      this._drop({ ...describeClose(1006), name: "connect_timeout", detail: `no acknowledgement within ${ms} ms` }, { opened: false });
    }, ms);
  }

  _armHeartbeat(gen) {
    const ms = this._o.heartbeatMs;
    if (!ms) return;
    this._clear("heartbeat");
    this._timers.heartbeat = setTimeout(() => {
      if (gen === this._gen) this._drop(describeClose(4000, `heartbeat_timeout: nothing received for ${ms} ms`), { opened: true });
    }, ms);
  }

  // ---- drops and reconnects ------------------------------------------------

  _teardown(code = 1000, reason = "") {
    this._gen++;
    for (const k of ["connect", "heartbeat", "refresh", "reconnect"]) this._clear(k);
    const c = this._conn;
    this._conn = null;
    if (c) c.close(code, reason);
  }

  async _drop(info, { opened }) {
    const wasOpenMs = this._status === "open" ? Date.now() - this._openedAt : 0;
    this._teardown();
    if (this._closed) return;
    if (wasOpenMs >= this._o.stableMs) this._attempt = 0;
    if (!info.retry) return this._fail(this._errorFrom(info, true));
    if (info.newToken) {
      if (typeof this._o.getToken !== "function") return this._fail(this._errorFrom(info, true));
      if (info.code === 4402 && ++this._tokenRefusals > 2) return this._fail(this._errorFrom(info, true));
      this._token = null; // fetch a new one on the next attempt
    }
    if (this._mode === "websocket" && !opened && this._o.transport === "auto") {
      // An upgrade that never opened: a refusing proxy, or the gateway is down.
      // Count it only if the gateway answers plain HTTP.
      const gen = this._gen;
      const reachable = await this._reachable();
      if (gen !== this._gen || this._closed) return;
      if (reachable && ++this._wsFailures >= this._o.sseAfterFailures) {
        this._mode = "sse";
        this._attempt = 0;
        info = { ...info, name: "websocket_unavailable", detail: `${this._wsFailures} WebSocket upgrades failed while the gateway answered HTTP; switching to SSE`, hint: info.hint };
        this._emitError(this._errorFrom(info, false));
        this._armWsRetry();
        return this._scheduleReconnect(info, 0);
      }
    }
    this._scheduleReconnect(info);
  }

  // After a fallback to SSE, try the WebSocket again every wsRetryMs: the proxy
  // may have been fixed, or the failures were a passing network problem. One
  // upgrade that fails (while HTTP works) goes straight back to SSE and re-arms
  // this; one that opens stays. The switch reconnects with since, so nothing is
  // lost or repeated. The timer outlives reconnects; close() clears it.
  _armWsRetry() {
    const ms = this._o.wsRetryMs;
    if (!ms) return;
    this._clear("wsRetry");
    this._timers.wsRetry = setTimeout(() => {
      delete this._timers.wsRetry;
      if (this._closed || this._mode !== "sse") return;
      this._mode = "websocket";
      this._wsFailures = Math.max(0, this._o.sseAfterFailures - 1);
      if (this._timers.reconnect !== undefined || this._waiting) return; // the next attempt tries it
      this._teardown(1000, "websocket retry");
      this._attempt = 0;
      this._scheduleReconnect({ name: "websocket_retry", detail: `trying the WebSocket again after ${ms} ms over SSE`, hint: "" }, 0);
    }, ms);
  }

  async _reachable() {
    if (!this._fetch) return false;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 3000);
    try {
      const browser = typeof document !== "undefined";
      await this._fetch(this._healthUrl.href, { mode: browser ? "no-cors" : "cors", cache: "no-store", signal: ctrl.signal });
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  _scheduleReconnect(info, delay) {
    if (delay === undefined) {
      const cap = Math.min(this._o.backoffMaxMs, this._o.backoffBaseMs * 2 ** Math.min(this._attempt, 30));
      delay = Math.floor(Math.random() * cap); // full jitter
    }
    this._attempt++;
    this._setStatus("reconnecting", {
      code: info.code, reason: info.name, detail: info.detail, hint: info.hint, attempt: this._attempt, delayMs: delay,
    });
    this._clear("reconnect");
    this._timers.reconnect = setTimeout(() => { delete this._timers.reconnect; this._connect(); }, delay);
  }

  _errorFrom(info, fatal) {
    const msg = `rtgw: ${info.name}${info.code ? ` (${info.code})` : ""}${info.detail ? `: ${info.detail}` : ""}${info.hint ? ` — ${info.hint}` : ""}`;
    return new RealtimeError(info.name, msg, { code: info.code, detail: info.detail, hint: info.hint, status: info.status, fatal });
  }

  _fail(err) {
    if (this._closed) return;
    this._closed = true;
    this._teardown();
    this._unlisten();
    this._emitError(err);
    this._setStatus("closed", { code: err.code, reason: err.reason, detail: err.detail, hint: err.hint, error: err });
    for (const it of this._iters) it.end(err);
  }

  _setStatus(status, extra) {
    this._status = status;
    this._call(this._o.onStatus, { status, transport: this._mode, url: this._lastUrl, ...extra });
  }

  _emitError(err) {
    this._call(this._o.onError, err);
  }

  _call(fn, arg) {
    if (typeof fn !== "function") return;
    try { fn(arg); } catch (e) {
      // An app callback that throws must not break the subscription.
      if (typeof reportError === "function") reportError(e); else console.error(e);
    }
  }
}
