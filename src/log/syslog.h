/* Syslog client for the error and access logs (gunicorn's --log-syslog): one datagram or
 * stream write per message, formatted as Python's SysLogHandler does for gunicorn:
 *   <PRI>gunicorn.<prefix>.<error|access>: [pid] message\0
 * Opened in the master; workers inherit the socket. No Python. */
#ifndef CU_SYSLOG_H
#define CU_SYSLOG_H

#include "core/cu_core.h"

/* addr: unix://PATH[#dgram|#stream], udp://HOST[:PORT], tcp://HOST[:PORT] (port 514);
 * facility: a name such as "user", "local0" (NULL = user); prefix: the tag between
 * "gunicorn." and ".error". Returns CU_OK, or CU_ERROR with the reason in err. */
int cu_syslog_open(const char *addr, const char *facility, const char *prefix, char *err,
                   size_t errlen);
int cu_syslog_enabled(void);

/* Send one message at a cu_log level; `channel` is "error" or "access". Thread-safe. */
void cu_syslog_send(int level, const char *channel, const char *msg, size_t len);

#endif
