/* err.c — see err.h. */
#include "err.h"

const char *rt_strerror(int err)
{
    switch (err) {
#define RT_ERR_XX(e, v, name, text)                                                                \
    case v:                                                                                        \
        return text;
        RT_ERR_MAP(RT_ERR_XX)
#undef RT_ERR_XX
    case 0:
        return "success";
    }
    return "unknown error";
}

const char *rt_err_name(int err)
{
    switch (err) {
#define RT_ERR_XX(e, v, name, text)                                                                \
    case v:                                                                                        \
        return name;
        RT_ERR_MAP(RT_ERR_XX)
#undef RT_ERR_XX
    case 0:
        return "ok";
    }
    return "unknown";
}
