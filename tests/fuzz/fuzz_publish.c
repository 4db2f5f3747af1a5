/*
 * fuzz_publish.c — libFuzzer target for the publish path of the HTTP API:
 * rt_query_param, rt_api_publish_prepare and rt_api_publish_body (which runs
 * api/publish.c's static body normaliser and rt_event_json) into a hub with an
 * in-memory subscriber.
 *
 * Input: byte 0 picks the Authorization (mod 4: signing key, token with
 * publish, token without publish, garbage); then the query string up to the
 * first '\n'; the rest is the request body.
 * Invariants checked (abort on violation, not just "no crash"):
 *   - rt_query_param returns RT_E_ABSENT, RT_E_INVAL, RT_E_TOOLONG or a length below cap with a NUL
 * there; a decoded value re-encoded as %XX decodes to the same bytes; once an index is absent,
 * every later index is absent;
 *   - prepare either refuses with a 4xx JSON {error,message} (RT_E_INVAL with
 *     400, RT_E_DENIED with 401/403), or yields a
 *     valid channel, 1..16 valid topics (never "*"), valid run_id/fn_id, and
 *     only for a credential allowed to publish there;
 *   - publishing answers 200 {ok,ids[ntopics],delivered} (or 400 bad_body
 *     only for a body that is neither JSON nor UTF-8); each id is a canonical
 *     position; the subscriber of channel/"*" gets exactly `delivered` frames,
 *     each a well-formed WebSocket text frame holding strict compact JSON with
 *     the published channel, topic, id, run_id/fn_id, and data the body's own
 *     bytes without the whitespace between tokens when the body is JSON (always
 *     when jansson reads it; a body jansson refuses, e.g. an integer beyond
 *     int64, may be JSON too), else the body as a JSON string; a repeated topic
 *     under an idempotency key is a duplicate with the first id and no frame.
 */
#include "fuzz_gw.h"

static fuzz_gw_t g;

static void check_query_get(const char *q, const char *name)
{
    char out[64], enc[64 * 3 + 16], back[64];
    int prev = 0;

    for (int idx = 0; idx < 3; idx++) {
        int rc = rt_query_param(q, name, idx, out, sizeof(out));
        CHECK(rc == RT_E_ABSENT || rc == RT_E_INVAL || rc == RT_E_TOOLONG ||
              (rc >= 0 && (size_t)rc < sizeof(out)));
        CHECK(!(prev == RT_E_ABSENT && rc != RT_E_ABSENT));
        prev = rc;
        if (rc < 0)
            continue;
        CHECK(out[rc] == 0);
        CHECK((size_t)rc <= strlen(q));
        /* %XX for every byte decodes back to the same bytes */
        size_t n = (size_t)snprintf(enc, sizeof(enc), "%s=", name);
        for (int i = 0; i < rc; i++)
            n += (size_t)snprintf(enc + n, sizeof(enc) - n, "%%%02X", (unsigned char)out[i]);
        CHECK(rt_query_param(enc, name, 0, back, sizeof(back)) == rc);
        CHECK(memcmp(back, out, (size_t)rc) == 0);
        /* a buffer one byte too small refuses instead of truncating */
        if (rc > 0)
            CHECK(rt_query_param(q, name, idx, back, (size_t)rc) == RT_E_TOOLONG);
    }
}

static bool valid_name(const char *s, size_t max)
{
    return rt_name_validate(rt_slice_cstr(s), max) == 0;
}

static void check_target(int auth, const rt_publish_target_t *t)
{
    CHECK(valid_name(t->channel, g.api.topts.max_name_bytes));
    CHECK(t->ntopics >= 1 && t->ntopics <= 16);
    for (int i = 0; i < t->ntopics; i++) {
        CHECK(valid_name(t->topics[i], g.api.topts.max_name_bytes));
        CHECK(strcmp(t->topics[i], "*") != 0);
        if (auth == FUZZ_AUTH_PUB_TOKEN)
            CHECK(strcmp(t->channel, "user:42") == 0 ||
                  (strcmp(t->channel, "team:7") == 0 && strcmp(t->topics[i], "status") == 0));
    }
    CHECK(!t->run_id[0] || valid_name(t->run_id, 255));
    CHECK(!t->fn_id[0] || valid_name(t->fn_id, 255));
    CHECK(!t->idem_key[0] || valid_name(t->idem_key, 255));
    CHECK(auth == FUZZ_AUTH_KEY || auth == FUZZ_AUTH_PUB_TOKEN);
}

/* The data a subscriber must see for this body: the body as JSON if it parses
 * (any JSON value), else as a JSON string; NULL if it is not UTF-8 either. */
static json_t *expected_data(const char *body, size_t len)
{
    json_error_t err;
    json_t *v = len ? json_loadb(body, len, JSON_DECODE_ANY, &err) : NULL;
    return v ? v : json_stringn(body, len);
}

/* body without the JSON whitespace outside strings (written apart from
 * jsonraw.c on purpose); out has room for len bytes. */
static size_t strip_ws(const char *in, size_t len, char *out)
{
    size_t o = 0;
    bool str = false;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (str) {
            out[o++] = c;
            if (c == '\\' && i + 1 < len)
                out[o++] = in[++i];
            else if (c == '"')
                str = false;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            out[o++] = c;
            str = c == '"';
        }
    }
    return o;
}

/* The last popped frame's raw data against the body (see the top). */
static void check_data_bytes(const char *body, size_t len)
{
    json_error_t err;
    char *strip = malloc(len + 1);
    CHECK(strip != NULL);
    size_t sl = strip_ws(body, len, strip);
    bool as_json = fuzz_data_len == sl && memcmp(fuzz_data_raw, strip, sl) == 0;
    json_t *v = len ? json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err) : NULL;
    if (v && !memchr(body, 0, len)) /* jansson stops at a raw NUL; JSON has none */
        CHECK(as_json);
    if (!as_json) {
        json_t *str = json_stringn(body, len);
        char *want = json_dumps(str, JSON_COMPACT | JSON_ENCODE_ANY);
        CHECK(want && strlen(want) == fuzz_data_len &&
              memcmp(want, fuzz_data_raw, fuzz_data_len) == 0);
        free(want);
        json_decref(str);
    }
    json_decref(v);
    free(strip);
}

static void check_publish(const rt_publish_target_t *t, const char *body, size_t len)
{
    rt_hub_t *hub = rt_hub_new(NULL, 42);
    rt_sub_t *sub;
    rt_slice_t star = rt_slice_cstr("*");
    rt_resp_t r = {0};
    size_t max = (size_t)g.cfg.max_json_depth;
    bool deep = rt_json_depth(body, len, max) > max;
    json_t *want = deep ? NULL : expected_data(body, len), *resp, *ids;
    json_error_t err;

    CHECK(hub != NULL);
    sub = rt_sub_new(hub, RT_FMT_WS, NULL, NULL);
    CHECK(sub != NULL);
    rt_sub_set_ext(sub, true);
    CHECK(rt_hub_subscribe(hub, sub, rt_slice_cstr(t->channel), &star, 1, NULL, NULL) == 0);
    g.api.hub = hub;
    rt_api_publish_body(&g.api, t, body, len, FUZZ_NOW_MS, &r);
    if (deep) { /* refused before any parse, nothing published */
        fuzz_check_refusal(&r);
        CHECK(r.status == 400 && strstr(r.body, "\"json_too_deep\"") != NULL);
        CHECK(fuzz_pop_event(sub) == NULL);
        goto out;
    }
    if (!want) {
        fuzz_check_refusal(&r);
        CHECK(r.status == 400 && strstr(r.body, "\"bad_body\"") != NULL);
        CHECK(fuzz_pop_event(sub) == NULL);
        goto out;
    }
    CHECK(r.status == 200 && r.body && r.len == strlen(r.body));
    resp = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &err);
    CHECK(json_is_true(json_object_get(resp, "ok")));
    ids = json_object_get(resp, "ids");
    CHECK(json_array_size(ids) == (size_t)t->ntopics);
    CHECK(json_is_integer(json_object_get(resp, "delivered")));
    size_t delivered = (size_t)json_integer_value(json_object_get(resp, "delivered")), got = 0;
    bool any_dup = false;
    rt_pos_t last = {0, 0};
    for (int i = 0; i < t->ntopics; i++) {
        const char *id = json_string_value(json_array_get(ids, (size_t)i));
        rt_pos_t pos;
        CHECK(id && rt_pos_parse(rt_slice_cstr(id), &pos) == 0);
        bool dup = false;
        for (int j = 0; j < i && t->idem_key[0]; j++)
            if (strcmp(t->topics[j], t->topics[i]) == 0) {
                CHECK(strcmp(json_string_value(json_array_get(ids, (size_t)j)), id) == 0);
                dup = true;
                break;
            }
        any_dup |= dup;
        if (dup)
            continue;
        CHECK(last.offset == 0 || (pos.epoch == last.epoch && pos.offset == last.offset + 1));
        last = pos;
        json_t *ev = fuzz_pop_event(sub);
        CHECK(ev != NULL);
        got++;
        CHECK(strcmp(json_string_value(json_object_get(ev, "kind")), "data") == 0);
        CHECK(fuzz_json_str_is(json_object_get(ev, "channel"), t->channel, strlen(t->channel)));
        CHECK(fuzz_json_str_is(json_object_get(ev, "topic"), t->topics[i], strlen(t->topics[i])));
        CHECK(fuzz_json_str_is(json_object_get(ev, "id"), id, strlen(id)));
        CHECK(fuzz_json_str_is(json_object_get(ev, "created_at"), "2023-11-14T22:13:20.123Z", 24));
        json_t *run = json_object_get(ev, "run_id"), *fn = json_object_get(ev, "fn_id");
        CHECK(t->run_id[0] ? fuzz_json_str_is(run, t->run_id, strlen(t->run_id)) : run == NULL);
        CHECK(t->fn_id[0] ? fuzz_json_str_is(fn, t->fn_id, strlen(t->fn_id)) : fn == NULL);
        CHECK(json_object_get(ev, "stream_id") == NULL);
        check_data_bytes(body, len);
        json_decref(ev);
    }
    CHECK(got == delivered);
    CHECK(fuzz_pop_event(sub) == NULL);
    CHECK(json_is_true(json_object_get(resp, "duplicate")) == any_dup);
    json_decref(resp);
out:
    json_decref(want);
    rt_resp_clear(&r);
    rt_hub_unsubscribe_all(hub, sub);
    rt_sub_unref(sub);
    rt_hub_free(hub);
    g.api.hub = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rt_publish_target_t t;
    rt_resp_t r = {0};
    const char *nl;
    char *query;
    size_t qlen;
    int auth, rc;

    if (!g.ring)
        fuzz_gw_init(&g);
    if (size == 0)
        return 0;
    auth = data[0] % FUZZ_AUTH_N;
    data++, size--;
    nl = memchr(data, '\n', size);
    qlen = nl ? (size_t)(nl - (const char *)data) : size;
    query = malloc(qlen + 1);
    CHECK(query != NULL);
    memcpy(query, data, qlen);
    query[qlen] = 0; /* civetweb hands the query over as a C string */

    check_query_get(query, "channel");
    check_query_get(query, "topic");
    check_query_get(query, "run_id");

    rc = rt_api_publish_prepare(&g.api, g.auth[auth], query, FUZZ_NOW, &t, &r);
    if (rc != 0) {
        CHECK(rc == RT_E_INVAL ? r.status == 400
                               : rc == RT_E_DENIED && (r.status == 401 || r.status == 403));
        fuzz_check_refusal(&r);
    } else {
        CHECK(r.body == NULL);
        check_target(auth, &t);
        check_publish(&t, nl ? nl + 1 : "", nl ? size - qlen - 1 : 0);
    }
    rt_resp_clear(&r);
    free(query);
    return 0;
}
