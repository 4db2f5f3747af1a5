/*
 * subscribe.c — a WebSocket subscription that survives disconnects.
 *
 * Design: rtc_sub_run owns the loop on the caller's thread. Each attempt opens
 * one civetweb client WebSocket (mg_connect_websocket_client, which runs its
 * own reader thread) with `&rtgw=1` — civetweb 1.15's client cannot send
 * Sec-WebSocket-Protocol, and the flag opts into the extended protocol just as
 * the rtgw.v1 subprotocol does: an ack first, and a close code for every
 * refusal. The reader thread parses frames, tracks the last id per channel and
 * calls the user's callbacks; the run thread only waits for the connection to
 * end (or for rtc_sub_stop), then decides from the close code whether to
 * reconnect. While a connection is live the run thread calls no callback, so
 * callbacks never overlap.
 *
 * Resume: the next attempt sends since=<last id> for every channel seen (ids
 * from frames, or the ack's per-channel position when nothing arrived yet), so
 * the gateway replays exactly what was missed. If it cannot, its ack says
 * "recovered":false and we report RTC_STATUS_NOT_RECOVERED for that channel.
 *
 * civetweb's client answers no pings by itself (ping/pong handling is a server
 * option), so the data handler sends the pongs.
 */
#include "internal.h"

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>

#define RTC_MAX_SINCE 16 /* the gateway's bound on since= values */

typedef struct {
    char *channel; /* NULL: a position given by the caller, channel not known yet */
    char *id;
} pos_t;

struct rtc_sub_s {
    rtc__url_t url;
    char *token;
    rtc_token_fn token_fn;
    rtc_message_fn on_message;
    rtc_status_fn on_status;
    void *user;
    char *origin;
    int backoff_initial_ms, backoff_max_ms, give_up_ms;

    pos_t *pos;
    size_t npos, cappos;

    atomic_int stop;
    pthread_mutex_t mu; /* guards the per-connection fields below */
    pthread_cond_t cv;
    pthread_mutex_t wmu; /* serialises writes to the socket (pongs, our close) */
    bool closed;         /* the reader thread ended */
    bool got_close;      /* a close frame arrived */
    int close_code;
    char close_reason[124];
    bool acked;
    bool user_stop;  /* on_message returned non-zero */
    rtc__buf_t frag; /* a fragmented text message being assembled */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void status(rtc_sub_t *s, rtc_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void status(rtc_sub_t *s, rtc_status_t st, const char *fmt, ...)
{
    if (!s->on_status)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s->on_status(st, buf, s->user);
}

/* ---- positions ---- */

static size_t epoch_len(const char *id)
{
    const char *d = strrchr(id, '-');
    return d ? (size_t)(d - id) : 0;
}

static pos_t *pos_find(rtc_sub_t *s, const char *channel)
{
    for (size_t i = 0; i < s->npos; i++)
        if (s->pos[i].channel && strcmp(s->pos[i].channel, channel) == 0)
            return &s->pos[i];
    return NULL;
}

/* Set the position of a channel (channel may be NULL for caller-given ids). */
static int pos_set(rtc_sub_t *s, const char *channel, const char *id)
{
    pos_t *p = channel ? pos_find(s, channel) : NULL;
    char *nid = strdup(id);
    if (!nid)
        return RTC_ENOMEM;
    if (p) {
        free(p->id);
        p->id = nid;
        return 0;
    }
    if (s->npos == s->cappos) {
        size_t cap = s->cappos ? s->cappos * 2 : 8;
        pos_t *np = realloc(s->pos, cap * sizeof(*np));
        if (!np) {
            free(nid);
            return RTC_ENOMEM;
        }
        s->pos = np;
        s->cappos = cap;
    }
    char *nch = channel ? strdup(channel) : NULL;
    if (channel && !nch) {
        free(nid);
        return RTC_ENOMEM;
    }
    s->pos[s->npos++] = (pos_t){nch, nid};
    return 0;
}

/* A caller-given position whose epoch is that of `id` (same channel), or NULL. */
static pos_t *pos_anon_for(rtc_sub_t *s, const char *id)
{
    size_t el = epoch_len(id);
    for (size_t i = 0; i < s->npos; i++)
        if (!s->pos[i].channel && el && epoch_len(s->pos[i].id) == el &&
            strncmp(s->pos[i].id, id, el) == 0)
            return &s->pos[i];
    return NULL;
}

static void pos_drop_anon(rtc_sub_t *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->npos; i++) {
        if (s->pos[i].channel)
            s->pos[j++] = s->pos[i];
        else
            free(s->pos[i].id);
    }
    s->npos = j;
}

const char *rtc_sub_last_id(const rtc_sub_t *sub, const char *channel)
{
    if (!sub || !channel)
        return NULL;
    pos_t *p = pos_find((rtc_sub_t *)sub, channel);
    return p ? p->id : NULL;
}

/* ---- frames (civetweb's reader thread) ---- */

static void on_ack(rtc_sub_t *s, json_t *ack)
{
    json_t *chans = json_object_get(ack, "channels");
    const char *ch;
    json_t *cj;
    size_t nch = 0, lost = 0;
    json_object_foreach(chans, ch, cj)
    {
        nch++;
        const char *id = json_string_value(json_object_get(cj, "id"));
        json_t *rec = json_object_get(cj, "recovered");
        if (json_is_false(rec)) {
            lost++;
            status(s, RTC_STATUS_NOT_RECOVERED, "%s", ch);
        }
        if (!id || (pos_find(s, ch) && !json_is_false(rec)))
            continue;
        /* Not tracked yet: resume from the caller's id for this channel when
         * the gateway recovered from it (its replay follows the ack), else
         * from the position at subscribe time. */
        pos_t *anon = json_is_true(rec) ? pos_anon_for(s, id) : NULL;
        char *from = anon ? strdup(anon->id) : NULL;
        pos_set(s, ch, from ? from : id);
        free(from);
    }
    pos_drop_anon(s);
    pthread_mutex_lock(&s->mu);
    s->acked = true;
    pthread_mutex_unlock(&s->mu);
    json_t *rec = json_object_get(ack, "recovered");
    status(s, RTC_STATUS_CONNECTED, "channels=%zu %s", nch,
           json_is_boolean(rec) ? (lost ? "resumed, not recovered" : "resumed") : "fresh");
}

/* Returns 0 to close the connection (stop requested), 1 to go on. */
static int on_text(rtc_sub_t *s, const char *data, size_t len)
{
    json_error_t je;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    int go_on = 1;
    if (!kind) {
        /* not ours to judge: hand it over as is */
    } else if (strcmp(kind, "rtgw.subscribed") == 0) {
        on_ack(s, o);
        json_decref(o);
        return 1;
    } else if (strcmp(kind, "closing") == 0) {
        status(s, RTC_STATUS_CLOSING, "the gateway is shutting down");
        json_decref(o);
        return 1;
    } else if (strncmp(kind, "rtgw.", 5) == 0) {
        json_decref(o);
        return 1;
    } else {
        const char *ch = json_string_value(json_object_get(o, "channel"));
        const char *id = json_string_value(json_object_get(o, "id"));
        if (ch && id)
            pos_set(s, ch, id);
    }
    json_decref(o);
    if (s->on_message(data, len, s->user) != 0) {
        pthread_mutex_lock(&s->mu);
        s->user_stop = true;
        pthread_mutex_unlock(&s->mu);
        atomic_store(&s->stop, 1);
        go_on = 0;
    }
    return go_on;
}

static int ws_data(struct mg_connection *conn, int bits, char *data, size_t len, void *ud)
{
    rtc_sub_t *s = ud;
    int op = bits & 0x0f;
    bool fin = (bits & 0x80) != 0;
    if (atomic_load(&s->stop))
        return 0;
    switch (op) {
    case MG_WEBSOCKET_OPCODE_PING:
        pthread_mutex_lock(&s->wmu);
        mg_websocket_client_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len);
        pthread_mutex_unlock(&s->wmu);
        return 1;
    case MG_WEBSOCKET_OPCODE_PONG:
        return 1;
    case MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE: {
        int code = len >= 2 ? ((unsigned char)data[0] << 8 | (unsigned char)data[1]) : 1005;
        size_t rl = len > 2 ? len - 2 : 0;
        pthread_mutex_lock(&s->mu);
        s->got_close = true;
        s->close_code = code;
        if (rl >= sizeof(s->close_reason))
            rl = sizeof(s->close_reason) - 1;
        memcpy(s->close_reason, data + 2 * (len >= 2), rl);
        s->close_reason[rl] = '\0';
        pthread_mutex_unlock(&s->mu);
        /* Answer the close (RFC 6455 §5.5.1), echoing the code. */
        pthread_mutex_lock(&s->wmu);
        mg_websocket_client_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, data,
                                  len >= 2 ? 2 : 0);
        pthread_mutex_unlock(&s->wmu);
        return 0;
    }
    case MG_WEBSOCKET_OPCODE_TEXT:
    case MG_WEBSOCKET_OPCODE_CONTINUATION:
        if (op == MG_WEBSOCKET_OPCODE_TEXT && fin && s->frag.len == 0)
            return on_text(s, data, len);
        if (op == MG_WEBSOCKET_OPCODE_TEXT)
            s->frag.len = 0;
        if (s->frag.len + len > (64u << 20) || rtc__buf_add(&s->frag, data, len))
            return 0; /* too large to assemble: drop the connection, resume later */
        if (!fin)
            return 1;
        {
            int rc = on_text(s, s->frag.p, s->frag.len);
            s->frag.len = 0;
            return rc;
        }
    default:
        return 1; /* binary frames are not part of the protocol */
    }
}

static void ws_close(const struct mg_connection *conn, void *ud)
{
    rtc_sub_t *s = ud;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the loop ---- */

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

rtc_sub_t *rtc_sub_new(const rtc_subscribe_opts_t *o)
{
    if (!o || !o->on_message || (!o->token && !o->token_fn) || (o->nsince && !o->since))
        return NULL;
    rtc_sub_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    bool oom = false;
    if (rtc__url_parse(o->base_url, &s->url)) {
        free(s);
        return NULL;
    }
    s->token = dup_or_null(o->token, &oom);
    s->origin = dup_or_null(o->origin, &oom);
    s->token_fn = o->token_fn;
    s->on_message = o->on_message;
    s->on_status = o->on_status;
    s->user = o->user;
    s->backoff_initial_ms = o->backoff_initial_ms > 0 ? o->backoff_initial_ms : 250;
    s->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 10000;
    if (s->backoff_max_ms < s->backoff_initial_ms)
        s->backoff_max_ms = s->backoff_initial_ms;
    s->give_up_ms = o->give_up_ms > 0 ? o->give_up_ms : 0;
    for (size_t i = 0; i < o->nsince && !oom; i++)
        if (o->since[i] && o->since[i][0] && pos_set(s, NULL, o->since[i]))
            oom = true;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (oom) {
        rtc_sub_free(s);
        return NULL;
    }
    return s;
}

void rtc_sub_free(rtc_sub_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->npos; i++) {
        free(s->pos[i].channel);
        free(s->pos[i].id);
    }
    free(s->pos);
    if (s->token)
        sodium_memzero(s->token, strlen(s->token));
    free(s->token);
    free(s->origin);
    rtc__buf_free(&s->frag);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void rtc_sub_stop(rtc_sub_t *s)
{
    if (s)
        atomic_store(&s->stop, 1);
}

static int connect_path(rtc_sub_t *s, const char *token, rtc__buf_t *b)
{
    if (rtc__buf_adds(b, s->url.prefix) || rtc__buf_adds(b, "/v1/realtime/connect?token=") ||
        rtc__buf_addenc(b, token) || rtc__buf_adds(b, "&rtgw=1"))
        return RTC_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->npos && n < RTC_MAX_SINCE; i++, n++)
        if (rtc__buf_adds(b, "&since=") || rtc__buf_addenc(b, s->pos[i].id))
            return RTC_ENOMEM;
    return 0;
}

/* Sleep up to ms, waking early on rtc_sub_stop. */
static void nap(rtc_sub_t *s, int ms)
{
    int64_t end = now_ms() + ms;
    while (!atomic_load(&s->stop) && now_ms() < end) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int rtc_sub_run(rtc_sub_t *s, rtc_error_t *err)
{
    if (!s)
        return rtc__fail(err, RTC_EINVAL, 0, NULL, NULL);
    int rc = rtc__lib_init(s->url.tls);
    if (rc)
        return rtc__fail(err, rc, 0, NULL, NULL);
    unsigned attempt = 0;
    int64_t last_ok = now_ms(); /* the start counts as "fine" for give_up_ms */
    char why[300];
    while (!atomic_load(&s->stop)) {
        char *token = s->token ? s->token : s->token_fn(s->user);
        if (!token) {
            status(s, RTC_STATUS_REFUSED, "no token (the token callback failed)");
            return rtc__fail(err, RTC_ETOKEN, 0, NULL, "the token callback returned no token");
        }
        rtc__buf_t path = {0};
        rc = connect_path(s, token, &path);
        if (token != s->token) {
            sodium_memzero(token, strlen(token));
            free(token);
        }
        if (rc) {
            rtc__buf_free(&path);
            return rtc__fail(err, RTC_ENOMEM, 0, NULL, NULL);
        }
        pthread_mutex_lock(&s->mu);
        s->closed = s->got_close = s->acked = s->user_stop = false;
        s->close_code = 0;
        s->close_reason[0] = '\0';
        pthread_mutex_unlock(&s->mu);
        s->frag.len = 0;
        status(s, RTC_STATUS_CONNECTING, "%s://%s:%d%s/v1/realtime/connect",
               s->url.tls ? "wss" : "ws", s->url.host, s->url.port, s->url.prefix);
        char ebuf[256] = "";
        struct mg_connection *c =
            mg_connect_websocket_client(s->url.host, s->url.port, s->url.tls, ebuf, sizeof(ebuf),
                                        path.p, s->origin, ws_data, ws_close, s);
        sodium_memzero(path.p, path.len);
        rtc__buf_free(&path);
        if (!c) {
            snprintf(why, sizeof(why), "cannot connect to %.100s:%d: %.150s", s->url.host,
                     s->url.port, ebuf[0] ? ebuf : "connection failed");
        } else {
            pthread_mutex_lock(&s->mu);
            while (!s->closed && !atomic_load(&s->stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50 * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            }
            bool closed = s->closed;
            pthread_mutex_unlock(&s->mu);
            if (!closed) {
                /* Stopped by the caller: say goodbye with 1000. */
                static const char bye[2] = {0x03, (char)0xe8};
                pthread_mutex_lock(&s->wmu);
                mg_websocket_client_write(c, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, bye, 2);
                pthread_mutex_unlock(&s->wmu);
            }
            mg_close_connection(c); /* joins the reader thread */
            if (atomic_load(&s->stop))
                break;
            int code = s->got_close ? s->close_code : 1006;
            const char *name = rtc_close_name(code);
            if (s->close_reason[0])
                snprintf(why, sizeof(why), "%d %s", code, s->close_reason);
            else
                snprintf(why, sizeof(why), "%d %s", code, name);
            bool retry = rtc_close_retryable(code) && !(code == 4409 && s->token);
            if (!retry) {
                status(s, RTC_STATUS_REFUSED, "%s", why);
                /* The reason is "<name>" or "<name>: <detail>". */
                char nm[64];
                const char *src = s->close_reason[0] ? s->close_reason : name;
                size_t nl = strcspn(src, ":");
                if (nl >= sizeof(nm))
                    nl = sizeof(nm) - 1;
                memcpy(nm, src, nl);
                nm[nl] = '\0';
                return rtc__fail(err, RTC_EREFUSED, code, nm, "%s", why);
            }
            status(s, RTC_STATUS_DISCONNECTED, "%s", why);
            if (s->acked) {
                attempt = 0;
                last_ok = now_ms();
            }
        }
        int64_t now = now_ms();
        if (s->give_up_ms && now - last_ok >= s->give_up_ms) {
            status(s, RTC_STATUS_GAVE_UP, "no subscription for %d ms; last error: %s",
                   s->give_up_ms, why);
            return rtc__fail(err, RTC_ECONNECT, 0, NULL, "%s (gave up after %d ms)", why,
                             s->give_up_ms);
        }
        /* Capped exponential backoff with equal jitter: [d/2, d]. */
        int64_t d = s->backoff_initial_ms;
        for (unsigned i = 0; i < attempt && d < s->backoff_max_ms; i++)
            d *= 2;
        if (d > s->backoff_max_ms)
            d = s->backoff_max_ms;
        d = d / 2 + (int64_t)randombytes_uniform((uint32_t)(d / 2 + 1));
        if (s->give_up_ms && last_ok + s->give_up_ms - now < d)
            d = last_ok + s->give_up_ms - now;
        attempt++;
        status(s, RTC_STATUS_RECONNECTING, "in %lld ms (%s)", (long long)d, why);
        nap(s, (int)d);
    }
    return 0;
}

int rtc_subscribe(const rtc_subscribe_opts_t *opts, rtc_error_t *err)
{
    rtc_sub_t *s = rtc_sub_new(opts);
    if (!s)
        return rtc__fail(err, RTC_EINVAL, 0, NULL,
                         "bad subscribe options (base_url, on_message, token or token_fn)");
    int rc = rtc_sub_run(s, err);
    rtc_sub_free(s);
    return rc;
}
