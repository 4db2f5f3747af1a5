/*
 * event.h — the event frame of the Inngest realtime protocol, and positions.
 *
 *   {"kind":"data","channel":C,"topic":T,"data":D,"metadata"?:M,
 *    "created_at":"RFC 3339","env_id"?,"run_id"?,"fn_id"?,"fn_slug"?,
 *    "stream_id"?,"id":"<epoch>-<offset>"}
 *
 * Optional fields are left out, never null (the official client drops frames
 * holding a null). "id" is rtgw's position; the official client ignores it.
 */
#ifndef RT_EVENT_H
#define RT_EVENT_H

#include "frame.h"
#include "rt_tokens.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t epoch;  /* changes whenever the channel's history may have been lost */
    uint64_t offset; /* 1, 2, 3… within an epoch */
} rt_pos_t;

#define RT_POS_MAX 48
/* "<epoch hex>-<offset decimal>"; returns the length. */
int rt_pos_format(rt_pos_t pos, char *out, size_t cap);
/* Strict parse of the above; 0 or -1. */
int rt_pos_parse(rt_slice_t s, rt_pos_t *out);

/* The kind of a publish/tee event: its data is a string, the bytes a
 * producer tee'd, which SSE delivers verbatim (see rt_event_sse_frame). */
#define RT_EVENT_KIND_RAW "raw"

typedef struct {
    const char *kind; /* "data", "datastream-start", "chunk", "datastream-end", "raw" */
    rt_slice_t channel;
    rt_slice_t topic;
    rt_slice_t data; /* compact JSON text (no raw newlines), validated by the caller */
    int64_t created_at_ms;
    rt_slice_t metadata; /* compact JSON text like data; empty → omitted */
    rt_slice_t env_id, run_id, fn_id, fn_slug, stream_id; /* empty → omitted */
    bool ext_only; /* stream frames: only for subscribers that opted in (the official
                      clients crash on datastream-start, see docs/inngest-wire-notes.md) */
} rt_event_t;

/* Append s as a JSON string literal (quotes included) to buf at *len.
 * Returns 0, or -1 if cap would be exceeded. */
int rt_json_put_string(char *buf, size_t cap, size_t *len, const char *s, size_t n);

/* Encode the event as compact JSON, with "id" when pos is non-NULL. Returns a
 * new malloc'd buffer (caller frees) and its length in *len; NULL on OOM. */
char *rt_event_json(const rt_event_t *ev, const rt_pos_t *pos, size_t *len);

/* The same JSON as a WebSocket text frame. */
rt_frame_t *rt_event_ws_frame(const char *json, size_t len);
/* The same JSON as an SSE record: "id: <pos>\ndata: <json>\n\n" (no event: line, so the
 * browser's default "message" event fires; no id: line when pos is NULL).
 * An event of kind RT_EVENT_KIND_RAW is its data string's bytes alone, as
 * Inngest forwards a tee'd body (the producer writes SSE records itself). */
rt_frame_t *rt_event_sse_frame(const char *json, size_t len, const rt_pos_t *pos);

/* RFC 3339 UTC with milliseconds, e.g. 2026-11-23T14:00:00.123Z; returns length. */
int rt_rfc3339_ms(int64_t ms, char *out, size_t cap);

#endif
