// The browser side of the example: log in (fake), then subscribe with the SDK.
// getToken asks our backend, which mints a token for this user's channel only;
// the SDK reconnects, resumes and renews the token by itself.
import { subscribe } from "/sdk/index.js";

const $ = (id) => document.getElementById(id);
let sub = null;

function row(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  $("events").prepend(li);
}

async function getToken() {
  const res = await fetch("/api/realtime-token", { method: "POST" });
  if (!res.ok) throw new Error(`token endpoint: ${res.status}`);
  return res.json(); // { jwt, expires_at }
}

async function start() {
  const me = await fetch("/api/me");
  if (!me.ok) return; // signed out
  const { user, channel, realtimeUrl } = await me.json();
  $("who").textContent = user;
  $("channel").textContent = channel;
  $("login-form").hidden = true;
  $("app").hidden = false;
  sub = subscribe({
    baseUrl: realtimeUrl,
    getToken,
    onStatus: (s) => {
      $("status").textContent = s.status;
      $("status").className = "pill " + s.status;
      if (s.status === "open" && s.recovered === false) row("reconnected, but some events were lost: refetching state would go here", "note");
      if (s.status === "reconnecting" && s.reason) row(`disconnected: ${s.reason}${s.detail ? " (" + s.detail + ")" : ""}`, "note");
    },
    onMessage: (m) => row(`${m.topic}${m.run_id ? " " + m.run_id : ""}: ${typeof m.data === "string" ? m.data : JSON.stringify(m.data)}`),
    onError: (e) => row(`error: ${e.message}`, "note"),
  });
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const res = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: $("user").value.trim() }) });
  if (!res.ok) return row(`login failed: ${(await res.json()).message}`, "note");
  start();
});
$("run").addEventListener("click", () => fetch("/api/runs", { method: "POST" }));
$("logout").addEventListener("click", async () => {
  if (sub) sub.close();
  await fetch("/logout", { method: "POST" });
  location.reload();
});
start();
