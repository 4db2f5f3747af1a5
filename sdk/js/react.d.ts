import type { RealtimeError, RealtimeMessage, StatusEvent, Status, SubscribeOptions } from "./index.js";

export interface UseRealtimeOptions<T = unknown> extends SubscribeOptions<T> {
  /** false: do not connect (default true). */
  enabled?: boolean;
  /** Messages kept in `messages` (default 100; 0 keeps none, for apps that use onMessage). */
  bufferSize?: number;
  /**
   * Reconnect when one of these changes (url, baseUrl, token and transport always count),
   * compared with Object.is. A change of url, baseUrl, transport or deps starts afresh
   * (messages, lastIds, info and error cleared); a new token or enabled again resumes from lastIds.
   */
  deps?: unknown[];
}

export interface UseRealtimeResult<T = unknown> {
  status: Status;
  /** The last status event (reason, code, recovered, …); null before the first. */
  info: StatusEvent | null;
  messages: RealtimeMessage<T>[];
  lastMessage: RealtimeMessage<T> | null;
  error: RealtimeError | Error | null;
  /** false after a reconnect whose history did not cover the gap: refetch. */
  recovered: boolean;
  /** The last id per channel (from the acknowledgement on): what a resubscription resumes from. */
  lastIds: Record<string, string>;
}

interface ReactLike {
  useState: (...args: any[]) => any;
  useEffect: (...args: any[]) => any;
  useRef: (...args: any[]) => any;
}

/** Binds the hook to your React (React is an optional peer dependency, never imported). */
export declare function createUseRealtime(React: ReactLike): <T = unknown>(opts: UseRealtimeOptions<T>) => UseRealtimeResult<T>;
