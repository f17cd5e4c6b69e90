/* gthread worker class: --threads app threads, each attached to Python for its whole life,
 * all driving the worker's one connection engine. A thread that takes a request's event
 * runs the app itself, so a request costs no hand-off between threads; while it is in the
 * app, the kernel gives the next event to another waiting thread. */
#include "workers/gthread.h"
#include "core/log.h"
#include "py/py.h"

#include <pthread.h>

typedef struct gthread_s {
    int nthreads; /* extra threads; the calling thread is one more */
    pthread_t *threads;
} gthread_t;

static void *app_thread(void *arg)
{
    cu_engine_t *e = arg;
    cu_py_thread_attach();
    cu_engine_run(e);
    cu_py_thread_detach();
    return NULL;
}

int cu_gthread_setup(cu_engine_t *e, int nthreads)
{
    gthread_t *g = cu_xcalloc(1, sizeof(*g));
    e->class_data = g;
    cu_engine_set_threaded(e);
    g->threads = cu_xcalloc((size_t)(nthreads > 1 ? nthreads - 1 : 1), sizeof(*g->threads));
    for (int i = 0; i < nthreads - 1; i++) {
        int err = pthread_create(&g->threads[i], NULL, app_thread, e);
        if (err) {
            cu_log_error("cannot start app thread %d: %s", i + 1, strerror(err));
            e->quit = 1;
            cu_loop_wakeup_all(e->loop);
            cu_gthread_teardown(e, 1);
            return CU_ERROR;
        }
        g->nthreads = i + 1;
    }
    return CU_OK;
}

void cu_gthread_teardown(cu_engine_t *e, int join)
{
    gthread_t *g = e->class_data;
    if (!g)
        return;
    if (!join)
        return; /* quick exit: threads may be inside the app; the process is leaving */
    for (int i = 0; i < g->nthreads; i++)
        pthread_join(g->threads[i], NULL);
    cu_free(g->threads);
    cu_free(g);
    e->class_data = NULL;
}
