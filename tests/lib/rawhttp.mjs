// Raw HTTP/1.1 over a plain socket, the way an attacker or a broken client talks:
// no client library normalises the framing, so tests can send exactly the bytes
// they mean (short bodies, odd headers, deep JSON).
import net from "node:net";

// One HTTP/1.1 request as raw bytes on a fresh socket; resolves with the parsed reply
// once the server closes (Connection: close), or what arrived when `ms` ran out.
export function rawRequest(gw, head, body = "", ms = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect(gw.port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString();
      const i = text.indexOf("\r\n\r\n");
      const status = Number(text.split(" ")[1]) || 0;
      const b = i >= 0 ? text.slice(i + 4) : "";
      let json; try { json = JSON.parse(b); } catch {}
      resolve({ status, json, text });
    };
    const timer = setTimeout(done, ms);
    sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
    sock.on("close", done);
    sock.on("error", () => {});
    sock.write(`${head}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`);
    sock.write(body);
  });
}
