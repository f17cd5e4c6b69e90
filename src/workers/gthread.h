/* gthread worker class: app threads that all drive the connection engine. */
#ifndef CU_GTHREAD_H
#define CU_GTHREAD_H

#include "workers/engine.h"

/* Make the engine threaded and start nthreads - 1 more threads running it (the caller is
 * the last one: it calls cu_engine_run itself). CU_OK or CU_ERROR. */
int cu_gthread_setup(cu_engine_t *e, int nthreads);
/* Wait for the threads after cu_engine_run returned; with join = 0 do not (quick exit). */
void cu_gthread_teardown(cu_engine_t *e, int join);

#endif
