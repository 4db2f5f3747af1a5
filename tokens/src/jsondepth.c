/*
 * jsondepth.c — how deeply a JSON text nests, found without parsing it.
 *
 * jansson's parser recurses once per level of nesting. On a thread with a
 * small stack (civetweb's workers) a few hundred levels of `[[[[…` overflow
 * it: a 600-byte body, or the header of a forged token, was enough to crash
 * the gateway. Every parse of untrusted JSON is therefore preceded by this
 * scan: one pass, no recursion, no allocation, stopping as soon as the limit
 * is passed. Brackets inside strings do not count; malformed text still gets
 * a depth (the parser refuses it afterwards).
 */
#include "rt_tokens.h"

size_t rt_json_depth(const void *buf, size_t len, size_t stop_above)
{
    const unsigned char *p = buf;
    size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest) {
                deepest = depth;
                if (deepest > stop_above)
                    return deepest;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}
