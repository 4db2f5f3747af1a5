# bench/report.awk — turns bench/run.sh's results (one "key=value ..." line per
# scenario and server) into the markdown tables of docs/benchmarks.md.
# Variables: servers (space-separated, in column order), base_rss (rtgw's RSS
# in KiB with one connection slot: the baseline of its KiB per connection).
function num(x) { return x == "" ? -1 : x + 0 }
function fmt(x, d) {
    if (x == "" || x < 0) return "–"
    if (d == "k") return x >= 1000000 ? sprintf("%.2fM", x / 1e6) : x >= 10000 ? sprintf("%.0fk", x / 1e3) : sprintf("%.0f", x)
    if (d == "ms") return x >= 100000 ? sprintf("%.0f", x / 1000) : x >= 10000 ? sprintf("%.1f", x / 1000) : sprintf("%.2f", x / 1000)
    return sprintf(d, x)
}
function ratio(a, b) { return (a < 0 || b <= 0) ? "–" : sprintf("%.2f", a / b) }
# metric value for (scenario, server, metric)
function val(sc, s, m,    base, c) {
    if (!((sc, s, "proto") in v)) return -1
    if (m == "kib_per_conn") {
        c = v[sc, s, "connected"] + 0
        if (c <= 0) return -1
        base = v[sc, s, "rss_before_kib"] + 0
        if (s == "rtgw" && base_rss + 0 > 0 && base_rss + 0 < base) base = base_rss + 0
        return (v[sc, s, "rss_idle_kib"] - base) / c
    }
    if (m == "rss_mib") return v[sc, s, "rss_end_kib"] / 1024
    # a latency with no sample in the measured window: the server fell behind the rate
    if (m ~ /^p[0-9]+_us$/ && v[sc, s, "samples"] + 0 == 0) return -1
    if (!((sc, s, m) in v)) return -1
    return v[sc, s, m] + 0
}
# best of the real peers (node, nats, mosquitto) for a metric
function best_peer(sc, m, higher,    i, s, x, b, bn) {
    b = -1; bn = ""
    for (i = 1; i <= ns; i++) {
        s = S[i]
        if (s == "rtgw" || s == "floor" || s == "ref") continue
        x = val(sc, s, m)
        if (x < 0) continue
        if (b < 0 || (higher && x > b) || (!higher && x < b)) { b = x; bn = s }
    }
    BEST_NAME = bn
    return b
}
function row(sc, label, m, d, higher,    i, line, r, f, b, q) {
    line = "| " sc " | " label
    for (i = 1; i <= ns; i++) line = line " | " fmt(val(sc, S[i], m), d)
    r = val(sc, "rtgw", m); f = val(sc, "floor", m); q = val(sc, "ref", m); b = best_peer(sc, m, higher)
    line = line " | " ratio(r, q) " | " ratio(r, f) " | " ratio(r, b) (BEST_NAME != "" ? " (" BEST_NAME ")" : "") " |"
    print line
}
function target(name, ok_val, goal, cmp, text,    ok) {
    if (ok_val == "" || ok_val < 0) { print "| " name " | " text " | – | not measured |"; return }
    ok = (cmp == ">=") ? (ok_val >= goal) : (ok_val <= goal)
    print "| " name " | " text " | " sprintf("%.2f", ok_val) " (goal " cmp " " goal ") | " (ok ? "**met**" : "**missed**") " |"
}
{
    sc = ""; s = ""
    for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "scenario") sc = kv[2]
        else if (kv[1] == "server") s = kv[2]
    }
    for (i = 1; i <= NF; i++) {
        k = substr($i, 1, index($i, "=") - 1); x = substr($i, index($i, "=") + 1)
        v[sc, s, k] = x
    }
    seen[sc, s] = 1
}
END {
    ns = split(servers, S, " ")
    hdr = "| scenario | figure"
    sep = "|---|---"
    for (i = 1; i <= ns; i++) { hdr = hdr " | " S[i]; sep = sep "|---:" }
    print hdr " | rtgw ÷ ref | rtgw ÷ floor | rtgw ÷ best peer |"
    print sep "|---:|---:|---:|"
    row("S1", "deliveries/s (1,000 subs, 1 topic, max rate)", "deliv_per_s", "k", 1)
    row("S1", "deliveries per server CPU-second", "deliv_per_cpu_s", "k", 1)
    row("S1", "publishes/s", "pub_rate", "%.0f", 1)
    row("S1", "p50 publish→receive (ms, not CO-corrected)", "p50_us", "ms", 0)
    row("S1", "p99 publish→receive (ms, not CO-corrected)", "p99_us", "ms", 0)
    row("S2", "p50 (ms) at 100 msg/s × 1,000 subs", "p50_us", "ms", 0)
    row("S2", "p99 (ms, CO-corrected)", "p99_us", "ms", 0)
    row("S2", "p99.9 (ms)", "p999_us", "ms", 0)
    row("S2", "deliveries per server CPU-second", "deliv_per_cpu_s", "k", 1)
    row("S3", "KiB per idle connection (10,000 subs)", "kib_per_conn", "%.1f", 0)
    row("S3", "connects/s while opening 10,000", "connect_rate", "k", 1)
    row("S4", "connects/s (2,000; rtgw: mint over HTTP + connect)", "connect_rate", "k", 1)
    row("S4o", "connects/s (2,000; rtgw: tokens minted offline)", "connect_rate", "k", 1)
    row("S4p", "connects/s as S4, server and load generator each on a CPU", "connect_rate", "k", 1)
    row("S5", "p99 (ms), 10,000 subs × own channel, 2,000 msg/s", "p99_us", "ms", 0)
    row("S5", "deliveries per server CPU-second", "deliv_per_cpu_s", "k", 1)
    row("S6", "healthy p99 (ms), 1% never read", "p99_us", "ms", 0)
    row("S8", "p50 (ms) at 2,000 msg/s × 1,000 subs", "p50_us", "ms", 0)
    row("S8", "p99 (ms, CO-corrected)", "p99_us", "ms", 0)
    row("S8", "deliveries/s", "deliv_per_s", "k", 1)
    row("S8", "deliveries per server CPU-second", "deliv_per_cpu_s", "k", 1)
    row("S7", "subscribers held (got a message)", "held", "%.0f", 1)
    row("S7", "RSS holding them (MiB)", "rss_mib", "%.0f", 0)
    print ""
    print "Targets (rtgw, this run):"
    print ""
    print "| target | measure | value | result |"
    print "|---|---|---:|---|"
    target("S1 vs floor", (val("S1","floor","deliv_per_cpu_s") > 0 && val("S1","rtgw","deliv_per_cpu_s") >= 0) ? val("S1","rtgw","deliv_per_cpu_s") / val("S1","floor","deliv_per_cpu_s") : -1, 0.8, ">=", "deliveries per server CPU-s ÷ floor's")
    target("S1 vs nats", (val("S1","nats","deliv_per_cpu_s") > 0 && val("S1","rtgw","deliv_per_cpu_s") >= 0) ? val("S1","rtgw","deliv_per_cpu_s") / val("S1","nats","deliv_per_cpu_s") : -1, 1.5, ">=", "deliveries per server CPU-s ÷ nats-server's")
    target("S2 p99", (val("S2","floor","p99_us") > 0 && val("S2","rtgw","p99_us") >= 0) ? val("S2","rtgw","p99_us") / val("S2","floor","p99_us") : -1, 1.2, "<=", "p99 ÷ floor's p99")
    target("S1 vs ref", (val("S1","ref","deliv_per_s") > 0 && val("S1","rtgw","deliv_per_s") >= 0) ? val("S1","rtgw","deliv_per_s") / val("S1","ref","deliv_per_s") : -1, 1, ">=", "deliveries/s ÷ ref's")
    target("S1 p99 vs ref", (val("S1","ref","p99_us") > 0 && val("S1","rtgw","p99_us") >= 0) ? val("S1","rtgw","p99_us") / val("S1","ref","p99_us") : -1, 3, "<=", "p99 ÷ ref's p99")
    target("S8 tail", (val("S8","rtgw","p50_us") > 0 && val("S8","rtgw","p99_us") >= 0) ? val("S8","rtgw","p99_us") / val("S8","rtgw","p50_us") : -1, 10, "<=", "p99 ÷ p50 at 2,000 msg/s × 1,000")
    target("S3 memory", val("S3","rtgw","kib_per_conn"), 20, "<=", "KiB per idle connection")
    target("S4 connects", (val("S4","nats","connect_rate") > 0 && val("S4","rtgw","connect_rate") >= 0) ? val("S4","rtgw","connect_rate") / val("S4","nats","connect_rate") : -1, 2, ">=", "connects/s (with mint) ÷ nats-server's")
    target("S4p connects", (val("S4p","nats","connect_rate") > 0 && val("S4p","rtgw","connect_rate") >= 0) ? val("S4p","rtgw","connect_rate") / val("S4p","nats","connect_rate") : -1, 2, ">=", "the same, each side on a CPU of its own")
    target("S6 isolation", (val("S2","rtgw","p99_us") > 0 && val("S6","rtgw","p99_us") >= 0) ? val("S6","rtgw","p99_us") / val("S2","rtgw","p99_us") : -1, 1.2, "<=", "healthy p99 with 1% stuck ÷ S2 p99")
    target("S7 capacity", val("S7","rtgw","held"), 20000, ">=", "subscribers held")
    print ""
    print "Delivery check (every reader of every run; missing counts messages a subscriber never got,"
    print "dropped counts readers the server disconnected):"
    print ""
    print "| scenario | server | connected | failed | published | missing | dup | out of order | dropped | stuck kicked | load avg |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    split("S1 S2 S3 S4 S4o S4p S5 S6 S7 S8", SC, " ")
    for (j = 1; j <= 10; j++) for (i = 1; i <= ns; i++) {
        sc = SC[j]; s = S[i]
        if (!((sc, s) in seen)) continue
        if ((sc, s, "error") in v) { print "| " sc " | " s " | " v[sc, s, "error"] " | | | | | | | | |"; continue }
        print "| " sc " | " s " | " v[sc,s,"connected"] " | " v[sc,s,"failed"] " | " v[sc,s,"published"] " | " v[sc,s,"missing"] " | " v[sc,s,"dup"] " | " v[sc,s,"ooo"] " | " v[sc,s,"dropped"] " | " v[sc,s,"stuck_closed"] " | " v[sc,s,"loadavg"] " |"
    }
}
