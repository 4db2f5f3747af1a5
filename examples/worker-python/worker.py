#!/usr/bin/env python3
"""A fake function run that reports its progress through rtgw (sdk/python).

Lifecycle, all on one channel (default user:42):
  topic "status": {"status":"started"}
  topic "status": {"status":"step","step":1..3,"of":3,"name":…}   x3
  topic "ai":     a streamed answer (datastream-start, chunk…, datastream-end)
  topic "status": {"status":"finished","bytes":n}   (bytes of the answer)
or, when WORKER_FAIL_AT_STEP=N, after step N-1: {"status":"failed","step":N,"error":…} and exit 1.

Every status event carries run_id and fn_id and an Idempotency-Key "<run_id>:<what>", so a
retried publish (the worker retries when the gateway cannot be reached or answers 5xx)
never shows twice.

Environment:
  RTGW_URL            gateway origin (default http://127.0.0.1:8288)
  RTGW_SIGNING_KEY    signing key (plain or hashed)
  CHANNEL             channel to publish to (default user:42)
  RUN_ID              run id (default: random)
  WORKER_STEP_MS      pause between steps and chunks, ms (default 300)
  WORKER_FAIL_AT_STEP 1..3: fail at that step instead of finishing
"""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
import rtgw  # noqa: E402

FN_ID = "summarise-document"
STEPS = ["fetch document", "split into sections", "summarise sections"]
ANSWER = ["The document ", "argues that ", "realtime updates ", "need a gateway ", "that resumes ",
          "without gaps — ", "and names every disconnect."]


def main() -> int:
    url = os.environ.get("RTGW_URL", "http://127.0.0.1:8288")
    key = os.environ.get("RTGW_SIGNING_KEY")
    if not key:
        print("worker: set RTGW_SIGNING_KEY (rtgw keygen)", file=sys.stderr)
        return 2
    channel = os.environ.get("CHANNEL", "user:42")
    run_id = os.environ.get("RUN_ID") or "run-" + uuid.uuid4().hex[:12]
    pause = int(os.environ.get("WORKER_STEP_MS", "300")) / 1000
    fail_at = int(os.environ.get("WORKER_FAIL_AT_STEP", "0") or 0)
    client = rtgw.Client(url, signing_key=key)

    def status(what: str, data: dict) -> None:
        """Publish a status event; retry transient failures with the same idempotency key."""
        for attempt in range(4):
            try:
                r = client.publish(channel, "status", data, run_id=run_id, fn_id=FN_ID,
                                   idempotency_key=f"{run_id}:{what}")
                print(f"worker: {what} -> {r['ids'][0]}{' (duplicate)' if r.get('duplicate') else ''}")
                return
            except rtgw.RtgwError as e:
                if (e.status == 0 or e.status >= 500) and attempt < 3:
                    time.sleep(0.2 * 2 ** attempt)
                    continue
                raise

    try:
        status("started", {"status": "started"})
        for i, name in enumerate(STEPS, 1):
            time.sleep(pause)
            if i == fail_at:
                raise RuntimeError(f"step {i} ({name}) failed: simulated by WORKER_FAIL_AT_STEP")
            status(f"step-{i}", {"status": "step", "step": i, "of": len(STEPS), "name": name})

        def tokens():
            for t in ANSWER:
                yield t
                time.sleep(pause / 3)

        r = client.publish_stream(channel, "ai", tokens(), run_id=run_id, fn_id=FN_ID)
        print(f"worker: streamed {r['bytes']} bytes in {r['chunks']} chunk(s), stream {r['stream_id']}")
        status("finished", {"status": "finished", "bytes": len("".join(ANSWER).encode())})
        return 0
    except rtgw.RtgwError as e:
        print(f"worker: gateway error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the function itself failed: tell the subscribers
        print(f"worker: {e}", file=sys.stderr)
        try:
            status("failed", {"status": "failed", "step": fail_at or None, "error": str(e)})
        except rtgw.RtgwError as e2:
            print(f"worker: could not report the failure: {e2}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
