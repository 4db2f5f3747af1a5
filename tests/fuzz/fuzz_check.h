/*
 * fuzz_check.h — CHECK(cond): the invariant assertion of every fuzz target.
 * A failed invariant names itself and aborts, which libFuzzer reports as a
 * crash with the input that caused it (and the replay runner as a failure).
 */
#ifndef RT_FUZZ_CHECK_H
#define RT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
