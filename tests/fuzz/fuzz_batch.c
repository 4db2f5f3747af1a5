/*
 * fuzz_batch.c — libFuzzer target for the batch publish body:
 * rt_api_publish_batch into a hub with an in-memory subscriber.
 *
 * Input: byte 0 picks the Authorization (mod 4: signing key, token with
 * publish on user:42/"*" and team:7/status, token without publish, garbage);
 * the rest is the body. RTGW_MAX_BATCH is 16 here.
 * Before the call the harness parses the body itself and subscribes one
 * subscriber to "*" of every channel named validly in it, so that it sees
 * every event the batch publishes.
 * Invariants checked:
 *   - the reply is a 4xx JSON refusal (bad credential, no publish grant, not
 *     a non-empty JSON array, more than 16 events) or 200 with one result per
 *     event, published + failed = n, each result {ok:true,id,delivered} or
 *     {ok:false,error,message};
 *   - an accepted event has a valid channel and topic (not "*"), granted by
 *     the token when a token was used; a refused one publishes nothing;
 *   - the subscriber receives, in order, exactly one strict-JSON frame per
 *     event accepted and not a duplicate, with that event's channel, topic,
 *     id, run_id/fn_id and data (null when absent; a body jansson refuses is
 *     only checked to be JSON, its data forwarded as it came); a duplicate repeats the
 *     id of the first event with its key on that channel and topic.
 */
#include "fuzz_gw.h"

static fuzz_gw_t g;

static rt_slice_t str_slice(json_t *s)
{
    return (rt_slice_t){json_string_value(s), json_string_length(s)};
}

static bool granted(json_t *c, json_t *t)
{
    return fuzz_json_str_is(c, "user:42", 7) ||
           (fuzz_json_str_is(c, "team:7", 6) && fuzz_json_str_is(t, "status", 6));
}

static void check_field(json_t *ev, json_t *frame, const char *name)
{
    json_t *want = json_object_get(ev, name), *got = json_object_get(frame, name);
    if (json_string_length(want) == 0)
        CHECK(got == NULL);
    else
        CHECK(json_equal(want, got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_resp_t r = {0};
    rt_hub_t *hub;
    rt_sub_t *sub;
    rt_slice_t star = rt_slice_cstr("*");
    json_error_t err;
    json_t *in, *resp, *results;
    const char *body;
    int auth;

    if (!g.ring)
        fuzz_gw_init(&g);
    if (size == 0)
        return 0;
    auth = data[0] % FUZZ_AUTH_N;
    body = (const char *)data + 1;
    size--;

    hub = rt_hub_new(NULL, 42);
    CHECK(hub != NULL);
    sub = rt_sub_new(hub, RT_FMT_WS, NULL, NULL);
    CHECK(sub != NULL);
    rt_sub_set_ext(sub, true);
    in = json_loadb(body, size, JSON_REJECT_DUPLICATES, &err);
    for (size_t i = 0; i < json_array_size(in); i++) {
        json_t *c = json_object_get(json_array_get(in, i), "channel");
        if (json_is_string(c) && rt_name_validate(str_slice(c), g.api.topts.max_name_bytes) == 0)
            CHECK(rt_hub_subscribe(hub, sub, str_slice(c), &star, 1, NULL, NULL) == 0);
    }
    g.api.hub = hub;
    rt_api_publish_batch(&g.api, g.auth[auth], body, size, FUZZ_NOW_MS, &r);

    if (r.status != 200) {
        fuzz_check_refusal(&r);
        size_t max = (size_t)g.cfg.max_json_depth + 2; /* + the array and event objects */
        CHECK(auth == FUZZ_AUTH_SUB_TOKEN || auth == FUZZ_AUTH_GARBAGE || !json_is_array(in) ||
              json_array_size(in) == 0 || json_array_size(in) > (size_t)g.cfg.max_batch ||
              rt_json_depth(body, size, max) > max ||
              memchr(body, 0, size) != NULL); /* jansson stops at a raw NUL; JSON has none */
        CHECK(fuzz_pop_event(sub) == NULL);
        goto out;
    }
    CHECK(auth == FUZZ_AUTH_KEY || auth == FUZZ_AUTH_PUB_TOKEN);
    if (!in) {
        /* JSON jansson refuses (an integer beyond int64, a duplicate key or a
         * "\u0000" in some event's data): rtgw forwards such data as it came */
        char *scratch = malloc(size + 1);
        CHECK(scratch && rt_json_compact(body, size, 256, scratch, NULL) > 0);
        free(scratch);
        CHECK(fuzz_pop_event(sub) == NULL); /* nothing subscribed */
        goto out;
    }
    CHECK(json_is_array(in) && json_array_size(in) >= 1 &&
          json_array_size(in) <= (size_t)g.cfg.max_batch);
    CHECK(r.body && r.len == strlen(r.body));
    resp = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &err);
    CHECK(json_is_object(resp));
    results = json_object_get(resp, "results");
    size_t n = json_array_size(in), ok = 0, failed = 0;
    CHECK(json_array_size(results) == n);
    for (size_t i = 0; i < n; i++) {
        json_t *res = json_array_get(results, i), *ev = json_array_get(in, i);
        if (!json_is_true(json_object_get(res, "ok"))) {
            CHECK(json_is_false(json_object_get(res, "ok")));
            CHECK(json_string_length(json_object_get(res, "error")) > 0);
            CHECK(json_string_length(json_object_get(res, "message")) > 0);
            failed++;
            continue;
        }
        ok++;
        json_t *c = json_object_get(ev, "channel"), *t = json_object_get(ev, "topic");
        CHECK(json_is_string(c) && json_is_string(t));
        CHECK(rt_name_validate(str_slice(c), g.api.topts.max_name_bytes) == 0);
        CHECK(rt_name_validate(str_slice(t), g.api.topts.max_name_bytes) == 0);
        CHECK(strcmp(json_string_value(t), "*") != 0);
        CHECK(auth != FUZZ_AUTH_PUB_TOKEN || granted(c, t));
        const char *id = json_string_value(json_object_get(res, "id"));
        rt_pos_t pos;
        CHECK(id && rt_pos_parse(rt_slice_cstr(id), &pos) == 0);
        if (json_is_true(json_object_get(res, "duplicate"))) {
            /* the first accepted event with this key, channel and topic has this id */
            json_t *key = json_object_get(ev, "idempotency_key");
            bool found = false;
            CHECK(json_string_length(key) > 0);
            for (size_t j = 0; j < i && !found; j++) {
                json_t *e2 = json_array_get(in, j), *r2 = json_array_get(results, j);
                if (json_is_true(json_object_get(r2, "ok")) &&
                    !json_is_true(json_object_get(r2, "duplicate")) &&
                    json_equal(json_object_get(e2, "channel"), c) &&
                    json_equal(json_object_get(e2, "topic"), t) &&
                    json_equal(json_object_get(e2, "idempotency_key"), key)) {
                    CHECK(strcmp(json_string_value(json_object_get(r2, "id")), id) == 0);
                    found = true;
                }
            }
            CHECK(found);
            continue;
        }
        json_t *frame = fuzz_pop_event(sub);
        CHECK(frame != NULL);
        CHECK(json_equal(json_object_get(frame, "channel"), c));
        CHECK(json_equal(json_object_get(frame, "topic"), t));
        CHECK(fuzz_json_str_is(json_object_get(frame, "id"), id, strlen(id)));
        check_field(ev, frame, "run_id");
        check_field(ev, frame, "fn_id");
        json_t *d = json_object_get(ev, "data");
        CHECK(json_equal(json_object_get(frame, "data"), d ? d : json_null()));
        json_decref(frame);
    }
    CHECK(fuzz_pop_event(sub) == NULL);
    CHECK(json_integer_value(json_object_get(resp, "published")) == (json_int_t)ok);
    CHECK(json_integer_value(json_object_get(resp, "failed")) == (json_int_t)failed);
    json_decref(resp);
out:
    json_decref(in);
    rt_resp_clear(&r);
    rt_hub_unsubscribe_all(hub, sub);
    rt_sub_unref(sub);
    rt_hub_free(hub);
    g.api.hub = NULL;
    return 0;
}
