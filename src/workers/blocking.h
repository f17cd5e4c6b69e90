/* The blocking adapter of the sync and gthread worker classes: an app that reads a request
 * body faster than the client sends it, or writes a response faster than the client takes
 * it, waits here, on its own thread, and nowhere else. A worker class driven by an event
 * loop leaves the connection settings' `block` NULL and never waits. */
#ifndef CU_BLOCKING_H
#define CU_BLOCKING_H

#include "http/conn.h"

/* Wait until c's transport can progress on `events` (CU_EV_READ / CU_EV_WRITE, t.want
 * after a CU_AGAIN), up to the io timeout, reporting liveness to the engine's watcher about
 * once a second. CU_OK; CU_AGAIN on timeout; CU_ERROR on hang-up. Without the GIL. */
int cu_blocking_wait(cu_conn_t *c, int events);

#endif
