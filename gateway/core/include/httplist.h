/*
 * httplist.h — HTTP's comma-separated header values (RFC 9110 §5.6.1:
 * "Connection: keep-alive, Upgrade"), read the one way rtgw reads them: the
 * front door and civetweb's routes (server/http.c) and doctor's probe record
 * (probes.c). Pure functions, any thread.
 */
#ifndef RT_HTTPLIST_H
#define RT_HTTPLIST_H

#include <stdbool.h>

/* Whether the list v (NULL: none) holds token, in any case; the elements are
 * trimmed of spaces and tabs, empty ones skipped. */
bool rt_http_list_has(const char *v, const char *token);

#endif
