/*
 * test_map.c — unit tests for gateway/core/include/map.h (open addressing, linear probing,
 * backward-shift deletion).
 */
#include "map.h"
#include "rt_test.h"

#include <stdint.h>

static void *val(uintptr_t i)
{
    return (void *)(i + 1); /* never NULL */
}

static void key_of(size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "key-%zu", i);
}

RT_TEST(empty_get_and_del)
{
    rt_map_t m;
    rt_map_init(&m);
    RT_ASSERT(rt_map_get(&m, "a", 1) == NULL);
    RT_ASSERT(rt_map_del(&m, "a", 1) == NULL);
    RT_ASSERT_INT_EQ(m.count, 0);
    rt_map_clear(&m);
}

RT_TEST(put_get_del)
{
    rt_map_t m;
    rt_map_init(&m);
    RT_ASSERT_INT_EQ(rt_map_put(&m, "alpha", 5, val(1)), 0);
    RT_ASSERT_INT_EQ(rt_map_put(&m, "beta", 4, val(2)), 0);
    RT_ASSERT_INT_EQ(m.count, 2);
    RT_ASSERT(rt_map_get(&m, "alpha", 5) == val(1));
    RT_ASSERT(rt_map_get(&m, "beta", 4) == val(2));
    RT_ASSERT(rt_map_get(&m, "alph", 4) == NULL); /* prefix is a different key */
    RT_ASSERT(rt_map_get(&m, "gamma", 5) == NULL);
    RT_ASSERT(rt_map_del(&m, "alpha", 5) == val(1));
    RT_ASSERT(rt_map_get(&m, "alpha", 5) == NULL);
    RT_ASSERT(rt_map_get(&m, "beta", 4) == val(2));
    RT_ASSERT_INT_EQ(m.count, 1);
    RT_ASSERT(rt_map_del(&m, "alpha", 5) == NULL);
    RT_ASSERT_INT_EQ(m.count, 1);
    rt_map_clear(&m);
    RT_ASSERT_INT_EQ(m.count, 0);
    RT_ASSERT(rt_map_get(&m, "beta", 4) == NULL);
}

RT_TEST(keys_are_copied_and_binary_safe)
{
    rt_map_t m;
    rt_map_init(&m);
    char k[4] = {'a', 0, 'b', 0};
    RT_ASSERT_INT_EQ(rt_map_put(&m, k, 3, val(7)), 0);
    k[0] = 'z'; /* the map holds its own copy */
    RT_ASSERT(rt_map_get(&m, "a\0b", 3) == val(7));
    RT_ASSERT(rt_map_get(&m, "a", 1) == NULL);
    RT_ASSERT(rt_map_get(&m, "", 0) == NULL);
    RT_ASSERT_INT_EQ(rt_map_put(&m, "", 0, val(8)), 0);
    RT_ASSERT(rt_map_get(&m, "", 0) == val(8));
    rt_map_clear(&m);
}

RT_TEST(overwrite_keeps_count)
{
    rt_map_t m;
    rt_map_init(&m);
    RT_ASSERT_INT_EQ(rt_map_put(&m, "k", 1, val(1)), 0);
    RT_ASSERT_INT_EQ(rt_map_put(&m, "k", 1, val(2)), 0);
    RT_ASSERT_INT_EQ(m.count, 1);
    RT_ASSERT(rt_map_get(&m, "k", 1) == val(2));
    RT_ASSERT(rt_map_del(&m, "k", 1) == val(2));
    RT_ASSERT_INT_EQ(m.count, 0);
    rt_map_clear(&m);
}

RT_TEST(many_keys_grow)
{
    enum { N = 5000 };
    rt_map_t m;
    char k[32];
    rt_map_init(&m);
    for (size_t i = 0; i < N; i++) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ(rt_map_put(&m, k, strlen(k), val(i)), 0);
        RT_ASSERT_INT_EQ(m.count, i + 1);
    }
    RT_ASSERT(m.cap >= N);
    RT_ASSERT_INT_EQ(m.cap & (m.cap - 1), 0); /* power of two */
    RT_ASSERT(m.count * 4 <= m.cap * 3);      /* load factor bound */
    for (size_t i = 0; i < N; i++) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ((uintptr_t)rt_map_get(&m, k, strlen(k)), (uintptr_t)val(i));
    }
    size_t seen = 0;
    RT_MAP_FOREACH(&m, e)
    seen++;
    RT_ASSERT_INT_EQ(seen, N);
    rt_map_clear(&m);
}

/* Delete every other key of a dense table, in an order that breaks probe
 * chains, and check every survivor is still reachable (backward shift). */
RT_TEST(delete_keeps_others_reachable)
{
    enum { N = 3000 };
    rt_map_t m;
    char k[32];
    rt_map_init(&m);
    for (size_t i = 0; i < N; i++) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ(rt_map_put(&m, k, strlen(k), val(i)), 0);
    }
    for (size_t i = 0; i < N; i += 2) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ((uintptr_t)rt_map_del(&m, k, strlen(k)), (uintptr_t)val(i));
        /* spot-check neighbours right after each delete */
        if (i + 1 < N) {
            key_of(i + 1, k, sizeof(k));
            RT_ASSERT_INT_EQ((uintptr_t)rt_map_get(&m, k, strlen(k)), (uintptr_t)val(i + 1));
        }
    }
    RT_ASSERT_INT_EQ(m.count, N / 2);
    for (size_t i = 0; i < N; i++) {
        key_of(i, k, sizeof(k));
        void *want = (i % 2) ? val(i) : NULL;
        RT_ASSERT_INT_EQ((uintptr_t)rt_map_get(&m, k, strlen(k)), (uintptr_t)want);
    }
    /* No slot may sit before its home with an empty gap in between: every
     * entry must be found by a probe from its home. */
    size_t mask = m.cap - 1;
    RT_MAP_FOREACH(&m, e)
    {
        size_t home = e->hash & mask;
        for (size_t j = home; &m.slots[j] != e; j = (j + 1) & mask)
            RT_ASSERT(m.slots[j].key != NULL);
    }
    /* Re-insert the deleted keys: all reachable again. */
    for (size_t i = 0; i < N; i += 2) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ(rt_map_put(&m, k, strlen(k), val(i)), 0);
    }
    RT_ASSERT_INT_EQ(m.count, N);
    for (size_t i = 0; i < N; i++) {
        key_of(i, k, sizeof(k));
        RT_ASSERT_INT_EQ((uintptr_t)rt_map_get(&m, k, strlen(k)), (uintptr_t)val(i));
    }
    rt_map_clear(&m);
}

/* Delete everything, in insertion order and then from a fresh table in
 * reverse order: the table ends empty with no stale slot. */
RT_TEST(delete_all_both_orders)
{
    enum { N = 1000 };
    rt_map_t m;
    char k[32];
    for (int pass = 0; pass < 2; pass++) {
        rt_map_init(&m);
        for (size_t i = 0; i < N; i++) {
            key_of(i, k, sizeof(k));
            RT_ASSERT_INT_EQ(rt_map_put(&m, k, strlen(k), val(i)), 0);
        }
        for (size_t n = 0; n < N; n++) {
            size_t i = pass ? N - 1 - n : n;
            key_of(i, k, sizeof(k));
            RT_ASSERT_INT_EQ((uintptr_t)rt_map_del(&m, k, strlen(k)), (uintptr_t)val(i));
        }
        RT_ASSERT_INT_EQ(m.count, 0);
        size_t left = 0;
        RT_MAP_FOREACH(&m, e)
        left++;
        RT_ASSERT_INT_EQ(left, 0);
        rt_map_clear(&m);
    }
}

RT_TEST(hash_is_stable_and_length_aware)
{
    RT_ASSERT_INT_EQ(rt_hash_bytes("abc", 3), rt_hash_bytes("abc", 3));
    RT_ASSERT_INT_NE(rt_hash_bytes("abc", 3), rt_hash_bytes("abc", 2));
    RT_ASSERT_INT_NE(rt_hash_bytes("a\0", 2), rt_hash_bytes("a", 1));
}
