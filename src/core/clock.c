/* Time cache. */
#include "clock.h"

#include <sys/time.h>

_Thread_local cu_time_cache_t cu_time;

int64_t cu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cu_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void cu_time_update(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    cu_time.mono_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    time_t now = time(NULL);
    if (now == cu_time.wall_sec && cu_time.http_date_len)
        return;
    cu_time.wall_sec = now;
    struct tm g, l;
    gmtime_r(&now, &g);
    localtime_r(&now, &l);
    cu_time.http_date_len =
        strftime(cu_time.http_date, sizeof(cu_time.http_date), "%a, %d %b %Y %H:%M:%S GMT", &g);
    strftime(cu_time.log_date, sizeof(cu_time.log_date), "%Y-%m-%d %H:%M:%S %z", &l);
    strftime(cu_time.access_date, sizeof(cu_time.access_date), "[%d/%b/%Y:%H:%M:%S %z]", &l);
}
