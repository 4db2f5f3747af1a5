/*
 * err.h — the gateway's error values: 0 is success, every failure is one of
 * these negative codes, named, never a bare number. Libraries of the gateway
 * (core, bus, api, config, doctor) return them; rt_strerror names each one.
 * Values are stable; append, never renumber. Protocol refusals a client sees
 * are reasons (reason.h), not errors.
 *
 *   XX(ENUM, value, name, text)
 */
#ifndef RT_ERR_H
#define RT_ERR_H

#define RT_ERR_MAP(XX)                                                                             \
    XX(NOMEM, -1, "nomem", "out of memory")                                                        \
    XX(LIMIT, -2, "limit", "a configured limit was reached")                                       \
    XX(INVAL, -3, "inval", "malformed input")                                                      \
    XX(ABSENT, -4, "absent", "not present")                                                        \
    XX(TOOLONG, -5, "toolong", "does not fit the buffer")                                          \
    XX(UNAVAILABLE, -6, "unavailable", "a dependency (the bus, Redis) is unavailable")             \
    XX(TIMEOUT, -7, "timeout", "timed out")                                                        \
    XX(IO, -8, "io", "input/output error")                                                         \
    XX(CLOSED, -9, "closed", "the peer closed the connection")                                     \
    XX(PROTOCOL, -10, "protocol", "the peer broke the protocol")                                   \
    XX(DUPLICATE, -11, "duplicate", "already present")                                             \
    XX(DENIED, -12, "denied", "the credential was refused or does not allow this")

typedef enum {
#define RT_ERR_XX(e, v, name, text) RT_E_##e = (v),
    RT_ERR_MAP(RT_ERR_XX)
#undef RT_ERR_XX
} rt_err_t;

/* The readable text of an error value ("unknown error" for any other value). */
const char *rt_strerror(int err);
/* The short stable name of an error value, for logs and metrics labels. */
const char *rt_err_name(int err);

#endif
