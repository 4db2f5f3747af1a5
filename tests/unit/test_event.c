/*
 * test_event.c — unit tests for gateway/core/include/event.h, frame.h, wsframe.h, err.h and
 * reason.h: positions, the event JSON, string escaping and WebSocket framing.
 */
#include "event.h"
#include "frame.h"
#include "jsonraw.h"
#include "wsframe.h"
#include "err.h"
#include "reason.h"
#include "rt_test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, rt_pos_t *p)
{
    return rt_pos_parse(rt_slice_cstr(s), p);
}

static void assert_refused(const char *s)
{
    rt_pos_t p = {77, 77};
    if (parse(s, &p) != -1)
        rt_test_fail(__FILE__, __LINE__,
                     "rt_pos_parse(\"%s\") accepted: epoch %" PRIx64 " offset %" PRIu64, s, p.epoch,
                     p.offset);
}

/* ---- positions ---- */

RT_TEST(pos_round_trip)
{
    const rt_pos_t cases[] = {
        {1, 0},
        {1, 1},
        {0xabc, 42},
        {0xffffffffffffULL, 1234567},
        {UINT64_MAX, 9999999999999999999ULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[RT_POS_MAX];
        int n = rt_pos_format(cases[i], buf, sizeof(buf));
        RT_ASSERT(n > 0 && n < RT_POS_MAX);
        RT_ASSERT_INT_EQ(n, strlen(buf));
        rt_pos_t back = {0, 0};
        RT_ASSERT_INT_EQ(rt_pos_parse((rt_slice_t){buf, (size_t)n}, &back), 0);
        RT_ASSERT_INT_EQ(back.epoch, cases[i].epoch);
        RT_ASSERT_INT_EQ(back.offset, cases[i].offset);
    }
}

RT_TEST(pos_format_shape)
{
    char buf[RT_POS_MAX];
    rt_pos_format((rt_pos_t){0x1f, 7}, buf, sizeof(buf));
    RT_ASSERT_STR_EQ(buf, "1f-7");
    rt_pos_format((rt_pos_t){0xdeadbeef, 100}, buf, sizeof(buf));
    RT_ASSERT_STR_EQ(buf, "deadbeef-100");
}

RT_TEST(pos_parse_accepts_canonical)
{
    rt_pos_t p;
    RT_ASSERT_INT_EQ(parse("0-0", &p), 0);
    RT_ASSERT_INT_EQ(p.epoch, 0);
    RT_ASSERT_INT_EQ(p.offset, 0);
    RT_ASSERT_INT_EQ(parse("abc-10", &p), 0);
    RT_ASSERT_INT_EQ(p.epoch, 0xabc);
    RT_ASSERT_INT_EQ(p.offset, 10);
}

RT_TEST(pos_parse_refuses_uppercase_hex)
{
    assert_refused("ABC-1");
    assert_refused("aBc-1");
}

RT_TEST(pos_parse_refuses_leading_zeros)
{
    assert_refused("1-01");
    assert_refused("1-00");
    assert_refused("01-1"); /* the epoch is canonical hex too */
    assert_refused("00-1");
}

RT_TEST(pos_parse_refuses_missing_dash)
{
    assert_refused("abc");
    assert_refused("12");
    assert_refused("1_2");
}

RT_TEST(pos_parse_refuses_too_long)
{
    assert_refused("12345678901234567-1");    /* 17 hex digits of epoch */
    assert_refused("1-12345678901234567890"); /* 20 digits of offset */
    char big[RT_POS_MAX + 8];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    big[3] = '-';
    assert_refused(big);
}

RT_TEST(pos_parse_refuses_empty_parts)
{
    assert_refused("");
    assert_refused("-");
    assert_refused("-1");
    assert_refused("a-");
}

RT_TEST(pos_parse_refuses_non_digits)
{
    assert_refused("g-1");
    assert_refused("1-a");
    assert_refused("1-1 ");
    assert_refused(" 1-1");
    assert_refused("1--1");
    assert_refused("1-+1");
    assert_refused("1-1-1");
    assert_refused("0x1-1");
}

RT_TEST(pos_parse_respects_slice_length)
{
    rt_pos_t p;
    const char *s = "ab-12trailing";
    RT_ASSERT_INT_EQ(rt_pos_parse((rt_slice_t){s, 5}, &p), 0);
    RT_ASSERT_INT_EQ(p.epoch, 0xab);
    RT_ASSERT_INT_EQ(p.offset, 12);
}

/* ---- event JSON ---- */

static json_t *event_obj(const rt_event_t *ev, const rt_pos_t *pos, char **raw)
{
    size_t len = 0;
    char *j = rt_event_json(ev, pos, &len);
    RT_ASSERT(j != NULL);
    /* The buffer carries its length (no NUL); copy it into a C string. */
    char *s = malloc(len + 1);
    RT_ASSERT(s != NULL);
    memcpy(s, j, len);
    s[len] = 0;
    free(j);
    RT_ASSERT_INT_EQ(len, strlen(s));
    RT_ASSERT(memchr(s, '\n', len) == NULL); /* SSE needs one line */
    json_error_t err;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        rt_test_fail(__FILE__, __LINE__, "not JSON: %s\n    text: %s", err.text, s);
    if (raw)
        *raw = s;
    else
        free(s);
    return o;
}

static const char *str_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

RT_TEST(event_json_minimal_omits_optional)
{
    rt_event_t ev = {.kind = "data",
                     .channel = RT_SLICE_LIT("user:1"),
                     .topic = RT_SLICE_LIT("ai"),
                     .data = RT_SLICE_LIT("{\"a\":1}"),
                     .created_at_ms = INT64_C(1700000000123)};
    char *raw;
    json_t *o = event_obj(&ev, NULL, &raw);
    RT_ASSERT_STR_EQ(
        raw, "{\"kind\":\"data\",\"channel\":\"user:1\",\"topic\":\"ai\",\"data\":{\"a\":1},"
             "\"created_at\":\"2023-11-14T22:13:20.123Z\"}");
    RT_ASSERT(json_object_get(o, "run_id") == NULL);
    RT_ASSERT(json_object_get(o, "fn_id") == NULL);
    RT_ASSERT(json_object_get(o, "stream_id") == NULL);
    RT_ASSERT(json_object_get(o, "id") == NULL);
    free(raw);
    json_decref(o);
}

RT_TEST(event_json_all_fields)
{
    rt_event_t ev = {.kind = "chunk",
                     .channel = RT_SLICE_LIT("c"),
                     .topic = RT_SLICE_LIT("t"),
                     .data = RT_SLICE_LIT("\"x\""),
                     .created_at_ms = 0,
                     .run_id = RT_SLICE_LIT("run1"),
                     .fn_id = RT_SLICE_LIT("fn1"),
                     .stream_id = RT_SLICE_LIT("s1")};
    rt_pos_t pos = {0xbeef, 3};
    json_t *o = event_obj(&ev, &pos, NULL);
    RT_ASSERT_STR_EQ(str_field(o, "kind"), "chunk");
    RT_ASSERT_STR_EQ(str_field(o, "channel"), "c");
    RT_ASSERT_STR_EQ(str_field(o, "topic"), "t");
    RT_ASSERT_STR_EQ(str_field(o, "data"), "x");
    RT_ASSERT_STR_EQ(str_field(o, "created_at"), "1970-01-01T00:00:00.000Z");
    RT_ASSERT_STR_EQ(str_field(o, "run_id"), "run1");
    RT_ASSERT_STR_EQ(str_field(o, "fn_id"), "fn1");
    RT_ASSERT_STR_EQ(str_field(o, "stream_id"), "s1");
    RT_ASSERT_STR_EQ(str_field(o, "id"), "beef-3");
    RT_ASSERT_INT_EQ(json_object_size(o), 9);
    json_decref(o);
}

RT_TEST(event_json_never_null)
{
    /* Empty data and empty optional fields: no null anywhere. */
    rt_event_t ev = {.kind = "data",
                     .channel = RT_SLICE_LIT("c"),
                     .topic = RT_SLICE_LIT("t"),
                     .data = {"", 0},
                     .run_id = {"", 0},
                     .fn_id = {NULL, 0}};
    char *raw;
    json_t *o = event_obj(&ev, NULL, &raw);
    RT_ASSERT(strstr(raw, "null") == NULL);
    RT_ASSERT_STR_EQ(str_field(o, "data"), "");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) RT_ASSERT(!json_is_null(v));
    free(raw);
    json_decref(o);
}

RT_TEST(event_json_escapes_names)
{
    const char chan[] = "q\"b\\s\x01\x1f\n\t\r\b\f";
    const char topic[] = "h\xc3\xa9llo-\xe2\x82\xac-\xf0\x9f\x98\x80"; /* é € 😀 */
    rt_event_t ev = {.kind = "data",
                     .channel = {chan, sizeof(chan) - 1},
                     .topic = {topic, sizeof(topic) - 1},
                     .data = RT_SLICE_LIT("1")};
    char *raw;
    json_t *o = event_obj(&ev, NULL, &raw);
    RT_ASSERT(strstr(raw, "\"q\\\"b\\\\s\\u0001\\u001f\\n\\t\\r\\b\\f\"") != NULL);
    RT_ASSERT_STR_EQ(str_field(o, "channel"), chan);
    RT_ASSERT_STR_EQ(str_field(o, "topic"), topic);
    /* UTF-8 passes through as bytes, not \u escapes. */
    RT_ASSERT(strstr(raw, topic) != NULL);
    free(raw);
    json_decref(o);
}

/* Every optional field fully escaped (six bytes out per byte in) and the
 * longest position: the size estimate must still hold. */
RT_TEST(event_json_worst_case_escaping)
{
    char ctl[64];
    memset(ctl, 0x01, sizeof(ctl));
    rt_slice_t c1 = {ctl, 1}, cn = {ctl, sizeof(ctl)};
    rt_slice_t lens[] = {c1, cn};
    for (int a = 0; a < 2; a++) {
        rt_event_t ev = {.kind = "datastream-start",
                         .channel = lens[a],
                         .topic = lens[a],
                         .data = RT_SLICE_LIT("0"),
                         .created_at_ms = INT64_C(253402300799999),
                         .run_id = lens[a],
                         .fn_id = lens[a],
                         .stream_id = lens[a]};
        rt_pos_t pos = {UINT64_MAX, UINT64_MAX};
        json_t *o = event_obj(&ev, &pos, NULL);
        RT_ASSERT_STR_EQ(str_field(o, "created_at"), "9999-12-31T23:59:59.999Z");
        json_decref(o);
    }
}

RT_TEST(json_put_string_bounds)
{
    char buf[16];
    size_t len = 0;
    RT_ASSERT_INT_EQ(rt_json_put_string(buf, sizeof(buf), &len, "abc", 3), 0);
    RT_ASSERT_MEM_EQ(buf, len, "\"abc\"", 5);
    len = 0;
    /* Too small: -1 and *len untouched. */
    RT_ASSERT_INT_EQ(rt_json_put_string(buf, 4, &len, "abcdef", 6), -1);
    RT_ASSERT_INT_EQ(len, 0);
    len = 0;
    RT_ASSERT_INT_EQ(rt_json_put_string(buf, sizeof(buf), &len, "\x7f", 1), 0);
    RT_ASSERT_MEM_EQ(buf, len, "\"\x7f\"", 3); /* DEL is legal in JSON strings */
}

RT_TEST(rfc3339_ms)
{
    char buf[40];
    RT_ASSERT_INT_EQ(rt_rfc3339_ms(INT64_C(1700000000123), buf, sizeof(buf)), 24);
    RT_ASSERT_STR_EQ(buf, "2023-11-14T22:13:20.123Z");
    rt_rfc3339_ms(INT64_C(1700000000005), buf, sizeof(buf));
    RT_ASSERT_STR_EQ(buf, "2023-11-14T22:13:20.005Z");
}

RT_TEST(sse_frame_shape)
{
    const char json[] = "{\"a\":1}";
    rt_pos_t pos = {0xab, 5};
    rt_frame_t *f = rt_event_sse_frame(json, sizeof(json) - 1, &pos);
    RT_ASSERT(f != NULL);
    const char want[] = "id: ab-5\ndata: {\"a\":1}\n\n";
    RT_ASSERT_MEM_EQ(f->data, f->len, want, sizeof(want) - 1);
    RT_ASSERT(f->len <= f->cap);
    rt_frame_unref(f);
    f = rt_event_sse_frame(json, sizeof(json) - 1, NULL);
    const char want2[] = "data: {\"a\":1}\n\n";
    RT_ASSERT_MEM_EQ(f->data, f->len, want2, sizeof(want2) - 1);
    rt_frame_unref(f);
}

/* ---- WebSocket frames ---- */

static void check_ws(size_t n, size_t want_hl)
{
    char *payload = calloc(1, n ? n : 1);
    RT_ASSERT(payload != NULL);
    for (size_t i = 0; i < n; i++)
        payload[i] = (char)('a' + i % 26);
    rt_frame_t *f = rt_ws_frame_new(RT_WS_TEXT, payload, n);
    RT_ASSERT(f != NULL);
    const unsigned char *p = (const unsigned char *)f->data;
    RT_ASSERT_INT_EQ(rt_ws_hdr_len(n), want_hl);
    RT_ASSERT_INT_EQ(f->len, want_hl + n);
    RT_ASSERT_INT_EQ(p[0], 0x81);     /* FIN + text */
    RT_ASSERT_INT_EQ(p[1] & 0x80, 0); /* server frames are unmasked */
    uint64_t got;
    if (want_hl == 2) {
        got = p[1];
    } else if (want_hl == 4) {
        RT_ASSERT_INT_EQ(p[1], 126);
        got = (uint64_t)p[2] << 8 | p[3];
    } else {
        RT_ASSERT_INT_EQ(p[1], 127);
        RT_ASSERT_INT_EQ(p[2] & 0x80, 0); /* most significant bit must be 0 */
        got = 0;
        for (int i = 0; i < 8; i++)
            got = got << 8 | p[2 + i];
    }
    RT_ASSERT_INT_EQ(got, n);
    RT_ASSERT(memcmp(f->data + want_hl, payload, n) == 0);
    rt_frame_unref(f);
    free(payload);
}

RT_TEST(ws_frame_len_0)
{
    check_ws(0, 2);
}
RT_TEST(ws_frame_len_125)
{
    check_ws(125, 2);
}
RT_TEST(ws_frame_len_126)
{
    check_ws(126, 4);
}
RT_TEST(ws_frame_len_65535)
{
    check_ws(65535, 4);
}
RT_TEST(ws_frame_len_65536)
{
    check_ws(65536, 10);
}

RT_TEST(ws_frame_opcodes)
{
    rt_frame_t *f = rt_ws_frame_new(RT_WS_PING, "x", 1);
    RT_ASSERT_INT_EQ((unsigned char)f->data[0], 0x89);
    rt_frame_unref(f);
    f = rt_ws_frame_new(RT_WS_PONG, NULL, 0);
    RT_ASSERT_INT_EQ((unsigned char)f->data[0], 0x8A);
    RT_ASSERT_INT_EQ(f->len, 2);
    rt_frame_unref(f);
}

RT_TEST(event_ws_frame_carries_json)
{
    const char json[] = "{\"k\":\"v\"}";
    rt_frame_t *f = rt_event_ws_frame(json, sizeof(json) - 1);
    RT_ASSERT_INT_EQ((unsigned char)f->data[0], 0x81);
    RT_ASSERT_MEM_EQ(f->data + 2, f->len - 2, json, sizeof(json) - 1);
    rt_frame_unref(f);
}

RT_TEST(frame_refcount)
{
    rt_frame_t *f = rt_frame_new(8);
    RT_ASSERT_INT_EQ(atomic_load(&f->refs), 1);
    RT_ASSERT(rt_frame_ref(f) == f);
    RT_ASSERT_INT_EQ(atomic_load(&f->refs), 2);
    rt_frame_unref(f);
    RT_ASSERT_INT_EQ(atomic_load(&f->refs), 1);
    rt_frame_unref(f);
    rt_frame_unref(NULL);
}

static void close_payload(rt_frame_t *f, int *code, const char **reason, size_t *rlen)
{
    const unsigned char *p = (const unsigned char *)f->data;
    RT_ASSERT_INT_EQ(p[0], 0x88);
    RT_ASSERT(p[1] <= 125); /* control frames: payload at most 125 */
    RT_ASSERT_INT_EQ(f->len, 2 + p[1]);
    *code = p[2] << 8 | p[3];
    *reason = f->data + 4;
    *rlen = p[1] - 2;
}

RT_TEST(ws_close_frame_short)
{
    rt_frame_t *f = rt_ws_close_frame_new(4429, "slow_consumer");
    int code;
    const char *r;
    size_t rl;
    close_payload(f, &code, &r, &rl);
    RT_ASSERT_INT_EQ(code, 4429);
    RT_ASSERT_MEM_EQ(r, rl, "slow_consumer", 13);
    rt_frame_unref(f);
    f = rt_ws_close_frame_new(1000, NULL);
    close_payload(f, &code, &r, &rl);
    RT_ASSERT_INT_EQ(code, 1000);
    RT_ASSERT_INT_EQ(rl, 0);
    rt_frame_unref(f);
}

RT_TEST(ws_close_frame_truncates_ascii)
{
    char reason[300];
    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = 0;
    rt_frame_t *f = rt_ws_close_frame_new(1011, reason);
    int code;
    const char *r;
    size_t rl;
    close_payload(f, &code, &r, &rl);
    RT_ASSERT_INT_EQ(rl, 123);
    rt_frame_unref(f);
}

/* A multi-byte character straddling byte 123 is dropped whole. */
RT_TEST(ws_close_frame_truncates_on_utf8_boundary)
{
    static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 3; c++) {
        size_t cl = strlen(chars[c]);
        for (size_t prefix = 118; prefix <= 123; prefix++) {
            char reason[200];
            memset(reason, 'a', prefix);
            size_t o = prefix;
            for (int k = 0; k < 3; k++) {
                memcpy(reason + o, chars[c], cl);
                o += cl;
            }
            reason[o] = 0;
            rt_frame_t *f = rt_ws_close_frame_new(1000, reason);
            int code;
            const char *r;
            size_t rl;
            close_payload(f, &code, &r, &rl);
            RT_ASSERT(rl <= 123);
            /* the kept bytes are a prefix that ends on a character boundary */
            RT_ASSERT(memcmp(r, reason, rl) == 0);
            RT_ASSERT(rl >= prefix);
            RT_ASSERT_INT_EQ((rl - prefix) % cl, 0);
            RT_ASSERT(123 - rl < cl); /* nothing more was dropped than needed */
            rt_frame_unref(f);
        }
    }
}

/* wsframe.h: the one frame-header codec. A header written, masked or not,
 * parses back to the same fields, at every length boundary. */
RT_TEST(wsframe_roundtrip)
{
    const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    const uint8_t mask[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int m = 0; m < 2; m++) {
            uint8_t buf[RT_WS_HDR_MAX];
            size_t hl = rt_ws_hdr_write(buf, RT_WS_TEXT, lens[i], m ? mask : NULL);
            RT_ASSERT_INT_EQ(hl, rt_ws_hdr_need(buf[1]));
            if (!m)
                RT_ASSERT_INT_EQ(hl, rt_ws_hdr_len(lens[i]));
            rt_ws_hdr_t h;
            RT_ASSERT_INT_EQ(rt_ws_hdr_parse(buf, hl - 1, &h), 0); /* one byte short */
            RT_ASSERT_INT_EQ(rt_ws_hdr_parse(buf, hl, &h), (int)hl);
            RT_ASSERT_INT_EQ(h.len, lens[i]);
            RT_ASSERT_INT_EQ(h.opcode, RT_WS_TEXT);
            RT_ASSERT_INT_EQ(h.fin, 1);
            RT_ASSERT_INT_EQ(h.rsv, 0);
            RT_ASSERT_INT_EQ(h.masked, m);
            if (m)
                RT_ASSERT_INT_EQ(memcmp(h.mask, mask, 4), 0);
        }
    }
}

/* A 64-bit length with its top bit set is refused (RFC 6455 §5.2), and RSV
 * bits and a cleared FIN are reported, not hidden. */
RT_TEST(wsframe_refuses_top_bit_and_reports_rsv)
{
    uint8_t bad[10] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    rt_ws_hdr_t h;
    RT_ASSERT_INT_EQ(rt_ws_hdr_parse(bad, sizeof(bad), &h), -1);
    uint8_t rsv[2] = {0x41, 5}; /* FIN clear, RSV1 set, text, 5 bytes */
    RT_ASSERT_INT_EQ(rt_ws_hdr_parse(rsv, 2, &h), 2);
    RT_ASSERT_INT_EQ(h.fin, 0);
    RT_ASSERT_INT_EQ(h.rsv, 4);
    RT_ASSERT_INT_EQ(h.len, 5);
}

/* Unmasking in pieces equals unmasking at once. */
RT_TEST(wsframe_unmask_in_pieces)
{
    const uint8_t mask[4] = {0xA1, 0xB2, 0xC3, 0xD4};
    uint8_t whole[11], parts[11];
    for (int i = 0; i < 11; i++)
        whole[i] = parts[i] = (uint8_t)('a' + i);
    rt_ws_unmask(whole, 11, mask, 0);
    rt_ws_unmask(parts, 3, mask, 0);
    rt_ws_unmask(parts + 3, 8, mask, 3);
    RT_ASSERT_INT_EQ(memcmp(whole, parts, 11), 0);
    rt_ws_unmask(whole, 11, mask, 0);
    RT_ASSERT_INT_EQ(whole[10], 'k');
}

/* err.h: every error value has its own name and text; 0 and unknown values
 * are named too. */
RT_TEST(err_values_are_named)
{
    const int vals[] = {
#define RT_ERR_XX(e, v, name, text) RT_E_##e,
        RT_ERR_MAP(RT_ERR_XX)
#undef RT_ERR_XX
    };
    size_t n = sizeof(vals) / sizeof(vals[0]);
    for (size_t i = 0; i < n; i++) {
        RT_ASSERT(vals[i] < 0);
        RT_ASSERT(strcmp(rt_strerror(vals[i]), "unknown error") != 0);
        for (size_t j = 0; j < i; j++) {
            RT_ASSERT(vals[i] != vals[j]);
            RT_ASSERT(strcmp(rt_err_name(vals[i]), rt_err_name(vals[j])) != 0);
        }
    }
    RT_ASSERT_STR_EQ(rt_err_name(0), "ok");
    RT_ASSERT_STR_EQ(rt_strerror(12345), "unknown error");
}

/* reason.h: every reason's close code maps back to it; codes with no reason
 * (1005, 1006, 4000) map to RT_REASON__COUNT. */
RT_TEST(reason_from_ws_code_roundtrip)
{
    for (int r = 0; r < RT_REASON__COUNT; r++)
        RT_ASSERT_INT_EQ(rt_reason_from_ws_code(rt_reason_ws_code((rt_reason_t)r)), r);
    RT_ASSERT_INT_EQ(rt_reason_from_ws_code(1005), RT_REASON__COUNT);
    RT_ASSERT_INT_EQ(rt_reason_from_ws_code(1006), RT_REASON__COUNT);
    RT_ASSERT_INT_EQ(rt_reason_from_ws_code(4000), RT_REASON__COUNT);
}

/* ---- RFC 6455 receive rules (wsframe.h rt_ws_rx_*) ---- */

static rt_ws_hdr_t hdr(bool fin, int rsv, int opcode, uint64_t len)
{
    rt_ws_hdr_t h = {.fin = fin, .rsv = (uint8_t)rsv, .opcode = (uint8_t)opcode, .masked = true};
    h.len = len;
    return h;
}

RT_TEST(ws_rx_header_rules)
{
    rt_ws_rx_t rx = {0};
    rt_ws_hdr_t h;
#define JUDGE(fin, rsv, op, len) (h = hdr(fin, rsv, op, len), rt_ws_rx_header(&rx, &h, 100))
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_TEXT, 5), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 4, RT_WS_TEXT, 5), RT_REASON_PROTOCOL_ERROR); /* RSV1 */
    RT_ASSERT_INT_EQ(JUDGE(true, 1, RT_WS_PING, 0), RT_REASON_PROTOCOL_ERROR); /* RSV3 */
    RT_ASSERT_INT_EQ(JUDGE(true, 0, 3, 0), RT_REASON_PROTOCOL_ERROR);          /* reserved */
    RT_ASSERT_INT_EQ(JUDGE(true, 0, 0xB, 0), RT_REASON_PROTOCOL_ERROR);
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_PING, 0), RT_REASON_PROTOCOL_ERROR); /* fragmented */
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_PING, 126), RT_REASON_PROTOCOL_ERROR);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_CLOSE, 125), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_CONTINUATION, 1), RT_REASON_PROTOCOL_ERROR); /* none */
    /* a fragmented message: a control frame may come between; a new one may not */
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_TEXT, 40), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_PING, 3), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_CONTINUATION, 40), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_BINARY, 1), RT_REASON_PROTOCOL_ERROR);
    rx = (rt_ws_rx_t){0};
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_BINARY, 40), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_CONTINUATION, 40), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_CONTINUATION, 21), RT_REASON_MESSAGE_TOO_BIG); /* 101 */
    rx = (rt_ws_rx_t){0};
    RT_ASSERT_INT_EQ(JUDGE(false, 0, RT_WS_TEXT, 50), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_CONTINUATION, 50), RT_REASON_NORMAL); /* exactly 100 */
    RT_ASSERT_INT_EQ(JUDGE(true, 0, RT_WS_TEXT, 101), RT_REASON_MESSAGE_TOO_BIG);
#undef JUDGE
}

RT_TEST(ws_rx_payload_utf8_across_fragments)
{
    rt_ws_rx_t rx = {0};
    const uint8_t euro[] = {0xE2, 0x82, 0xAC};
    /* a character split over fragments is fine */
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, false, RT_WS_TEXT, euro, 1), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, false, RT_WS_CONTINUATION, euro + 1, 1),
                     RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CONTINUATION, euro + 2, 1),
                     RT_REASON_NORMAL);
    /* a message that ends inside a character is not */
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_TEXT, euro, 2), RT_REASON_INVALID_PAYLOAD);
    /* fail fast: the first bad byte, before the message ends */
    const uint8_t bad[] = {'o', 'k', 0xC0, 0xAF};
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, false, RT_WS_TEXT, bad, 4), RT_REASON_INVALID_PAYLOAD);
    /* binary messages and their continuations are not text */
    rx = (rt_ws_rx_t){0};
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, false, RT_WS_BINARY, bad, 4), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CONTINUATION, bad, 4), RT_REASON_NORMAL);
}

RT_TEST(utf8_validation_edges)
{
#define V(...) rt_utf8_valid((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))
    RT_ASSERT(V('a', 0x7F));
    RT_ASSERT(V(0xC2, 0x80) && V(0xDF, 0xBF));                           /* 2 bytes */
    RT_ASSERT(V(0xE0, 0xA0, 0x80) && V(0xED, 0x9F, 0xBF));               /* 3 bytes, edges */
    RT_ASSERT(V(0xF0, 0x90, 0x80, 0x80) && V(0xF4, 0x8F, 0xBF, 0xBF));   /* U+10000, U+10FFFF */
    RT_ASSERT(!V(0xC0, 0x80) && !V(0xC1, 0xBF));                         /* overlong */
    RT_ASSERT(!V(0xE0, 0x9F, 0xBF));                                     /* overlong */
    RT_ASSERT(!V(0xED, 0xA0, 0x80));                                     /* surrogate */
    RT_ASSERT(!V(0xF0, 0x8F, 0xBF, 0xBF));                               /* overlong */
    RT_ASSERT(!V(0xF4, 0x90, 0x80, 0x80) && !V(0xF5, 0x80, 0x80, 0x80)); /* > U+10FFFF */
    RT_ASSERT(!V(0x80) && !V(0xFF) && !V(0xE2, 0x82));                   /* stray, truncated */
#undef V
}

RT_TEST(ws_close_codes)
{
    const int ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                      1011, 1012, 1013, 1014, 3000, 4000, 4999};
    const int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        RT_ASSERT(rt_ws_close_code_ok(ok[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        RT_ASSERT(!rt_ws_close_code_ok(bad[i]));
    rt_ws_rx_t rx = {0};
    const uint8_t one[] = {0x03};
    const uint8_t c999[] = {0x03, 0xE7};
    const uint8_t c1000_bad_reason[] = {0x03, 0xE8, 0xFF};
    const uint8_t c1000_ok[] = {0x03, 0xE8, 'b', 'y', 'e'};
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CLOSE, NULL, 0), RT_REASON_NORMAL);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CLOSE, one, 1), RT_REASON_PROTOCOL_ERROR);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CLOSE, c999, 2), RT_REASON_PROTOCOL_ERROR);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CLOSE, c1000_bad_reason, 3),
                     RT_REASON_INVALID_PAYLOAD);
    RT_ASSERT_INT_EQ(rt_ws_rx_payload(&rx, true, RT_WS_CLOSE, c1000_ok, 5), RT_REASON_NORMAL);
}

/* ---- raw JSON (jsonraw.h) ---- */

static void compact_ok(const char *in, const char *want)
{
    char out[256];
    long n = rt_json_compact(in, strlen(in), 64, out, NULL);
    if (n < 0)
        rt_test_fail(__FILE__, __LINE__, "rt_json_compact refused '%s': %ld", in, n);
    RT_ASSERT_MEM_EQ(out, (size_t)n, want, strlen(want));
}

static void compact_bad(const char *in, size_t len)
{
    char out[256];
    long n = rt_json_compact(in, len, 64, out, NULL);
    if (n != RT_E_INVAL)
        rt_test_fail(__FILE__, __LINE__, "rt_json_compact accepted '%.*s': %ld", (int)len, in, n);
}

RT_TEST(ws_key_is_a_16_byte_nonce)
{
    RT_ASSERT(rt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==")); /* RFC 6455 §1.3 */
    RT_ASSERT(rt_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
    RT_ASSERT(rt_ws_key_valid("+/+/+/+/+/+/+/+/+/+/+w=="));
    RT_ASSERT(!rt_ws_key_valid(NULL));
    RT_ASSERT(!rt_ws_key_valid(""));
    RT_ASSERT(!rt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ="));    /* 23 */
    RT_ASSERT(!rt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=== ")); /* 26 */
    RT_ASSERT(!rt_ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA"));   /* no padding: 18 bytes */
    RT_ASSERT(!rt_ws_key_valid("dGhlIHNhbXBsZSBub25j ZQ=="));  /* a space */
    RT_ASSERT(!rt_ws_key_valid("dGhlIHNhbXBsZSBub25j-Q=="));   /* base64url */
    char big[80];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    RT_ASSERT(!rt_ws_key_valid(big)); /* civetweb answered 500 and kept the slot */
}

RT_TEST(jsonraw_keeps_token_bytes)
{
    compact_ok("0.1", "0.1");
    compact_ok("1e2", "1e2");
    compact_ok(" -0.0E-7 ", "-0.0E-7");
    compact_ok("123456789012345678901234567890", "123456789012345678901234567890");
    compact_ok("\"\\u0000\"", "\"\\u0000\"");
    compact_ok("{ \"a\" : [ 1 ,\n 2 ] ,\"b\":\"x y\\n\\u00e9\"}",
               "{\"a\":[1,2],\"b\":\"x y\\n\\u00e9\"}");
    compact_ok("\"\xc3\xa9 \xf0\x9f\x98\x80\"", "\"\xc3\xa9 \xf0\x9f\x98\x80\"");
    compact_ok("[[],{},[{}]]", "[[],{},[{}]]");
    compact_ok("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}");
}

RT_TEST(jsonraw_refuses_what_is_not_json)
{
    const char *bad[] = {"",    " ",      "01",         "1.",      ".5",          "1e",    "-",
                         "+1",  "[1,]",   "{\"a\":1,}", "{\"a\"}", "{1:2}",       "[1 2]", "1 2",
                         "nul", "tru",    "\"a\tb\"",   "\"\\x\"", "\"\\u12g4\"", "[}",    "{]",
                         "]",   "\"open", "NaN",        "[1]]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        compact_bad(bad[i], strlen(bad[i]));
    compact_bad("\"\xff\"", 3);         /* not UTF-8 */
    compact_bad("\"\xc0\xaf\"", 4);     /* overlong */
    compact_bad("\"\xed\xa0\x80\"", 5); /* an encoded surrogate */
    compact_bad("\"a\0b\"", 5);         /* a raw NUL */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    char out[200];
    RT_ASSERT_INT_EQ(rt_json_compact(deep, 200, 64, out, NULL), RT_E_LIMIT);
    RT_ASSERT_INT_EQ(rt_json_compact(deep, 200, 100, out, NULL), 200);
}

RT_TEST(jsonraw_value_end)
{
    const char *s = "[{\"a\":\"x,]\\\"\"},12,\"q\"]";
    size_t n = strlen(s);
    RT_ASSERT_INT_EQ(rt_json_value_end(s, n, 1), 14);  /* the object */
    RT_ASSERT_INT_EQ(rt_json_value_end(s, n, 15), 17); /* 12 */
    RT_ASSERT_INT_EQ(rt_json_value_end(s, n, 18), 21); /* "q" */
}

RT_TEST(raw_event_sse_is_its_bytes)
{
    const char *text = "event: inngest.stream\ndata: {\"data\":\"\xc3\xa9\"}\n\n";
    rt_event_t ev = {
        .kind = RT_EVENT_KIND_RAW,
        .channel = rt_slice_cstr("run"),
        .topic = rt_slice_cstr("$stream"),
        .data = rt_slice_cstr("\"event: inngest.stream\\ndata: {\\\"data\\\":\\\"\xc3\xa9\\\"}"
                              "\\n\\n\"")};
    size_t len;
    rt_pos_t pos = {1, 2};
    char *json = rt_event_json(&ev, &pos, &len);
    RT_ASSERT(json != NULL);
    rt_frame_t *f = rt_event_sse_frame(json, len, &pos);
    RT_ASSERT(f != NULL);
    RT_ASSERT_MEM_EQ(f->data, f->len, text, strlen(text));
    rt_frame_unref(f);
    free(json);
}
