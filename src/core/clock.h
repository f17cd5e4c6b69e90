/* Cached wall and monotonic clocks, and the formatted dates logs and responses need.
 * One cache per thread: the loop thread refreshes its own every iteration; an app thread
 * calls cu_time_update() before it formats a date (cheap when the second is unchanged). */
#ifndef CU_CLOCK_H
#define CU_CLOCK_H

#include "cu_core.h"
#include <time.h>

typedef struct cu_time_cache_s {
    int64_t mono_ms;    /* CLOCK_MONOTONIC in ms */
    time_t wall_sec;    /* time(NULL) */
    char http_date[32]; /* "Tue, 24 Nov 2026 21:26:51 GMT" */
    size_t http_date_len;
    char log_date[40];    /* "2026-11-24 21:26:51 +0000" (error log) */
    char access_date[40]; /* "[24/Nov/2026:21:26:51 +0000]" (access log %(t)s) */
} cu_time_cache_t;

extern _Thread_local cu_time_cache_t cu_time;

/* Refresh the cache; cheap when the second has not changed. */
void cu_time_update(void);
int64_t cu_mono_ms(void); /* fresh reading, not cached */
int64_t cu_wall_us(void); /* fresh wall clock in microseconds */

#endif
