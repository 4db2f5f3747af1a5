/* Unit tests for gateway/core/ratelimit.c: token buckets, per-IP counters, and the
 * client address behind trusted proxies. */
#include "ratelimit.h"
#include "rt_test.h"

RT_TEST(bucket_allows_burst_then_refuses_with_wait)
{
    rt_limiter_t *l = rt_limiter_new(5, 10, 100);
    RT_ASSERT(l != NULL);
    for (int i = 0; i < 10; i++)
        RT_ASSERT_INT_EQ(rt_limiter_take(l, "1.2.3.4", 1, 1000), 0);
    int64_t wait = rt_limiter_take(l, "1.2.3.4", 1, 1000);
    RT_ASSERT_INT_EQ(wait, 200); /* one token at 5/s */
    /* Another key has its own bucket. */
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "5.6.7.8", 1, 1000), 0);
    /* Refill: 200 ms later one token is back. */
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "1.2.3.4", 1, 1200), 0);
    RT_ASSERT(rt_limiter_take(l, "1.2.3.4", 1, 1200) > 0);
    rt_limiter_free(l);
}

RT_TEST(bucket_cost_and_disabled)
{
    rt_limiter_t *l = rt_limiter_new(10, 20, 100);
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "k", 20, 0), 0);
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "k", 5, 0), 500);
    rt_limiter_free(l);
    rt_limiter_t *off = rt_limiter_new(0, 0, 1);
    for (int i = 0; i < 1000; i++)
        RT_ASSERT_INT_EQ(rt_limiter_take(off, "k", 1, 0), 0);
    rt_limiter_free(off);
    RT_ASSERT_INT_EQ(rt_limiter_take(NULL, "k", 1, 0), 0);
}

RT_TEST(bucket_table_full_refuses_new_keys_and_sweep_frees)
{
    rt_limiter_t *l = rt_limiter_new(1, 1, 2);
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "a", 1, 0), 0);
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "b", 1, 0), 0);
    RT_ASSERT(rt_limiter_take(l, "c", 1, 0) > 0); /* full: refused, not grown */
    /* Long idle: both buckets are full again and are forgotten. */
    rt_limiter_sweep(l, 120000);
    RT_ASSERT_INT_EQ(rt_limiter_take(l, "c", 1, 120000), 0);
    rt_limiter_free(l);
}

RT_TEST(conncount_limits_per_key)
{
    rt_conncount_t *c = rt_conncount_new(2);
    RT_ASSERT(rt_conncount_acquire(c, "ip1"));
    RT_ASSERT(rt_conncount_acquire(c, "ip1"));
    RT_ASSERT(!rt_conncount_acquire(c, "ip1"));
    RT_ASSERT(rt_conncount_acquire(c, "ip2"));
    RT_ASSERT_INT_EQ(rt_conncount_get(c, "ip1"), 2);
    rt_conncount_release(c, "ip1");
    RT_ASSERT(rt_conncount_acquire(c, "ip1"));
    rt_conncount_release(c, "ip1");
    rt_conncount_release(c, "ip1");
    RT_ASSERT_INT_EQ(rt_conncount_get(c, "ip1"), 0);
    rt_conncount_free(c);
    rt_conncount_t *off = rt_conncount_new(0);
    for (int i = 0; i < 100; i++)
        RT_ASSERT(rt_conncount_acquire(off, "x"));
    rt_conncount_free(off);
}

RT_TEST(client_ip_trusts_forwarded_only_from_trusted_peers)
{
    char ip[64];
    rt_client_ip("127.0.0.1", "203.0.113.7", NULL, ip, sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "127.0.0.1"); /* no trusted proxies: peer */
    rt_client_ip("10.0.0.5", "203.0.113.7", "127.0.0.1", ip, sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "10.0.0.5"); /* peer not trusted: header ignored */
    rt_client_ip("127.0.0.1", "203.0.113.7", "127.0.0.1", ip, sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "203.0.113.7");
    /* Rightmost untrusted hop wins; a spoofed leftmost entry does not. */
    rt_client_ip("127.0.0.1", "1.1.1.1, 203.0.113.7, 10.0.0.2", "127.0.0.1,10.0.0.2", ip,
                 sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "203.0.113.7");
    /* All hops trusted: the leftmost. */
    rt_client_ip("127.0.0.1", "10.0.0.2", "127.0.0.1, 10.0.0.2", ip, sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "10.0.0.2");
    rt_client_ip("127.0.0.1", "", "127.0.0.1", ip, sizeof(ip));
    RT_ASSERT_STR_EQ(ip, "127.0.0.1");
}

RT_TEST(ip_trusted_list)
{
    RT_ASSERT(rt_ip_trusted("10.0.0.1", "10.0.0.1"));
    RT_ASSERT(rt_ip_trusted("10.0.0.2", "10.0.0.1, 10.0.0.2"));
    RT_ASSERT(!rt_ip_trusted("10.0.0.3", "10.0.0.1,10.0.0.2"));
    RT_ASSERT(!rt_ip_trusted("10.0.0.1", "10.0.0.10")); /* whole entries only */
    RT_ASSERT(!rt_ip_trusted("10.0.0.1", NULL));
    RT_ASSERT(!rt_ip_trusted("10.0.0.1", ""));
    RT_ASSERT(!rt_ip_trusted(NULL, "10.0.0.1"));
}
