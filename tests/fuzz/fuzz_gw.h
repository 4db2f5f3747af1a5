/*
 * fuzz_gw.h — the fixture shared by the gateway fuzz targets: an rt_api_t over
 * the fixed key ring of fuzz_common.h, a fresh hub per input (so a replay gives
 * the same result as the run that found it), an in-memory subscriber, and the
 * CHECK macro that aborts on a broken invariant.
 */
#ifndef RT_FUZZ_GW_H
#define RT_FUZZ_GW_H

#include "api.h"
#include "event.h"
#include "fuzz_common.h"
#include "hub.h"
#include "jsonraw.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define FUZZ_NOW_MS (FUZZ_NOW * 1000 + 123)

/* Authorization headers the targets choose from with one input byte. */
enum { FUZZ_AUTH_KEY, FUZZ_AUTH_PUB_TOKEN, FUZZ_AUTH_SUB_TOKEN, FUZZ_AUTH_GARBAGE, FUZZ_AUTH_N };

typedef struct {
    rt_api_t api;
    rt_keyring_t *ring;
    rt_metrics_t metrics;
    rt_config_t cfg;
    char *auth[FUZZ_AUTH_N]; /* "Bearer …" */
} fuzz_gw_t;

static char *fuzz_bearer(const char *cred)
{
    size_t n = strlen(cred) + 8;
    char *s = malloc(n);
    CHECK(s != NULL);
    snprintf(s, n, "Bearer %s", cred);
    return s;
}

/* Mint a token of the fixed ring at FUZZ_NOW that grants every topic of
 * user:42 and team:7/status, with or without publish. */
static char *fuzz_token(rt_keyring_t *ring, const rt_token_opts_t *o, bool publish)
{
    static const rt_topic_ref_t topics[] = {{"user:42", "*", NULL}, {"team:7", "status", NULL}};
    rt_mint_req_t req = {.topics = topics, .ntopics = 2, .publish = publish};
    char *jwt = NULL, *auth;
    CHECK(rt_token_mint(ring, o, &req, FUZZ_NOW, &jwt, NULL) == 0);
    auth = fuzz_bearer(jwt);
    free(jwt);
    return auth;
}

/* One-time set-up: logging off (refusals would flood stderr), the ring, and
 * the api without a bus (publishes go straight to the hub). */
static void fuzz_gw_init(fuzz_gw_t *g)
{
    memset(g, 0, sizeof(*g));
    rt_log_set_level(RT_LOG_ERROR);
    g->ring = fuzz_ring_new();
    CHECK(g->ring != NULL);
    rt_metrics_init(&g->metrics);
    g->cfg.max_batch = 16;
    g->cfg.max_json_depth = 8; /* small, so the fuzzers reach the limit */
    g->api.keys = rt_livecell_new(rt_live_new(g->ring, NULL, 0)); /* owns g->ring, for ever */
    CHECK(g->api.keys != NULL);
    fuzz_opts(&g->api.topts);
    g->api.metrics = &g->metrics;
    g->api.cfg = &g->cfg;
    g->auth[FUZZ_AUTH_KEY] = fuzz_bearer(FUZZ_KEY_HS);
    g->auth[FUZZ_AUTH_PUB_TOKEN] = fuzz_token(g->ring, &g->api.topts, true);
    g->auth[FUZZ_AUTH_SUB_TOKEN] = fuzz_token(g->ring, &g->api.topts, false);
    g->auth[FUZZ_AUTH_GARBAGE] = fuzz_bearer("not-a-key.or.a-token");
}

/* A refusal: a 4xx status and a JSON body {"error":name,"message":text}. */
static void fuzz_check_refusal(const rt_resp_t *r)
{
    json_error_t err;
    json_t *o;

    CHECK(r->status >= 400 && r->status < 500);
    CHECK(r->body != NULL && r->len == strlen(r->body));
    o = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
    CHECK(json_is_object(o));
    CHECK(json_string_length(json_object_get(o, "error")) > 0);
    CHECK(json_string_length(json_object_get(o, "message")) > 0);
    json_decref(o);
}

/* The raw bytes of the "data" value of the frame fuzz_pop_event popped last
 * (a publish forwards them as they came: they may hold integers beyond int64,
 * duplicate keys, lone surrogate escapes, which jansson refuses). */
static char *fuzz_data_raw;
static size_t fuzz_data_len;

/* The payload p[0..n) with the values of "data" and of the "metadata" right
 * after it replaced by 0 (the envelope rtgw writes itself), into a new
 * buffer; the data's bytes go to fuzz_data_raw. */
static char *fuzz_envelope(const char *p, size_t n, size_t *out_len)
{
    size_t at = 0; /* the first ,"data": is the key: names before it are escaped strings */
    while (at + 8 <= n && memcmp(p + at, ",\"data\":", 8) != 0)
        at++;
    CHECK(at + 8 <= n);
    size_t ds = at + 8, de = rt_json_value_end(p, n, ds), ms = de, me = de;
    if (n - de > 12 && memcmp(p + de, ",\"metadata\":", 12) == 0) {
        ms = de + 12;
        me = rt_json_value_end(p, n, ms);
    }
    free(fuzz_data_raw);
    fuzz_data_len = de - ds;
    fuzz_data_raw = malloc(fuzz_data_len + 1);
    char *env = malloc(n + 2);
    CHECK(fuzz_data_raw && env);
    memcpy(fuzz_data_raw, p + ds, fuzz_data_len);
    size_t o = 0;
    memcpy(env, p, ds);
    o = ds;
    env[o++] = '0';
    memcpy(env + o, p + de, ms - de);
    o += ms - de;
    if (me > ms)
        env[o++] = '0';
    memcpy(env + o, p + me, n - me);
    *out_len = o + n - me;
    return env;
}

/* Pop one frame from sub and decode its WebSocket text payload as JSON (the
 * frame header must describe exactly the bytes that follow). The envelope
 * must be strict JSON; "data" in the result is its raw bytes as jansson reads
 * them (the string "\x01raw" when jansson cannot: see fuzz_data_raw). NULL if
 * the queue is empty; aborts if the frame is not well formed. */
static json_t *fuzz_pop_event(rt_sub_t *sub)
{
    rt_frame_t *f;
    const unsigned char *p;
    size_t hl, plen, elen;
    json_error_t err;
    json_t *o;

    if (rt_sub_pop(sub, &f, 1) != 1)
        return NULL;
    p = (const unsigned char *)f->data;
    CHECK(f->len >= 2 && p[0] == 0x81 && (p[1] & 0x80) == 0);
    plen = p[1] & 127;
    hl = 2;
    if (plen == 126) {
        CHECK(f->len >= 4);
        plen = (size_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (plen == 127) {
        CHECK(f->len >= 10);
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | p[i];
        hl = 10;
    }
    CHECK(hl + plen == f->len);
    CHECK(memchr(f->data + hl, '\n', plen) == NULL);
    char *scratch = malloc(plen + 1); /* the whole frame is JSON with no whitespace to drop */
    CHECK(scratch && rt_json_compact(f->data + hl, plen, 256, scratch, NULL) == (long)plen);
    free(scratch);
    /* Strict: compact JSON an official client can parse (no duplicate keys). */
    char *env = fuzz_envelope(f->data + hl, plen, &elen);
    o = json_loadb(env, elen, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!o)
        fprintf(stderr, "frame is not JSON: %s: %.*s\n", err.text, (int)plen, f->data + hl);
    CHECK(json_is_object(o));
    free(env);
    json_t *d = json_loadb(fuzz_data_raw, fuzz_data_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    json_object_set_new(o, "data", d ? d : json_string("\x01raw"));
    rt_frame_unref(f);
    return o;
}

/* True if the JSON string s holds exactly the bytes b[0..n). */
static bool fuzz_json_str_is(json_t *s, const char *b, size_t n)
{
    return json_is_string(s) && json_string_length(s) == n &&
           memcmp(json_string_value(s), b, n) == 0;
}

#endif
