/** What a close code means and what a client should do about it. */
export interface CloseCodeInfo {
  /** Stable name, e.g. "token_expired"; 1006 is "connection_lost", never a bare number. */
  name: string;
  /** Reconnect (with backoff), resuming from the last ids. */
  retry: boolean;
  /** A new token is needed before reconnecting (4402, 4409). */
  newToken?: boolean;
  /** One sentence for humans. */
  hint: string;
}

/** The rtgw.v1 close-code table (docs/protocol.md §5) plus the browser's own codes. */
export declare const CLOSE_CODES: Readonly<Record<number, CloseCodeInfo>>;

export interface CloseDescription {
  code: number;
  name: string;
  /** The part of the gateway's close reason after "<name>: ", if any. */
  detail: string;
  hint: string;
  retry: boolean;
  newToken: boolean;
}

/** Names a close code and parses the gateway's "<name>: <detail>" reason. */
export declare function describeClose(code: number, reason?: string): CloseDescription;

/** Maps an HTTP refusal (status + JSON error name) to the same description. */
export declare function describeHttpRefusal(status: number, name?: string, message?: string): CloseDescription & { status: number };
