// Raw HTTP/1.1 over a plain socket, the way an attacker or a broken client talks:
// no client library normalises the framing, so tests can send exactly the bytes
// they mean (short bodies, ambiguous framing, smuggled requests, deep JSON).
import net from "node:net";

// Open a socket to port, run `send(sock, st)` once connected, and collect
// everything the server sends until it closes the connection (or resets it,
// when resetIsClose) or `ms` runs out. st.finished turns true then; send may
// count what it wrote in st.lines. Resolves with
//   { text, responses: [{status, headers, body, json}], closedByServer, ms, lines }
// where responses are the HTTP responses found in the stream, in order, and ms
// the time from connect to the end.
function rawSession(port, ms, send, { resetIsClose = false } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, "127.0.0.1");
    const st = { finished: false, lines: 0 };
    let buf = Buffer.alloc(0), closedByServer = false;
    const done = () => {
      if (st.finished) return;
      st.finished = true;
      clearTimeout(timer);
      sock.destroy();
      const text = buf.toString("latin1");
      resolve({ text, responses: parseResponses(text), closedByServer, ms: Date.now() - t0, lines: st.lines });
    };
    const timer = setTimeout(done, ms);
    sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
    sock.on("end", () => { closedByServer = true; done(); });
    sock.on("error", () => { if (resetIsClose) { closedByServer = true; done(); } });
    sock.on("close", done);
    sock.on("connect", () => send(sock, st));
  });
}

// Send `parts` (strings or Buffers) on a fresh socket, `gapMs` apart, optionally
// half-close (FIN) after the last one, then collect what the server sends (see
// rawSession) until it closes the connection or `ms` runs out.
export function rawExchange(gw, parts, { ms = 5000, gapMs = 0, halfClose = false, port = gw.port } = {}) {
  return rawSession(port, ms, async (sock) => {
    for (let i = 0; i < parts.length; i++) {
      if (i && gapMs) await new Promise((r) => setTimeout(r, gapMs));
      if (!sock.destroyed) sock.write(parts[i]);
    }
    if (halfClose && !sock.destroyed) sock.end();
  });
}

// The HTTP/1.1 responses in a byte stream (Content-Length framed, as rtgw sends).
export function parseResponses(text) {
  const out = [];
  let rest = text;
  for (;;) {
    const m = rest.match(/^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/);
    if (!m) break;
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) break;
    const headers = {};
    for (const line of rest.slice(m[0].length, end).split("\r\n")) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const len = Number(headers["content-length"] || 0);
    const body = rest.slice(end + 4, end + 4 + len);
    let json; try { json = JSON.parse(body); } catch {}
    out.push({ status: Number(m[1]), headers, body, json });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

// One request as raw bytes (`head` ends with its last header line; Content-Length
// and Connection: close are added); resolves with { status, json, text } of the
// first response.
export async function rawRequest(gw, head, body = "", ms = 5000) {
  const r = await rawExchange(gw, [`${head}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`, body], { ms });
  const first = r.responses[0] || {};
  return { status: first.status || 0, json: first.json, text: r.text };
}

// A head that never ends: `first`, then `line(i)` every `gapMs` (0: as fast as
// the socket takes them, yielding to the event loop between writes) until the
// server closes the connection (a reset while still writing counts) or `ms`
// runs out; after `maxLines` lines it stops sending but keeps the connection
// open. Resolves as rawSession, with `lines` the number of lines sent.
export function rawEndlessHead(gw, first, line, { ms = 6000, gapMs = 0, maxLines = Infinity, port = gw.port } = {}) {
  return rawSession(port, ms, async (sock, st) => {
    sock.write(first);
    while (!st.finished && !sock.destroyed && st.lines < maxLines) {
      const room = sock.write(line(st.lines++));
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      else if (!room) await new Promise((r) => { sock.once("drain", r); setTimeout(r, 50); });
      else await new Promise((r) => setImmediate(r));
    }
  }, { resetIsClose: true });
}

// A client that sends `data` and does not read what comes back. Resolves once
// connected with { sock, collect(ms) }: collect starts reading and resolves
// with { text, responses, ended, ms } when the server's end of the stream
// arrives (ended: true; a reset counts) or `ms` runs out (ended: false).
export function rawNoRead(gw, data, { port = gw.port } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.pause();
    let ended = false, onEnd = () => {};
    const end = () => { ended = true; onEnd(); };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
    sock.on("connect", () => {
      sock.write(data);
      resolve({
        sock,
        collect: (ms) => new Promise((res) => {
          const t0 = Date.now();
          const chunks = [];
          const finish = () => {
            clearTimeout(timer);
            sock.destroy();
            const text = Buffer.concat(chunks).toString("latin1");
            res({ text, responses: parseResponses(text), ended, ms: Date.now() - t0 });
          };
          const timer = setTimeout(finish, ms);
          onEnd = finish;
          sock.on("data", (d) => chunks.push(d));
          if (ended) finish();
          else sock.resume();
        }),
      });
    });
  });
}
