"""sdk/python (the rtgw package) against a real rtgw process.

Run one case:  python3 tests/sdk-python/test_rtgw.py TestClient.test_publish_json_and_str
Run all:       python3 tests/sdk-python/test_rtgw.py
CTest registers every `    def test_…` as its own entry (tests/sdk-python/CMakeLists.txt).
Events are read back over SSE (/v1/realtime/sse), which is plain HTTP.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pygateway import Gateway, SSECollector, free_port  # noqa: E402  (also puts sdk/python on sys.path)

import rtgw  # noqa: E402

MAX_BODY = 65536


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def unique(prefix="user"):
    return f"{prefix}:{uuid.uuid4().hex[:10]}"


class GatewayCase(unittest.TestCase):
    gw = None

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(env={"RTGW_MAX_BODY_BYTES": str(MAX_BODY)}).start()

    @classmethod
    def tearDownClass(cls):
        if cls.gw:
            cls.gw.stop()

    def setUp(self):
        self.client = rtgw.Client(self.gw.url, signing_key=self.gw.key, timeout=5)
        self.channel = unique()

    def sse(self, token):
        col = SSECollector(self.gw.url, token)
        self.addCleanup(col.close)
        self.assertEqual(col.status, 200, "SSE subscribe refused")
        col.wait_for(lambda evs: evs and evs[0]["kind"] == "rtgw.subscribed", 5, "the subscribe ack")
        return col

    def wait_data(self, col, n, timeout=5):
        col.wait_for(lambda evs: len([e for e in evs if e["kind"] != "rtgw.subscribed"]) >= n, timeout,
                     f"{n} events")
        return col.data_events()


class TestMint(GatewayCase):
    def test_offline_token_subscribes(self):
        tok = rtgw.mint_token(self.gw.key, self.channel, ["ai", "status"])
        col = self.sse(tok)
        ack = col.events[0]
        self.assertEqual(ack["topics"], [{"channel": self.channel, "name": "ai"},
                                         {"channel": self.channel, "name": "status"}])
        self.client.publish(self.channel, "ai", {"n": 1})
        self.client.publish(self.channel, "other", {"n": 2})  # not granted: must not arrive
        self.client.publish(self.channel, "status", {"n": 3})
        evs = self.wait_data(col, 2)
        time.sleep(0.2)
        self.assertEqual([(e["topic"], e["data"]) for e in col.data_events()],
                         [("ai", {"n": 1}), ("status", {"n": 3})])
        self.assertEqual(evs[0]["channel"], self.channel)

    def test_offline_token_shape_matches_gateway(self):
        mine = rtgw.mint_token(self.gw.key, self.channel, "ai", ttl=120, publish=True)
        theirs = self.client.get_token(self.channel, ["ai"], ttl=120, publish=True)
        mh, mc = b64url_json(mine.split(".")[0]), b64url_json(mine.split(".")[1])
        th, tc = b64url_json(theirs.split(".")[0]), b64url_json(theirs.split(".")[1])
        self.assertEqual(mh, th, "same header, kid included")
        self.assertEqual(sorted(mc), sorted(tc), "same claim names")
        for k in ("iss", "sub", "env", "topics", "publish"):
            self.assertEqual(mc[k], tc[k], k)
        self.assertEqual(mc["exp"] - mc["iat"], 120)
        self.assertEqual(len(base64.urlsafe_b64decode(mc["jti"] + "==")), 16)
        self.assertNotIn("=", mine)
        # The derivation spelled out independently (docs/protocol.md §2).
        raw = bytes.fromhex(self.gw.key.rsplit("-", 1)[1])
        self.assertEqual(mh["kid"], hmac.new(raw, b"rtgw/v1/kid/HS256", hashlib.sha256).digest()[:8].hex())
        secret = hmac.new(raw, b"rtgw/v1/hs256", hashlib.sha256).digest()
        h, c, s = theirs.split(".")
        expect = base64.urlsafe_b64encode(hmac.new(secret, f"{h}.{c}".encode(), hashlib.sha256).digest())
        self.assertEqual(s, expect.rstrip(b"=").decode(), "the gateway's token verifies with the derived secret")

    def test_offline_publish_token_publishes(self):
        col = self.sse(rtgw.mint_token(self.gw.key, self.channel, "ai"))
        worker = rtgw.Client(self.gw.url, token=rtgw.mint_token(self.gw.key, self.channel, "ai", publish=True))
        r = worker.publish(self.channel, "ai", {"from": "token"})
        self.assertTrue(r["ok"])
        self.assertEqual(self.wait_data(col, 1)[0]["data"], {"from": "token"})
        with self.assertRaises(rtgw.RtgwError) as cm:
            worker.publish(self.channel, "elsewhere", 1)
        self.assertEqual((cm.exception.status, cm.exception.error), (403, "topic_not_allowed"))
        reader = rtgw.Client(self.gw.url, token=rtgw.mint_token(self.gw.key, self.channel, "ai"))
        with self.assertRaises(rtgw.RtgwError) as cm:
            reader.publish(self.channel, "ai", 1)
        self.assertEqual((cm.exception.status, cm.exception.error), (403, "topic_not_allowed"))

    def test_offline_token_wrong_key_or_issuer_refused(self):
        other = rtgw.mint_token("signkey-test-" + "ab" * 32, self.channel, "ai")
        with self.assertRaises(rtgw.RtgwError) as cm:
            self.client.subscribe_sse(other)
        self.assertEqual(cm.exception.status, 401)
        self.assertTrue(cm.exception.error.startswith("token_"), cm.exception.error)
        with self.assertRaises(rtgw.RtgwError) as cm:
            self.client.subscribe_sse(rtgw.mint_token(self.gw.key, self.channel, "ai", issuer="someone-else"))
        self.assertEqual((cm.exception.status, cm.exception.error), (401, "token_wrong_issuer"))

    def test_mint_rejects_bad_input(self):
        for bad in ("", "signkey-test-abc", "sk-test-" + "00" * 32, "signkey-TEST-" + "00" * 32,
                    "signkey-test-" + "00" * 16):
            with self.assertRaises(ValueError, msg=bad):
                rtgw.mint_token(bad, "c", "t")
        with self.assertRaises(ValueError):
            rtgw.mint_token(self.gw.key, "c", [])
        with self.assertRaises(ValueError):
            rtgw.mint_token(self.gw.key, "", "t")

    def test_hash_signing_key_accepted(self):
        hashed = rtgw.hash_signing_key(self.gw.key)
        env, hexpart = self.gw.key.split("-")[1], self.gw.key.split("-")[2]
        self.assertEqual(hashed, f"signkey-{env}-" + hashlib.sha256(bytes.fromhex(hexpart)).hexdigest())
        self.assertNotEqual(hashed, self.gw.key)
        hc = rtgw.Client(self.gw.url, signing_key=hashed)
        col = self.sse(hc.get_token(self.channel, "ai"))
        self.assertTrue(hc.publish(self.channel, "ai", "via hashed key")["ok"])
        self.assertEqual(self.wait_data(col, 1)[0]["data"], "via hashed key")
        # Hashing the hash is not accepted: the gateway checks exactly two forms.
        with self.assertRaises(rtgw.RtgwError) as cm:
            rtgw.Client(self.gw.url, signing_key=rtgw.hash_signing_key(hashed)).publish(self.channel, "ai", 1)
        self.assertEqual(cm.exception.status, 401)

    def test_get_token_ttl(self):
        tok = self.client.get_token(self.channel, ["ai"], ttl=300)
        c = b64url_json(tok.split(".")[1])
        self.assertEqual(c["exp"] - c["iat"], 300)
        self.assertEqual(c["topics"], [{"channel": self.channel, "name": "ai", "kind": "run"}])
        self.assertFalse(c["publish"])
        with self.assertRaises(ValueError):
            rtgw.Client(self.gw.url).get_token(self.channel, "ai")


class TestClient(GatewayCase):
    def test_publish_json_and_str(self):
        col = self.sse(rtgw.mint_token(self.gw.key, self.channel, "*"))
        replies = [
            self.client.publish(self.channel, "ai", {"status": "step", "step": 3}, run_id="r1", fn_id="f1"),
            self.client.publish(self.channel, "ai", [1, "two", None]),
            self.client.publish(self.channel, "ai", "plain text, not JSON"),
            self.client.publish(self.channel, "ai", '{"already":"json"}'),
            self.client.publish(self.channel, "ai", "h\u00e9llo \u2603"),
            self.client.publish(self.channel, "ai", 42),
        ]
        for r in replies:
            self.assertTrue(r["ok"])
            self.assertEqual(len(r["ids"]), 1)
        evs = self.wait_data(col, 6)
        self.assertEqual([e["data"] for e in evs],
                         [{"status": "step", "step": 3}, [1, "two", None], "plain text, not JSON",
                          {"already": "json"}, "h\u00e9llo \u2603", 42])
        self.assertEqual([e["id"] for e in evs], [r["ids"][0] for r in replies])
        self.assertEqual((evs[0]["run_id"], evs[0]["fn_id"]), ("r1", "f1"))
        self.assertNotIn("run_id", evs[1], "absent fields are omitted, never null")

    def test_idempotency_key_dedupes(self):
        col = self.sse(rtgw.mint_token(self.gw.key, self.channel, "ai"))
        first = self.client.publish(self.channel, "ai", {"step": 1}, idempotency_key="run-1-step-1")
        again = self.client.publish(self.channel, "ai", {"step": 1}, idempotency_key="run-1-step-1")
        other = self.client.publish(self.channel, "ai", {"step": 2}, idempotency_key="run-1-step-2")
        self.assertNotIn("duplicate", first)
        self.assertTrue(again.get("duplicate"))
        self.assertEqual(again["ids"], first["ids"])
        self.assertNotEqual(other["ids"], first["ids"])
        evs = self.wait_data(col, 2)
        time.sleep(0.2)
        self.assertEqual([e["data"] for e in col.data_events()], [{"step": 1}, {"step": 2}])

    def test_publish_batch_per_event_results(self):
        col = self.sse(rtgw.mint_token(self.gw.key, self.channel, "*"))
        r = self.client.publish_batch([
            {"channel": self.channel, "topic": "a", "data": {"i": 1}, "run_id": "r9"},
            {"channel": self.channel, "topic": "*", "data": {"i": 2}},  # wildcard: refused
            {"channel": self.channel, "topic": "b", "data": "text", "idempotency_key": "k"},
            {"channel": self.channel, "topic": "b", "data": "text", "idempotency_key": "k"},
            {"channel": "", "topic": "b", "data": 3},  # bad name: refused
        ])
        self.assertEqual((r["published"], r["failed"]), (3, 2), r)
        res = r["results"]
        self.assertEqual([x["ok"] for x in res], [True, False, True, True, False])
        self.assertEqual(res[1]["error"], "bad_request")
        self.assertEqual(res[2]["id"], res[3]["id"], "the idempotency key dedupes inside a batch")
        evs = self.wait_data(col, 2)
        time.sleep(0.2)
        self.assertEqual([(e["topic"], e["data"]) for e in col.data_events()], [("a", {"i": 1}), ("b", "text")])
        self.assertEqual(evs[0]["run_id"], "r9")

    def test_publish_stream_delivered(self):
        col = self.sse(rtgw.mint_token(self.gw.key, self.channel, "ai"))
        pieces = ["The ", "answer ", "is ", "forty-two", " \u2014 ", "\u00e9t\u00e9 \U0001F600", "."]

        def gen():
            for p in pieces:
                yield p
                time.sleep(0.05)

        r = self.client.publish_stream(self.channel, "ai", gen(), run_id="r-stream")
        self.assertTrue(r["ok"], r)
        text = "".join(pieces)
        self.assertEqual(r["bytes"], len(text.encode()))
        evs = col.wait_for(lambda e: any(x["kind"] == "datastream-end" for x in e), 5, "datastream-end")[1:]
        kinds = [e["kind"] for e in evs]
        self.assertEqual(kinds[0], "datastream-start")
        self.assertEqual(kinds[-1], "datastream-end")
        self.assertEqual(set(kinds[1:-1]), {"chunk"})
        self.assertEqual(len(kinds) - 2, r["chunks"])
        self.assertEqual({e["stream_id"] for e in evs}, {r["stream_id"]})
        self.assertEqual("".join(e["data"] for e in evs if e["kind"] == "chunk"), text)
        self.assertEqual(evs[0]["run_id"], "r-stream")

    def test_bad_key_unauthorized(self):
        bad = rtgw.Client(self.gw.url, signing_key="signkey-test-" + "11" * 32)
        for call in (lambda: bad.publish(self.channel, "ai", 1),
                     lambda: bad.get_token(self.channel, "ai"),
                     lambda: bad.publish_batch([{"channel": self.channel, "topic": "ai", "data": 1}]),
                     lambda: bad.publish_stream(self.channel, "ai", ["x"])):
            with self.assertRaises(rtgw.RtgwError) as cm:
                call()
            e = cm.exception
            self.assertEqual((e.status, e.error), (401, "unauthorized"))
            self.assertTrue(e.message)
            self.assertNotIn("11" * 32, str(e))
        nokey = rtgw.Client(self.gw.url)
        with self.assertRaises(rtgw.RtgwError) as cm:
            nokey.publish(self.channel, "ai", 1)
        self.assertEqual(cm.exception.status, 401)

    def test_unreachable_gateway(self):
        port = free_port()  # nothing listens there
        c = rtgw.Client(f"http://127.0.0.1:{port}", signing_key=self.gw.key, timeout=2)
        t0 = time.monotonic()
        with self.assertRaises(rtgw.RtgwError) as cm:
            c.publish(self.channel, "ai", 1)
        e = cm.exception
        self.assertEqual((e.status, e.error), (0, "unreachable"))
        self.assertIn(f"http://127.0.0.1:{port}/v1/realtime/publish", e.message)
        self.assertIn("refused", e.message.lower())
        self.assertLess(time.monotonic() - t0, 3)
        with self.assertRaises(rtgw.RtgwError) as cm:
            c.subscribe_sse("x.y.z")
        self.assertEqual(cm.exception.status, 0)
        self.assertIn(f"127.0.0.1:{port}", cm.exception.message)
        self.assertNotIn("x.y.z", cm.exception.message, "the token is not echoed")

    def test_body_too_large(self):
        with self.assertRaises(rtgw.RtgwError) as cm:
            self.client.publish(self.channel, "ai", "x" * (MAX_BODY + 1))
        self.assertEqual((cm.exception.status, cm.exception.error), (413, "body_too_large"))
        self.assertIn("RTGW_MAX_BODY_BYTES", cm.exception.message)
        with self.assertRaises(rtgw.RtgwError) as cm:
            self.client.publish_batch([{"channel": self.channel, "topic": "ai", "data": "y" * MAX_BODY}])
        self.assertEqual((cm.exception.status, cm.exception.error), (413, "body_too_large"))
        # Exactly at the limit is accepted.
        self.assertTrue(self.client.publish(self.channel, "ai", "z" * MAX_BODY)["ok"])

    def test_subscribe_sse_iterator(self):
        tok = self.client.get_token(self.channel, ["ai"])
        first = self.client.publish(self.channel, "ai", {"before": True})["ids"][0]
        with self.client.subscribe_sse(tok, timeout=5) as stream:
            it = iter(stream)
            ack = next(it)
            self.assertEqual(ack["kind"], "rtgw.subscribed")
            self.assertEqual(stream.last_event, "rtgw.subscribed")
            self.client.publish(self.channel, "ai", {"after": True})
            ev = next(it)
            self.assertEqual(ev["data"], {"after": True})
            self.assertEqual(stream.last_id, ev["id"])
        # Resume from the first event: the second is replayed.
        with self.client.subscribe_sse(tok, since=first, timeout=5) as stream:
            it = iter(stream)
            ack = next(it)
            self.assertTrue(ack["recovered"])
            self.assertEqual(next(it)["data"], {"after": True})
        with self.assertRaises(rtgw.RtgwError) as cm:
            self.client.subscribe_sse("not-a-token")
        self.assertEqual(cm.exception.status, 401)


# Debian's interpreter, the one scripts/deps.sh gives pip, setuptools and wheel.
SYSTEM_PY = "/usr/bin/python3"
SDK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python")


class TestInstall(unittest.TestCase):
    """sdk/python installs with pip, offline (PyPI is not reachable), and is typed."""

    def test_pip_install_offline_typed(self):
        import shutil
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory(prefix="rtgw-pip-") as d:
            src, target = os.path.join(d, "src"), os.path.join(d, "site")
            # A copy: a build writes build/ and *.egg-info next to pyproject.toml.
            shutil.copytree(SDK, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            r = subprocess.run([SYSTEM_PY, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                "--no-cache-dir", "--disable-pip-version-check", "--target", target, src],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(target, "rtgw", "py.typed")), os.listdir(target))
            meta = [f for f in os.listdir(target) if f.endswith(".dist-info")]
            self.assertEqual(meta, ["rtgw-0.1.0.dist-info"])
            # The installed copy works on its own (not sdk/python from the tree), and every public
            # function and method has annotated parameters and return.
            probe = (
                "import inspect, rtgw, typing\n"
                "assert rtgw.__file__.startswith(%r), rtgw.__file__\n"
                "k = 'signkey-test-' + '11' * 32\n"
                "assert rtgw.mint_token(k, 'c', ['t']).count('.') == 2\n"
                "bad = []\n"
                "objs = [getattr(rtgw, n) for n in rtgw.__all__]\n"
                "fns = [o for o in objs if inspect.isfunction(o)]\n"
                "fns += [m for o in objs if inspect.isclass(o) for n, m in vars(o).items()\n"
                "        if inspect.isfunction(m) and (not n.startswith('_') or n == '__init__')]\n"
                "for f in fns:\n"
                "    sig = inspect.signature(f)\n"
                "    for p in list(sig.parameters.values())[1 if '.' in f.__qualname__ else 0:]:\n"
                "        if p.annotation is p.empty: bad.append(f.__qualname__ + ':' + p.name)\n"
                "    if sig.return_annotation is sig.empty: bad.append(f.__qualname__ + ' return')\n"
                "    typing.get_type_hints(f)\n"
                "assert not bad, bad\n"
                "print(len(fns))\n") % os.path.join(target, "rtgw")
            r = subprocess.run([SYSTEM_PY, "-c", probe], capture_output=True, text=True, timeout=60,
                               cwd=d, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": target})
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertGreaterEqual(int(r.stdout), 8)


if __name__ == "__main__":
    unittest.main()
