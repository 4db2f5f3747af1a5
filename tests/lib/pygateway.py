"""Python test helpers: start and stop a real rtgw process, collect SSE events.

    from pygateway import Gateway, SSECollector, free_port
    gw = Gateway(env={"RTGW_MAX_BODY_BYTES": "4096"}); gw.start()   # gw.url, gw.key
    col = SSECollector(gw.url, token); col.wait_for(lambda evs: len(evs) >= 3, 5)
    gw.stop()

Binary: $RTGW_BIN, else build/rtgw. Everything is bounded in time, and a gateway is
stopped by its own PID (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RTGW_BIN = os.environ.get("RTGW_BIN") or os.path.join(ROOT, "build", "rtgw")
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(env: str = "test") -> str:
    return subprocess.run([RTGW_BIN, "keygen", "--env", env], check=True, capture_output=True,
                          text=True, timeout=10).stdout.strip()


class Gateway:
    """A real `rtgw serve` on a free loopback port."""

    def __init__(self, env=None, key=None):
        self.key = key or keygen()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.proc = None
        self._log = []

    def start(self, timeout: float = 10) -> "Gateway":
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RTGW_LISTEN": f"127.0.0.1:{self.port}",
               "RTGW_SIGNING_KEY": self.key, "RTGW_LOG_LEVEL": "info", **self.extra_env}
        self.proc = subprocess.Popen([RTGW_BIN, "serve"], env=env, cwd="/tmp", stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        started = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self._log.append(line)
                if "listening on" in line:
                    started.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not started.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rtgw did not start:\n" + self.logs())
        return self

    def logs(self) -> str:
        return "".join(self._log)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def mint(self, channel, topics, publish=False, ttl=None) -> str:
        body = {"topics": [{"channel": channel, "name": t, "kind": "run"} for t in topics], "publish": publish}
        if ttl:
            body["ttl"] = ttl
        req = urllib.request.Request(f"{self.url}/v1/realtime/token", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.key}"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())["jwt"]


class SSECollector:
    """Reads /v1/realtime/sse in a thread; `events` holds every parsed frame in order
    (the rtgw.subscribed ack first). Raw http.client, independent of the SDK."""

    def __init__(self, base_url: str, token: str, timeout: float = 30):
        import http.client
        import urllib.parse

        u = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.conn.request("GET", "/v1/realtime/sse?token=" + urllib.parse.quote(token),
                          headers={"Accept": "text/event-stream"})
        self.sock = self.conn.sock  # kept: close() shuts it down to wake the reader thread
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = dict(self.resp.getheaders())
        self.events = []
        self.error = None
        self._cv = threading.Condition()
        if self.status == 200:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        data = []
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        ev = json.loads("\n".join(data))
                        with self._cv:
                            self.events.append(ev)
                            self._cv.notify_all()
                    data = []
                elif line.startswith("data:"):
                    data.append(line[6:] if line[5:6] == " " else line[5:])
        except Exception as e:  # closed by close(), or a real failure
            self.error = e
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pred, timeout: float = 5, what: str = "events"):
        """Wait until pred(events) is true; return the events. Raises AssertionError."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {self.events!r}")
                self._cv.wait(left)
            return list(self.events)

    def data_events(self):
        return [e for e in self.events if e.get("kind") != "rtgw.subscribed"]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.resp.close()
            self.conn.close()
        except Exception:
            pass
