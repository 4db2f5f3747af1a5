#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — what `make bench` runs.
#
# Starts each server on loopback (rtgw, the C coalescing reference `ref`, the C
# floor, the Node `ws` peer, nats-server, mosquitto), runs each scenario against it with bench/loadgen,
# stops it by PID, prints a table and rewrites the "Load benchmark" section of
# docs/benchmarks.md (the token section above it is kept). Bounded: every
# loadgen run is under `timeout`, the whole run takes a few minutes.
#
# Environment:
#   BENCH_SERVERS    servers to run (default: "rtgw ref floor node nats mosquitto")
#   BENCH_SCENARIOS  scenarios to run (default: "S1 S2 S3 S4 S5 S6 S7 S8")
#   BENCH_DURATION   seconds of publishing in S1/S2/S5/S6 (default 10)
#   BENCH_DOCS=0     print the table but leave docs/benchmarks.md alone
#   BENCH_OUT        directory for logs and raw results (default: a new /tmp dir)
#   BENCH_RTGW_ENV   extra RTGW_ settings for rtgw, e.g. "RTGW_WRITER_THREADS=2" (experiments)
#   BENCH_REF_TICK_US  the reference's coalescing interval (default 2000)
#   BENCH_S8_RATE    S8's publish rate (default 2000 msg/s to 1,000 subscribers)
#   BENCH_RTGW_BIN   the rtgw binary to run (default BUILD_DIR/rtgw): an A/B against an older build
#   BENCH_PIN        "S:L": servers on CPUs S, the load generator on CPUs L (e.g. "1:0"), so
#                    that neither preempts the other; default: both float over every CPU
#   BENCH_S4_CONNS   connections opened in S4/S4o/S4p (default 2000; 2,000 take ~0.1-0.2 s,
#                    8000 gives steadier connect rates)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SERVERS=${BENCH_SERVERS:-"rtgw ref floor node nats mosquitto"}
SCENARIOS=${BENCH_SCENARIOS:-"S1 S2 S3 S4 S5 S6 S7 S8"}
DUR=${BENCH_DURATION:-10}
S4N=${BENCH_S4_CONNS:-2000}
# BENCH_PIN="S:L": run every server on CPUs S and the load generator on CPUs L (taskset lists)
PIN_SERVER="" PIN_LOADGEN=""
if [ -n "${BENCH_PIN:-}" ]; then
    PIN_SERVER="taskset -c ${BENCH_PIN%%:*}" PIN_LOADGEN="taskset -c ${BENCH_PIN##*:}"
fi
OUT=${BENCH_OUT:-$(mktemp -d /tmp/rtgw-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"
START_TS=$(date +%s)

say() { printf '[bench] %s\n' "$*" >&2; }

# ---- build --------------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DRT_BENCH=ON >/dev/null || exit 1
fi
cmake --build "$BUILD" -j "$(nproc)" --target rtgw loadgen bench_floor bench_ref bench_tokens >"$OUT/build.log" 2>&1 ||
    { cat "$OUT/build.log"; say "build failed"; exit 1; }
RTGW="${BENCH_RTGW_BIN:-$BUILD/rtgw}"
LOADGEN="$BUILD/bench/loadgen"
FLOOR="$BUILD/bench/bench_floor"
REF="$BUILD/bench/bench_ref"

# ---- peers --------------------------------------------------------------------
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}
need_pkgs=""
for s in $SERVERS; do
    case $s in
        nats) command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need_pkgs="$need_pkgs nats-server" ;;
        mosquitto) command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_pkgs="$need_pkgs mosquitto" ;;
    esac
done
if [ -n "$need_pkgs" ]; then
    say "installing Debian packages:$need_pkgs ($( [ "$(id -u)" = 0 ] && echo 'as root' || echo 'with sudo'))"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need_pkgs >"$OUT/apt.log" 2>&1 ||
        { as_root apt-get update >>"$OUT/apt.log" 2>&1 &&
          as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need_pkgs >>"$OUT/apt.log" 2>&1; } ||
        say "could not install$need_pkgs (see $OUT/apt.log); those peers are skipped"
fi
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
# mosquitto's package starts a system broker on 1883; we use our own ports, leave it be.
NODEDIR="$ROOT/bench/peers/node-ws"
if [[ " $SERVERS " == *" node "* ]]; then
    if ! command -v node >/dev/null; then
        say "node is not installed; the Node peer is skipped"; SERVERS=${SERVERS//node/}
    elif [ ! -d "$NODEDIR/node_modules/ws" ] || [ ! -d "$NODEDIR/node_modules/express" ]; then
        say "installing the Node peer's pinned packages (npm ci in bench/peers/node-ws)"
        (cd "$NODEDIR" && npm ci --no-audit --no-fund >"$OUT/npm.log" 2>&1) ||
            { say "npm ci failed (see $OUT/npm.log); the Node peer is skipped"; SERVERS=${SERVERS//node/}; }
    fi
fi

# ---- limits -------------------------------------------------------------------
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" = unlimited ] && HARD_NOFILE=1048576
ulimit -n "$HARD_NOFILE" 2>/dev/null || true
NOFILE=$(ulimit -n)
PID_MAX=$(cat /proc/sys/kernel/pid_max)
THREADS_MAX=$(cat /proc/sys/kernel/threads-max)
MAP_COUNT=$(cat /proc/sys/vm/max_map_count)
PORTS=$(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)
say "limits: nofile=$NOFILE (hard $HARD_NOFILE) pid_max=$PID_MAX threads-max=$THREADS_MAX max_map_count=$MAP_COUNT ports=$PORTS"
# S7 capacity: as many subscribers as the fd limit lets one process hold
# (the server and the load generator each need one fd per connection).
CAP_SUBS=$((NOFILE - 300))
[ "$CAP_SUBS" -gt 60000 ] && CAP_SUBS=60000

# ---- servers ------------------------------------------------------------------
KEY=$("$RTGW" keygen --env bench)
port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
# Ports: BENCH_PORT_BASE (default 23000) + offsets, moved up by 100 while any is taken.
PB=${BENCH_PORT_BASE:-23000}
for _ in $(seq 1 20); do
    busy=0
    for off in 1 2 3 4 5 6 7 8 9 10; do port_open $((PB + off)) && busy=1; done
    [ $busy = 0 ] && break
    PB=$((PB + 100))
done
RT_PORT=$((PB + 1)) NODE_PORT=$((PB + 2)) FLOOR_WS=$((PB + 3)) FLOOR_PUB=$((PB + 4))
NATS_WS=$((PB + 5)) NATS_PUB=$((PB + 6)) MQ_WS=$((PB + 7)) MQ_PUB=$((PB + 8))
REF_WS=$((PB + 9)) REF_PUB=$((PB + 10))
SPID=""

cat >"$OUT/nats.conf" <<EOF
listen: 127.0.0.1:$NATS_PUB
max_payload: 1048576
max_connections: 100000
websocket {
  listen: "127.0.0.1:$NATS_WS"
  no_tls: true
  compression: false
}
EOF
cat >"$OUT/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
max_queued_messages 4096
listener $MQ_PUB 127.0.0.1
protocol mqtt
listener $MQ_WS 127.0.0.1
protocol websockets
EOF

wait_port() {
    for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
    return 1
}

# rtgw settings per scenario (printed in the report)
rtgw_env() { # $1 = max connections
    echo "RTGW_LISTEN=127.0.0.1:$RT_PORT RTGW_SIGNING_KEY=$KEY RTGW_MAX_CONNECTIONS=$1 RTGW_HTTP_THREADS=24 RTGW_LOG_LEVEL=warn RTGW_ALLOWED_ORIGINS=* RTGW_TOKEN_MAX_TTL=3600${BENCH_RTGW_ENV:+ $BENCH_RTGW_ENV}"
}

# start_server NAME MAXCONN — sets SPID, WSP (subscriber port), PUBP (publisher port)
start_server() {
    local name=$1 maxc=$2 log="$OUT/$1.$SCEN.log"
    for p in $RT_PORT $NODE_PORT $FLOOR_WS $FLOOR_PUB $NATS_WS $NATS_PUB $MQ_WS $MQ_PUB $REF_WS $REF_PUB; do
        if port_open "$p"; then say "port $p is taken by another process; not starting $name"; return 1; fi
    done
    case $name in
        rtgw)
            WSP=$RT_PORT PUBP=$RT_PORT
            (cd "$OUT" && exec $PIN_SERVER env $(rtgw_env "$maxc") "$RTGW" serve --env-file /dev/null) >"$log" 2>&1 &
            SPID=$! ;;
        floor)
            WSP=$FLOOR_WS PUBP=$FLOOR_PUB
            $PIN_SERVER "$FLOOR" "$FLOOR_WS" "$FLOOR_PUB" >"$log" 2>&1 &
            SPID=$! ;;
        ref)
            WSP=$REF_WS PUBP=$REF_PUB
            $PIN_SERVER "$REF" "$REF_WS" "$REF_PUB" 127.0.0.1 "${BENCH_REF_TICK_US:-2000}" >"$log" 2>&1 &
            SPID=$! ;;
        node)
            WSP=$NODE_PORT PUBP=$NODE_PORT
            PORT=$NODE_PORT LOG_LEVEL=warn $PIN_SERVER node "$NODEDIR/server.mjs" >"$log" 2>&1 &
            SPID=$! ;;
        nats)
            WSP=$NATS_WS PUBP=$NATS_PUB
            $PIN_SERVER "$NATS" -c "$OUT/nats.conf" >"$log" 2>&1 &
            SPID=$! ;;
        mosquitto)
            WSP=$MQ_WS PUBP=$MQ_PUB
            $PIN_SERVER "$MOSQ" -c "$OUT/mosquitto.conf" >"$log" 2>&1 &
            SPID=$! ;;
    esac
    if ! wait_port "$WSP" || ! wait_port "$PUBP"; then
        say "$name did not start (see $log)"; stop_server; return 1
    fi
    sleep 0.5
}

stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
    sleep 0.3
}
trap 'stop_server; exit 130' INT TERM

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run SCEN SERVER MAXCONN LIMIT_S loadgen-args...
run() {
    SCEN=$1; local name=$2 maxc=$3 limit=$4; shift 4
    start_server "$name" "$maxc" || { echo "scenario=$SCEN server=$name error=start" >>"$RESULTS"; return; }
    local la; la=$(loadavg)
    local proto=$name
    [ "$name" = mosquitto ] && proto=mqtt
    [ "$name" = ref ] && proto=floor # the reference speaks the floor's protocol
    local line
    line=$(timeout "$limit" $PIN_LOADGEN "$LOADGEN" --proto "$proto" --ws-port "$WSP" --pub-port "$PUBP" \
        --server-pid "$SPID" --key "$KEY" --label "$SCEN" "$@" 2>>"$OUT/loadgen.$SCEN.$name.err" | grep '^RESULT')
    if [ -z "$line" ]; then
        say "$SCEN $name: no result (see $OUT/loadgen.$SCEN.$name.err)"
        echo "scenario=$SCEN server=$name error=noresult" >>"$RESULTS"
    else
        echo "scenario=$SCEN server=$name loadavg=$la ${line#RESULT }" >>"$RESULTS"
        say "$SCEN $name: $(echo "$line" | tr ' ' '\n' | grep -E '^(connected|deliv_per_s|deliv_per_cpu_s|p99_us|connect_rate|rss_idle_kib|held|missing|dropped)=' | tr '\n' ' ')"
    fi
    stop_server
}

# rtgw's RSS with the smallest settings (one connection slot): the baseline for
# KiB per connection (sessions are served from the writers' epoll, so the
# worker count does not depend on it).
rtgw_baseline_rss() {
    SCEN=baseline
    start_server rtgw 1 || { echo 0; return; }
    sleep 0.5
    awk '/VmRSS/{print $2}' /proc/"$SPID"/status
    stop_server
}

has() { [[ " $SERVERS " == *" $1 "* ]]; }
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

say "servers: $SERVERS; scenarios: $SCENARIOS; raw results in $OUT"
LA0=$(loadavg)
if awk -v l="$LA0" -v n="$(nproc)" 'BEGIN{exit !(l > n)}'; then
    say "warning: load average $LA0 exceeds the $(nproc) CPUs: other work is running, figures will be noisy"
fi
RTGW_BASE_RSS=0
if has rtgw && want S3; then RTGW_BASE_RSS=$(rtgw_baseline_rss); fi
echo "$RTGW_BASE_RSS" >"$OUT/rtgw_base_rss_kib"

for s in $SERVERS; do
    want S1 && run S1 "$s" 1100 90 --subs 1000 --duration "$DUR" --window 32
    want S2 && run S2 "$s" 1100 90 --subs 1000 --rate 100 --duration "$DUR"
    want S6 && run S6 "$s" 1100 90 --subs 1000 --rate 100 --duration "$DUR" --stuck-pct 1
    want S3 && run S3 "$s" 10100 150 --subs 10000 --idle 3 --concurrency 200
    if want S4; then
        if [ "$s" = rtgw ]; then
            run S4 rtgw $((S4N + 100)) 90 --subs "$S4N" --concurrency 64 --mint-http --mint-conns 8
            run S4o rtgw $((S4N + 100)) 90 --subs "$S4N" --concurrency 64
        else
            run S4 "$s" $((S4N + 100)) 90 --subs "$S4N" --concurrency 64
        fi
        # S4p: S4 again with the server on CPU 1 and the load generator on CPU 0,
        # so that neither waits for the other's CPU (docs/benchmarks.md §3).
        if [ "$(nproc)" -ge 2 ]; then
            mint=()
            [ "$s" = rtgw ] && mint=(--mint-http --mint-conns 8)
            PIN_KEEP="$PIN_SERVER|$PIN_LOADGEN"
            PIN_SERVER="taskset -c 1" PIN_LOADGEN="taskset -c 0"
            run S4p "$s" $((S4N + 100)) 90 --subs "$S4N" --concurrency 64 "${mint[@]}"
            PIN_SERVER=${PIN_KEEP%%|*} PIN_LOADGEN=${PIN_KEEP##*|}
        fi
    fi
    want S5 && run S5 "$s" 10100 150 --subs 10000 --topics 10000 --rate 2000 --duration "$DUR" --concurrency 200
    want S8 && run S8 "$s" 1100 90 --subs 1000 --rate "${BENCH_S8_RATE:-2000}" --duration "$DUR"
    want S7 && run S7 "$s" $((CAP_SUBS + 100)) 240 --subs "$CAP_SUBS" --capacity --idle 2 --concurrency 200 --connect-limit 150
done

# ---- report -------------------------------------------------------------------
END_TS=$(date +%s)
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
KERNEL=$(uname -r)
NCPU=$(nproc)
MEM=$(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)
DATE=$(date -u +%Y-%m-%dT%H:%MZ)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "${BENCH_COMMIT:-unknown (not a git checkout)}")
DIRTY=$(git -C "$ROOT" status --porcelain -- gateway tokens 2>/dev/null | head -1)

REPORT="$OUT/report.md"
awk -v base_rss="$RTGW_BASE_RSS" -v servers="$SERVERS" -f "$ROOT/bench/report.awk" "$RESULTS" >"$OUT/table.md"
{
    echo "## Load benchmark (bench/run.sh)"
    echo
    echo "Command: \`make bench\` (runs \`bench/run.sh ${1:-build}\`), $(( (END_TS - START_TS) / 60 )) min $(( (END_TS - START_TS) % 60 )) s."
    echo "Machine: \`lscpu\` model \"$MODEL\", $NCPU CPUs, $MEM; kernel $KERNEL; $DATE; rtgw $COMMIT${DIRTY:+ (with uncommitted gateway/ changes)}."
    echo "Everything on loopback: the server and the one-thread load generator share the $NCPU CPUs${PIN_SERVER:+ (BENCH_PIN: servers on CPUs ${BENCH_PIN%%:*}, the load generator on ${BENCH_PIN##*:})}."
    want S4 && [ "$NCPU" -ge 2 ] && echo "S4p only: servers on CPU 1, the load generator on CPU 0."
    echo "Load average before each run is in the raw results; other work on the machine makes figures noisy."
    echo "Limits: nofile $NOFILE (hard $HARD_NOFILE), pid_max $PID_MAX, threads-max $THREADS_MAX, max_map_count $MAP_COUNT."
    echo
    echo "rtgw settings: \`$(rtgw_env N | sed "s/$KEY/<generated>/")\`, where N = subscribers + 100"
    echo "(no TLS: after the handshake sessions are served from the writers' epoll, civetweb keeps RTGW_HTTP_THREADS + 32 workers), other settings default"
    echo "(RTGW_QUEUE_MAX_MESSAGES 4096, RTGW_QUEUE_MAX_BYTES 8 MiB, RTGW_WRITER_THREADS 1, RTGW_SOCKET_SNDBUF 256 KiB)."
    echo "Peers: Debian's nats-server $("$NATS" --version 2>/dev/null | awk '{print $2}') (WebSocket listener) and mosquitto $("$MOSQ" -h 2>/dev/null | awk 'NR==1{print $3}') (websockets listener),"
    echo "the Node peer (bench/peers/node-ws: express + ws, node $(node --version 2>/dev/null)), the floor (bench/peers/floor.c)"
    echo "and the coalescing reference (bench/peers/ref.c, one log per topic, acks on enqueue, one send() per subscriber every ${BENCH_REF_TICK_US:-2000} µs at most)."
    echo
    cat "$OUT/table.md"
    echo
    cat "$ROOT/bench/scenarios.md"
} >"$REPORT"
cat "$REPORT"
cp "$RESULTS" "$OUT/results.raw"

if [ "${BENCH_DOCS:-1}" != 0 ]; then
    DOC="$ROOT/docs/benchmarks.md"
    awk '/^## Load benchmark/{exit} {print}' "$DOC" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$OUT/doc.head"
    { cat "$OUT/doc.head"; echo; cat "$REPORT"; echo; echo "Raw results of this run:"; echo; echo '```'; cat "$RESULTS"; echo '```'; } >"$DOC"
    say "rewrote docs/benchmarks.md"
fi
say "done in $((END_TS - START_TS)) s; raw results in $OUT"
