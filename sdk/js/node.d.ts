import type { KeyObject } from "node:crypto";

export type TopicSpec = string | { channel?: string; name: string; kind?: string };

export interface MintOptions {
  /** signkey-<env>-<hex>: the gateway's RTGW_SIGNING_KEY. */
  signingKey: string;
  /** Channel of the topics given by name. */
  channel?: string;
  /** Topic names ("*" = every topic of the channel) or {channel, name} objects. */
  topics: TopicSpec[] | TopicSpec;
  /** Lifetime in seconds (default 60). */
  ttl?: number;
  /** The token may also publish to its topics (default false). */
  publish?: boolean;
  /** Must match the gateway's RTGW_TOKEN_ALG (default "HS256"). */
  alg?: "HS256" | "EdDSA";
  /** Must match RTGW_TOKEN_ISSUER (default "rtgw"). */
  issuer?: string;
  /** Subject (default: the first topic's channel). */
  sub?: string;
  /** Issue time, Unix seconds (tests). */
  now?: number;
}

/** Mints a token offline, as the gateway would. Returns the JWT. */
export declare function mintToken(opts: MintOptions): string;

export declare function parseSigningKey(signingKey: string): { env: string; bytes: Buffer };
export declare function hashSigningKey(signingKey: string): string;
export declare function deriveTokenKey(signingKey: string, alg?: "HS256" | "EdDSA"):
  | { alg: "HS256"; env: string; kid: string; secret: Buffer }
  | { alg: "EdDSA"; env: string; kid: string; privateKey: KeyObject; publicKey: KeyObject };

export interface HttpOptions {
  /** Default $RTGW_URL, else http://127.0.0.1:8288. */
  baseUrl?: string;
  /** The signing key (sent in its hashed form). */
  signingKey?: string;
  /** Tried once when the gateway answers 401 to signingKey (key rotation). */
  signingKeyFallback?: string;
  /** A token instead of the key (publish: minted with publish:true). */
  token?: string;
  signal?: AbortSignal;
  /** Per request (default 10 000 ms; publishStream: none); 0 disables. */
  timeoutMs?: number;
}

/** The gateway's refusal: `status` (401, 403, 413, …) and the stable `error` name. */
export declare class RtgwHttpError extends Error {
  name: "RtgwHttpError";
  status: number;
  error: string;
  body: unknown;
}

export interface GetTokenOptions extends HttpOptions {
  channel?: string;
  topics: TopicSpec[] | TopicSpec;
  ttl?: number;
  publish?: boolean;
  sub?: string;
}

/** POST /v1/realtime/token. */
export declare function getToken(opts: GetTokenOptions): Promise<{ jwt: string; expires_at: number }>;

export interface PublishOptions extends HttpOptions {
  channel: string;
  /** One topic, or up to 16 to publish the same data to each. */
  topic: string | string[];
  /** Sent as JSON: subscribers receive exactly this value. */
  data?: unknown;
  runId?: string;
  fnId?: string;
  /** A retry with the same key (per channel and topic, within RTGW_IDEMPOTENCY_WINDOW) publishes nothing. */
  idempotencyKey?: string;
}

export interface PublishResult { ok: true; ids: string[]; delivered: number; duplicate?: boolean }

export declare function publish(opts: PublishOptions): Promise<PublishResult>;

export interface BatchEvent { channel?: string; topic: string; data?: unknown; runId?: string; fnId?: string; idempotencyKey?: string }

export interface BatchOptions extends HttpOptions {
  events: BatchEvent[];
  /** Defaults for events that leave them out. */
  channel?: string;
  runId?: string;
  fnId?: string;
}

export interface BatchResult {
  results: Array<{ ok: true; id: string; delivered: number; duplicate?: boolean } | { ok: false; error: string; message: string }>;
  published: number;
  failed: number;
}

export declare function publishBatch(opts: BatchOptions): Promise<BatchResult>;

export interface StreamOptions extends Omit<PublishOptions, "data"> {
  stream: AsyncIterable<string | Uint8Array> | ReadableStream<string | Uint8Array>;
}

export declare function publishStream(opts: StreamOptions): Promise<{ ok: true; stream_id: string; chunks: number; bytes: number }>;
