/*
 * publish.c — POST /v1/realtime/publish, whole bodies and chunked streams.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rtc_publish_result_clear(rtc_publish_result_t *r)
{
    if (!r)
        return;
    free(r->ids_json);
    memset(r, 0, sizeof(*r));
}

static int publish_target(const rtc__url_t *u, const char *channel, const char *topic,
                          const rtc_publish_opts_t *o, rtc__buf_t *t)
{
    int rc = rtc__buf_adds(t, u->prefix) || rtc__buf_adds(t, "/v1/realtime/publish?channel=") ||
             rtc__buf_addenc(t, channel) || rtc__buf_adds(t, "&topic=") ||
             rtc__buf_addenc(t, topic);
    if (!rc && o && o->run_id)
        rc = rtc__buf_adds(t, "&run_id=") || rtc__buf_addenc(t, o->run_id);
    if (!rc && o && o->fn_id)
        rc = rtc__buf_adds(t, "&fn_id=") || rtc__buf_addenc(t, o->fn_id);
    return rc ? RTC_ENOMEM : 0;
}

static int do_publish(const char *base_url, const char *credential, const char *channel,
                      const char *topic, const void *body, size_t len, rtc_chunk_fn next,
                      void *user, const rtc_publish_opts_t *opts, rtc_publish_result_t *result)
{
    rtc_publish_result_t local;
    rtc_publish_result_t *r = result ? result : &local;
    memset(r, 0, sizeof(*r));
    rtc_error_t *err = &r->error;
    if (!credential || !channel || !topic || (!next && len && !body))
        return rtc__fail(err, RTC_EINVAL, 0, NULL, "need a credential, a channel and a topic");
    if (opts && opts->idempotency_key &&
        (!opts->idempotency_key[0] || strlen(opts->idempotency_key) > 255 ||
         strpbrk(opts->idempotency_key, "\r\n")))
        return rtc__fail(err, RTC_EINVAL, 0, NULL, "an idempotency key is 1-255 bytes, one line");
    rtc__url_t u;
    if (rtc__url_parse(base_url, &u))
        return rtc__fail(err, RTC_EURL, 0, NULL, NULL);
    rtc__buf_t target = {0};
    char *bearer = rtc__bearer(credential);
    char *idem = NULL;
    if (opts && opts->idempotency_key) {
        size_t il = strlen(opts->idempotency_key) + 20;
        idem = malloc(il);
        if (idem)
            snprintf(idem, il, "Idempotency-Key: %s", opts->idempotency_key);
    }
    if (!bearer || (opts && opts->idempotency_key && !idem) ||
        publish_target(&u, channel, topic, opts, &target)) {
        free(bearer);
        free(idem);
        rtc__buf_free(&target);
        return rtc__fail(err, RTC_ENOMEM, 0, NULL, NULL);
    }
    rtc__req_t req = {.method = "POST",
                      .target = target.p,
                      .bearer = bearer,
                      .content_type = next ? "text/stream" : "application/json",
                      .extra_header = idem,
                      .body = body,
                      .len = len,
                      .next = next,
                      .next_user = user,
                      .timeout_ms = opts ? opts->timeout_ms : 0};
    int status;
    char *resp;
    size_t rlen;
    int rc = rtc__http(&u, &req, &status, &resp, &rlen, err);
    free(bearer);
    free(idem);
    rtc__buf_free(&target);
    r->status = status;
    if (rc)
        goto out;
    if (status / 100 != 2) {
        rc = rtc__http_refusal(status, resp, rlen, err);
        free(resp);
        goto out;
    }
    json_error_t je;
    json_t *o = json_loadb(resp, rlen, JSON_REJECT_DUPLICATES, &je);
    free(resp);
    if (!json_is_object(o)) {
        json_decref(o);
        rc = rtc__fail(err, RTC_EPROTO, status, NULL, "the reply is not a JSON object");
        goto out;
    }
    json_t *ids = json_object_get(o, "ids");
    if (json_is_array(ids))
        r->ids_json = json_dumps(ids, JSON_COMPACT);
    r->duplicate = json_is_true(json_object_get(o, "duplicate"));
    r->delivered = (long long)json_integer_value(json_object_get(o, "delivered"));
    const char *sid = json_string_value(json_object_get(o, "stream_id"));
    if (sid)
        snprintf(r->stream_id, sizeof(r->stream_id), "%s", sid);
    r->chunks = (long long)json_integer_value(json_object_get(o, "chunks"));
    r->bytes = (long long)json_integer_value(json_object_get(o, "bytes"));
    json_decref(o);
out:
    if (r == &local)
        rtc_publish_result_clear(&local);
    return rc;
}

int rtc_publish(const char *base_url, const char *credential, const char *channel,
                const char *topic, const void *body, size_t len, const rtc_publish_opts_t *opts,
                rtc_publish_result_t *result)
{
    return do_publish(base_url, credential, channel, topic, body, len, NULL, NULL, opts, result);
}

int rtc_publish_stream(const char *base_url, const char *credential, const char *channel,
                       const char *topic, rtc_chunk_fn next, void *user,
                       const rtc_publish_opts_t *opts, rtc_publish_result_t *result)
{
    if (!next) {
        if (result)
            memset(result, 0, sizeof(*result));
        return rtc__fail(result ? &result->error : NULL, RTC_EINVAL, 0, NULL,
                         "a stream needs a chunk callback");
    }
    return do_publish(base_url, credential, channel, topic, NULL, 0, next, user, opts, result);
}
