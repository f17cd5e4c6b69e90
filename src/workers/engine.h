/* The connection engine all WSGI workers share: accepts, reads, parses request heads and
 * keeps connections alive on the event loop without the GIL, and hands each complete
 * request to the worker class through `dispatch`. */
#ifndef CU_ENGINE_H
#define CU_ENGINE_H

#include "event/loop.h"

#include <pthread.h>
#include "http/conn.h"
#include "workers/settings.h"
#include "workers/worker.h"

typedef struct cu_engine_s cu_engine_t;

/* Handle the request whose head is complete on c: run the app and return CU_OK/CU_ERROR
 * like cu_py_handle_request. Called on whichever thread took the request's event; in a
 * threaded engine, without the engine lock. */
typedef int (*cu_dispatch_cb)(cu_engine_t *e, cu_conn_t *c);

struct cu_engine_s {
    cu_loop_t *loop;
    const cu_config_t *cfg;
    cu_worker_ctx_t *ctx;
    cu_conn_settings_t settings; /* resolved once: cu_settings_resolve */
    cu_engine_settings_t es;
    cu_dispatch_cb dispatch;
    int threaded;                 /* several threads drive the loop (gthread) */
    int oneshot;                  /* CU_EV_ONESHOT when threaded: one event, one thread */
    pthread_mutex_t mu;           /* threaded: held while handling events, not in the app */
    void *class_data;             /* the worker class's own state */
    void (*tick)(cu_engine_t *e); /* called after every loop iteration (signal flags) */

    cu_io_t *lio; /* one watcher per listener */
    int accepting;
    size_t nconns;
    cu_conn_t *all;  /* every open connection (doubly linked) */
    cu_conn_t *pool; /* freed connections, buffers kept */
    cu_conn_t *dead; /* closed during this iteration; pooled after it */

    uint64_t nrequests;
    int stopping; /* graceful: no accepts, finish what was read, then exit */
    int quit;     /* leave the loop now */
    cu_timer_t hb_timer;
    cu_timer_t accept_timer; /* retry accept after EMFILE */
};

int cu_engine_init(cu_engine_t *e, cu_worker_ctx_t *ctx, cu_dispatch_cb dispatch);
/* Let several threads drive this engine: each calls cu_engine_run (call before any does). */
void cu_engine_set_threaded(cu_engine_t *e);
/* Serve until stopped (graceful stop finished or quick exit). In a threaded engine every
 * serving thread calls this; all return once the engine stops. */
void cu_engine_run(cu_engine_t *e);
void cu_engine_destroy(cu_engine_t *e);

/* Begin a graceful stop: stop accepting, close idle connections, finish the rest. */
void cu_engine_stop(cu_engine_t *e);

#endif
