/*
 * extmsg.c — validation of the client messages (see extmsg.h): Inngest's sub
 * and unsub, and the extended protocol's rtgw.refresh. Pure functions: no
 * I/O, no locks, any thread; every parse is bounded in size and depth first.
 */
#include "extmsg.h"
#include "err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int refuse(rt_extmsg_refusal_t *why, const char *error, const char *message, int tok_err)
{
    why->error = error;
    why->message = message;
    why->tok_err = tok_err;
    return -1;
}

/* True if every grant of `next` is covered by `cur` (same or narrower). */
static bool grant_within(const rt_claims_t *cur, const rt_claims_t *next)
{
    for (size_t i = 0; i < next->ntopics; i++)
        if (!rt_claims_grants(cur, rt_slice_cstr(next->topics[i].channel),
                              rt_slice_cstr(next->topics[i].name)))
            return false;
    return true;
}

/* The message as a JSON object with a string kind, or NULL (*why filled). */
static json_t *parse_message(const char *data, size_t len, rt_extmsg_refusal_t *why)
{
    if (len > RT_EXTMSG_MAX_BYTES) {
        refuse(why, "bad_request", "client messages are at most 64 KiB", 0);
        return NULL;
    }
    if (rt_json_depth(data, len, RT_EXTMSG_MAX_DEPTH) > RT_EXTMSG_MAX_DEPTH) {
        refuse(why, "bad_request", "client messages are nested at most 8 deep", 0);
        return NULL;
    }
    json_error_t err;
    json_t *m = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_string(json_object_get(m, "kind"))) {
        json_decref(m);
        refuse(why, "bad_request", "messages are JSON objects with a kind (see docs/protocol.md)",
               0);
        return NULL;
    }
    return m;
}

/* The same, of kind `want`. */
static json_t *parse_kind(const char *data, size_t len, const char *want, rt_extmsg_refusal_t *why)
{
    json_t *m = parse_message(data, len, why);
    if (m && want && strcmp(json_string_value(json_object_get(m, "kind")), want) != 0) {
        json_decref(m);
        refuse(why, "bad_request", "unknown message kind", 0);
        return NULL;
    }
    return m;
}

rt_cmsg_kind_t rt_extmsg_kind(const char *data, size_t len, rt_extmsg_refusal_t *why)
{
    json_t *m = parse_message(data, len, why);
    if (!m)
        return RT_CMSG_MALFORMED;
    const char *kind = json_string_value(json_object_get(m, "kind"));
    rt_cmsg_kind_t k = strcmp(kind, "sub") == 0            ? RT_CMSG_SUB
                       : strcmp(kind, "unsub") == 0        ? RT_CMSG_UNSUB
                       : strcmp(kind, "rtgw.refresh") == 0 ? RT_CMSG_REFRESH
                                                           : RT_CMSG_UNKNOWN;
    json_decref(m);
    if (k == RT_CMSG_UNKNOWN)
        refuse(why, "bad_request", "unknown message kind", 0);
    return k;
}

/* Keep in claims only the topics for which keep(i) is true; frees the others.
 * Order is kept. */
static void claims_filter(rt_claims_t *cl, const bool *keep)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->ntopics; i++) {
        if (keep[i]) {
            cl->topics[n++] = cl->topics[i];
        } else {
            free(cl->topics[i].channel);
            free(cl->topics[i].name);
            free(cl->topics[i].kind);
        }
    }
    cl->ntopics = n;
}

static bool topic_eq(const rt_topic_t *a, const char *ch, const char *name)
{
    return strcmp(a->channel, ch) == 0 && strcmp(a->name, name) == 0;
}

/* Marks in keep the topics of add that cur does not grant yet (first of
 * duplicates only); returns their count. */
static size_t new_topics(const rt_claims_t *cur, const rt_claims_t *add, bool *keep)
{
    size_t n = 0;
    for (size_t i = 0; i < add->ntopics; i++) {
        const rt_topic_t *t = &add->topics[i];
        keep[i] = !rt_claims_grants(cur, rt_slice_cstr(t->channel), rt_slice_cstr(t->name));
        for (size_t j = 0; j < i && keep[i]; j++)
            keep[i] = !(keep[j] && topic_eq(&add->topics[j], t->channel, t->name));
        n += keep[i];
    }
    return n;
}

int rt_extmsg_sub(const rt_keyring_t *ring, const rt_token_opts_t *topts, const rt_claims_t *cur,
                  const char *data, size_t len, int64_t now_s, size_t max_topics, rt_claims_t *add,
                  rt_extmsg_refusal_t *why)
{
    memset(add, 0, sizeof(*add));
    json_t *m = parse_kind(data, len, "sub", why);
    if (!m)
        return -1;
    json_t *tok = json_object_get(m, "data");
    if (!json_is_string(tok)) {
        json_decref(m);
        return refuse(why, "bad_request", "sub carries a token as a JSON string in data", 0);
    }
    int rc = rt_token_verify(
        ring, topts, (rt_slice_t){json_string_value(tok), json_string_length(tok)}, now_s, add);
    json_decref(m);
    if (rc)
        return refuse(why, rt_tok_errname(rc), rt_tok_strerror(rc), rc);
    bool *keep = calloc(add->ntopics + 1, sizeof(bool));
    if (!keep) {
        rt_claims_clear(add);
        return refuse(why, "internal_error", "out of memory", 0);
    }
    size_t n = new_topics(cur, add, keep);
    if (cur->ntopics + n > max_topics) {
        free(keep);
        rt_claims_clear(add);
        return refuse(why, "too_many_topics",
                      "a connection holds at most RTGW_MAX_TOPICS topics; unsub some first", 0);
    }
    claims_filter(add, keep);
    free(keep);
    return 0;
}

/* Whether a is a list of at most max {"channel":string,"name":string} objects. */
static bool unsub_list_ok(const json_t *a, size_t max)
{
    if (!json_is_array(a) || json_array_size(a) > max)
        return false;
    size_t i;
    json_t *t;
    json_array_foreach(a, i, t)
    {
        if (!json_is_string(json_object_get(t, "channel")) ||
            !json_is_string(json_object_get(t, "name")))
            return false;
    }
    return true;
}

int rt_extmsg_unsub(rt_claims_t *cur, const char *data, size_t len, size_t max_topics,
                    rt_claims_t *removed, rt_extmsg_refusal_t *why)
{
    memset(removed, 0, sizeof(*removed));
    json_t *m = parse_kind(data, len, "unsub", why);
    if (!m)
        return -1;
    json_t *list = json_object_get(m, "data");
    if (!unsub_list_ok(list, max_topics)) {
        json_decref(m);
        return refuse(why, "bad_request",
                      "unsub carries in data a list of topics {\"channel\",\"name\"} "
                      "(at most RTGW_MAX_TOPICS)",
                      0);
    }
    bool *keep = calloc(cur->ntopics + 1, sizeof(bool));
    rt_topic_t *out = calloc(cur->ntopics + 1, sizeof(rt_topic_t));
    if (!keep || !out) {
        free(keep);
        free(out);
        json_decref(m);
        return refuse(why, "internal_error", "out of memory", 0);
    }
    size_t nout = 0;
    for (size_t i = 0; i < cur->ntopics; i++) {
        size_t j;
        json_t *t;
        keep[i] = true;
        json_array_foreach(list, j, t)
        {
            if (keep[i] &&
                topic_eq(&cur->topics[i], json_string_value(json_object_get(t, "channel")),
                         json_string_value(json_object_get(t, "name"))))
                keep[i] = false;
        }
        if (!keep[i]) {
            out[nout++] = cur->topics[i];
            cur->topics[i] = (rt_topic_t){0}; /* moved */
        }
    }
    json_decref(m);
    claims_filter(cur, keep); /* frees only the moved-out (now empty) entries */
    free(keep);
    removed->topics = out;
    removed->ntopics = nout;
    return 0;
}

int rt_extmsg_claims_merge(rt_claims_t *cur, rt_claims_t *add)
{
    if (add->ntopics == 0)
        return 0;
    rt_topic_t *v = realloc(cur->topics, (cur->ntopics + add->ntopics) * sizeof(rt_topic_t));
    if (!v)
        return RT_E_NOMEM;
    memcpy(v + cur->ntopics, add->topics, add->ntopics * sizeof(rt_topic_t));
    cur->topics = v;
    cur->ntopics += add->ntopics;
    free(add->topics);
    add->topics = NULL;
    add->ntopics = 0;
    return 0;
}

int rt_extmsg_refresh(const rt_keyring_t *ring, const rt_token_opts_t *topts,
                      const rt_claims_t *cur, const char *data, size_t len, int64_t now_s,
                      rt_claims_t *next, rt_extmsg_refusal_t *why)
{
    memset(next, 0, sizeof(*next));
    json_t *m = parse_kind(data, len, "rtgw.refresh", why);
    if (!m)
        return -1;
    json_t *tok = json_object_get(m, "token");
    int rc = json_is_string(tok)
                 ? rt_token_verify(ring, topts,
                                   (rt_slice_t){json_string_value(tok), json_string_length(tok)},
                                   now_s, next)
                 : RT_TOK_EMALFORMED;
    json_decref(m);
    if (rc)
        return refuse(why, rt_tok_errname(rc), rt_tok_strerror(rc), rc);
    if (!grant_within(cur, next)) {
        rt_claims_clear(next); /* zeroes it */
        return refuse(
            why, "refresh_broader_grant",
            "a refreshed token may only keep or narrow the grant; reconnect for a broader one", 0);
    }
    return 0;
}

size_t rt_extmsg_channel_topics(const rt_claims_t *next, const char *ch, rt_slice_t *names,
                                size_t cap)
{
    size_t n = 0;
    for (size_t j = 0; j < next->ntopics && n < cap; j++)
        if (strcmp(next->topics[j].channel, ch) == 0)
            names[n++] = rt_slice_cstr(next->topics[j].name);
    return n;
}
