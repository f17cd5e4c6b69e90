/* Error-log primitives: levels, one output fd, gunicorn's line format
 *   [2026-11-24 21:26:51 +0000] [1234] [INFO] message
 * Writes are one write(2) per line, so lines from many processes do not interleave.
 * Not for signal handlers. */
#ifndef CU_LOG_H
#define CU_LOG_H

#include "cu_core.h"

enum cu_log_level {
    CU_LOG_DEBUG = 10,
    CU_LOG_INFO = 20,
    CU_LOG_WARNING = 30,
    CU_LOG_ERROR = 40,
    CU_LOG_CRITICAL = 50
};

extern int cu_log_level;       /* messages below this are dropped */
extern int cu_log_fd;          /* default 2 */
extern int cu_log_capture_std; /* capture_output: fds 1 and 2 follow the log file on reopen */

/* Parse "debug"/"info"/"warning"/"error"/"critical" (any case); -1 if unknown. */
int cu_log_level_parse(const char *name);

/* Open `path` ("-" = stderr) for appending and make it the error log.
 * Returns CU_OK or -errno. The path is remembered for cu_log_reopen(). */
int cu_log_open(const char *path);
/* USR1: reopen the file opened by cu_log_open (no-op for stderr). */
void cu_log_reopen(void);

/* Another destination for error-log lines: syslog, statsd's gunicorn.log.* counters and
 * Python logging (set at startup by py/pylog.c; NULL = none, the fast path). Called after
 * the level filter with the message alone (no "[date] [pid] [LEVEL] " prefix, no newline);
 * `block` is nonzero for cu_log_block text (a traceback). May be called from any thread,
 * with or without the GIL. Returns nonzero when the error log fd must not get the line
 * (Python logging owns the error log then). */
typedef int (*cu_log_sink_cb)(int level, const char *msg, size_t len, int block);
extern cu_log_sink_cb cu_log_sink;

void cu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write a pre-formatted multi-line block (a traceback) at `level`, each line prefixed. */
void cu_log_block(int level, const char *text, size_t len);

#define cu_log_debug(...)                                                                          \
    do {                                                                                           \
        if (cu_log_level <= CU_LOG_DEBUG)                                                          \
            cu_log(CU_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define cu_log_info(...)  cu_log(CU_LOG_INFO, __VA_ARGS__)
#define cu_log_warn(...)  cu_log(CU_LOG_WARNING, __VA_ARGS__)
#define cu_log_error(...) cu_log(CU_LOG_ERROR, __VA_ARGS__)
#define cu_log_crit(...)  cu_log(CU_LOG_CRITICAL, __VA_ARGS__)

#endif
