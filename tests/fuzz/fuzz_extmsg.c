/*
 * fuzz_extmsg.c — libFuzzer target for the client messages (WebSocket text
 * frames): rt_extmsg_kind, rt_extmsg_refresh, rt_extmsg_sub, rt_extmsg_unsub
 * and rt_extmsg_channel_topics, which gateway/server/ws.c applies to a live
 * connection.
 *
 * The connection's current grant is user:42/"*", team:7/status, team:7/alerts.
 * The first input byte picks what the bytes mean:
 *   'P' rest is a token payload, signed HS256 with the ring's current key and
 *       sent as {"kind":"rtgw.refresh","token":…} (reaches the grant check);
 *   'T' rest is the token string, sent in such a message;
 *   'S' rest is a token payload, signed as for 'P', sent as {"kind":"sub","data":…};
 *   anything else: the whole input is the message, as received (refresh, sub
 *       and unsub all validate it).
 * Invariants checked:
 *   - 0 only for a JSON object of kind "rtgw.refresh" whose token verifies;
 *     then every grant of the new claims is covered by the current grant, and
 *     per channel the topics handed to the hub are exactly the new grant's
 *     topics on that channel;
 *   - -1 leaves the new claims zeroed and names a known error with a message;
 *     tok_err is set exactly when the error is a token refusal, and names it;
 *   - validating the same bytes twice gives the same result;
 *   - sub: 0 only for kind "sub" with a verifying token; the topics to add are
 *     new to the grant, distinct, and within the cap; -1 leaves them zeroed
 *     with a named error;
 *   - unsub: 0 only for kind "unsub"; the removed and kept topics together are
 *     the grant; -1 leaves the grant as it was.
 */
#include "extmsg.h"
#include "fuzz_common.h"
#include "rt_tokens_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static rt_keyring_t *ring;
static rt_token_opts_t opts;
static rt_claims_t cur;
static char *cur_jwt; /* verifies into a fresh copy of cur */
#define FUZZ_CONN_TOPICS 5

static void setup(void)
{
    static const rt_topic_ref_t topics[] = {
        {"user:42", "*", NULL}, {"team:7", "status", NULL}, {"team:7", "alerts", NULL}};
    rt_mint_req_t req = {.topics = topics, .ntopics = 3};
    char *jwt = NULL;

    ring = fuzz_ring_new();
    CHECK(ring != NULL);
    fuzz_opts(&opts);
    CHECK(rt_token_mint(ring, &opts, &req, FUZZ_NOW, &jwt, NULL) == 0);
    CHECK(rt_token_verify(ring, &opts, rt_slice_cstr(jwt), FUZZ_NOW, &cur) == 0);
    cur_jwt = jwt;
}

static bool is_zeroed(const rt_claims_t *c)
{
    static const rt_claims_t zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void check_plan(const rt_claims_t *next)
{
    rt_slice_t names[256];

    for (size_t i = 0; i < next->ntopics; i++)
        CHECK(rt_claims_grants(&cur, rt_slice_cstr(next->topics[i].channel),
                               rt_slice_cstr(next->topics[i].name)));
    for (size_t i = 0; i < cur.ntopics; i++) {
        const char *ch = cur.topics[i].channel;
        size_t n = rt_extmsg_channel_topics(next, ch, names, 256), want = 0;
        CHECK(n <= 256);
        for (size_t j = 0; j < next->ntopics; j++)
            if (strcmp(next->topics[j].channel, ch) == 0) {
                CHECK(want >= 256 ||
                      (names[want].len == strlen(next->topics[j].name) &&
                       memcmp(names[want].base, next->topics[j].name, names[want].len) == 0));
                want++;
            }
        CHECK(n == (want < 256 ? want : 256));
    }
}

static void validate(const char *msg, size_t len)
{
    rt_claims_t next, again;
    rt_extmsg_refusal_t why = {0}, why2 = {0};
    int rc = rt_extmsg_refresh(ring, &opts, &cur, msg, len, FUZZ_NOW, &next, &why);
    int rc2 = rt_extmsg_refresh(ring, &opts, &cur, msg, len, FUZZ_NOW, &again, &why2);

    CHECK(rc == 0 || rc == -1);
    CHECK(rc2 == rc);
    if (rc == 0) {
        json_error_t err;
        json_t *m = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &err);
        CHECK(len <= RT_EXTMSG_MAX_BYTES);
        CHECK(json_is_object(m));
        CHECK(strcmp(json_string_value(json_object_get(m, "kind")), "rtgw.refresh") == 0);
        CHECK(json_is_string(json_object_get(m, "token")));
        json_decref(m);
        CHECK(next.exp > FUZZ_NOW - opts.leeway);
        CHECK(next.exp == again.exp && next.ntopics == again.ntopics);
        check_plan(&next);
        rt_claims_clear(&next);
        rt_claims_clear(&again);
        return;
    }
    CHECK(is_zeroed(&next) && is_zeroed(&again));
    CHECK(why.error && *why.error && why.message && *why.message);
    CHECK(strcmp(why.error, why2.error) == 0 && why.tok_err == why2.tok_err);
    if (why.tok_err) {
        CHECK(why.tok_err < 0);
        CHECK(strcmp(why.error, rt_tok_errname(why.tok_err)) == 0);
        CHECK(strcmp(why.message, rt_tok_strerror(why.tok_err)) == 0);
    } else {
        CHECK(strcmp(why.error, "bad_request") == 0 ||
              strcmp(why.error, "refresh_broader_grant") == 0);
    }
}

static bool named(const rt_extmsg_refusal_t *why)
{
    if (!why->error || !*why->error || !why->message || !*why->message)
        return false;
    return why->tok_err ? strcmp(why->error, rt_tok_errname(why->tok_err)) == 0
                        : strcmp(why->error, "bad_request") == 0 ||
                              strcmp(why->error, "too_many_topics") == 0 ||
                              strcmp(why->error, "internal_error") == 0;
}

static const char *kind_of(const char *msg, size_t len)
{
    json_error_t err;
    json_t *m = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &err);
    static char kind[32];
    const char *k = json_string_value(json_object_get(m, "kind"));
    snprintf(kind, sizeof kind, "%s", k ? k : "");
    json_decref(m);
    return kind;
}

static void validate_sub_unsub(const char *msg, size_t len)
{
    rt_extmsg_refusal_t why = {0};
    rt_cmsg_kind_t k = rt_extmsg_kind(msg, len, &why);
    if (k == RT_CMSG_MALFORMED || k == RT_CMSG_UNKNOWN)
        CHECK(strcmp(why.error, "bad_request") == 0 && why.message && *why.message);

    rt_claims_t add;
    why = (rt_extmsg_refusal_t){0};
    if (rt_extmsg_sub(ring, &opts, &cur, msg, len, FUZZ_NOW, FUZZ_CONN_TOPICS, &add, &why) == 0) {
        CHECK(k == RT_CMSG_SUB && strcmp(kind_of(msg, len), "sub") == 0);
        CHECK(cur.ntopics + add.ntopics <= FUZZ_CONN_TOPICS);
        for (size_t i = 0; i < add.ntopics; i++) {
            CHECK(!rt_claims_grants(&cur, rt_slice_cstr(add.topics[i].channel),
                                    rt_slice_cstr(add.topics[i].name)));
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(add.topics[i].channel, add.topics[j].channel) != 0 ||
                      strcmp(add.topics[i].name, add.topics[j].name) != 0);
        }
        rt_claims_clear(&add);
    } else {
        CHECK(is_zeroed(&add) && named(&why));
    }

    rt_claims_t mine, removed;
    CHECK(rt_token_verify(ring, &opts, rt_slice_cstr(cur_jwt), FUZZ_NOW, &mine) == 0);
    size_t before = mine.ntopics;
    why = (rt_extmsg_refusal_t){0};
    if (rt_extmsg_unsub(&mine, msg, len, FUZZ_CONN_TOPICS, &removed, &why) == 0) {
        CHECK(k == RT_CMSG_UNSUB);
        CHECK(mine.ntopics + removed.ntopics == before);
        for (size_t i = 0; i < removed.ntopics; i++)
            CHECK(rt_claims_grants(&cur, rt_slice_cstr(removed.topics[i].channel),
                                   rt_slice_cstr(removed.topics[i].name)));
        rt_claims_clear(&removed);
    } else {
        CHECK(mine.ntopics == before && named(&why));
    }
    rt_claims_clear(&mine);
}

/* {"kind":"rtgw.refresh","token":<tok as a JSON string>} */
static void validate_refresh(const char *tok, size_t len)
{
    json_t *s = json_stringn(tok, len), *m;
    char *msg;

    if (!s) /* not UTF-8: cannot be a JSON string */
        return;
    m = json_pack("{s:s,s:o}", "kind", "rtgw.refresh", "token", s);
    msg = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    CHECK(msg != NULL);
    validate(msg, strlen(msg));
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char header[160], *jwt = NULL;
    size_t len = 0;

    if (!ring)
        setup();
    if (size == 0) {
        validate("", 0);
        return 0;
    }
    switch (data[0]) {
    case 'P':
        snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 rt_keyring_kid(ring, RT_KEY_CURRENT));
        CHECK(rt__jws_forge(ring, RT_KEY_CURRENT, RT_ALG_HS256, rt_slice_cstr(header),
                            (rt_slice_t){(const char *)data + 1, size - 1}, &jwt, &len) == 0);
        validate_refresh(jwt, len);
        free(jwt);
        break;
    case 'T':
        validate_refresh((const char *)data + 1, size - 1);
        break;
    case 'S': {
        snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 rt_keyring_kid(ring, RT_KEY_CURRENT));
        CHECK(rt__jws_forge(ring, RT_KEY_CURRENT, RT_ALG_HS256, rt_slice_cstr(header),
                            (rt_slice_t){(const char *)data + 1, size - 1}, &jwt, &len) == 0);
        json_t *m = json_pack("{s:s,s:s%}", "kind", "sub", "data", jwt, len);
        char *msg = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        if (msg)
            validate_sub_unsub(msg, strlen(msg));
        free(msg);
        free(jwt);
        break;
    }
    default:
        validate((const char *)data, size);
        validate_sub_unsub((const char *)data, size);
    }
    return 0;
}
