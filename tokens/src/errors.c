/*
 * errors.c — names and sentences for the RT_TOK_* codes, and library start-up.
 *
 * Both tables are generated from RT_TOK_ERRNO_MAP so that a code, its name and
 * its text can never drift apart. Unknown codes get a fixed fallback rather
 * than NULL so callers can log the result unconditionally.
 */
#include "rt_tokens_int.h"

#include <string.h>

const char *rt_tok_strerror(int code)
{
    switch (code) {
    case RT_TOK_OK:
        return "success";
#define RT_TOK_XX(name, num, id, text)                                                             \
    case num:                                                                                      \
        return text;
        RT_TOK_ERRNO_MAP(RT_TOK_XX)
#undef RT_TOK_XX
    default:
        return "unknown error";
    }
}

const char *rt_tok_errname(int code)
{
    switch (code) {
    case RT_TOK_OK:
        return "ok";
#define RT_TOK_XX(name, num, id, text)                                                             \
    case num:                                                                                      \
        return id;
        RT_TOK_ERRNO_MAP(RT_TOK_XX)
#undef RT_TOK_XX
    default:
        return "unknown_error";
    }
}

int rt_tokens_init(void)
{
    /* sodium_init returns 0 the first time, 1 when already initialised. */
    return sodium_init() < 0 ? RT_TOK_ENOMEM : 0;
}

rt_slice_t rt_slice_cstr(const char *s)
{
    rt_slice_t sl = {s, s ? strlen(s) : 0};
    return sl;
}
