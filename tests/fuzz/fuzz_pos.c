/*
 * fuzz_pos.c — libFuzzer target for positions (the "id" of an event, and the
 * `since` / Last-Event-ID a client resumes from): rt_pos_parse and
 * rt_pos_format.
 *
 * Input: the bytes are a candidate position; the first 16 bytes (zero padded)
 * are also read as an (epoch, offset) pair to format.
 * Invariants checked:
 *   - parse accepts only the canonical form: formatting what it parsed gives
 *     back exactly the input bytes (so no two spellings name one position);
 *   - an accepted input is shorter than RT_POS_MAX, has lowercase hex, one '-',
 *     and decimal digits;
 *   - format writes fewer than RT_POS_MAX bytes, NUL-terminated, and parse
 *     reads it back to the same pair for every offset below 10^19 (parse caps
 *     the offset at 19 digits; positions count up from 1);
 *   - a refusal leaves the output untouched.
 */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define OFFSET_LIMIT UINT64_C(10000000000000000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_pos_t p = {0x5a5a, 0xa5a5}, q;
    char buf[RT_POS_MAX];
    uint8_t raw[16] = {0};
    int n;

    /* 1. parse whatever came in */
    if (rt_pos_parse((rt_slice_t){(const char *)data, size}, &p) == 0) {
        CHECK(size > 0 && size < RT_POS_MAX);
        n = rt_pos_format(p, buf, sizeof(buf));
        CHECK(n > 0 && (size_t)n == size && memcmp(buf, data, size) == 0);
        CHECK(p.offset < OFFSET_LIMIT);
    } else {
        CHECK(p.epoch == 0x5a5a && p.offset == 0xa5a5);
    }

    /* 2. format a pair taken from the input, parse it back */
    memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
    memcpy(&p.epoch, raw, 8);
    memcpy(&p.offset, raw + 8, 8);
    memset(buf, 'x', sizeof(buf));
    n = rt_pos_format(p, buf, sizeof(buf));
    CHECK(n > 0 && n < RT_POS_MAX && buf[n] == 0 && strlen(buf) == (size_t)n);
    for (int i = 0; i < n; i++)
        CHECK((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
              buf[i] == '-');
    if (p.offset < OFFSET_LIMIT) {
        CHECK(rt_pos_parse((rt_slice_t){buf, (size_t)n}, &q) == 0);
        CHECK(q.epoch == p.epoch && q.offset == p.offset);
    } else {
        CHECK(rt_pos_parse((rt_slice_t){buf, (size_t)n}, &q) == -1);
    }
    return 0;
}
