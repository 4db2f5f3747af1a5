#!/usr/bin/env bash
# bench/queue_depth.sh [BUILD_DIR] — where S8's backlog sits: starts rtgw, runs loadgen at
# QD_RATE msg/s (default 2000) to 1,000 subscribers for QD_SECS (default 20) and samples
# rtgw's /metrics every 50 ms. Frames queued in rtgw (all subscribers) = rtgw_deliveries_total
# − rtgw_frames_written_total; prints loadgen's latency next to that depth's distribution.
# Extra RTGW_ settings in QD_ENV. Not a test; rtgw and the sampler are stopped by PID.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
RATE=${QD_RATE:-2000} SECS=${QD_SECS:-20} PORT=${QD_PORT:-26011}
OUT=$(mktemp -d /tmp/rtgw-qdepth.XXXXXX)
KEY=$("$B/rtgw" keygen --env bench)
ulimit -n "$(ulimit -Hn)"
env RTGW_LISTEN=127.0.0.1:$PORT RTGW_SIGNING_KEY="$KEY" RTGW_MAX_CONNECTIONS=1100 RTGW_HTTP_THREADS=24 \
    RTGW_LOG_LEVEL=warn RTGW_ALLOWED_ORIGINS='*' RTGW_TOKEN_MAX_TTL=3600 ${QD_ENV:-} \
    "$B/rtgw" serve --env-file /dev/null >"$OUT/rtgw.log" 2>&1 &
P=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
sleep 0.3
(while kill -0 $P 2>/dev/null; do
    curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/metrics" |
        awk '/^rtgw_deliveries_total /{d=$2} /^rtgw_frames_written_total /{w=$2} END{if (d != "") print d - w}'
    sleep 0.05
done) >"$OUT/depth" &
SP=$!
"$B/bench/loadgen" --proto rtgw --ws-port $PORT --pub-port $PORT --server-pid $P --key "$KEY" --label QD \
    --subs 1000 --rate "$RATE" --duration "$SECS" 2>"$OUT/loadgen.err" | grep '^RESULT' >"$OUT/result"
kill -TERM $P; wait $P; kill $SP 2>/dev/null; wait $SP 2>/dev/null
echo "loadavg before: see the caller; raw in $OUT"
tr ' ' '\n' <"$OUT/result" | grep -E '^(pub_rate|cpu_s|p50_us|p99_us|max_us|loadgen_cpu_s|missing)=' | paste -sd' '
sort -n "$OUT/depth" | awk '{a[NR]=$1} END{if (NR) print "frames queued in rtgw (all subscribers): samples="NR" p50="a[int(NR*0.5)+1]" p90="a[int(NR*0.9)]" p99="a[int(NR*0.99)]" max="a[NR]}'
