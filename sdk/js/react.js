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
    const { enabled = true, bufferSize = 100, deps = [] } = opts;
    const [info, setInfo] = useState(null);
    const [messages, setMessages] = useState([]);
    const [error, setError] = useState(null);
    const [lastIds, setLastIds] = useState({});
    const [recovered, setRecovered] = useState(true); // from the last (re)connection
    // Callbacks and getToken may change on every render; the subscription reads the latest.
    const ref = useRef(opts);
    ref.current = opts;

    useEffect(() => {
      if (!enabled) return undefined;
      let sub;
      try {
        sub = subscribe({
          ...ref.current,
          getToken: typeof ref.current.getToken === "function" ? () => ref.current.getToken() : undefined,
          onMessage: (m) => {
            setMessages((prev) => {
              const next = prev.length >= bufferSize ? prev.slice(prev.length - bufferSize + 1) : prev.slice();
              next.push(m);
              return next;
            });
            setLastIds(sub.lastIds);
            if (ref.current.onMessage) ref.current.onMessage(m);
          },
          onStatus: (s) => {
            setInfo(s);
            if (s.status === "open") { setError(null); setRecovered(s.recovered !== false); }
            if (ref.current.onStatus) ref.current.onStatus(s);
          },
          onGap: (g) => { if (ref.current.onGap) ref.current.onGap(g); },
          onError: (e) => {
            setError(e);
            if (ref.current.onError) ref.current.onError(e);
          },
        });
      } catch (e) {
        setError(e);
        setInfo({ status: "closed", reason: e.reason || "error" });
        return undefined;
      }
      return () => sub.close();
      // The connection is keyed on where and how it connects, plus opts.deps.
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [enabled, opts.url, opts.baseUrl, opts.token, opts.transport, ...deps]);

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
