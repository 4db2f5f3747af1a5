// @rtgw/client/react — a React hook over subscribe(). React is an optional peer:
// this module never imports it; pass your React in.
//
//   import * as React from "react";
//   import { createUseRealtime } from "@rtgw/client/react";
//   export const useRealtime = createUseRealtime(React);
//
//   function Run({ runId }) {
//     const { status, messages, error } = useRealtime({ baseUrl: "/", getToken, deps: [runId] });
//     …
//   }
//
// One subscription per mounted hook, closed on unmount. A change of url, baseUrl,
// transport or deps is a new stream (state cleared); a new token or enabled again
// resubscribes the same stream from its last ids. See README.md "React".
import { subscribe } from "./index.js";

/**
 * @param {{useState: Function, useEffect: Function, useRef: Function}} React
 * @returns {(opts: object) => {status: string, info: object|null, messages: object[], lastMessage: object|null, error: Error|null, recovered: boolean, lastIds: Record<string,string>}}
 */
export function createUseRealtime(React) {
  if (!React || typeof React.useState !== "function" || typeof React.useEffect !== "function" || typeof React.useRef !== "function") {
    throw new TypeError("rtgw: createUseRealtime(React) needs React (useState, useEffect, useRef)");
  }
  const { useState, useEffect, useRef } = React;

  return function useRealtime(opts = {}) {
    const { enabled = true } = opts;
    // The stream: where it connects, how, and the app's deps (e.g. the channel).
    // A new stream starts afresh; the same stream resubscribed (a new token, enabled
    // again, StrictMode's second mount) resumes from the last ids.
    const stream = streamOf(opts);
    const [shown, setShown] = useState(stream);
    const [info, setInfo] = useState(null);
    const [messages, setMessages] = useState([]);
    const [error, setError] = useState(null);
    const [lastIds, setLastIds] = useState({});
    const [recovered, setRecovered] = useState(true); // from the last (re)connection
    if (!sameList(shown, stream)) {
      // Reset while rendering, so that no commit shows the old stream's messages.
      setShown(stream);
      setInfo(null);
      setMessages([]);
      setError(null);
      setLastIds({});
      setRecovered(true);
    }
    // Callbacks and getToken may change on every render; the subscription reads the latest.
    const ref = useRef(opts);
    ref.current = opts;
    // Where the last subscription of this stream got to: { stream, ids }.
    const carry = useRef(null);

    useEffect(() => {
      if (!enabled) return undefined;
      if (!carry.current || !sameList(carry.current.stream, stream)) carry.current = { stream, ids: {} };
      const since = { ...(ref.current.since || {}), ...carry.current.ids };
      // The old subscription may still deliver between the render that switched the
      // stream and this effect's cleanup: its events must not reach the new state.
      const current = () => sameList(streamOf(ref.current), stream);
      let sub;
      try {
        sub = subscribe({
          ...ref.current,
          since: Object.keys(since).length ? since : undefined,
          getToken: typeof ref.current.getToken === "function" ? () => ref.current.getToken() : undefined,
          onMessage: (m) => {
            const max = ref.current.bufferSize === undefined ? 100 : ref.current.bufferSize;
            if (current() && max > 0) {
              setMessages((prev) => {
                const next = prev.length >= max ? prev.slice(prev.length - max + 1) : prev.slice();
                next.push(m);
                return next;
              });
            }
            if (current()) setLastIds(sub.lastIds);
            if (ref.current.onMessage) ref.current.onMessage(m);
          },
          onStatus: (s) => {
            if (current()) setInfo(s);
            if (current() && s.status === "open") { setError(null); setRecovered(s.recovered !== false); setLastIds(sub.lastIds); }
            if (ref.current.onStatus) ref.current.onStatus(s);
          },
          onGap: (g) => { if (ref.current.onGap) ref.current.onGap(g); },
          onError: (e) => {
            if (current()) setError(e);
            if (ref.current.onError) ref.current.onError(e);
          },
        });
      } catch (e) {
        setError(e);
        setInfo({ status: "closed", transport: ref.current.transport === "sse" ? "sse" : "websocket", url: "", reason: e.reason || "error", error: e });
        return undefined;
      }
      const mine = carry.current;
      return () => {
        mine.ids = sub.lastIds; // positions from the acknowledgement on, even before any event
        sub.close();
      };
      // The connection is keyed on the stream, the token and enabled.
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [enabled, opts.token, ...stream]);

    return {
      status: info ? info.status : enabled ? "connecting" : "closed",
      info,
      messages,
      lastMessage: messages.length ? messages[messages.length - 1] : null,
      error,
      recovered,
      lastIds,
    };
  };
}

// Where and how the hook connects, plus the app's deps: a change is a new stream.
function streamOf(opts) {
  return [opts.url, opts.baseUrl, opts.transport, ...(opts.deps || [])];
}

function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}
