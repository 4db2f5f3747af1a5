#!/usr/bin/env bash
# bench/multinode.sh [BUILD_DIR] — several rtgw nodes on one redis-server (Debian's,
# installed by scripts/deps.sh test), all on loopback, measured with bench/loadgen.
# Not a test; figures go to docs/benchmarks.md by hand.
#
# Scenarios (MN_SCENARIOS, default "H1 H2 M1 M2 M3"):
#   H1  1 node, no Redis:   1,000 subs, MN_RATE msg/s (default 1000)  — the Redis hop's baseline
#   H2  1 node, Redis:      the same load through Redis
#   M1  3 nodes, Redis:     MN_SUBS subs per node (default 5000) on one topic, MN_FANRATE msg/s
#                           (default 100) published on node 0, deliveries/s and p99 across the nodes
#   M2  3 nodes, Redis:     the same subscribers, publisher as fast as acks and a 32-message
#                           window allow (fan-out ceiling)
#   M0  1 node, no Redis:   3 × MN_SUBS subs, MN_FANRATE msg/s — M1's load on one node (control)
#   M3  3 nodes, no subscriber on the publishing node: 1,000 subs on each of nodes 1 and 2, MN_RATE
#   M4  3 nodes, Redis:     MN_MAXSUBS subs per node (default 19000: the 20,000-fd limit of a
#                           process), one loadgen process per node on a channel of its own, all
#                           three publishing on node 0 at MN_MAXRATE msg/s (default 10); one
#                           result line per node
#   (the node kill is bench/node_kill.mjs)
# Every process is started here and stopped by PID. MN_DURATION (10 s) of publishing per run;
# MN_RTGW_ENV: extra RTGW_ settings for every node (e.g. RTGW_WRITER_THREADS=2).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
RTGW="$BUILD/rtgw"
LOADGEN="$BUILD/bench/loadgen"
SCEN=${MN_SCENARIOS:-"H1 H2 M0 M1 M2 M3"}
NSUB=${MN_SUBS:-5000}
RATE=${MN_RATE:-1000}
DUR=${MN_DURATION:-10}
OUT=${MN_OUT:-$(mktemp -d /tmp/rtgw-multinode.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
say() { printf '[multinode] %s\n' "$*" >&2; }
command -v redis-server >/dev/null || { say "redis-server is not installed (scripts/deps.sh test)"; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
KEY=$("$RTGW" keygen --env bench)
PB=${MN_PORT_BASE:-25000}
REDIS_PORT=$((PB + 9))
PIDS=() REDIS_PID=""

port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done; return 1; }

start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --loglevel warning >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$REDIS_PORT" || { say "redis-server did not start"; exit 1; }
}

# start_nodes N REDIS(0|1) MAXCONN — node i listens on PB+i
start_nodes() {
    local n=$1 redis=$2 maxc=$3 url=""
    [ "$redis" = 1 ] && url="RTGW_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    for i in $(seq 0 $((n - 1))); do
        env RTGW_LISTEN="127.0.0.1:$((PB + i))" RTGW_SIGNING_KEY="$KEY" RTGW_MAX_CONNECTIONS="$maxc" \
            RTGW_HTTP_THREADS=24 RTGW_LOG_LEVEL=warn RTGW_ALLOWED_ORIGINS='*' RTGW_TOKEN_MAX_TTL=3600 \
            $url ${MN_RTGW_ENV:-} \
            "$RTGW" serve --env-file /dev/null >"$OUT/node$i.$CUR.log" 2>&1 &
        PIDS+=($!)
    done
    for i in $(seq 0 $((n - 1))); do wait_port $((PB + i)) || { say "node $i did not start"; stop_all; exit 1; }; done
    sleep 0.5
}

stop_all() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
    done
    PIDS=()
    if [ -n "$REDIS_PID" ]; then kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=""; fi
    sleep 0.3
}
trap 'stop_all; exit 130' INT TERM

# run NAME NODES REDIS SUBS_PER_NODE PORTS(csv of node indexes) loadgen-args...
run() {
    CUR=$1; local n=$2 redis=$3 per=$4 idx=$5; shift 5
    [[ " $SCEN " == *" $CUR "* ]] || return 0
    [ "$redis" = 1 ] && start_redis
    start_nodes "$n" "$redis" $((per + 200))
    local ports="" pids
    for i in ${idx//,/ }; do ports="${ports:+$ports,}$((PB + i))"; done
    pids=$(IFS=,; echo "${PIDS[*]}")
    local nsub=$((per * $(echo "$idx" | tr ',' '\n' | wc -l)))
    local la; la=$(cut -d' ' -f1 /proc/loadavg)
    local line
    line=$(timeout 300 "$LOADGEN" --proto rtgw --ws-port "$ports" --pub-port "$PB" --server-pid "$pids" \
        --key "$KEY" --label "$CUR" --subs "$nsub" --concurrency 200 "$@" 2>>"$OUT/loadgen.$CUR.err" | grep '^RESULT')
    local mem=""
    [ "$redis" = 1 ] && mem=$(redis-cli -p "$REDIS_PORT" INFO memory | tr -d '\r' | sed -n 's/^used_memory:/redis_used_memory=/p')
    echo "scenario=$CUR nodes=$n redis=$redis loadavg=$la ${line#RESULT } $mem" >>"$RESULTS"
    say "$CUR: $(echo "$line" | tr ' ' '\n' | grep -E '^(connected|deliv_per_s|deliv_per_cpu_s|p50_us|p99_us|missing|dropped|samples)=' | tr '\n' ' ') $mem"
    stop_all
}

say "raw results in $OUT"
run H1 1 0 1000 0 --rate "$RATE" --duration "$DUR"
run H2 1 1 1000 0 --rate "$RATE" --duration "$DUR"
run M0 1 0 $((3 * NSUB)) 0 --rate "${MN_FANRATE:-100}" --duration "$DUR" --connect-limit 200
run M1 3 1 "$NSUB" 0,1,2 --rate "${MN_FANRATE:-100}" --duration "$DUR" --connect-limit 200
run M2 3 1 "$NSUB" 0,1,2 --duration "$DUR" --window 32 --connect-limit 200
run M3 3 1 1000 1,2 --rate "$RATE" --duration "$DUR"
# M4: three load generators at once (one per node), each on its own channel.
if [[ " $SCEN " == *" M4 "* ]]; then
    CUR=M4 MAXS=${MN_MAXSUBS:-19000}
    start_redis
    start_nodes 3 1 $((MAXS + 200))
    la=$(cut -d' ' -f1 /proc/loadavg)
    for i in 0 1 2; do
        timeout 600 "$LOADGEN" --proto rtgw --ws-port $((PB + i)) --pub-port "$PB" --server-pid "${PIDS[$i]}" \
            --key "$KEY" --label "M4.node$i" --subs "$MAXS" --concurrency 200 --connect-limit 300 \
            --topic-base $((100 + i)) --rate "${MN_MAXRATE:-10}" --duration "$DUR" \
            >"$OUT/M4.$i.out" 2>"$OUT/loadgen.M4.$i.err" &
        LG[$i]=$!
    done
    for i in 0 1 2; do wait "${LG[$i]}"; done
    mem=$(redis-cli -p "$REDIS_PORT" INFO memory | tr -d '\r' | sed -n 's/^used_memory:/redis_used_memory=/p')
    for i in 0 1 2; do
        line=$(grep '^RESULT' "$OUT/M4.$i.out")
        echo "scenario=M4 node=$i nodes=3 redis=1 loadavg=$la ${line#RESULT } $mem" >>"$RESULTS"
        say "M4 node $i: $(echo "$line" | tr ' ' '\n' | grep -E '^(connected|failed|deliv_per_s|p50_us|p99_us|missing|dropped|held|rss_end_kib)=' | tr '\n' ' ')"
    done
    stop_all
fi
cat "$RESULTS"
