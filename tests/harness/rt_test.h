/*
 * rt_test.h — the smallest test harness that lets every case be its own CTest entry.
 *
 *   RT_TEST(name) { ... }      defines a case; cmake/rt_tests.cmake scans the
 *                              source for RT_TEST(...) and registers "<suite>.<name>".
 *   ./suite name               runs one case (exit 0 pass, 1 fail, 77 skipped)
 *   ./suite --list             lists the cases
 *   ./suite                    runs every case in this process (for humans)
 *
 * Assertions print both sides and the location, then end the case. Link the
 * executable with tests/harness/rt_test.c, which provides main().
 */
#ifndef RT_TEST_H
#define RT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*rt_test_fn)(void);
void rt_test_register(const char *name, rt_test_fn fn);
void rt_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void rt_test_skip(const char *why) __attribute__((noreturn));

#define RT_TEST(name)                                                                              \
    static void rt_test_case_##name(void);                                                         \
    __attribute__((constructor)) static void rt_test_reg_##name(void)                              \
    {                                                                                              \
        rt_test_register(#name, rt_test_case_##name);                                              \
    }                                                                                              \
    static void rt_test_case_##name(void)

#define RT_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rt_test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);                       \
    } while (0)

#define RT_ASSERT_INT_EQ(a, b)                                                                     \
    do {                                                                                           \
        long long rt_a_ = (long long)(a), rt_b_ = (long long)(b);                                  \
        if (rt_a_ != rt_b_)                                                                        \
            rt_test_fail(__FILE__, __LINE__, "%s == %s\n    left:  %lld\n    right: %lld", #a, #b, \
                         rt_a_, rt_b_);                                                            \
    } while (0)

#define RT_ASSERT_INT_NE(a, b)                                                                     \
    do {                                                                                           \
        long long rt_a_ = (long long)(a), rt_b_ = (long long)(b);                                  \
        if (rt_a_ == rt_b_)                                                                        \
            rt_test_fail(__FILE__, __LINE__, "%s != %s\n    both:  %lld", #a, #b, rt_a_);          \
    } while (0)

#define RT_ASSERT_STR_EQ(a, b)                                                                     \
    do {                                                                                           \
        const char *rt_a_ = (a), *rt_b_ = (b);                                                     \
        if (!rt_a_ || !rt_b_ || strcmp(rt_a_, rt_b_) != 0)                                         \
            rt_test_fail(__FILE__, __LINE__, "%s == %s\n    left:  \"%s\"\n    right: \"%s\"", #a, \
                         #b, rt_a_ ? rt_a_ : "(null)", rt_b_ ? rt_b_ : "(null)");                  \
    } while (0)

#define RT_ASSERT_MEM_EQ(a, alen, b, blen)                                                         \
    do {                                                                                           \
        size_t rt_al_ = (alen), rt_bl_ = (blen);                                                   \
        if (rt_al_ != rt_bl_ || memcmp((a), (b), rt_al_) != 0)                                     \
            rt_test_fail(__FILE__, __LINE__, "%s == %s\n    left:  \"%.*s\"\n    right: \"%.*s\"", \
                         #a, #b, (int)rt_al_, (const char *)(a), (int)rt_bl_, (const char *)(b));  \
    } while (0)

/* Error codes: prints both as names when a namer is given (e.g. rt_tok_errname). */
#define RT_ASSERT_ERR_EQ(namer, a, b)                                                              \
    do {                                                                                           \
        int rt_a_ = (a), rt_b_ = (b);                                                              \
        if (rt_a_ != rt_b_)                                                                        \
            rt_test_fail(__FILE__, __LINE__, "%s == %s\n    left:  %d (%s)\n    right: %d (%s)",   \
                         #a, #b, rt_a_, namer(rt_a_), rt_b_, namer(rt_b_));                        \
    } while (0)

#endif
