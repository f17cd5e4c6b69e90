/* The --pid file, written and removed the way gunicorn's Pidfile does. */
#ifndef CU_PIDFILE_H
#define CU_PIDFILE_H

#include "core/cu_core.h"

/* Write "<pid>\n" to `path` atomically (temp file in the same directory + rename), mode
 * 0644. Refuses when the file names another live process. Returns CU_OK, or CU_ERROR with
 * gunicorn's reason in err ("Already running on PID 12 (or pid file 'x' is stale)"). */
int cu_pidfile_create(const char *path, pid_t pid, char *err, size_t errlen);

/* Remove `path` if it still holds `pid` (a newer master may own it by now). */
void cu_pidfile_unlink(const char *path, pid_t pid);

#endif
