/*
 * lg_nats.c — NATS client protocol for the load generator.
 *
 * Subscriber (over nats-server's WebSocket listener): after the upgrade send
 * "CONNECT {...}\r\nSUB bench.<t> 1\r\nPING\r\n" as a text frame; the PONG
 * confirms the SUB. Then parse "MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n",
 * answer server PINGs, ignore INFO and +OK.
 * Publisher (plain TCP, port 4222): "PUB bench.<t> <n>\r\n<payload>\r\nPING\r\n";
 * each PONG acknowledges one publish (the server has processed it and
 * everything before it).
 */
#include "loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char connect_line[] = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";

void nats_sub_open(lg_conn_t *c)
{
    char buf[160];
    int n =
        snprintf(buf, sizeof(buf), "%sSUB bench.%u 1\r\nPING\r\n", connect_line, lg_sub_topic(c));
    lg_ws_send(c, 1, buf, (size_t)n);
}

/* Parse control lines and MSGs from the stream. is_sub: deliver MSGs and
 * treat the first PONG as the subscription ack; else count PONGs as acks. */
static int parse(lg_conn_t *c, const char *p, size_t n, int is_sub)
{
    lg_buf_t *b = lg_stream(c);
    lg_buf_append(b, p, n);
    int acks = 0;
    size_t off = 0;
    while (off < b->len) {
        char *s = b->p + off;
        size_t avail = b->len - off;
        char *nl = memchr(s, '\n', avail);
        if (!nl)
            break;
        size_t linelen = (size_t)(nl - s) + 1;
        if (avail >= 4 && memcmp(s, "MSG ", 4) == 0) {
            /* size is the last token of the line */
            char *e = nl;
            while (e > s && (e[-1] == '\r' || e[-1] == '\n'))
                e--;
            char *t = e;
            while (t > s && t[-1] != ' ')
                t--;
            size_t sz = strtoul(t, NULL, 10);
            if (avail < linelen + sz + 2)
                break;
            if (is_sub)
                lg_event(c, nl + 1, sz);
            off += linelen + sz + 2;
            continue;
        }
        if (avail >= 4 && memcmp(s, "PING", 4) == 0) {
            if (is_sub)
                lg_ws_send(c, 1, "PONG\r\n", 6);
            else
                lg_tcp_send(c, "PONG\r\n", 6);
        } else if (avail >= 4 && memcmp(s, "PONG", 4) == 0) {
            if (is_sub)
                lg_subscribed(c);
            else
                acks++;
        } else if (avail >= 4 && memcmp(s, "-ERR", 4) == 0) {
            fprintf(stderr, "loadgen: nats: %.*s\n", (int)linelen, s);
            return -1;
        }
        off += linelen;
    }
    lg_buf_consume(b, off);
    return acks;
}

int nats_sub_data(lg_conn_t *c, const char *p, size_t n)
{
    return parse(c, p, n, 1) < 0 ? -1 : 0;
}

void nats_pub_open(lg_conn_t *c)
{
    lg_tcp_send(c, connect_line, sizeof(connect_line) - 1);
}

size_t nats_pub_build(char *out, size_t cap, uint32_t topic, const char *payload, size_t n)
{
    int h = snprintf(out, cap, "PUB bench.%u %zu\r\n", topic, n);
    if (h < 0 || (size_t)h + n + 8 > cap)
        return 0;
    memcpy(out + h, payload, n);
    memcpy(out + h + n, "\r\nPING\r\n", 8);
    return (size_t)h + n + 8;
}

int nats_pub_acks(lg_conn_t *c, const char *p, size_t n)
{
    return parse(c, p, n, 0);
}
