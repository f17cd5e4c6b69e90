/* Worker timeout report: which requests are inside the app right now, and what the worker
 * does when the master's SIGABRT (WORKER TIMEOUT) finds it stuck there: each such request
 * is answered with a 500 (when no response byte went out yet) and logged (method, path, how
 * long it ran, the thread), the Python stacks of every thread go to the error log, then
 * the worker leaves (or lets the worker_abort hook run). */
#ifndef CU_WATCHDOG_H
#define CU_WATCHDOG_H

#include "http/conn.h"

/* Start the reporting thread with one slot per app thread. `dump_stacks` writes every
 * thread's Python stack to an fd without the GIL (cu_py_dump_stacks); `after` runs on the
 * reporting thread once the report is written (the worker exits there). CU_OK/CU_ERROR. */
int cu_watchdog_start(int nslots, void (*dump_stacks)(int fd), void (*after)(void));

/* The calling thread runs the app for the request on c: a slot index, or -1 when none is
 * free or the watchdog is not started. The request's slices must stay valid until leave. */
int cu_watchdog_enter(cu_conn_t *c);
void cu_watchdog_leave(int slot);

/* Async-signal-safe: wake the reporting thread. Returns 0 when it is not started. */
int cu_watchdog_fire(void);

#endif
