/*
 * extmsg.c — validation of the extended-protocol client messages (see
 * extmsg.h). Factored out of the server unchanged in behaviour: the same
 * checks, in the same order, with the same error names and texts.
 */
#include "extmsg.h"

#include <jansson.h>
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

int rt_extmsg_refresh(const rt_keyring_t *ring, const rt_token_opts_t *topts,
                      const rt_claims_t *cur, const char *data, size_t len, int64_t now_s,
                      rt_claims_t *next, rt_extmsg_refusal_t *why)
{
    json_error_t err;
    /* bounded in size and, before the recursive parser runs, in depth */
    bool parse = len <= RT_EXTMSG_MAX_BYTES &&
                 rt_json_depth(data, len, RT_EXTMSG_MAX_DEPTH) <= RT_EXTMSG_MAX_DEPTH;
    json_t *m = parse ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &err) : NULL;
    const char *kind = m ? json_string_value(json_object_get(m, "kind")) : NULL;

    memset(next, 0, sizeof(*next));
    if (!kind) {
        json_decref(m);
        return refuse(why, "bad_request",
                      "messages are JSON objects with a kind (see docs/protocol.md)", 0);
    }
    if (strcmp(kind, "rtgw.refresh") != 0) {
        json_decref(m);
        return refuse(why, "bad_request", "unknown message kind", 0);
    }
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
