#include "reason.h"

static const struct {
    int ws, http;
    const char *name, *advice, *text;
} table[] = {
#define RT_REASON_XX(e, ws, http, name, advice, text) {ws, http, name, advice, text},
    RT_REASON_MAP(RT_REASON_XX)
#undef RT_REASON_XX
};

#define VALID(r) ((unsigned)(r) < RT_REASON__COUNT)
int rt_reason_ws_code(rt_reason_t r)
{
    return VALID(r) ? table[r].ws : 1011;
}
int rt_reason_http_status(rt_reason_t r)
{
    return VALID(r) ? table[r].http : 500;
}
const char *rt_reason_name(rt_reason_t r)
{
    return VALID(r) ? table[r].name : "unknown";
}
const char *rt_reason_text(rt_reason_t r)
{
    return VALID(r) ? table[r].text : "unknown";
}
const char *rt_reason_advice(rt_reason_t r)
{
    return VALID(r) ? table[r].advice : "no";
}
rt_reason_t rt_reason_from_ws_code(int ws_code)
{
    for (int r = 0; r < RT_REASON__COUNT; r++)
        if (table[r].ws == ws_code)
            return (rt_reason_t)r;
    return RT_REASON__COUNT;
}
