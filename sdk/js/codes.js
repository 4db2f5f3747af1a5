// Close codes of the rtgw.v1 extended protocol (docs/protocol.md §5), and the
// browser's own codes, by name, with what a client should do about each.
//
//   retry:    reconnect (with backoff), resuming from the last ids
//   newToken: fetch a new token first (getToken), then reconnect
//   fatal:    do not reconnect; the app must fix something
// Shared by the browser SDK (index.js) and usable on its own.

/** @type {Record<number, {name: string, retry: boolean, newToken?: boolean, hint: string}>} */
export const CLOSE_CODES = Object.freeze({
  1000: { name: "normal", retry: false, hint: "the connection was closed normally" },
  1001: { name: "shutting_down", retry: true, hint: "the gateway is draining (restart or deploy); resuming from the last id" },
  1002: { name: "protocol_error", retry: false, hint: "the client sent a frame the gateway does not accept" },
  1005: { name: "no_status", retry: true, hint: "the connection closed without a status code" },
  1006: {
    name: "connection_lost",
    retry: true,
    hint: "the connection dropped without a close frame: the network went away, the gateway stopped, " +
      "or a proxy in between refuses WebSocket upgrades (it must forward the Upgrade and Connection headers)",
  },
  1009: { name: "message_too_big", retry: false, hint: "the client sent a frame over RTGW_MAX_CLIENT_FRAME_BYTES" },
  1011: { name: "internal_error", retry: true, hint: "the gateway hit an internal fault; retrying with backoff" },
  1015: { name: "tls_failed", retry: true, hint: "the TLS handshake failed (certificate not trusted?)" },
  4000: { name: "heartbeat_timeout", retry: true, hint: "nothing arrived within heartbeatMs; the connection was presumed dead" },
  4400: { name: "bad_request", retry: false, hint: "the gateway refused the request (e.g. a malformed since id)" },
  4401: { name: "token_missing", retry: false, hint: "no token was sent" },
  4402: { name: "token_invalid", retry: true, newToken: true, hint: "the token was refused (the reason names why); a new token is needed" },
  4403: { name: "topic_not_allowed", retry: false, hint: "the token does not grant this topic" },
  4405: { name: "origin_not_allowed", retry: false, hint: "this page's origin is not in RTGW_ALLOWED_ORIGINS" },
  4408: { name: "idle_timeout", retry: true, hint: "the gateway saw no pong within its heartbeat deadline" },
  4409: { name: "token_expired", retry: true, newToken: true, hint: "the token expired; a new token is needed" },
  4429: { name: "slow_consumer", retry: true, hint: "the client read too slowly and was cut off; resuming loses nothing within the history window" },
  4503: { name: "over_capacity", retry: true, hint: "the gateway is at RTGW_MAX_CONNECTIONS; retrying with backoff" },
});

/**
 * Names a close code: never a bare number (1006 is "connection_lost").
 * The gateway's close reason is "<name>" or "<name>: <detail>".
 * @param {number} code
 * @param {string} [reason]
 */
export function describeClose(code, reason = "") {
  const known = CLOSE_CODES[code];
  let name = known ? known.name : code >= 4000 && code < 5000 ? "application_close" : "close_" + code;
  let detail = "";
  if (reason) {
    const i = reason.indexOf(": ");
    const head = i < 0 ? reason : reason.slice(0, i);
    if (/^[a-z_]+$/.test(head)) {
      name = head;
      detail = i < 0 ? "" : reason.slice(i + 2);
    } else {
      detail = reason;
    }
  }
  return {
    code,
    name,
    detail,
    hint: known ? known.hint : "unknown close code",
    retry: known ? known.retry : code !== 1000,
    newToken: !!(known && known.newToken),
  };
}

/** Names of HTTP refusals (SSE, token and publish endpoints) → should a client retry? */
export function describeHttpRefusal(status, name, message = "") {
  const byName = {
    token_missing: 4401, token_expired: 4409, origin_not_allowed: 4405, over_capacity: 4503,
    shutting_down: 1001, bad_request: 4400,
  };
  let code = byName[name];
  let detail = message;
  if (code === undefined && /^token_/.test(name || "")) {
    // A token refusal names its own reason (token_bad_signature, …): report it
    // the way a WebSocket close would, "token_invalid" with the reason as detail.
    code = 4402;
    detail = message ? `${name}: ${message}` : name;
    name = "token_invalid";
  }
  if (code === undefined) code = status >= 500 ? 1011 : 4400;
  const d = describeClose(code);
  return { ...d, name: name || d.name, detail, status };
}
