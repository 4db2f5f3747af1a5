/*
 * jsonraw.h — JSON kept as the bytes it arrived as.
 *
 * A publish body is forwarded to subscribers verbatim, the way Inngest does
 * (it checks json.Valid and keeps the bytes): 0.1 stays 0.1, 1e2 stays 1e2,
 * an integer beyond int64 and a "\u0000" stay what they were. A parser that
 * builds values (jansson) cannot promise that, so this module validates
 * without building anything, and removes only the whitespace between tokens:
 * frames are one line (an SSE "data:" line cannot hold a raw newline), and
 * every number, string and literal keeps its exact bytes.
 *
 * Pure functions over caller buffers: no allocation, no recursion (the
 * nesting is tracked in a bounded stack on the caller's stack), any thread.
 */
#ifndef RT_JSONRAW_H
#define RT_JSONRAW_H

#include <stddef.h>

/* Deepest nesting rt_json_compact can track (RTGW_MAX_JSON_DEPTH's maximum is 128). */
#define RT_JSONRAW_MAX_DEPTH 256

/* Check that in[0..len) is exactly one JSON value (RFC 8259; strings are
 * valid UTF-8 without raw control bytes; duplicate keys are not looked for)
 * nested at most max_depth levels (capped at RT_JSONRAW_MAX_DEPTH), and write
 * it to out (room for len bytes; out may not overlap in) with the whitespace
 * between tokens removed. Returns the compact length (>= 1), RT_E_INVAL (not
 * JSON; *err_at, when non-NULL, is the offset of the first bad byte) or
 * RT_E_LIMIT (nested deeper than max_depth). */
long rt_json_compact(const char *in, size_t len, size_t max_depth, char *out, size_t *err_at);

/* In a compact text that rt_json_compact produced: the offset just past the
 * value that starts at `at` (a string, number, literal, object or array). */
size_t rt_json_value_end(const char *s, size_t len, size_t at);

#endif
