/* gthread worker class: the loop thread accepts, reads and parses; a complete request goes
 * to one of --threads app threads, each attached to Python for its whole life. Finished
 * requests come back to the loop thread through a queue and an eventfd wakeup. */
#include "workers/gthread.h"
#include "core/log.h"
#include "py/py.h"

#include <errno.h>
#include <pthread.h>

typedef struct gthread_s {
    cu_engine_t *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cu_conn_t *pending_head, *pending_tail; /* waiting for an app thread (FIFO) */
    cu_conn_t *done_head, *done_tail;       /* finished, waiting for the loop (FIFO) */
    int stop;
    int nthreads;
    pthread_t *threads;
} gthread_t;

static void *app_thread(void *arg)
{
    gthread_t *g = arg;
    cu_py_thread_attach();
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->pending_head && !g->stop)
            pthread_cond_wait(&g->cv, &g->mu);
        if (!g->pending_head)
            break;
        cu_conn_t *c = g->pending_head;
        g->pending_head = c->qnext;
        if (!g->pending_head)
            g->pending_tail = NULL;
        pthread_mutex_unlock(&g->mu);

        int rc = cu_py_handle_request(c);

        pthread_mutex_lock(&g->mu);
        c->qrc = rc;
        c->qnext = NULL;
        if (g->done_tail)
            g->done_tail->qnext = c;
        else
            g->done_head = c;
        g->done_tail = c;
        cu_loop_wakeup(g->e->loop);
    }
    pthread_mutex_unlock(&g->mu);
    cu_py_thread_detach();
    return NULL;
}

static int gthread_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    gthread_t *g = e->class_data;
    pthread_mutex_lock(&g->mu);
    c->qnext = NULL;
    if (g->pending_tail)
        g->pending_tail->qnext = c;
    else
        g->pending_head = c;
    g->pending_tail = c;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return CU_AGAIN;
}

/* Loop thread, after each wakeup: hand finished connections back to the engine. */
static void on_wakeup(cu_loop_t *loop, void *data)
{
    gthread_t *g = data;
    pthread_mutex_lock(&g->mu);
    cu_conn_t *c = g->done_head;
    g->done_head = g->done_tail = NULL;
    pthread_mutex_unlock(&g->mu);
    while (c) {
        cu_conn_t *next = c->qnext;
        c->qnext = NULL;
        cu_engine_request_done(g->e, c, c->qrc);
        c = next;
    }
}

int cu_gthread_setup(cu_engine_t *e, int nthreads)
{
    gthread_t *g = cu_xcalloc(1, sizeof(*g));
    g->e = e;
    g->nthreads = nthreads > 0 ? nthreads : 1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->threads = cu_xcalloc((size_t)g->nthreads, sizeof(*g->threads));
    e->class_data = g;
    e->dispatch = gthread_dispatch;
    e->async_dispatch = 1;
    cu_loop_set_wakeup_cb(e->loop, on_wakeup, g);
    for (int i = 0; i < g->nthreads; i++) {
        int err = pthread_create(&g->threads[i], NULL, app_thread, g);
        if (err) {
            cu_log_error("cannot start app thread %d: %s", i, strerror(err));
            g->nthreads = i;
            cu_gthread_teardown(e, 1);
            return CU_ERROR;
        }
    }
    return CU_OK;
}

void cu_gthread_teardown(cu_engine_t *e, int join)
{
    gthread_t *g = e->class_data;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (!join)
        return; /* quick exit: threads may be inside the app; the process is leaving */
    for (int i = 0; i < g->nthreads; i++)
        pthread_join(g->threads[i], NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->threads); g->threads = NULL;
    free(g); g = NULL;
    e->class_data = NULL;
}
