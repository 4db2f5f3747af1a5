#!/usr/bin/env bash
# A fake function run that reports its progress through rtgw with curl only.
#
# Lifecycle, all on one channel (default user:42):
#   topic "status": {"status":"started"}
#   topic "status": {"status":"step","step":1..3,"of":3,"name":…}   x3
#   topic "ai":     a streamed answer (datastream-start, chunk…, datastream-end)
#   topic "status": {"status":"finished","bytes":n}   (bytes of the answer)
# or, when WORKER_FAIL_AT_STEP=N, after step N-1: {"status":"failed","step":N,"error":…} and exit 1.
#
# Each status publish sends an Idempotency-Key "<run_id>:<what>", so curl's retries
# (--retry: connection refused, timeouts, 5xx) can never show an event twice.
#
# Environment: RTGW_URL (default http://127.0.0.1:8288), RTGW_SIGNING_KEY (required),
# CHANNEL (default user:42), RUN_ID (default random), WORKER_STEP_MS (default 300),
# WORKER_FAIL_AT_STEP (1..3).
set -euo pipefail

url=${RTGW_URL:-http://127.0.0.1:8288}
key=${RTGW_SIGNING_KEY:?set RTGW_SIGNING_KEY (rtgw keygen)}
channel=${CHANNEL:-user:42}
run_id=${RUN_ID:-run-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
fn_id=summarise-document
pause=$(awk "BEGIN { printf \"%.3f\", ${WORKER_STEP_MS:-300} / 1000 }")
fail_at=${WORKER_FAIL_AT_STEP:-0}

# urlencode STRING — percent-encode everything but unreserved characters.
urlencode() {
  local LC_ALL=C s=$1 out= c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in [a-zA-Z0-9.~_-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

q_channel=$(urlencode "$channel")
q_run=$(urlencode "$run_id")
endpoint="$url/v1/realtime/publish?channel=$q_channel&run_id=$q_run&fn_id=$fn_id"

# status WHAT JSON — publish one status event; prints the gateway's reply.
status() {
  local what=$1 body=$2 reply
  if ! reply=$(curl -sS --fail-with-body --retry 3 --retry-connrefused --retry-delay 1 --max-time 10 \
      -X POST "$endpoint&topic=status" \
      -H "Authorization: Bearer $key" \
      -H "Content-Type: application/json" \
      -H "Idempotency-Key: $run_id:$what" \
      --data-binary "$body"); then
    echo "worker: publishing $what failed: $reply" >&2
    return 1
  fi
  echo "worker: $what -> $reply"
}

steps=("fetch document" "split into sections" "summarise sections")
answer=("The document " "argues that " "realtime updates " "need a gateway " "that resumes "
        "without gaps — " "and names every disconnect.")

status started '{"status":"started"}'
for i in 1 2 3; do
  sleep "$pause"
  name=${steps[i - 1]}
  if [ "$i" = "$fail_at" ]; then
    err="step $i ($name) failed: simulated by WORKER_FAIL_AT_STEP"
    echo "worker: $err" >&2
    status failed "{\"status\":\"failed\",\"step\":$i,\"error\":\"$err\"}" || true
    exit 1
  fi
  status "step-$i" "{\"status\":\"step\",\"step\":$i,\"of\":3,\"name\":\"$name\"}"
done

# The streamed answer: `-T -` uploads stdin with Transfer-Encoding: chunked as it is
# produced (--data-binary @- would read all of stdin first). Content-Type text/stream
# makes the gateway forward it as datastream-start, chunk…, datastream-end.
chunk_pause=$(awk "BEGIN { printf \"%.3f\", $pause / 3 }")
reply=$(for t in "${answer[@]}"; do printf '%s' "$t"; sleep "$chunk_pause"; done |
  curl -sS --fail-with-body --max-time 60 -X POST -T - "$endpoint&topic=ai" \
    -H "Authorization: Bearer $key" \
    -H "Content-Type: text/stream")
echo "worker: streamed -> $reply"

bytes=$(printf '%s' "${answer[@]}" | wc -c)
status finished "{\"status\":\"finished\",\"bytes\":$bytes}"
