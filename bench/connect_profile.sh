#!/usr/bin/env bash
# bench/connect_profile.sh [BUILD_DIR] — one connect-rate run (S4: a mint over HTTP, then the
# WebSocket upgrade, per subscriber) against a fresh rtgw, with where its CPU went: per thread
# (/proc/<pid>/task/*/stat, in clock ticks) and for the whole machine (/proc/stat over the run).
# What docs/benchmarks.md §3 ("Connect rate") measured each step with.
#
# Environment:
#   CP_SUBS        connections (default 8000; each needs a descriptor here and in rtgw)
#   CP_CONC        connections in flight (default 64, as S4)
#   CP_MINT_CONNS  keep-alive mint connections (default 8, as S4); 0: tokens minted offline (S4o)
#   CP_TOPICS      channels the subscribers are spread over (default 1, as S4; CP_SUBS: one
#                  channel each, a new channel per connect: with Redis, a SUBSCRIBE each)
#   CP_RTGW_ENV    extra rtgw settings, e.g. "RTGW_ACCEPT_THREADS=1", or
#                  "RTGW_REDIS_URL=redis://127.0.0.1:6379" (a Redis you started) for the Redis bus
#   CP_RTGW_BIN    the rtgw binary (default BUILD_DIR/rtgw): an A/B against an older build
#   CP_REFUSED=1   every connect refused: tokens minted offline with another signing key
#                  (a flood of forged tokens); the figure is refused_rate (refusals a second)
#   CP_PERF=1      also record the busiest front-door thread with perf (cpu-clock, call graphs)
#                  into $CP_OUT/perf.data (needs perf)
#   CP_PERF_OPTS   perf's call-graph option (default -g; "--call-graph dwarf,16384" for
#                  stacks through code built without frame pointers)
#   CP_OUT         directory for the log and perf data (default: a new /tmp dir)
# Bounded: the load generator runs under `timeout 60`, rtgw is stopped at the end.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
RTGW="${CP_RTGW_BIN:-$BUILD/rtgw}"
LOADGEN="$BUILD/bench/loadgen"
SUBS=${CP_SUBS:-8000}
CONC=${CP_CONC:-64}
MINTS=${CP_MINT_CONNS:-8}
OUT=${CP_OUT:-$(mktemp -d /tmp/rtgw-connect.XXXXXX)}
mkdir -p "$OUT"

[ -x "$RTGW" ] && [ -x "$LOADGEN" ] ||
    { echo "connect_profile: build rtgw and bench/loadgen first (cmake -DRT_BENCH=ON; bench/run.sh does)" >&2; exit 2; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEY=$("$RTGW" keygen --env bench)

env RTGW_LISTEN="127.0.0.1:$PORT" RTGW_SIGNING_KEY="$KEY" RTGW_MAX_CONNECTIONS=$((SUBS + 100)) \
    RTGW_HTTP_THREADS=24 RTGW_LOG_LEVEL=warn 'RTGW_ALLOWED_ORIGINS=*' RTGW_TOKEN_MAX_TTL=3600 \
    ${CP_RTGW_ENV:-} "$RTGW" serve --env-file /dev/null >"$OUT/rtgw.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break
    sleep 0.05
done

threads() { for t in /proc/"$PID"/task/*; do echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
threads >"$OUT/threads.before"
head -1 /proc/stat >"$OUT/stat.before"
if [ "${CP_PERF:-0}" = 1 ]; then
    FD=$(grep rtgw-frontdoor "$OUT/threads.before" | head -1 | cut -d' ' -f1)
    perf record -e cpu-clock ${CP_PERF_OPTS:--g} -t "$FD" -o "$OUT/perf.data" -- sleep 3 >/dev/null 2>&1 &
    PERF=$!
    sleep 0.2
fi
mint=()
[ "$MINTS" -gt 0 ] && mint=(--mint-http --mint-conns "$MINTS")
LGKEY=$KEY
if [ "${CP_REFUSED:-0}" = 1 ]; then
    mint=()
    LGKEY=$("$RTGW" keygen --env bench) # not the gateway's: every upgrade is refused 401
fi
timeout 60 "$LOADGEN" --proto rtgw --ws-port "$PORT" --pub-port "$PORT" --server-pid "$PID" --key "$LGKEY" \
    --label S4 --subs "$SUBS" --concurrency "$CONC" --topics "${CP_TOPICS:-1}" "${mint[@]}" 2>"$OUT/loadgen.err" |
    grep '^RESULT' | tr ' ' '\n' | grep -E '^(connected|failed|connect_rate|connect_s|connect_cpu_s|loadgen_cpu_s)=' | tr '\n' ' ' |
    tee "$OUT/result.txt"
[ "${CP_REFUSED:-0}" = 1 ] && awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
    END {if (v["connect_s"] > 0) printf "refused_rate=%d refused_cpu_us=%.0f", v["failed"] / v["connect_s"], v["connect_cpu_s"] * 1e6 / v["failed"]}' "$OUT/result.txt"
echo
head -1 /proc/stat >"$OUT/stat.after"
threads >"$OUT/threads.after"
echo -n "threads (CPU ticks, connects and teardown): "
join "$OUT/threads.before" "$OUT/threads.after" | awk '{d = $5 - $3; if (d > 0) t[$2 "/" $1] += d} END {for (k in t) printf "%s=%d ", k, t[k]; print ""}'
echo -n "machine (ticks over the run): "
paste "$OUT/stat.before" "$OUT/stat.after" | awk '{n = NF / 2; split("user nice system idle iowait irq softirq steal", f, " ");
    for (i = 2; i <= 9; i++) printf "%s=%d ", f[i - 1], $(i + n) - $i; print ""}'
[ "${CP_PERF:-0}" = 1 ] && wait "$PERF" && echo "perf data: $OUT/perf.data (perf report -i $OUT/perf.data --no-children)"
exit 0
