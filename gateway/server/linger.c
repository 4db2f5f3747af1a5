/*
 * linger.c — gentle closes on a front-door lane (see linger.h).
 *
 * Held connections are a list in deadline order (every caller lingers for the
 * same time, so appending keeps the order; a shorter one is inserted from the
 * tail), so a sweep closes the expired ones from the head: O(expired).
 */
#include "linger.h"
#include "tlsconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct item_s {
    int tag; /* the lane's tag for linger items: first, as the lane reads it */
    int fd;
    rt_tls_t *tls;
    int64_t until_ms;
    size_t left; /* bytes it may still send */
    struct item_s *prev, *next;
} item_t;

struct rt_linger_s {
    int epfd, tag;
    size_t cap, count;
    item_t *head, *tail; /* deadline order */
};

rt_linger_t *rt__linger_new(int epfd, int tag, size_t cap)
{
    rt_linger_t *g = calloc(1, sizeof(*g));
    if (g)
        *g = (rt_linger_t){.epfd = epfd, .tag = tag, .cap = cap};
    return g;
}

static void unlink_item(rt_linger_t *g, item_t *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        g->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        g->tail = it->prev;
    g->count--;
}

/* close(2) removes it from the epoll. */
static void end(rt_linger_t *g, item_t *it)
{
    unlink_item(g, it);
    rt__tls_free(it->tls);
    close(it->fd);
    free(it);
}

void rt__linger_add(rt_linger_t *g, int fd, rt_tls_t *tls, int64_t until_ms, size_t max)
{
    item_t *it = g->count < g->cap ? calloc(1, sizeof(*it)) : NULL;
    if (!it) {
        rt__tls_free(tls);
        close(fd);
        return;
    }
    *it = (item_t){.tag = g->tag, .fd = fd, .tls = tls, .until_ms = until_ms, .left = max};
    item_t *after = g->tail;
    while (after && after->until_ms > until_ms)
        after = after->prev;
    it->prev = after;
    it->next = after ? after->next : g->head;
    if (it->next)
        it->next->prev = it;
    else
        g->tail = it;
    if (after)
        after->next = it;
    else
        g->head = it;
    g->count++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = it};
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        end(g, it);
}

void rt__linger_event(rt_linger_t *g, void *item)
{
    item_t *it = item;
    char drop[16384];
    for (;;) { /* edge-triggered: until the socket is drained */
        /* read(2): sockhook's recv is civetweb's. Raw bytes, TLS or not:
         * nothing sent after the answer is read for its meaning. */
        ssize_t n = read(it->fd, drop, sizeof(drop));
        if (n > 0) /* a plain request behind may carry a key, as the peek buffer may */
            explicit_bzero(drop, (size_t)n);
        if (n > 0 && (size_t)n < it->left) {
            it->left -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        end(g, it); /* closed by the client, an error, or over its budget */
        return;
    }
}

int64_t rt__linger_next(const rt_linger_t *g)
{
    return g && g->head ? g->head->until_ms : INT64_MAX;
}

void rt__linger_sweep(rt_linger_t *g, int64_t now_ms)
{
    while (g && g->head && g->head->until_ms <= now_ms)
        end(g, g->head);
}

size_t rt__linger_count(const rt_linger_t *g)
{
    return g ? g->count : 0;
}

void rt__linger_free(rt_linger_t *g)
{
    if (!g)
        return;
    while (g->head)
        end(g, g->head);
    free(g);
}
