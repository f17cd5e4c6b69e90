/* StatsD client (gunicorn's --statsd-host): gunicorn's metric names and line formats sent
 * over UDP (or a unix datagram socket) from C, one datagram per metric:
 *   gunicorn.requests:1|c|@1.0   gunicorn.request.duration:12.5|ms
 *   gunicorn.request.status.200:1|c|@1.0   gunicorn.workers:4|g   gunicorn.log.error:1|c|@1.0
 *   gunicorn.backlog:3|h
 * with statsd_prefix ("app." ) in front and "|#tags" (dogstatsd_tags) behind. Opened in
 * the master; workers inherit the socket. Thread-safe; every call is a no-op when off. */
#ifndef CU_STATSD_H
#define CU_STATSD_H

#include "core/cu_core.h"

/* host: "host[:port]" (port 8125), "[v6]:port", "unix://PATH" or "unix:PATH". Returns
 * CU_OK or CU_ERROR with the reason in err. */
int cu_statsd_open(const char *host, const char *prefix, const char *tags, char *err,
                   size_t errlen);
int cu_statsd_enabled(void);

void cu_statsd_counter(const char *name, long value);
void cu_statsd_gauge(const char *name, long value);
void cu_statsd_histogram(const char *name, long value);
/* A timer in milliseconds (printed like Python's float). */
void cu_statsd_timer(const char *name, double ms);

/* One finished request, as gunicorn's Statsd.access: request.duration, requests,
 * request.status.<code>. */
void cu_statsd_request(int status, int64_t duration_us);

/* For the error log sink: gunicorn.log.<critical|error|warning|exception> counters. */
void cu_statsd_log_level(int level, int exception);

#endif
