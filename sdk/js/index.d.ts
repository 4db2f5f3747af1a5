import type { CloseDescription } from "./codes.js";
export { CLOSE_CODES, describeClose } from "./codes.js";
export type { CloseCodeInfo, CloseDescription } from "./codes.js";

/** A frame delivered to the app: data, or a stream frame (datastream-start, chunk, datastream-end). */
export interface RealtimeMessage<T = unknown> {
  kind: "data" | "datastream-start" | "chunk" | "datastream-end" | string;
  channel: string;
  topic: string;
  data: T;
  /** RFC 3339 */
  created_at: string;
  /** The event's position in its channel; opaque, compare for equality only. */
  id: string;
  run_id?: string;
  fn_id?: string;
  stream_id?: string;
}

export type Status = "idle" | "connecting" | "open" | "reconnecting" | "closed";
export type Transport = "websocket" | "sse";

export interface StatusEvent {
  status: Status;
  transport: Transport;
  /** The URL tried last, with the token hidden. */
  url: string;
  /** Close code (reconnecting/closed), e.g. 1001, 4409, 1006. */
  code?: number;
  /** Reason by name: "shutting_down", "token_expired", "connection_lost", "offline", "websocket_unavailable", "client_closed", … */
  reason?: string;
  detail?: string;
  hint?: string;
  /** reconnecting: the attempt number and the delay before it. */
  attempt?: number;
  delayMs?: number;
  /** reconnecting/connecting: waiting because the browser is offline or the page hidden. */
  paused?: "offline" | "hidden";
  /** open: whether since ids were sent. */
  resumed?: boolean;
  /** open: false when the gateway could not replay everything since the last ids (refetch your state). */
  recovered?: boolean;
  /** open: channels whose history did not cover the gap. */
  gaps?: string[];
  /** open: the acknowledgement's per-channel positions. */
  channels?: Record<string, { id: string; recovered?: boolean; replayed?: number }>;
  /** closed on a fatal error. */
  error?: RealtimeError;
}

export type TokenResult = string | { jwt: string; expires_at?: number } | { token: string; expiresAt?: number };

export interface SubscribeOptions<T = unknown> {
  /** The WebSocket endpoint, e.g. "wss://rt.example.com/v1/realtime/connect" (an origin alone works too). */
  url?: string;
  /** The gateway's base URL ("https://rt.example.com"); relative ("/" or "") means this page's origin, with wss:// on an https page. Default "/". */
  baseUrl?: string;
  /** A token. Without getToken it cannot be renewed: token_expired/token_invalid are then fatal. */
  token?: string;
  /** Called for the first token, when the token expires or is about to, on 4402/4409, and for in-band refresh. */
  getToken?: () => Promise<TokenResult> | TokenResult;
  onMessage?: (msg: RealtimeMessage<T>) => void;
  onStatus?: (ev: StatusEvent) => void;
  /** Non-fatal problems (a refused refresh, a switch to SSE) and the fatal one that closes the subscription. */
  onError?: (err: RealtimeError) => void;
  /** Called when a resume could not replay everything (history lost or evicted). */
  onGap?: (info: { channels: string[] }) => void;
  /** Aborting closes the subscription. */
  signal?: AbortSignal;
  /** "auto" (default): WebSocket, falling back to SSE after repeated failed upgrades. */
  transport?: "auto" | "websocket" | "sse";
  /** Resume from these positions (channel → id), e.g. saved in sessionStorage. */
  since?: Record<string, string>;
  /** Watchdog: reconnect when nothing arrives for this long (0 = off, the default). See README: WebSocket pings are invisible to browsers. */
  heartbeatMs?: number;
  /** First backoff step (default 500 ms); the delay is random in [0, min(max, base·2^attempt)). */
  backoffBaseMs?: number;
  /** Backoff cap (default 30 000 ms). */
  backoffMaxMs?: number;
  /** A connection open at least this long resets the backoff (default 10 000 ms). */
  stableMs?: number;
  /** Give up on an attempt without an acknowledgement after this long (default 15 000 ms). */
  connectTimeoutMs?: number;
  /** Renew the token this long before it expires (default 15 000 ms, at most a quarter of its lifetime). */
  refreshBeforeMs?: number;
  /** Failed upgrades (while the gateway answers HTTP) before switching to SSE (default 3). */
  sseAfterFailures?: number;
  /** After a switch to SSE, try the WebSocket again this often (default 60 000 ms; 0: never). */
  wsRetryMs?: number;
  /** Wait for the page to be visible before reconnecting (default true). */
  pauseWhenHidden?: boolean;
  /** Outside browsers: a WebSocket constructor (e.g. the `ws` package). */
  WebSocket?: unknown;
  /** Outside browsers: a fetch implementation. */
  fetch?: typeof fetch;
  /** Outside browsers: the page location used to resolve relative URLs. */
  location?: { href: string; protocol: string };
}

export declare class RealtimeError extends Error {
  name: "RealtimeError";
  /** Stable name: a close-code name, an HTTP error name, or the SDK's own ("insecure_url", "token_source_failed", …). */
  reason: string;
  code?: number;
  detail: string;
  hint: string;
  status?: number;
  /** The subscription closed because of it. */
  fatal: boolean;
}

export declare class Subscription<T = unknown> implements AsyncIterable<RealtimeMessage<T>> {
  readonly status: Status;
  readonly transport: Transport;
  /** The last id per channel (a copy): what a reconnect resumes from. */
  readonly lastIds: Record<string, string>;
  /** The current token's expiry (Unix seconds), when known. */
  readonly expiresAt: number | undefined;
  /** The last URL tried, token hidden. */
  readonly url: string;
  /** Closes for good; ends `for await` loops. */
  close(): void;
  /** Yields every message; breaking out of the loop closes the subscription; a fatal error is thrown. */
  [Symbol.asyncIterator](): AsyncIterator<RealtimeMessage<T>>;
}

/** Opens a subscription. Throws RealtimeError("insecure_url") for ws:// from an https page. */
export declare function subscribe<T = unknown>(opts: SubscribeOptions<T>): Subscription<T>;

export declare function resolveEndpoints(opts: Pick<SubscribeOptions, "url" | "baseUrl" | "location">, loc?: { href: string; protocol: string } | null): { wsUrl: URL; sseUrl: URL; healthUrl: URL };
export declare function redactUrl(url: string): string;
/** exp/iat of a JWT, read without verifying. */
export declare function tokenTimes(jwt: string): { exp?: number; iat?: number };
export type { CloseDescription as CloseInfo };
