/*
 * bus_redis.c — the Redis bus: one logical gateway across several nodes.
 *
 * Keys of channel C (they share the hash tag {C}, so a Redis Cluster keeps
 * them in one slot):
 *   rtgw:{C}:stream      the history: a stream, entries {t: topic, x: "1" for
 *                        extended-only frames, e: the event JSON without "id"},
 *                        bounded by RTGW_HISTORY_MAX (XADD MAXLEN ~) and
 *                        RTGW_HISTORY_MAX_AGE (XTRIM MINID ~ now-age);
 *   rtgw:{C}:epoch       the channel's epoch (hex), random, set when absent, and
 *                        lost with the stream (both expire together after the
 *                        history age, and both vanish on a flush), so a position
 *                        from lost history is always detected;
 *   rtgw:{C}:idem:<n>:<topic>:<key>  "<epoch> <stream id>" of a publish with an
 *                        Idempotency-Key, for the idempotency window;
 *   rtgw:{C}:live        the pub/sub channel: "<epoch>\n<id>\n<topic>\n<x>\n<json>".
 *
 * A publish is ONE Lua script (EVALSHA, EVAL on NOSCRIPT): idempotency check,
 * XADD, trim, PUBLISH — atomic, so the stream order is the live order. The
 * stream id ms-seq becomes the position's offset ms * 2^20 + seq (monotonic,
 * not contiguous), computed here in C (Lua numbers are doubles). Every node
 * therefore names an event with the same id.
 *
 * Threads: publishes and history reads use a small pool of blocking
 * connections (one request at a time each). One thread owns a connection in
 * SUBSCRIBE mode, subscribed to exactly the channels this node wants (the
 * hub's interest hook, plus in-flight subscribes); it frames each live event
 * once (adding "id") and hands it to the hub. After a reconnect it
 * resubscribes, then fills each channel's gap from its stream, starting after
 * the last position the hub delivered; the hub drops what it already has.
 *
 * Lock order: hub channel lock → bus lock (the interest hook). The bus lock is
 * never held while calling the hub or doing I/O.
 */
#include "bus.h"
#include "log.h"
#include "map.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* ---- scripts ---- */

/* KEYS: stream, epoch, idem. ARGV: live channel, maxlen, max age ms, topic,
 * ext, json, use idem ("1"), idem window ms, epoch if new, key ttl ms.
 * Returns {duplicate 0|1, epoch, stream id}. */
static const char script_publish[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then ep = ARGV[9]; redis.call('SET', KEYS[2], ep, 'PX', ARGV[10]) end\n"
    "if ARGV[7] == '1' then\n"
    "  if not redis.call('SET', KEYS[3], '-', 'NX', 'PX', ARGV[8]) then\n"
    "    local prev = redis.call('GET', KEYS[3])\n"
    "    local sp = prev and string.find(prev, ' ', 1, true)\n"
    "    if sp then return {1, string.sub(prev, 1, sp - 1), string.sub(prev, sp + 1)} end\n"
    "  end\n"
    "end\n"
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', ARGV[4], 'x', "
    "ARGV[5], 'e', ARGV[6])\n"
    "local t = redis.call('TIME')\n"
    "local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])\n"
    "if minid > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', minid)) "
    "end\n"
    "if ARGV[7] == '1' then redis.call('SET', KEYS[3], ep .. ' ' .. id, 'PX', ARGV[8]) end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[10])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[10])\n"
    "redis.call('PUBLISH', ARGV[1], ep .. '\\n' .. id .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[5] .. "
    "'\\n' .. ARGV[6])\n"
    "return {0, ep, id}\n";

/* KEYS: stream, epoch. ARGV[1]: "1" to read the whole epoch when no candidate
 * matches; ARGV[2..]: "<epoch> <start id>" candidates ("0-0": from the start).
 * Returns {epoch or "", coverage, last id or "", entries} with coverage
 * -1 no candidate of this epoch, 0 history lost after it, 1 covered (entries
 * after it), 2 no candidate matched and entries are the whole epoch. */
static const char script_read[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then return {'', -1, '', {}} end\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "local lastid = ''\n"
    "if #last > 0 then lastid = last[1][1] end\n"
    "local start = nil\n"
    "for i = 2, #ARGV do\n"
    "  local sp = string.find(ARGV[i], ' ', 1, true)\n"
    "  if sp and string.sub(ARGV[i], 1, sp - 1) == ep then start = string.sub(ARGV[i], sp + 1); "
    "break end\n"
    "end\n"
    "local whole = 1\n"
    "if not start then\n"
    "  if ARGV[1] ~= '1' then return {ep, -1, lastid, {}} end\n"
    "  start = '0-0'; whole = 2\n"
    "end\n"
    "if start == '0-0' then\n"
    "  local covered = whole\n"
    "  if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "    local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
    "    local len, added = -1, -2\n"
    "    for j = 1, #info, 2 do\n"
    "      if info[j] == 'length' then len = info[j + 1] elseif info[j] == 'entries-added' then "
    "added = info[j + 1] end\n"
    "    end\n"
    "    if len ~= added and whole == 1 then covered = 0 end\n"
    "  end\n"
    "  return {ep, covered, lastid, redis.call('XRANGE', KEYS[1], '-', '+')}\n"
    "end\n"
    "local r = redis.call('XRANGE', KEYS[1], start, '+')\n"
    "if #r == 0 or r[1][1] ~= start then return {ep, 0, lastid, {}} end\n"
    "table.remove(r, 1)\n"
    "return {ep, 1, lastid, r}\n";

/* KEYS: stream, epoch. ARGV: epoch if new, key ttl ms. Returns {epoch, last id or ""}. */
static const char script_position[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then ep = ARGV[1]; redis.call('SET', KEYS[2], ep, 'PX', ARGV[2]) end\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "if #last > 0 then return {ep, last[1][1]} end\n"
    "return {ep, ''}\n";

enum { SCRIPT_PUBLISH, SCRIPT_READ, SCRIPT_POSITION, SCRIPT__COUNT };
static const char *const scripts[SCRIPT__COUNT] = {script_publish, script_read, script_position};

/* ---- state ---- */

typedef struct {
    pthread_mutex_t lock;
    redisContext *c;
    uint64_t gen; /* the bus generation it was opened in */
    char sha[SCRIPT__COUNT][41];
} pconn_t;

typedef struct {
    char *name; /* the rtgw channel */
    size_t nlen;
    int refs;        /* holds: the hub's interest + in-flight attaches */
    bool sent;       /* SUBSCRIBE is the last command sent on this connection */
    int outstanding; /* (un)subscribe replies still due on this connection */
    bool dirty;      /* queued for the subscriber thread */
    bool gapfill;    /* fill from the stream once confirmed (after a reconnect) */
} chan_t;

typedef struct {
    rt_bus_t base; /* first: rt_bus_t * ↔ rbus_t * */
    rt_bus_redis_opts_t o;
    char *url_copy;
    rt_redis_url_t url;
    char where[300]; /* redis://host:port/db, for logs (no password) */
    int64_t ttl_ms;  /* stream and epoch keys expire after this idle time */
    pconn_t *pool;
    int npool;
    atomic_uint rr;
    atomic_ullong gen; /* bumped when the subscriber connection drops */
    atomic_bool up;
    atomic_bool stop;
    int evfd; /* wakes the subscriber thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* chans, dirty, connected */
    pthread_cond_t cond;  /* confirmations */
    rt_map_t chans;       /* name → chan_t* */
    chan_t **dirty;
    size_t ndirty, dcap;
    bool connected;
    rt_metrics_t *m;
} rbus_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- URL ---- */

bool rt_redis_tls_supported(void)
{
    return false; /* Debian 12's libhiredis 0.14 ships no hiredis_ssl */
}

static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            char hx[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hx, &end, 16);
            if (*end || v == 0)
                return -1;
            c = (int)v;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

int rt_redis_url_parse(const char *url, rt_redis_url_t *u, char *err, size_t errcap)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        u->tls = true;
    } else {
        snprintf(
            err, errcap,
            "RTGW_REDIS_URL: must start with redis:// (e.g. redis://:password@127.0.0.1:6379/0)");
        return -1;
    }
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *ue = colon ? colon : at;
        if (pct_decode(p, (size_t)(ue - p), u->user, sizeof(u->user)) != 0 ||
            (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), u->password,
                                 sizeof(u->password)) != 0)) {
            snprintf(err, errcap,
                     "RTGW_REDIS_URL: the user or password part is too long or badly %%-encoded");
            return -1;
        }
        if (!colon) { /* redis://password@host: a bare word before @ is the password */
            memcpy(u->password, u->user,
                   sizeof(u->password) < sizeof(u->user) ? sizeof(u->password) : sizeof(u->user));
            u->user[0] = 0;
        }
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    const char *hs = p, *port = NULL;
    size_t hn = hl;
    if (hl && p[0] == '[') {
        const char *rb = memchr(p, ']', hl);
        if (!rb) {
            snprintf(err, errcap, "RTGW_REDIS_URL: unterminated [IPv6] host");
            return -1;
        }
        hs = p + 1;
        hn = (size_t)(rb - p - 1);
        if (rb + 1 < p + hl) {
            if (rb[1] != ':') {
                snprintf(err, errcap, "RTGW_REDIS_URL: expected :port after ]");
                return -1;
            }
            port = rb + 2;
        }
    } else {
        const char *c = memchr(p, ':', hl);
        if (c) {
            hn = (size_t)(c - p);
            port = c + 1;
        }
    }
    if (hn == 0 || hn >= sizeof(u->host)) {
        snprintf(err, errcap, "RTGW_REDIS_URL: has no host (e.g. redis://127.0.0.1:6379/0)");
        return -1;
    }
    memcpy(u->host, hs, hn);
    u->host[hn] = 0;
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);
        if (end == port || end != p + hl || v < 1 || v > 65535) {
            snprintf(err, errcap, "RTGW_REDIS_URL: the port is not a number in 1-65535");
            return -1;
        }
        u->port = (int)v;
    }
    if (slash && slash[1]) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (*end || v < 0 || v > 100000) {
            snprintf(err, errcap, "RTGW_REDIS_URL: the database after / is not a number (e.g. /0)");
            return -1;
        }
        u->db = (int)v;
    }
    return 0;
}

/* ---- keys ---- */

/* "rtgw:{<channel>}:<suffix>" in a new buffer (caller frees); NULL on OOM. */
static char *key_of(const char *ch, size_t chl, const char *suffix, size_t *len)
{
    size_t sl = strlen(suffix), n = 6 + chl + 2 + sl;
    char *k = malloc(n + 1);
    if (!k)
        return NULL;
    memcpy(k, "rtgw:{", 6);
    memcpy(k + 6, ch, chl);
    memcpy(k + 6 + chl, "}:", 2);
    memcpy(k + 8 + chl, suffix, sl);
    k[n] = 0;
    if (len)
        *len = n;
    return k;
}

/* The rtgw channel of a pub/sub channel name "rtgw:{C}:live". */
static bool channel_of_live(const char *s, size_t n, rt_slice_t *out)
{
    if (n < 12 || memcmp(s, "rtgw:{", 6) != 0 || memcmp(s + n - 6, "}:live", 6) != 0)
        return false;
    out->base = s + 6;
    out->len = n - 12;
    return true;
}

/* ---- positions ↔ stream ids ---- */

static bool parse_stream_id(const char *s, size_t n, uint64_t *offset)
{
    uint64_t ms = 0, seq = 0;
    size_t i = 0;
    for (; i < n && s[i] != '-'; i++) {
        if (s[i] < '0' || s[i] > '9' || ms > (UINT64_MAX - 9) / 10)
            return false;
        ms = ms * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || i >= n)
        return false;
    for (i++; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || seq > (1u << 20))
            return false;
        seq = seq * 10 + (uint64_t)(s[i] - '0');
    }
    if (seq >= (1u << 20) || ms >= (UINT64_C(1) << 43))
        return false;
    *offset = (ms << 20) | seq;
    return true;
}

static void stream_id_of(uint64_t offset, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIu64 "-%" PRIu64, offset >> 20, offset & ((1u << 20) - 1));
}

static bool parse_epoch(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 16)
        return false;
    uint64_t e = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        e = e * 16 + (uint64_t)v;
    }
    *out = e;
    return e != 0;
}

static void new_epoch(char *out, size_t cap)
{
    uint64_t e = 0;
    while (e == 0) {
        randombytes_buf(&e, sizeof(e));
        e >>= 16; /* the same width as the hub's own epochs */
    }
    snprintf(out, cap, "%" PRIx64, e);
}

/* The WebSocket frame of an event: its JSON (without "id") plus "id". */
static rt_frame_t *frame_with_id(const char *json, size_t len, uint64_t epoch, uint64_t offset)
{
    if (len < 2 || json[len - 1] != '}')
        return NULL;
    char ps[RT_POS_MAX];
    int pl = rt_pos_format((rt_pos_t){epoch, offset}, ps, sizeof(ps));
    size_t n = len - 1 + 7 + (size_t)pl + 2;
    char stackbuf[4096];
    char *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
    if (!buf)
        return NULL;
    memcpy(buf, json, len - 1);
    size_t o = len - 1;
    memcpy(buf + o, ",\"id\":\"", 7);
    o += 7;
    memcpy(buf + o, ps, (size_t)pl);
    o += (size_t)pl;
    memcpy(buf + o, "\"}", 2);
    o += 2;
    rt_frame_t *f = rt_event_ws_frame(buf, o);
    if (buf != stackbuf)
        free(buf);
    return f;
}

/* ---- connections ---- */

static bool is_auth_error(const char *s)
{
    return strncmp(s, "WRONGPASS", 9) == 0 || strncmp(s, "NOAUTH", 6) == 0 ||
           strstr(s, "invalid password") || strstr(s, "invalid username") ||
           strstr(s, "AUTH <password> called without") || strstr(s, "without any password");
}

/* Open and authenticate a connection. 0; -1 unreachable (err says why);
 * -2 Redis refused the credentials or the database (a configuration error). */
static int conn_open(rbus_t *b, redisContext **out, char *err, size_t errcap)
{
    *out = NULL;
    struct timeval tv = {(time_t)(b->o.timeout_ms / 1000),
                         (suseconds_t)((b->o.timeout_ms % 1000) * 1000)};
    redisContext *c = redisConnectWithTimeout(b->url.host, b->url.port, tv);
    if (!c || c->err) {
        snprintf(err, errcap, "cannot connect to %s: %s", b->where,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    redisReply *r;
    if (b->url.password[0]) {
        if (b->url.user[0])
            r = redisCommand(c, "AUTH %s %s", b->url.user, b->url.password);
        else
            r = redisCommand(c, "AUTH %s", b->url.password);
    } else {
        r = redisCommand(c, "PING");
    }
    int rc = 0;
    if (!r) {
        snprintf(err, errcap, "lost the connection to %s during AUTH: %s", b->where, c->errstr);
        rc = -1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        bool auth = is_auth_error(r->str);
        char q[200];
        snprintf(q, sizeof(q), "%.*s", (int)(r->len < 150 ? r->len : 150), r->str);
        if (auth)
            snprintf(
                err, errcap,
                "RTGW_REDIS_URL: Redis at %s refused the credentials (%s); put the right password "
                "in the URL: redis://:PASSWORD@host:port/db",
                b->where, q);
        else
            snprintf(err, errcap, "RTGW_REDIS_URL: Redis at %s answered an error: %s", b->where, q);
        rc = auth ? -2 : -1;
    }
    freeReplyObject(r);
    if (rc == 0 && b->url.db) {
        r = redisCommand(c, "SELECT %d", b->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errcap, "RTGW_REDIS_URL: Redis at %s refused database %d: %s", b->where,
                     b->url.db, r ? r->str : c->errstr);
            rc = r ? -2 : -1;
        }
        freeReplyObject(r);
    }
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void set_up(rbus_t *b, bool up)
{
    atomic_store(&b->up, up);
    if (b->m)
        atomic_store(&b->m->bus_up, up ? 1 : 0);
}

static void bus_error(rbus_t *b)
{
    if (b->m)
        atomic_fetch_add_explicit(&b->m->bus_errors, 1, memory_order_relaxed);
}

static pconn_t *pool_get(rbus_t *b)
{
    unsigned start = atomic_fetch_add(&b->rr, 1);
    for (int i = 0; i < b->npool; i++) {
        pconn_t *p = &b->pool[(start + (unsigned)i) % (unsigned)b->npool];
        if (pthread_mutex_trylock(&p->lock) == 0)
            return p;
    }
    pconn_t *p = &b->pool[start % (unsigned)b->npool];
    pthread_mutex_lock(&p->lock);
    return p;
}

static void pconn_drop(pconn_t *p)
{
    if (p->c)
        redisFree(p->c);
    p->c = NULL;
    for (int i = 0; i < SCRIPT__COUNT; i++)
        p->sha[i][0] = 0;
}

/* Make p usable; caller holds p->lock. While the subscriber connection is
 * down the bus is down: fail fast rather than wait for timeouts. */
static int pconn_ready(rbus_t *b, pconn_t *p)
{
    if (!atomic_load(&b->up))
        return RT_BUS_EUNAVAIL;
    uint64_t gen = atomic_load(&b->gen);
    if (p->c && (p->gen != gen || p->c->err))
        pconn_drop(p); /* opened before the last outage: its server may be gone */
    if (p->c)
        return 0;
    char err[1024];
    if (conn_open(b, &p->c, err, sizeof(err)) != 0) {
        bus_error(b);
        rt_log_debug("redis command connection failed", "detail=\"%s\"", err);
        return RT_BUS_EUNAVAIL;
    }
    p->gen = gen;
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        redisReply *r = redisCommand(p->c, "SCRIPT LOAD %s", scripts[i]);
        if (r && r->type == REDIS_REPLY_STRING && r->len == 40)
            memcpy(p->sha[i], r->str, 41);
        freeReplyObject(r);
    }
    return 0;
}

/* Run a script on p (EVALSHA, EVAL on NOSCRIPT). Returns the reply (caller
 * frees) or NULL with the connection dropped on I/O error. An error reply is
 * returned as such. */
static redisReply *run_script(pconn_t *p, int which, int nkeys, int nargs, const char **argv,
                              const size_t *lens)
{
    const char *av[64];
    size_t al[64];
    char nk[16];
    int n = 0;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool sha = attempt == 0 && p->sha[which][0];
        if (attempt == 0 && !sha)
            attempt = 1;
        n = 0;
        av[n] = sha ? "EVALSHA" : "EVAL";
        al[n++] = strlen(av[0]);
        av[n] = sha ? p->sha[which] : scripts[which];
        al[n++] = strlen(av[1]);
        av[n] = nk;
        al[n++] = strlen(nk);
        for (int i = 0; i < nargs && n < 64; i++) {
            av[n] = argv[i];
            al[n++] = lens[i];
        }
        redisReply *r = redisCommandArgv(p->c, n, av, al);
        if (!r) {
            pconn_drop(p);
            return NULL;
        }
        if (sha && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            p->sha[which][0] = 0; /* Redis restarted without it: EVAL caches it again */
            continue;
        }
        return r;
    }
    return NULL;
}

/* ---- channel holds (bus lock held) ---- */

static void wake_thread(rbus_t *b)
{
    uint64_t one = 1;
    ssize_t w = write(b->evfd, &one, sizeof(one));
    (void)w; /* a full counter already wakes it */
}

static chan_t *chan_get(rbus_t *b, rt_slice_t ch, bool create)
{
    chan_t *c = rt_map_get(&b->chans, ch.base, ch.len);
    if (c || !create)
        return c;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->name = malloc(ch.len + 1);
    if (!c->name || rt_map_put(&b->chans, ch.base, ch.len, c) != 0) {
        free(c->name);
        free(c);
        return NULL;
    }
    memcpy(c->name, ch.base, ch.len);
    c->name[ch.len] = 0;
    c->nlen = ch.len;
    return c;
}

static void chan_mark_dirty(rbus_t *b, chan_t *c)
{
    if (c->dirty)
        return;
    if (b->ndirty == b->dcap) {
        size_t nc = b->dcap ? b->dcap * 2 : 32;
        chan_t **nd = realloc(b->dirty, nc * sizeof(*nd));
        if (!nd)
            return; /* picked up at the next reconnect; rare OOM */
        b->dirty = nd;
        b->dcap = nc;
    }
    b->dirty[b->ndirty++] = c;
    c->dirty = true;
    wake_thread(b);
}

static int hold_locked(rbus_t *b, rt_slice_t ch, chan_t **out)
{
    chan_t *c = chan_get(b, ch, true);
    if (!c)
        return RT_BUS_ENOMEM;
    if (c->refs++ == 0)
        chan_mark_dirty(b, c);
    if (out)
        *out = c;
    return 0;
}

static void release_locked(rbus_t *b, rt_slice_t ch)
{
    chan_t *c = chan_get(b, ch, false);
    if (!c || c->refs == 0)
        return;
    if (--c->refs == 0)
        chan_mark_dirty(b, c);
}

/* Free c if nothing refers to it and Redis holds no subscription for it. */
static void chan_maybe_free_locked(rbus_t *b, chan_t *c)
{
    if (c->refs || c->sent || c->outstanding || c->dirty)
        return;
    rt_map_del(&b->chans, c->name, c->nlen);
    free(c->name);
    free(c);
}

static void interest_hook(void *ctx, rt_slice_t channel, bool active)
{
    rbus_t *b = ctx;
    pthread_mutex_lock(&b->lock);
    if (active)
        hold_locked(b, channel, NULL);
    else
        release_locked(b, channel);
    pthread_mutex_unlock(&b->lock);
}

static bool confirmed_locked(rbus_t *b, const chan_t *c)
{
    return b->connected && c->sent && c->outstanding == 0 && !c->dirty;
}

static int redis_subscribe_channel(rt_bus_t *bus, rt_slice_t channel)
{
    rbus_t *b = (rbus_t *)bus;
    pthread_mutex_lock(&b->lock);
    chan_t *c;
    int rc = hold_locked(b, channel, &c);
    if (rc != 0) {
        pthread_mutex_unlock(&b->lock);
        return rc;
    }
    int64_t deadline = mono_ms() + b->o.timeout_ms;
    while (!confirmed_locked(b, c) && b->connected && !atomic_load(&b->stop)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    bool ok = confirmed_locked(b, c);
    pthread_mutex_unlock(&b->lock);
    return ok ? 0 : RT_BUS_EUNAVAIL;
}

static void redis_unsubscribe_channel(rt_bus_t *bus, rt_slice_t channel)
{
    rbus_t *b = (rbus_t *)bus;
    pthread_mutex_lock(&b->lock);
    release_locked(b, channel);
    pthread_mutex_unlock(&b->lock);
}

/* ---- publish, read, position ---- */

static void latency(rbus_t *b, int64_t t0)
{
    if (b->m)
        rt_metrics_bus_latency(b->m, (uint64_t)(mono_us() - t0));
}

static int redis_publish(rt_bus_t *bus, const rt_event_t *ev, rt_slice_t idem_key, int64_t now_ms,
                         rt_pos_t *pos, size_t *delivered, bool *dup)
{
    rbus_t *b = (rbus_t *)bus;
    (void)now_ms;
    if (dup)
        *dup = false;
    if (delivered)
        *delivered = 0;
    size_t jlen;
    char *json = rt_event_json(ev, NULL, &jlen);
    size_t kl[4];
    char *stream = key_of(ev->channel.base, ev->channel.len, "stream", &kl[0]);
    char *epoch = key_of(ev->channel.base, ev->channel.len, "epoch", &kl[1]);
    char *live = key_of(ev->channel.base, ev->channel.len, "live", &kl[3]);
    char *idem = NULL;
    if (json && idem_key.len) {
        char head[32];
        int hl = snprintf(head, sizeof(head), "idem:%zu:", ev->topic.len);
        size_t sl = (size_t)hl + ev->topic.len + 1 + idem_key.len;
        char *suffix = malloc(sl + 1);
        if (suffix) {
            memcpy(suffix, head, (size_t)hl);
            memcpy(suffix + hl, ev->topic.base, ev->topic.len);
            suffix[(size_t)hl + ev->topic.len] = ':';
            memcpy(suffix + hl + ev->topic.len + 1, idem_key.base, idem_key.len);
            suffix[sl] = 0;
            idem = key_of(ev->channel.base, ev->channel.len, suffix, &kl[2]);
            free(suffix);
        }
    } else {
        idem = key_of(ev->channel.base, ev->channel.len, "idem:-", &kl[2]); /* unused, same slot */
    }
    int rc = RT_BUS_ENOMEM;
    if (json && stream && epoch && live && idem) {
        char maxlen[24], age[24], window[24], ttl[24], ep[24];
        snprintf(maxlen, sizeof(maxlen), "%zu", b->o.history_max ? b->o.history_max : 1);
        snprintf(age, sizeof(age), "%" PRId64, b->o.history_max_age_ms);
        snprintf(window, sizeof(window), "%" PRId64, b->o.idem_window_ms);
        snprintf(ttl, sizeof(ttl), "%" PRId64, b->ttl_ms);
        new_epoch(ep, sizeof(ep));
        const char *av[] = {stream,
                            epoch,
                            idem,
                            live,
                            maxlen,
                            age,
                            ev->topic.base,
                            ev->ext_only ? "1" : "0",
                            json,
                            idem_key.len ? "1" : "0",
                            window,
                            ep,
                            ttl};
        size_t al[] = {kl[0],          kl[1],         kl[2],      kl[3], strlen(maxlen),
                       strlen(age),    ev->topic.len, 1,          jlen,  1,
                       strlen(window), strlen(ep),    strlen(ttl)};
        pconn_t *p = pool_get(b);
        rc = pconn_ready(b, p);
        if (rc == 0) {
            int64_t t0 = mono_us();
            redisReply *r = run_script(p, SCRIPT_PUBLISH, 3, 13, av, al);
            latency(b, t0);
            uint64_t e, off;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[0]->type == REDIS_REPLY_INTEGER &&
                r->element[1]->type == REDIS_REPLY_STRING &&
                r->element[2]->type == REDIS_REPLY_STRING &&
                parse_epoch(r->element[1]->str, r->element[1]->len, &e) &&
                parse_stream_id(r->element[2]->str, r->element[2]->len, &off)) {
                if (pos)
                    *pos = (rt_pos_t){e, off};
                if (dup)
                    *dup = r->element[0]->integer == 1;
                rc = 0;
            } else {
                if (r && r->type == REDIS_REPLY_ERROR)
                    rt_log_warn("redis publish refused", "detail=\"%.*s\"",
                                (int)(r->len < 200 ? r->len : 200), r->str);
                bus_error(b);
                rc = RT_BUS_EUNAVAIL;
            }
            freeReplyObject(r);
        }
        pthread_mutex_unlock(&p->lock);
    }
    free(json);
    free(stream);
    free(epoch);
    free(live);
    free(idem);
    return rc;
}

/* Entries of an XRANGE reply into bf (frames built once, topics copied into
 * the same block as the array). 0 or RT_BUS_ENOMEM. */
static int parse_entries(const redisReply *arr, uint64_t epoch, rt_backfill_t *bf)
{
    size_t n = arr->elements, tbytes = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = arr->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[1]->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j + 1 < e->element[1]->elements; j += 2)
                if (e->element[1]->element[j]->len == 1 && e->element[1]->element[j]->str[0] == 't')
                    tbytes += e->element[1]->element[j + 1]->len + 1;
    }
    rt_hub_entry_t *v = calloc(1, n * sizeof(*v) + tbytes + 1);
    if (!v)
        return RT_BUS_ENOMEM;
    char *tp = (char *)(v + n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = arr->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        uint64_t off;
        if (!parse_stream_id(e->element[0]->str, e->element[0]->len, &off))
            continue;
        const redisReply *f = e->element[1];
        const char *topic = NULL, *json = NULL;
        size_t tl = 0, jl = 0;
        bool ext = false;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *name = f->element[j], *val = f->element[j + 1];
            if (name->len != 1 || val->type != REDIS_REPLY_STRING)
                continue;
            if (name->str[0] == 't') {
                topic = val->str;
                tl = val->len;
            } else if (name->str[0] == 'e') {
                json = val->str;
                jl = val->len;
            } else if (name->str[0] == 'x') {
                ext = val->len == 1 && val->str[0] == '1';
            }
        }
        if (!topic || !json)
            continue;
        rt_frame_t *fr = frame_with_id(json, jl, epoch, off);
        if (!fr) {
            bf->v = v;
            bf->n = k;
            return RT_BUS_ENOMEM;
        }
        memcpy(tp, topic, tl);
        tp[tl] = 0;
        v[k++] = (rt_hub_entry_t){off, {tp, tl}, ext, fr};
        tp += tl + 1;
    }
    bf->v = v;
    bf->n = k;
    return 0;
}

/* Run the read script for channel with the candidates. */
static int read_stream(rbus_t *b, rt_slice_t channel, const rt_pos_t *cands, size_t ncands,
                       bool whole_if_unmatched, rt_backfill_t *bf)
{
    memset(bf, 0, sizeof(*bf));
    if (ncands > 16)
        ncands = 16;
    size_t kl[2];
    char *stream = key_of(channel.base, channel.len, "stream", &kl[0]);
    char *epoch = key_of(channel.base, channel.len, "epoch", &kl[1]);
    char cbuf[16][64];
    const char *av[2 + 1 + 16];
    size_t al[2 + 1 + 16];
    int n = 0;
    av[n] = stream;
    al[n++] = kl[0];
    av[n] = epoch;
    al[n++] = kl[1];
    av[n] = whole_if_unmatched ? "1" : "0";
    al[n++] = 1;
    for (size_t i = 0; i < ncands; i++) {
        char sid[48];
        if (cands[i].offset)
            stream_id_of(cands[i].offset, sid, sizeof(sid));
        else
            snprintf(sid, sizeof(sid), "0-0");
        int l = snprintf(cbuf[i], sizeof(cbuf[i]), "%" PRIx64 " %s", cands[i].epoch, sid);
        av[n] = cbuf[i];
        al[n++] = (size_t)l;
    }
    int rc = RT_BUS_ENOMEM;
    if (stream && epoch) {
        pconn_t *p = pool_get(b);
        rc = pconn_ready(b, p);
        if (rc == 0) {
            redisReply *r = run_script(p, SCRIPT_READ, 2, n, av, al);
            rc = RT_BUS_EUNAVAIL;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                r->element[1]->type == REDIS_REPLY_INTEGER &&
                r->element[2]->type == REDIS_REPLY_STRING &&
                r->element[3]->type == REDIS_REPLY_ARRAY) {
                uint64_t e = 0, last = 0;
                rc = 0;
                if (parse_epoch(r->element[0]->str, r->element[0]->len, &e)) {
                    long long cov = r->element[1]->integer;
                    bf->epoch = e;
                    if (r->element[2]->len)
                        parse_stream_id(r->element[2]->str, r->element[2]->len, &last);
                    bf->last_offset = last;
                    bf->matched = cov == 0 || cov == 1;
                    bf->covered = cov == 1 || cov == 2;
                    for (size_t i = 0; i < ncands; i++)
                        if (cands[i].epoch == e) {
                            bf->since = cands[i].offset;
                            break;
                        }
                    if (bf->covered)
                        rc = parse_entries(r->element[3], e, bf);
                }
            } else {
                if (r && r->type == REDIS_REPLY_ERROR)
                    rt_log_warn("redis history read refused", "detail=\"%.*s\"",
                                (int)(r->len < 200 ? r->len : 200), r->str);
                bus_error(b);
            }
            freeReplyObject(r);
        }
        pthread_mutex_unlock(&p->lock);
    }
    free(stream);
    free(epoch);
    if (rc != 0)
        rt_backfill_clear(bf);
    return rc;
}

static int redis_read_history(rt_bus_t *bus, rt_slice_t channel, const rt_pos_t *cands,
                              size_t ncands, rt_backfill_t *out)
{
    return read_stream((rbus_t *)bus, channel, cands, ncands, false, out);
}

static int redis_position(rt_bus_t *bus, rt_slice_t channel, rt_pos_t *out)
{
    rbus_t *b = (rbus_t *)bus;
    size_t kl[2];
    char *stream = key_of(channel.base, channel.len, "stream", &kl[0]);
    char *epoch = key_of(channel.base, channel.len, "epoch", &kl[1]);
    char ep[24], ttl[24];
    new_epoch(ep, sizeof(ep));
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->ttl_ms);
    int rc = RT_BUS_ENOMEM;
    if (stream && epoch) {
        const char *av[] = {stream, epoch, ep, ttl};
        size_t al[] = {kl[0], kl[1], strlen(ep), strlen(ttl)};
        pconn_t *p = pool_get(b);
        rc = pconn_ready(b, p);
        if (rc == 0) {
            redisReply *r = run_script(p, SCRIPT_POSITION, 2, 4, av, al);
            uint64_t e, off = 0;
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                r->element[1]->type == REDIS_REPLY_STRING &&
                parse_epoch(r->element[0]->str, r->element[0]->len, &e) &&
                (r->element[1]->len == 0 ||
                 parse_stream_id(r->element[1]->str, r->element[1]->len, &off))) {
                *out = (rt_pos_t){e, off};
                rc = 0;
            } else {
                bus_error(b);
                rc = RT_BUS_EUNAVAIL;
            }
            freeReplyObject(r);
        }
        pthread_mutex_unlock(&p->lock);
    }
    free(stream);
    free(epoch);
    return rc;
}

static bool redis_ready(rt_bus_t *bus)
{
    return atomic_load(&((rbus_t *)bus)->up);
}

/* ---- the subscriber thread ---- */

/* A live message: "<epoch>\n<id>\n<topic>\n<x>\n<json>". */
static void on_message(rbus_t *b, const char *chname, size_t chlen, const char *msg, size_t len)
{
    rt_slice_t ch;
    if (!channel_of_live(chname, chlen, &ch))
        return;
    const char *part[4];
    size_t plen[4];
    const char *p = msg, *end = msg + len;
    for (int i = 0; i < 4; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return;
        part[i] = p;
        plen[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    uint64_t epoch, off;
    if (!parse_epoch(part[0], plen[0], &epoch) || !parse_stream_id(part[1], plen[1], &off))
        return;
    rt_frame_t *f = frame_with_id(p, (size_t)(end - p), epoch, off);
    if (!f)
        return;
    rt_hub_entry_t e = {off, {part[2], plen[2]}, plen[3] == 1 && part[3][0] == '1', f};
    rt_hub_deliver(b->base.hub, ch, epoch, &e, NULL);
    rt_frame_unref(f);
}

/* Fill a channel's gap from its stream: everything after the hub's last
 * delivered position (the whole epoch if the epoch changed meanwhile). */
static int gap_fill(rbus_t *b, const char *name, size_t nlen)
{
    rt_slice_t ch = {name, nlen};
    rt_pos_t last;
    bool have = rt_hub_last(b->base.hub, ch, &last) == 0;
    rt_backfill_t bf;
    int rc = read_stream(b, ch, have ? &last : NULL, have ? 1 : 0, true, &bf);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < bf.n; i++)
        rt_hub_deliver(b->base.hub, ch, bf.epoch, &bf.v[i], NULL);
    if (bf.n)
        rt_log_info("redis bus gap filled", "channel_bytes=%zu events=%zu", nlen, bf.n);
    rt_backfill_clear(&bf);
    return 0;
}

typedef struct {
    char **names;
    size_t *lens;
    size_t n, cap;
} namelist_t;

static void namelist_add(namelist_t *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nn = realloc(l->names, nc * sizeof(*nn));
        if (!nn)
            return;
        l->names = nn;
        size_t *nl = realloc(l->lens, nc * sizeof(*nl));
        if (!nl)
            return;
        l->lens = nl;
        l->cap = nc;
    }
    char *c = malloc(n + 1);
    if (!c)
        return;
    memcpy(c, s, n);
    c[n] = 0;
    l->names[l->n] = c;
    l->lens[l->n++] = n;
}

static void namelist_free(namelist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lens);
    memset(l, 0, sizeof(*l));
}

/* Append (UN)SUBSCRIBE for names to c, in batches. */
static void append_sub(redisContext *c, const char *cmd, const namelist_t *names)
{
    const size_t batch = 256;
    for (size_t i = 0; i < names->n; i += batch) {
        size_t m = names->n - i < batch ? names->n - i : batch;
        const char **av = malloc((m + 1) * sizeof(*av));
        size_t *al = malloc((m + 1) * sizeof(*al));
        char **keys = calloc(m, sizeof(*keys));
        if (av && al && keys) {
            av[0] = cmd;
            al[0] = strlen(cmd);
            size_t k = 1;
            for (size_t j = 0; j < m; j++) {
                keys[j] = key_of(names->names[i + j], names->lens[i + j], "live", &al[k]);
                if (keys[j])
                    av[k++] = keys[j];
            }
            if (k > 1)
                redisAppendCommandArgv(c, (int)k, av, al);
        }
        for (size_t j = 0; keys && j < m; j++)
            free(keys[j]);
        free(keys);
        free(av);
        free(al);
    }
}

static int flush_out(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    return 0;
}

static void set_channels_gauge(rbus_t *b, long long n)
{
    if (b->m)
        atomic_store(&b->m->bus_channels, n);
}

/* The pending (un)subscriptions, sent on c. Bus lock not held. */
static int send_dirty(rbus_t *b, redisContext *c)
{
    namelist_t sub = {0}, unsub = {0};
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->ndirty; i++) {
        chan_t *ch = b->dirty[i];
        ch->dirty = false;
        bool want = ch->refs > 0;
        if (want != ch->sent) {
            namelist_add(want ? &sub : &unsub, ch->name, ch->nlen);
            ch->sent = want;
            ch->outstanding++;
        } else {
            chan_maybe_free_locked(b, ch);
        }
    }
    b->ndirty = 0;
    long long count = 0;
    RT_MAP_FOREACH(&b->chans, e)
    count += ((chan_t *)e->value)->sent;
    pthread_mutex_unlock(&b->lock);
    set_channels_gauge(b, count);
    append_sub(c, "SUBSCRIBE", &sub);
    append_sub(c, "UNSUBSCRIBE", &unsub);
    namelist_free(&sub);
    namelist_free(&unsub);
    pthread_cond_broadcast(&b->cond); /* a want that matched sent is confirmed now */
    return flush_out(c);
}

/* A subscribe/unsubscribe confirmation. */
static void on_confirm(rbus_t *b, const char *chname, size_t chlen, namelist_t *gaps)
{
    rt_slice_t ch;
    if (!channel_of_live(chname, chlen, &ch))
        return;
    pthread_mutex_lock(&b->lock);
    chan_t *c = chan_get(b, ch, false);
    if (c && c->outstanding > 0) {
        c->outstanding--;
        if (c->outstanding == 0 && c->sent && c->gapfill) {
            c->gapfill = false;
            namelist_add(gaps, c->name, c->nlen);
        }
        if (c->outstanding == 0)
            chan_maybe_free_locked(b, c);
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void handle_reply(rbus_t *b, redisReply *r, namelist_t *gaps)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING)
        on_message(b, r->element[1]->str, r->element[1]->len, r->element[2]->str,
                   r->element[2]->len);
    else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "unsubscribe") == 0)
        on_confirm(b, r->element[1]->str, r->element[1]->len, gaps);
}

static void sleep_ms_interruptible(rbus_t *b, int ms)
{
    struct pollfd p = {b->evfd, POLLIN, 0};
    int64_t until = mono_ms() + ms;
    while (!atomic_load(&b->stop) && mono_ms() < until) {
        int left = (int)(until - mono_ms());
        if (poll(&p, 1, left > 0 ? left : 0) > 0) {
            uint64_t v;
            ssize_t rd = read(b->evfd, &v, sizeof(v));
            (void)rd;
        }
    }
}

/* One connected session of the subscriber connection; returns when it drops. */
static void sub_session(rbus_t *b, redisContext *c, bool reconnect)
{
    /* Resubscribe everything wanted; after an outage, fill each gap once
     * Redis confirms (events published from then on arrive live). */
    namelist_t all = {0}, gaps = {0};
    pthread_mutex_lock(&b->lock);
    namelist_t drop = {0};
    RT_MAP_FOREACH(&b->chans, e)
    {
        chan_t *ch = e->value;
        ch->outstanding = 0;
        ch->dirty = false;
        ch->sent = ch->refs > 0;
        if (ch->sent) {
            ch->outstanding = 1;
            ch->gapfill = reconnect;
            namelist_add(&all, ch->name, ch->nlen);
        } else {
            namelist_add(&drop, ch->name, ch->nlen);
        }
    }
    for (size_t i = 0; i < drop.n; i++) {
        chan_t *ch = chan_get(b, (rt_slice_t){drop.names[i], drop.lens[i]}, false);
        if (ch)
            chan_maybe_free_locked(b, ch);
    }
    b->ndirty = 0;
    b->connected = true;
    pthread_mutex_unlock(&b->lock);
    namelist_free(&drop);
    set_channels_gauge(b, (long long)all.n);
    append_sub(c, "SUBSCRIBE", &all);
    namelist_free(&all);
    if (flush_out(c) != 0)
        goto out;
    set_up(b, true);

    while (!atomic_load(&b->stop)) {
        struct pollfd p[2] = {{c->fd, POLLIN, 0}, {b->evfd, POLLIN, 0}};
        int pr = poll(p, 2, gaps.n ? 50 : 1000);
        if (pr < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(b->evfd, &v, sizeof(v));
            (void)rd;
            if (send_dirty(b, c) != 0)
                break;
        }
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (redisBufferRead(c) != REDIS_OK)
                break;
            void *rp = NULL;
            bool bad = false;
            for (;;) {
                if (redisGetReplyFromReader(c, &rp) != REDIS_OK) {
                    bad = true;
                    break;
                }
                if (!rp)
                    break;
                handle_reply(b, rp, &gaps);
                freeReplyObject(rp);
            }
            if (bad)
                break;
        }
        /* Gap fills use a pool connection; a failure is retried next turn. */
        namelist_t left = {0};
        for (size_t i = 0; i < gaps.n; i++)
            if (gap_fill(b, gaps.names[i], gaps.lens[i]) != 0)
                namelist_add(&left, gaps.names[i], gaps.lens[i]);
        namelist_free(&gaps);
        gaps = left;
    }
out:
    namelist_free(&gaps);
    set_up(b, false);
    atomic_fetch_add(&b->gen, 1);
    pthread_mutex_lock(&b->lock);
    b->connected = false;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    set_channels_gauge(b, 0);
}

static void *sub_main(void *arg)
{
    rbus_t *b = arg;
    int backoff = 50;
    bool ever = false, down_logged = false;
    char last_err[1024] = "";
    while (!atomic_load(&b->stop)) {
        redisContext *c;
        char err[1024];
        int rc = conn_open(b, &c, err, sizeof(err));
        if (rc != 0) {
            /* Logged once per state change, not per attempt. */
            if (!down_logged || (rc == -2 && strcmp(err, last_err) != 0)) {
                if (rc == -2)
                    rt_log_error("redis bus down", "where=%s detail=\"%s\"", b->where, err);
                else
                    rt_log_warn("redis bus down",
                                "where=%s detail=\"%s\" retry=\"capped backoff up to 2 s\"",
                                b->where, err);
                down_logged = true;
                snprintf(last_err, sizeof(last_err), "%s", err);
            }
            sleep_ms_interruptible(b, backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            continue;
        }
        backoff = 50;
        if (ever && b->m)
            atomic_fetch_add(&b->m->bus_reconnects, 1);
        rt_log_info("redis bus up", "where=%s%s", b->where, ever ? " resubscribed=1" : "");
        down_logged = false;
        last_err[0] = 0;
        sub_session(b, c, ever);
        ever = true;
        redisFree(c);
        if (!atomic_load(&b->stop)) {
            rt_log_warn("redis bus down", "where=%s detail=\"the subscriber connection dropped\"",
                        b->where);
            down_logged = true;
            bus_error(b);
        }
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void redis_free(rt_bus_t *bus)
{
    rbus_t *b = (rbus_t *)bus;
    rt_hub_set_interest_hook(b->base.hub, NULL, NULL);
    atomic_store(&b->stop, true);
    if (b->thread_started) {
        wake_thread(b);
        pthread_join(b->thread, NULL);
    }
    for (int i = 0; i < b->npool; i++) {
        pconn_drop(&b->pool[i]);
        pthread_mutex_destroy(&b->pool[i].lock);
    }
    free(b->pool);
    RT_MAP_FOREACH(&b->chans, e)
    {
        chan_t *c = e->value;
        free(c->name);
        free(c);
    }
    rt_map_clear(&b->chans);
    free(b->dirty);
    if (b->evfd >= 0)
        close(b->evfd);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    sodium_memzero(&b->url, sizeof(b->url));
    free(b);
}

static const rt_bus_ops_t redis_ops = {
    .name = "redis",
    .publish = redis_publish,
    .subscribe_channel = redis_subscribe_channel,
    .unsubscribe_channel = redis_unsubscribe_channel,
    .read_history = redis_read_history,
    .position = redis_position,
    .ready = redis_ready,
    .free = redis_free,
};

rt_bus_t *rt_bus_redis_new(rt_hub_t *hub, const rt_bus_redis_opts_t *opts, char *err, size_t errcap)
{
    rbus_t *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    b->base.ops = &redis_ops;
    b->base.hub = hub;
    b->o = *opts;
    b->o.url = NULL; /* parsed below; the caller's string is not kept */
    b->m = opts->metrics;
    b->evfd = -1;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    rt_map_init(&b->chans);
    if (b->o.timeout_ms <= 0)
        b->o.timeout_ms = 1000;
    if (b->o.pool <= 0)
        b->o.pool = 4;
    int64_t keep = b->o.history_max_age_ms > b->o.idem_window_ms ? b->o.history_max_age_ms
                                                                 : b->o.idem_window_ms;
    b->ttl_ms = keep + 60000;
    if (rt_redis_url_parse(opts->url, &b->url, err, errcap) != 0)
        goto fail;
    if (b->url.tls && !rt_redis_tls_supported()) {
        snprintf(err, errcap,
                 "RTGW_REDIS_URL: rediss:// (TLS to Redis) is not supported by this build: its "
                 "libhiredis has no hiredis_ssl (Debian 12 ships hiredis 0.14); use redis:// on a "
                 "private network, or a TLS tunnel (stunnel, spiped) to Redis");
        goto fail;
    }
    bool v6 = strchr(b->url.host, ':') != NULL;
    snprintf(b->where, sizeof(b->where), v6 ? "redis://[%s]:%d/%d" : "redis://%s:%d/%d",
             b->url.host, b->url.port, b->url.db);
    b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->npool = b->o.pool;
    b->pool = calloc((size_t)b->npool, sizeof(*b->pool));
    if (b->evfd < 0 || !b->pool) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    for (int i = 0; i < b->npool; i++)
        pthread_mutex_init(&b->pool[i].lock, NULL);
    if (b->m) {
        b->m->bus_name = "redis";
        atomic_store(&b->m->bus_up, 0);
    }
    /* Check the URL's credentials now: a wrong password is a configuration
     * error (exit), an unreachable Redis is an outage (start, not ready). */
    redisContext *c;
    char cerr[1024];
    int rc = conn_open(b, &c, cerr, sizeof(cerr));
    if (rc == -2) {
        snprintf(err, errcap, "%s", cerr);
        goto fail;
    }
    if (rc == 0)
        redisFree(c);
    else
        rt_log_warn("redis bus not reachable at start; serving, not ready, retrying",
                    "where=%s detail=\"%s\"", b->where, cerr);
    rt_hub_set_interest_hook(hub, interest_hook, b);
    if (pthread_create(&b->thread, NULL, sub_main, b) != 0) {
        snprintf(err, errcap, "cannot start the Redis subscriber thread");
        rt_hub_set_interest_hook(hub, NULL, NULL);
        goto fail;
    }
    b->thread_started = true;
    /* Give the first connection a moment, so /ready is true from the start
     * when Redis is there. */
    for (int i = 0; i < 100 && rc == 0 && !atomic_load(&b->up); i++)
        usleep(10000);
    return &b->base;
fail:
    redis_free(&b->base);
    return NULL;
}
