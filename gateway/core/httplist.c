/*
 * httplist.c — comma-separated header values (see httplist.h).
 */
#include "httplist.h"

#include <string.h>
#include <strings.h>

bool rt_http_list_has(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}
