/*
 * loadgen.h — what the protocol adapters (lg_nats.c, lg_mqtt.c) need from the
 * load generator core (loadgen.c).
 *
 * Subscribers reach every server over WebSocket. For rtgw, the Node peer and
 * the floor, each WebSocket message is one event. For nats and MQTT the
 * WebSocket payloads form a byte stream that the adapter parses; it calls
 * lg_event() for each message and lg_subscribed() once the subscription is
 * confirmed. Publishers use a plain TCP connection; the adapters build the
 * publish bytes and count the acknowledgements.
 */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct lg_conn lg_conn_t;

/* Buffer of stream bytes an adapter has not consumed yet (per connection). */
typedef struct {
    char *p;
    size_t len, cap;
} lg_buf_t;

lg_buf_t *lg_stream(lg_conn_t *c);
void lg_buf_append(lg_buf_t *b, const char *p, size_t n);
void lg_buf_consume(lg_buf_t *b, size_t n);
void lg_buf_free(lg_buf_t *b);

/* Send a masked client frame (opcode 1 text, 2 binary). Returns 0 or -1. */
int lg_ws_send(lg_conn_t *c, int opcode, const void *p, size_t n);
/* Send raw bytes on a TCP (publisher) connection. Returns 0 or -1. */
int lg_tcp_send(lg_conn_t *c, const void *p, size_t n);
/* A message for a subscriber, with the payload that carries seq and ts. */
void lg_event(lg_conn_t *c, const char *payload, size_t n);
/* The subscription is in place. */
void lg_subscribed(lg_conn_t *c);
/* The subscriber's index (for unique client ids) and topic index. */
uint32_t lg_sub_index(const lg_conn_t *c);
uint32_t lg_sub_topic(const lg_conn_t *c);

/* ---- NATS (lg_nats.c) ---- */
void nats_sub_open(lg_conn_t *c);                         /* after the 101 */
int nats_sub_data(lg_conn_t *c, const char *p, size_t n); /* ws payload bytes; -1 = error */
void nats_pub_open(lg_conn_t *c);                         /* after TCP connect */
size_t nats_pub_build(char *out, size_t cap, uint32_t topic, const char *payload, size_t n);
int nats_pub_acks(lg_conn_t *c, const char *p, size_t n); /* acks seen, or -1 */

/* ---- MQTT 3.1.1 (lg_mqtt.c) ---- */
void mqtt_sub_open(lg_conn_t *c);
int mqtt_sub_data(lg_conn_t *c, const char *p, size_t n);
void mqtt_pub_open(lg_conn_t *c);
size_t mqtt_pub_build(char *out, size_t cap, uint32_t topic, const char *payload, size_t n);
int mqtt_pub_acks(lg_conn_t *c, const char *p, size_t n);

#endif
