/*
 * rt_env.h — start a test or fuzz process from a clean configuration: unset
 * every environment variable with a prefix (RTGW_), so the machine's own
 * settings never leak into a case. Header-only, so the fuzz targets (which do
 * not link the test harness) use it too.
 */
#ifndef RT_ENV_H
#define RT_ENV_H

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Unset every variable whose name starts with prefix. Names are collected one
 * at a time, because unsetenv edits environ while it is walked. */
static inline void rt_test_unsetenv_prefix(const char *prefix)
{
    size_t pl = strlen(prefix);
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, prefix, pl) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = 0;
                    break;
                }
            }
        }
        if (!name[0])
            break;
        unsetenv(name);
    }
}

#endif
