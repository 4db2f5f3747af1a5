"""examples/worker-python and examples/worker-shell against a real rtgw process.

Each example runs as a subprocess while an SSE reader collects the channel's events;
the test asserts the lifecycle order and content. Run one case:
  RTGW_BIN=build/rtgw python3 tests/examples/test_examples.py TestWorkerShell.test_lifecycle
"""

import os
import shutil
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pygateway import ROOT, Gateway, SSECollector, free_port  # noqa: E402

ANSWER = ("The document argues that realtime updates need a gateway that resumes "
          "without gaps \u2014 and names every disconnect.")
STEPS = ["fetch document", "split into sections", "summarise sections"]


class WorkerCases:
    """The cases, run once per example (the Test* classes below); not a TestCase itself."""

    cmd = None  # set by each example's class

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway().start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()

    def setUp(self):
        self.channel = f"user:{uuid.uuid4().hex[:8]}"
        self.run_id = f"run-{uuid.uuid4().hex[:8]}"
        self.col = SSECollector(self.gw.url, self.gw.mint(self.channel, ["*"]))
        self.addCleanup(self.col.close)
        self.assertEqual(self.col.status, 200)
        self.col.wait_for(lambda e: e, 5, "the subscribe ack")

    def run_worker(self, url=None, key=None, **env):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RTGW_URL": url or self.gw.url,
             "RTGW_SIGNING_KEY": key or self.gw.key, "CHANNEL": self.channel, "RUN_ID": self.run_id,
             "WORKER_STEP_MS": "60", **env}
        return subprocess.run(self.cmd, env=e, capture_output=True, text=True, timeout=30)

    def events_until(self, last_status):
        def done(evs):
            return any(x.get("topic") == "status" and x["data"].get("status") == last_status for x in evs)
        self.col.wait_for(done, 10, f"status {last_status}")
        return self.col.data_events()

    def test_lifecycle(self):
        p = self.run_worker()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        evs = self.events_until("finished")
        for e in evs:
            self.assertEqual((e["channel"], e["run_id"], e["fn_id"]), (self.channel, self.run_id, "summarise-document"))
        statuses = [e["data"] for e in evs if e["kind"] == "data"]
        self.assertEqual(statuses[0], {"status": "started"})
        self.assertEqual(statuses[1:4], [{"status": "step", "step": i, "of": 3, "name": n}
                                         for i, n in enumerate(STEPS, 1)])
        self.assertEqual(statuses[4], {"status": "finished", "bytes": len(ANSWER.encode())})
        self.assertEqual(len(statuses), 5)
        # Order: started, 3 steps, the stream, finished.
        kinds = [e["kind"] if e["kind"] != "data" else e["data"]["status"] for e in evs]
        self.assertEqual(kinds[:4], ["started", "step", "step", "step"])
        self.assertEqual(kinds[4], "datastream-start")
        self.assertEqual(kinds[-2:], ["datastream-end", "finished"])
        self.assertEqual(set(kinds[5:-2]), {"chunk"})
        stream = [e for e in evs if e["topic"] == "ai"]
        self.assertEqual(len({e["stream_id"] for e in stream}), 1)
        self.assertEqual("".join(e["data"] for e in stream if e["kind"] == "chunk"), ANSWER)
        # Positions are strictly increasing within the channel.
        offs = [int(e["id"].rsplit("-", 1)[1]) for e in evs]
        self.assertEqual(offs, sorted(offs))

    def test_failure_reported(self):
        p = self.run_worker(WORKER_FAIL_AT_STEP="2")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("step 2", p.stderr)
        evs = self.events_until("failed")
        self.assertEqual([e["data"]["status"] for e in evs], ["started", "step", "failed"])
        failed = evs[-1]["data"]
        self.assertEqual(failed["step"], 2)
        self.assertIn("split into sections", failed["error"])
        self.assertFalse([e for e in evs if e["topic"] == "ai"], "no answer is streamed after a failure")

    def test_rerun_same_run_id_is_deduplicated(self):
        p = self.run_worker(WORKER_FAIL_AT_STEP="3")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.events_until("failed")
        # A retry of the same run: started, step-1 and step-2 carry the same idempotency
        # keys, so subscribers do not see them again.
        p = self.run_worker(WORKER_FAIL_AT_STEP="3")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("duplicate", p.stdout)
        evs = self.col.data_events()
        self.assertEqual([e["data"]["status"] for e in evs], ["started", "step", "step", "failed"])

    def test_bad_key_fails_clearly(self):
        p = self.run_worker(key="signkey-test-" + "22" * 32)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unauthorized", p.stdout + p.stderr)
        self.assertNotIn("22" * 32, p.stdout + p.stderr, "the key is never printed")
        self.assertEqual(self.col.data_events(), [])

    def test_gateway_unreachable_fails_clearly(self):
        port = free_port()
        p = self.run_worker(url=f"http://127.0.0.1:{port}")
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout + p.stderr, rf"(?i)(127\.0\.0\.1:{port}|refused|connect)")


class TestWorkerPython(WorkerCases, unittest.TestCase):
    cmd = [sys.executable, os.path.join(ROOT, "examples", "worker-python", "worker.py")]


@unittest.skipUnless(shutil.which("curl") and shutil.which("bash"), "needs curl and bash")
class TestWorkerShell(WorkerCases, unittest.TestCase):
    cmd = ["bash", os.path.join(ROOT, "examples", "worker-shell", "worker.sh")]


if __name__ == "__main__":
    unittest.main()
