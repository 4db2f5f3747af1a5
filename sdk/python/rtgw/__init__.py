"""rtgw — Python client for the rtgw realtime gateway (standard library only).

rtgw speaks the Inngest Realtime wire protocol (see docs/protocol.md). This module
lets a Python backend or worker:

* mint subscription tokens **offline** from the signing key (:func:`mint_token`),
  exactly as the gateway does, so no round trip is needed per user;
* compute the hashed form of a signing key that Inngest SDKs send as Bearer
  (:func:`hash_signing_key`);
* talk to a running gateway over HTTP (:class:`Client`): mint tokens, publish
  events (one, a batch, or a streamed body), and read events over Server-Sent
  Events (:meth:`Client.subscribe_sse`).

Every HTTP failure is raised as :class:`RtgwError` carrying the HTTP status and the
gateway's stable JSON error name (``unauthorized``, ``body_too_large``, …). A gateway
that cannot be reached raises ``RtgwError(0, "unreachable", …)`` naming the URL.

Python 3.8+; tested on 3.11. No third-party packages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "RtgwError",
    "Client",
    "SSEStream",
    "mint_token",
    "hash_signing_key",
    "parse_signing_key",
]

__version__ = "0.1.0"

_KEY_RE = re.compile(r"^signkey-([a-z0-9_]{1,64})-([0-9a-fA-F]+)$")

Topics = Union[str, Sequence[str]]


class RtgwError(Exception):
    """An error from the gateway, or from reaching it.

    Attributes:
        status: the HTTP status (401, 413, …), or 0 when no HTTP reply was received
            (connection refused, DNS failure, timeout, connection reset).
        error: the gateway's stable error name from its JSON body
            (``{"error": "...", "message": "..."}``), e.g. ``"unauthorized"``,
            ``"body_too_large"``, ``"topic_not_allowed"``; ``"unreachable"`` or
            ``"timeout"`` when status is 0; ``"http_<status>"`` when the body was not
            the gateway's JSON (e.g. an HTML page from a proxy).
        message: a human-readable explanation (never contains a key or token).
        body: the raw reply body (bytes), if any.
    """

    def __init__(self, status: int, error: str, message: str, body: bytes = b"") -> None:
        super().__init__(f"{status} {error}: {message}" if status else f"{error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.body = body

    def __repr__(self) -> str:
        return f"RtgwError({self.status!r}, {self.error!r}, {self.message!r})"


# --------------------------------------------------------------------------------
# keys and tokens (offline)


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def parse_signing_key(key: str) -> Tuple[str, bytes]:
    """Split ``signkey-<env>-<hex>`` into ``(env, raw_key_bytes)``.

    Raises ValueError if the key is not in that form (the hex part must decode to
    32-256 bytes, <env> is 1-64 characters of ``[a-z0-9_]``).
    """
    if not isinstance(key, str):
        raise ValueError("signing key must be a str")
    m = _KEY_RE.match(key.strip())
    if not m:
        raise ValueError("signing key must look like signkey-<env>-<hex> (make one with `rtgw keygen`)")
    env, hexpart = m.group(1), m.group(2)
    if len(hexpart) % 2:
        raise ValueError("signing key hex part has an odd length")
    raw = bytes.fromhex(hexpart)
    if not 32 <= len(raw) <= 256:
        raise ValueError("signing key hex part must decode to 32-256 bytes")
    return env, raw


def hash_signing_key(key: str) -> str:
    """Return the hashed form of a signing key, as Inngest SDKs send it.

    ``signkey-<env>-`` + lowercase hex of SHA-256 over the hex-decoded key. The
    gateway accepts this form as ``Authorization: Bearer`` just like the plain key,
    so a worker can be given only the hash (it can publish and mint through the
    gateway, but cannot mint offline: that needs the plain key).
    """
    env, raw = parse_signing_key(key)
    return f"signkey-{env}-{hashlib.sha256(raw).hexdigest()}"


def _derive(raw: bytes, label: bytes) -> bytes:
    return hmac.new(raw, label, hashlib.sha256).digest()


def _topics_list(topics: Topics) -> List[str]:
    if isinstance(topics, str):
        return [topics]
    out = list(topics)
    if not out:
        raise ValueError("at least one topic is required")
    for t in out:
        if not isinstance(t, str) or not t:
            raise ValueError("topics must be non-empty strings")
    return out


def mint_token(
    signing_key: str,
    channel: str,
    topics: Topics,
    ttl: int = 60,
    publish: bool = False,
    issuer: str = "rtgw",
    sub: Optional[str] = None,
    now: Optional[int] = None,
) -> str:
    """Mint an HS256 subscription token offline, exactly as the gateway would.

    Args:
        signing_key: the plain ``signkey-<env>-<hex>`` (the hashed form cannot mint).
        channel: the channel the token grants, e.g. ``"user:42"``.
        topics: a topic name or a list of names; ``"*"`` grants every topic of the channel.
        ttl: lifetime in seconds (the gateway refuses tokens longer than
            ``RTGW_TOKEN_MAX_TTL`` when minting, and checks ``exp`` on use).
        publish: the token may also publish to its topics.
        issuer: must match the gateway's ``RTGW_TOKEN_ISSUER`` (default ``rtgw``).
        sub: the subject claim (default: the channel).
        now: issue time in Unix seconds (default: now); for tests.

    Returns the compact JWT. The gateway must run with ``RTGW_TOKEN_ALG=HS256`` (the
    default) and the same signing key (or have it as its fallback key).

    Derivation (docs/protocol.md §2): secret = HMAC-SHA256(hex_decode(<hex>),
    "rtgw/v1/hs256"); kid = hex of the first 8 bytes of HMAC-SHA256(hex_decode(<hex>),
    "rtgw/v1/kid/HS256").
    """
    env, raw = parse_signing_key(signing_key)
    if not isinstance(channel, str) or not channel:
        raise ValueError("channel must be a non-empty string")
    names = _topics_list(topics)
    ttl = int(ttl)
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    secret = _derive(raw, b"rtgw/v1/hs256")
    kid = _derive(raw, b"rtgw/v1/kid/HS256")[:8].hex()
    iat = int(time.time()) if now is None else int(now)
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = {
        "iss": issuer,
        "sub": sub if sub is not None else channel,
        "iat": iat,
        "exp": iat + ttl,
        "jti": _b64url(os.urandom(16)),
        "env": env,
        "topics": [{"channel": channel, "name": n, "kind": "run"} for n in names],
        "publish": bool(publish),
    }
    enc = lambda o: _b64url(json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signing_input = f"{enc(header)}.{enc(claims)}"
    sig = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(sig)}"


# --------------------------------------------------------------------------------
# HTTP client


def _encode_data(data: Any) -> bytes:
    """A publish body: str/bytes as is, anything else JSON-encoded."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Client:
    """An HTTP client for one gateway.

    Args:
        base_url: the gateway's origin, e.g. ``"http://127.0.0.1:8288"`` or
            ``"https://rt.example.com"`` (paths are resolved at the root, like the
            official clients do).
        signing_key: the signing key (plain or hashed) — needed to mint tokens through
            the gateway, and to publish to any channel.
        token: a token minted with ``publish=True`` — an alternative to the key for
            publishing (only to the topics it grants).
        timeout: seconds for connecting and for each read.

    Methods raise :class:`RtgwError` on any failure.
    """

    def __init__(self, base_url: str, signing_key: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = 10) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        self.base_url = f"{u.scheme}://{u.netloc}"
        self.signing_key = signing_key
        self.token = token
        self.timeout = timeout

    # ---- plumbing

    def _credential(self) -> Optional[str]:
        return self.signing_key or self.token

    def _url(self, path: str, query: Optional[Sequence[Tuple[str, Any]]] = None) -> str:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode([(k, v) for k, v in query if v is not None])
        return url

    def _request(self, method: str, path: str, query: Optional[Sequence[Tuple[str, Any]]] = None,
                 body: Optional[Union[bytes, Iterable[bytes]]] = None,
                 headers: Optional[Mapping[str, str]] = None,
                 credential: Optional[str] = None) -> Any:
        url = self._url(path, query)
        h = {"Accept": "application/json", "User-Agent": f"rtgw-python/{__version__}"}
        cred = credential if credential is not None else self._credential()
        if cred:
            h["Authorization"] = f"Bearer {cred}"
        if headers:
            h.update(headers)
        req = urllib.request.Request(url, data=body, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise _http_error(e.code, _safe_read(e), e.reason) from None
        except urllib.error.URLError as e:
            raise RtgwError(0, "unreachable", f"cannot reach the gateway at {url}: {e.reason}") from e
        except (socket.timeout, TimeoutError) as e:
            raise RtgwError(0, "timeout", f"no reply from {url} within {self.timeout} s") from e
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise RtgwError(0, "unreachable", f"connection to {url} failed: {e!r}") from e
        return _parse_json(raw)

    # ---- API

    def get_token(self, channel: str, topics: Topics, ttl: Optional[int] = None,
                  publish: bool = False) -> str:
        """Mint a token through the gateway (``POST /v1/realtime/token``) and return the JWT.

        Needs the signing key. ``ttl`` defaults to the gateway's ``RTGW_TOKEN_TTL``.
        """
        if not self.signing_key:
            raise ValueError("get_token needs the signing key (Client(..., signing_key=...))")
        body: Dict[str, Any] = {"topics": [{"channel": channel, "name": n, "kind": "run"}
                                           for n in _topics_list(topics)]}
        if ttl is not None:
            body["ttl"] = int(ttl)
        if publish:
            body["publish"] = True
        reply = self._request("POST", "/v1/realtime/token", body=_encode_data(body),
                              headers={"Content-Type": "application/json"}, credential=self.signing_key)
        return reply["jwt"]

    def publish(self, channel: str, topic: str, data: Any, run_id: Optional[str] = None,
                fn_id: Optional[str] = None, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Publish one event (``POST /v1/realtime/publish``).

        ``data``: a dict/list/number/bool/None is sent as JSON; a str (or bytes) is
        sent as is — the gateway embeds it as JSON if it parses, otherwise as a string.
        ``idempotency_key``: a retry with the same key (per channel and topic, within
        ``RTGW_IDEMPOTENCY_WINDOW``) publishes nothing and returns the original ids with
        ``"duplicate": True``.

        Returns the gateway's reply, e.g. ``{"ok": True, "ids": ["…"], "delivered": 1}``.
        """
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        q = [("channel", channel), ("topic", topic), ("run_id", run_id), ("fn_id", fn_id)]
        return self._request("POST", "/v1/realtime/publish", query=q, body=_encode_data(data),
                             headers=headers)

    def publish_batch(self, events: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
        """Publish many events in one request (``POST /v1/realtime/publish/batch``).

        ``events``: dicts with ``channel``, ``topic``, ``data`` and optionally
        ``run_id``, ``fn_id``, ``idempotency_key``. Each event is validated,
        authorised and published on its own; the reply is
        ``{"results": [{"ok": True, "id": …, "delivered": n} | {"ok": False, "error": …,
        "message": …}, …], "published": n, "failed": m}`` in the order given. A failed
        event does not raise; a failure of the whole request (bad key, too large) does.
        """
        evs = []
        for ev in events:
            if not isinstance(ev, dict):
                raise ValueError("each batch event must be a dict")
            evs.append({k: v for k, v in ev.items() if v is not None or k == "data"})
        return self._request("POST", "/v1/realtime/publish/batch", body=_encode_data(evs),
                             headers={"Content-Type": "application/json"})

    def publish_stream(self, channel: str, topic: str, chunks: Iterable[Union[str, bytes]],
                       run_id: Optional[str] = None, fn_id: Optional[str] = None) -> Dict[str, Any]:
        """Stream a body to subscribers as it is produced (e.g. LLM tokens).

        Sends ``Content-Type: text/stream`` with ``Transfer-Encoding: chunked``; each
        item of ``chunks`` goes on the wire as soon as the iterable yields it. Extended
        subscribers (SSE, or WebSocket with ``rtgw.v1``) get ``datastream-start``, then
        ``chunk`` frames (the gateway reads up to 1 KiB at a time, so adjacent small
        chunks may arrive merged; it never splits a UTF-8 sequence), then
        ``datastream-end``. The official Inngest clients do not get stream frames.

        Returns ``{"ok": True, "stream_id": …, "chunks": n, "bytes": n}``.
        """
        def body() -> Iterator[bytes]:
            for c in chunks:
                b = _encode_data(c) if isinstance(c, (str, bytes, bytearray)) else None
                if b is None:
                    raise TypeError("publish_stream chunks must be str or bytes")
                if b:  # an empty chunk would end a chunked body early
                    yield b

        headers = {"Content-Type": "text/stream", "Transfer-Encoding": "chunked"}
        q = [("channel", channel), ("topic", topic), ("run_id", run_id), ("fn_id", fn_id)]
        return self._request("POST", "/v1/realtime/publish", query=q, body=body(), headers=headers)

    def subscribe_sse(self, token: str, since: Optional[Union[str, Sequence[str]]] = None,
                      timeout: Optional[float] = None) -> "SSEStream":
        """Open ``GET /v1/realtime/sse?token=…`` and return an :class:`SSEStream`.

        Iterate it to get each event as a dict (``{"kind": "data", …}``, the
        ``rtgw.subscribed`` ack first, stream frames, ``{"kind": "closing"}``). ``since``
        is an event id (or one per channel) to resume after. ``timeout`` bounds each
        read (default: the client's); the gateway sends a keep-alive every
        ``RTGW_PING_INTERVAL_MS``, so it should exceed that. Use it as a context manager
        or call ``close()``.
        """
        q: List[tuple] = [("token", token)]
        if since:
            for s in ([since] if isinstance(since, str) else since):
                q.append(("since", s))
        return SSEStream(self._url("/v1/realtime/sse", q), self.timeout if timeout is None else timeout)


def _safe_read(e: urllib.error.HTTPError) -> bytes:
    try:
        return e.read() or b""
    except Exception:  # the connection may already be gone
        return b""


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _http_error(status: int, raw: bytes, reason: Any = "") -> RtgwError:
    try:
        j = json.loads(raw)
        if isinstance(j, dict) and isinstance(j.get("error"), str):
            return RtgwError(status, j["error"], str(j.get("message", "")), raw)
    except ValueError:
        pass
    text = raw.decode("utf-8", "replace").strip()[:200]
    return RtgwError(status, f"http_{status}", f"{reason}: {text}" if text else str(reason), raw)


class SSEStream:
    """A Server-Sent Events subscription; iterate it for event dicts.

    Attributes after each event: ``last_id`` (the last ``id:`` seen, for resuming),
    ``last_event`` (the SSE ``event:`` name, or ``"message"``).
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.last_id: Optional[str] = None
        self.last_event: Optional[str] = None
        self._closed = False
        req = urllib.request.Request(url, headers={"Accept": "text/event-stream",
                                                   "User-Agent": f"rtgw-python/{__version__}"})
        safe = re.sub(r"token=[^&]+", "token=…", url)
        try:
            self._resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise _http_error(e.code, _safe_read(e), e.reason) from None
        except urllib.error.URLError as e:
            raise RtgwError(0, "unreachable", f"cannot reach the gateway at {safe}: {e.reason}") from e
        except (socket.timeout, TimeoutError) as e:
            raise RtgwError(0, "timeout", f"no reply from {safe} within {timeout} s") from e

    def __enter__(self) -> "SSEStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the gateway notices and ends the subscription).

        Safe to call from another thread while one is iterating: the socket is shut
        down first, which wakes a blocked read (the iterator then just ends).
        """
        self._closed = True
        try:
            self._resp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # already closed, or not a plain socket
            pass
        try:
            self._resp.close()
        except Exception:
            pass

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        data: List[str] = []
        event = None
        while True:
            try:
                line = self._resp.readline()
            except Exception as e:
                if self._closed:  # close() from another thread; http.client may fail in odd ways
                    return
                if isinstance(e, (socket.timeout, TimeoutError)):
                    raise RtgwError(0, "timeout", "no SSE data (not even a keep-alive) within the timeout") from e
                if isinstance(e, (OSError, http.client.HTTPException)):
                    raise RtgwError(0, "unreachable", f"the SSE connection failed: {e!r}") from e
                raise
            if not line:
                return
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    self.last_event = event or "message"
                    text = "\n".join(data)
                    try:
                        yield json.loads(text)
                    except ValueError:
                        yield {"kind": "raw", "event": self.last_event, "data": text}
                data, event = [], None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
            elif field == "id":
                self.last_id = value
