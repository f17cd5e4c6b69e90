/* gthread worker class: app threads fed by the connection engine. */
#ifndef CU_GTHREAD_H
#define CU_GTHREAD_H

#include "workers/engine.h"

/* Start `nthreads` app threads and make the engine dispatch to them. CU_OK or CU_ERROR. */
int cu_gthread_setup(cu_engine_t *e, int nthreads);
/* Stop the threads; with join = 0 do not wait (quick exit). */
void cu_gthread_teardown(cu_engine_t *e, int join);

#endif
