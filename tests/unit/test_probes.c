/* Unit tests for gateway/core/probes.c: the ring of doctor probe requests
 * (bounded per id and in total, oldest first), the Connection classes, and
 * the comma-separated lists they are read with (httplist.c). */
#include "err.h"
#include "probes.h"
#include "httplist.h"
#include "rt_test.h"

#include <stdio.h>
#include <string.h>

static rt_probe_rec_t rec(const char *id, const char *path)
{
    rt_probe_rec_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.path, sizeof(r.path), "%s", path);
    return r;
}

RT_TEST(probe_ids_are_bounded_tokens)
{
    RT_ASSERT(rt_probe_id_valid("abcd1234", 8));
    RT_ASSERT(!rt_probe_id_valid("abc123", 6));
    RT_ASSERT(!rt_probe_id_valid("abcd 1234", 9));
    char big[80];
    memset(big, 'a', sizeof(big));
    RT_ASSERT(!rt_probe_id_valid(big, 65));
    RT_ASSERT(rt_probe_id_valid(big, 64));
}

RT_TEST(probe_records_per_id_oldest_first_and_capped)
{
    rt_probes_t *p = rt_probes_new();
    RT_ASSERT(p != NULL);
    rt_probe_rec_t a = rec("probe-aaaa", "/health"), b = rec("probe-bbbb", "/connect");
    RT_ASSERT_INT_EQ(rt_probes_add(p, &a), 0);
    RT_ASSERT_INT_EQ(rt_probes_add(p, &b), 0);
    a = rec("probe-aaaa", "/v1/realtime/connect");
    RT_ASSERT_INT_EQ(rt_probes_add(p, &a), 0);
    rt_probe_rec_t out[RT_PROBES_PER_ID];
    RT_ASSERT_INT_EQ((int)rt_probes_get(p, "probe-aaaa", out, RT_PROBES_PER_ID), 2);
    RT_ASSERT_STR_EQ(out[0].path, "/health");
    RT_ASSERT_STR_EQ(out[1].path, "/v1/realtime/connect");
    /* One id cannot take more than its share. */
    for (int i = 2; i < RT_PROBES_PER_ID; i++)
        RT_ASSERT_INT_EQ(rt_probes_add(p, &a), 0);
    RT_ASSERT_INT_EQ(rt_probes_add(p, &a), RT_E_LIMIT);
    /* The ring overwrites the oldest records. */
    for (int i = 0; i < RT_PROBES_CAP; i++) {
        char id[32];
        snprintf(id, sizeof(id), "filler-%04d", i);
        rt_probe_rec_t f = rec(id, "/x");
        RT_ASSERT_INT_EQ(rt_probes_add(p, &f), 0);
    }
    RT_ASSERT_INT_EQ((int)rt_probes_get(p, "probe-aaaa", out, RT_PROBES_PER_ID), 0);
    RT_ASSERT_INT_EQ((int)rt_probes_get(p, "filler-0063", out, RT_PROBES_PER_ID), 1);
    rt_probes_free(p);
}

RT_TEST(connection_header_classes)
{
    RT_ASSERT_INT_EQ(rt_probe_conn_class(NULL), RT_PROBE_CONN_ABSENT);
    RT_ASSERT_INT_EQ(rt_probe_conn_class(" "), RT_PROBE_CONN_EMPTY);
    RT_ASSERT_INT_EQ(rt_probe_conn_class("keep-alive, Upgrade"), RT_PROBE_CONN_UPGRADE);
    RT_ASSERT_INT_EQ(rt_probe_conn_class("Keep-Alive"), RT_PROBE_CONN_KEEPALIVE);
    RT_ASSERT_INT_EQ(rt_probe_conn_class("close"), RT_PROBE_CONN_CLOSE);
    RT_ASSERT_INT_EQ(rt_probe_conn_class("upgraded"), RT_PROBE_CONN_OTHER);
    RT_ASSERT_STR_EQ(rt_probe_conn_name(RT_PROBE_CONN_KEEPALIVE), "keep-alive");
}

RT_TEST(http_list_has_reads_comma_separated_values)
{
    RT_ASSERT(rt_http_list_has("keep-alive, Upgrade", "upgrade"));
    RT_ASSERT(rt_http_list_has("Upgrade", "UPGRADE"));
    RT_ASSERT(rt_http_list_has(" ,\tclose\t, ", "close"));
    RT_ASSERT(!rt_http_list_has("upgrade-insecure", "upgrade"));
    RT_ASSERT(!rt_http_list_has("up grade", "upgrade"));
    RT_ASSERT(!rt_http_list_has("", "close"));
    RT_ASSERT(!rt_http_list_has(NULL, "close"));
    RT_ASSERT(!rt_http_list_has("keep-alive", "keep"));
}
