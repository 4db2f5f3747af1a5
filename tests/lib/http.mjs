// HTTP requests to a gateway for tests, and its /metrics text. Every request is
// bounded in time. One Node thread; nothing is kept between calls.
//
//   const r = await http(gw, "POST", "/v1/realtime/token", { key: gw.key, body: "[]" });
//   r.status, r.json (undefined if the body is not JSON), r.text, r.headers
//   http(gw, "GET", "/health", { fresh: true })   on a connection of its own, closed after
//   metric(await metrics(gw), 'rtgw_disconnects_total{reason="idle_timeout"}')
//
// `fresh` exists for the checks that count the gateway's file descriptors: a
// keep-alive socket left in fetch's pool would count as one of them.
import assert from "node:assert/strict";
import nodeHttp from "node:http";
import nodeHttps from "node:https";
import { withTimeout } from "./wait.mjs";

// One request to a full URL. Without `fresh`: fetch (its keep-alive pool), the
// response head bounded by `ms` (0: unbounded). With `fresh`: node:http with
// Connection: close and no agent, the whole exchange bounded by `ms`; an
// https:// URL is trusted with `ca` (a PEM), and always goes `fresh`.
// headers is fetch's Headers, or node's plain object with `fresh`.
export async function request(url, { method = "GET", headers = {}, body, fresh = false, ca, ms = fresh ? 15000 : 10000 } = {}) {
  fresh = fresh || url.startsWith("https:");
  const what = `${method} ${url}`;
  const bound = (p) => (ms ? withTimeout(p, ms, what) : p);
  if (fresh) {
    const h = { Connection: "close", ...headers };
    if (body !== undefined) h["Content-Length"] = Buffer.byteLength(body);
    return bound(new Promise((resolve, reject) => {
      const mod = url.startsWith("https:") ? nodeHttps : nodeHttp;
      const req = mod.request(url, { method, headers: h, agent: false, ca }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, json: parseJson(text), text, headers: res.headers }));
      });
      req.on("error", reject);
      req.end(body);
    }));
  }
  const res = await bound(fetch(url, { method, headers, body }));
  const text = await res.text();
  return { status: res.status, json: parseJson(text), text, headers: res.headers };
}

function parseJson(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

// A request to the gateway `gw` ({ url, ca }: https:// trusts gw.ca), with `key` as the Bearer token.
export function http(gw, method, p, { body, headers = {}, key, fresh = false } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  return request(`${gw.url}${p}`, { method, headers: h, body, fresh, ca: gw.ca });
}

export async function mintBody(gw, body, key = gw.key) {
  return http(gw, "POST", "/v1/realtime/token", { body: typeof body === "string" ? body : JSON.stringify(body), key, headers: { "Content-Type": "application/json" } });
}

export const topic = (channel, name) => ({ channel, name, kind: "run" });

export async function metrics(gw) {
  const r = await http(gw, "GET", "/metrics");
  assert.equal(r.status, 200);
  return r.text;
}

// Value of one sample, e.g. metric(text, 'rtgw_disconnects_total{reason="idle_timeout"}'); undefined if absent.
export function metric(text, sample) {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    if (line.slice(0, sp) === sample) return Number(line.slice(sp + 1));
  }
  return undefined;
}
