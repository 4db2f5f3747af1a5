/*
 * clock.h — the one clock of the gateway: wall time for what leaves the
 * process (created_at, token iat/exp, Date headers), monotonic time for every
 * deadline, timeout and rate. Any thread; never blocks.
 */
#ifndef RT_CLOCK_H
#define RT_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rt_clock_wall_ms(void);
/* Milliseconds on CLOCK_MONOTONIC: for deadlines and intervals only. */
int64_t rt_clock_mono_ms(void);
/* Microseconds on CLOCK_MONOTONIC: for latency measurements. */
int64_t rt_clock_mono_us(void);

#endif
