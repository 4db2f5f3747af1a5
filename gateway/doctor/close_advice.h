/*
 * close_advice.h — what a WebSocket close code from the gateway means and
 * what to do about it: the codes, their names and the default advice come
 * from core's reason table (reason.h, the table docs/protocol.md lists), so
 * the doctor never spells a close code itself.
 *
 * Private to rt_doctor. Pure: writes caller buffers only; any thread.
 */
#ifndef RT_DOCTOR_CLOSE_ADVICE_H
#define RT_DOCTOR_CLOSE_ADVICE_H

#include "reason.h"

#include <stdbool.h>
#include <stddef.h>

/* True if code is the WebSocket close code of reason r. */
bool rt__close_is(int code, rt_reason_t r);

/* found and fix for a close frame (code, reason text) that ended the
 * connection right after the upgrade. origin: the Origin the doctor sent,
 * or NULL. fix may be left empty. */
void rt__close_advice(int code, const char *reason, const char *origin, char *found, size_t fcap,
                      char *fix, size_t xcap);

#endif
