/*
 * probes.c — the ring of probe requests (probes.h): a fixed array of
 * RT_PROBES_CAP records written round-robin under one mutex. Lookups scan
 * the ring (64 entries), which is cheaper than an index at this size.
 */
#include "probes.h"
#include "httplist.h"
#include "err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rt_probes_s {
    pthread_mutex_t mu;
    rt_probe_rec_t rec[RT_PROBES_CAP];
    size_t next, used;
};

rt_probes_t *rt_probes_new(void)
{
    rt_probes_t *p = calloc(1, sizeof(*p));
    if (p && pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void rt_probes_free(rt_probes_t *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}

bool rt_probe_id_valid(const char *id, size_t len)
{
    if (!id || len < 8 || len > RT_PROBE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

rt_probe_conn_t rt_probe_conn_class(const char *v)
{
    if (!v)
        return RT_PROBE_CONN_ABSENT;
    if (v[strspn(v, " \t")] == 0)
        return RT_PROBE_CONN_EMPTY;
    if (rt_http_list_has(v, "upgrade"))
        return RT_PROBE_CONN_UPGRADE;
    if (rt_http_list_has(v, "keep-alive"))
        return RT_PROBE_CONN_KEEPALIVE;
    if (rt_http_list_has(v, "close"))
        return RT_PROBE_CONN_CLOSE;
    return RT_PROBE_CONN_OTHER;
}

const char *rt_probe_conn_name(rt_probe_conn_t c)
{
    static const char *const names[] = {"absent",     "empty", "upgrade",
                                        "keep-alive", "close", "other"};
    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "other";
}

int rt_probes_add(rt_probes_t *p, const rt_probe_rec_t *rec)
{
    pthread_mutex_lock(&p->mu);
    size_t same = 0;
    for (size_t i = 0; i < p->used; i++)
        if (strcmp(p->rec[i].id, rec->id) == 0)
            same++;
    if (same >= RT_PROBES_PER_ID) {
        pthread_mutex_unlock(&p->mu);
        return RT_E_LIMIT;
    }
    p->rec[p->next] = *rec;
    p->next = (p->next + 1) % RT_PROBES_CAP;
    if (p->used < RT_PROBES_CAP)
        p->used++;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

size_t rt_probes_get(rt_probes_t *p, const char *id, rt_probe_rec_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    /* Oldest first: the ring starts at next once it is full. */
    size_t start = p->used < RT_PROBES_CAP ? 0 : p->next;
    for (size_t k = 0; k < p->used && n < max; k++) {
        const rt_probe_rec_t *r = &p->rec[(start + k) % RT_PROBES_CAP];
        if (strcmp(r->id, id) == 0)
            out[n++] = *r;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}
