/*
 * lg_mqtt.c — MQTT 3.1.1 for the load generator (mosquitto).
 *
 * Subscriber (WebSocket, subprotocol "mqtt", binary frames): CONNECT (clean
 * session, keep-alive 0), SUBSCRIBE bench/<t> QoS 0; SUBACK confirms. Then
 * PUBLISH packets (QoS 0: topic, payload) are events.
 * Publisher (plain TCP 1883): CONNECT, then PUBLISH QoS 1 so that each PUBACK
 * acknowledges one publish (subscribers still receive at QoS 0).
 */
#include "loadgen.h"

#include <stdio.h>
#include <string.h>

static size_t put_varint(uint8_t *o, size_t v)
{
    size_t i = 0;
    do {
        uint8_t b = v % 128;
        v /= 128;
        o[i++] = (uint8_t)(b | (v ? 128 : 0));
    } while (v);
    return i;
}

static size_t connect_packet(uint8_t *o, const char *client_id)
{
    size_t idl = strlen(client_id);
    uint8_t var[10] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02 /* clean session */, 0, 0};
    size_t rem = sizeof(var) + 2 + idl;
    size_t n = 0;
    o[n++] = 0x10;
    n += put_varint(o + n, rem);
    memcpy(o + n, var, sizeof(var));
    n += sizeof(var);
    o[n++] = (uint8_t)(idl >> 8);
    o[n++] = (uint8_t)idl;
    memcpy(o + n, client_id, idl);
    return n + idl;
}

void mqtt_sub_open(lg_conn_t *c)
{
    uint8_t pkt[256];
    char id[32], topic[32];
    snprintf(id, sizeof(id), "lg-sub-%u", lg_sub_index(c));
    size_t n = connect_packet(pkt, id);
    int tl = snprintf(topic, sizeof(topic), "bench/%u", lg_sub_topic(c));
    pkt[n++] = 0x82; /* SUBSCRIBE */
    n += put_varint(pkt + n, 2 + 2 + (size_t)tl + 1);
    pkt[n++] = 0;
    pkt[n++] = 1; /* packet id */
    pkt[n++] = 0;
    pkt[n++] = (uint8_t)tl;
    memcpy(pkt + n, topic, (size_t)tl);
    n += (size_t)tl;
    pkt[n++] = 0; /* QoS 0 */
    lg_ws_send(c, 2, pkt, n);
}

/* Walk complete packets. is_sub: deliver PUBLISH payloads, SUBACK = subscribed;
 * else count PUBACKs. */
static int parse(lg_conn_t *c, const char *p, size_t n, int is_sub)
{
    lg_buf_t *b = lg_stream(c);
    lg_buf_append(b, p, n);
    const uint8_t *s = (const uint8_t *)b->p;
    size_t off = 0;
    int acks = 0;
    while (b->len - off >= 2) {
        uint8_t type = s[off];
        size_t rem = 0, mul = 1, i = off + 1;
        for (;;) {
            if (i >= b->len)
                goto out;
            rem += (s[i] & 127) * mul;
            mul *= 128;
            if (!(s[i++] & 128))
                break;
            if (i - off > 5)
                return -1;
        }
        if (b->len - i < rem)
            break;
        switch (type >> 4) {
        case 3: { /* PUBLISH */
            size_t tl = (size_t)s[i] << 8 | s[i + 1];
            size_t hdr = 2 + tl + (((type >> 1) & 3) ? 2 : 0);
            if (is_sub && hdr <= rem)
                lg_event(c, (const char *)s + i + hdr, rem - hdr);
            break;
        }
        case 9: /* SUBACK */
            if (is_sub)
                lg_subscribed(c);
            break;
        case 4: /* PUBACK */
            acks++;
            break;
        case 2: /* CONNACK */
            if (rem >= 2 && s[i + 1] != 0) {
                fprintf(stderr, "loadgen: mqtt: CONNACK refused (%u)\n", s[i + 1]);
                return -1;
            }
            break;
        default:
            break;
        }
        off = i + rem;
    }
out:
    lg_buf_consume(b, off);
    return acks;
}

int mqtt_sub_data(lg_conn_t *c, const char *p, size_t n)
{
    return parse(c, p, n, 1) < 0 ? -1 : 0;
}

void mqtt_pub_open(lg_conn_t *c)
{
    uint8_t pkt[64];
    size_t n = connect_packet(pkt, "lg-pub");
    lg_tcp_send(c, pkt, n);
}

size_t mqtt_pub_build(char *out, size_t cap, uint32_t topic, const char *payload, size_t n)
{
    static uint16_t pid;
    char t[32];
    int tl = snprintf(t, sizeof(t), "bench/%u", topic);
    size_t rem = 2 + (size_t)tl + 2 + n;
    if (rem + 8 > cap)
        return 0;
    uint8_t *o = (uint8_t *)out;
    size_t k = 0;
    o[k++] = 0x32; /* PUBLISH, QoS 1 */
    k += put_varint(o + k, rem);
    o[k++] = 0;
    o[k++] = (uint8_t)tl;
    memcpy(o + k, t, (size_t)tl);
    k += (size_t)tl;
    if (++pid == 0)
        pid = 1;
    o[k++] = (uint8_t)(pid >> 8);
    o[k++] = (uint8_t)pid;
    memcpy(o + k, payload, n);
    return k + n;
}

int mqtt_pub_acks(lg_conn_t *c, const char *p, size_t n)
{
    return parse(c, p, n, 0);
}
