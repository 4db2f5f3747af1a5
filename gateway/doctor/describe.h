/*
 * describe.h — words for what answered: a short description of an HTTP
 * response the doctor did not expect (an HTML page and its title, a JSON
 * error, the proxy named by its Server header), for the "found" texts.
 *
 * Private to rt_doctor. Pure functions over a response already read; any
 * thread. Output goes to caller buffers, except rt__json_error_text.
 */
#ifndef RT_DOCTOR_DESCRIBE_H
#define RT_DOCTOR_DESCRIBE_H

#include "http_client.h"

#include <stdbool.h>
#include <stddef.h>

/* "error: message" (or just "error") of an rtgw error body
 * {"error":…,"message":…}, malloc'd (the caller frees it), or NULL. */
char *rt__json_error_text(const rt__buf_t *b, bool with_message);

/* True if the response is an HTML page (Content-Type, or a body that opens
 * with '<'). */
bool rt__looks_html(const rt__http_resp_t *r);

/* "an HTML page titled "…"" / "application/json '…'" / "a body '…'". */
void rt__describe_body(const rt__http_resp_t *r, char *out, size_t cap);

/* ", via <Server header>", or "" when the response names no server. */
void rt__via_server(const rt__http_resp_t *r, char *out, size_t cap);

#endif
