// An SSE (text/event-stream) reader for tests, over node:http: it records every
// event with its arrival time, the keep-alive comments, and when the stream ended.
// One Node thread; t.cleanup destroys the request.
//
//   const s = await sse(`${url}/v1/realtime/sse?token=${jwt}`, t);   resolves at the response head
//   s.status, s.headers, s.frames ([{ at, msg }]), s.comments, s.ended (time or null), s.raw
import http from "node:http";
import { withTimeout } from "./wait.mjs";

// ms bounds the wait for the response head (5 s).
export function sse(url, t, { ms = 5000 } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { Accept: "text/event-stream" } }, (res) => {
      const c = { status: res.statusCode, headers: res.headers, frames: [], comments: 0, raw: "", ended: null, res, req };
      res.on("close", () => { c.ended = Date.now(); });
      if (res.statusCode !== 200) {
        res.on("data", (d) => (c.raw += d));
        res.on("end", () => resolve(c));
        return;
      }
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        c.raw += d;
        buf += d;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith(":")) c.comments++;
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
          if (data.length) c.frames.push({ at: Date.now(), msg: JSON.parse(data.join("\n")) });
        }
      });
      res.on("error", () => {});
      resolve(c);
    });
    req.on("error", reject);
    t.cleanup(() => req.destroy());
  }), ms, `SSE ${url.replace(/token=[^&]+/, "token=…")}`);
}
