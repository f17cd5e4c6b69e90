/* The connection engine all WSGI workers share: accepts, reads, parses request heads and
 * keeps connections alive on the event loop without the GIL, and hands each complete
 * request to the worker class through `dispatch`. */
#ifndef CU_ENGINE_H
#define CU_ENGINE_H

#include "event/loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include "http/conn.h"
#include "net/seal.h"
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
    /* Events on a connection whose request the class still owns (dispatch returned
     * CU_AGAIN), as asked with cu_engine_app_watch. NULL: such events are ignored. */
    void (*app_io)(cu_engine_t *e, cu_conn_t *c, int events);
    /* How the worker reports to whoever watches it (the master's heartbeat slot); set by
     * the worker before it runs the engine. Any may be NULL. Called under the engine lock
     * or from the thread blocked on a slow client. */
    struct {
        void (*stamp)(void *arg);              /* alive: about once a second */
        void (*served)(void *arg, uint64_t n); /* n requests served so far */
        void (*retiring)(void *arg);           /* max_requests reached: replace me now */
        void *arg;
    } report;

    cu_io_t *lio; /* one watcher per listener */
    int accepting;
    size_t nconns;
    cu_conn_t *all;  /* every open connection (doubly linked) */
    cu_conn_t *pool; /* freed connections, buffers kept */
    cu_conn_t *dead; /* closed during this iteration; pooled after it */

    uint64_t nrequests;
    atomic_size_t out_kept; /* unsent response bytes in memory, all connections (budget) */
    int statm_fd;           /* /proc/self/statm, opened at the first memory check; -1 until then */
    uint64_t shed[5];       /* connections closed at the cap, by shed_rank (engine.c) */
    uint64_t shed_logged;   /* their total when last logged */
    int stopping;           /* graceful: no accepts, finish what was read, then exit */
    int draining;           /* cu_engine_stop is accepting the backlog: the cap does not apply */
    int64_t seal_deadline;  /* stopping with sealed listeners (net/seal.h): accepting the
                               handshakes in progress until then; 0 otherwise */
    int64_t seal_min;       /* --reuse-port sockets of our own: until then, or until */
    int seal_own;           /* ... a listener not in seal_known appears on this one's port */
    size_t seal_nknown;
    uint32_t seal_known[CU_SEAL_PEERS_MAX]; /* the port's listeners when the stop began */
    int quit;                               /* leave the loop now */
    cu_timer_t hb_timer;
    cu_timer_t accept_timer; /* retry accept after EMFILE */
    cu_timer_t seal_timer;   /* sealed listeners: look again for handshakes in progress */
};

int cu_engine_init(cu_engine_t *e, cu_worker_ctx_t *ctx, cu_dispatch_cb dispatch);
/* Let several threads drive this engine: each calls cu_engine_run (call before any does). */
void cu_engine_set_threaded(cu_engine_t *e);
/* Run what is ready now and return: events already signalled, due timers, the engine's
 * bookkeeping (tick, graceful-stop completion). Never waits for I/O; dispatch callbacks
 * (the app) run inside it. For a foreign event loop (asyncio, gevent) that watches
 * cu_engine_fd for readability and wakes at cu_engine_next_deadline, from its own thread.
 * Returns CU_OK, or CU_DONE once the engine has stopped (then destroy it). */
int cu_engine_step(cu_engine_t *e);
/* The one fd to watch for readability (the loop's epoll fd). */
int cu_engine_fd(const cu_engine_t *e);
/* The next timer deadline on the cu_time.mono_ms clock (cu_mono_ms()), -1 when none:
 * call cu_engine_step by then even if the fd stays quiet. */
int64_t cu_engine_next_deadline(cu_engine_t *e);
/* Serve until stopped (graceful stop finished or quick exit): a small loop doing what
 * cu_engine_step does, blocking in the kernel between iterations. In a threaded engine
 * every serving thread calls this; all return once the engine stops. */
void cu_engine_run(cu_engine_t *e);
void cu_engine_destroy(cu_engine_t *e);

/* A worker class driven by an event loop (asgi) completes requests later: its dispatch
 * returns CU_AGAIN and the request stays with it (the engine neither reads nor times the
 * connection) until it calls cu_engine_request_done with what dispatch would have returned
 * (CU_OK: the response is finished and the connection may be reused; CU_ERROR: close it).
 * The engine then goes on with the connection: flushes, keep-alive, the next pipelined
 * request (which may dispatch again from inside this call). Not for a threaded engine;
 * call from the thread that steps the engine, never from inside dispatch itself. c may be
 * an HTTP/2 stream (workers/h2.h: the same contract, the stream ends instead). */
void cu_engine_request_done(cu_engine_t *e, cu_conn_t *c, int rc);
/* While the class owns c's request: the events (CU_EV_READ, CU_EV_WRITE, 0 = none) to
 * be told about through e->app_io. The connection's watcher is level-triggered and stays
 * as the engine left it (reading) until this is called. CU_OK, or CU_ERROR when the
 * request is not the class's any more or epoll failed. */
int cu_engine_app_watch(cu_engine_t *e, cu_conn_t *c, int events);

/* For protocol modules that own a connection (workers/h2.c): close c now; count one
 * served request (request counters, max_requests, max_worker_memory). Under the engine
 * lock. */
void cu_engine_close_conn(cu_engine_t *e, cu_conn_t *c);
/* Close c after what it has queued went out, reading and discarding what the peer still
 * sends for a moment, so that bytes the peer sent last (a PING after its GOAWAY) do not turn
 * our close into a reset. Releases an HTTP/2 session first. */
void cu_engine_linger_conn(cu_engine_t *e, cu_conn_t *c);
void cu_engine_count_request(cu_engine_t *e);

/* Begin a graceful stop: accept what the backlog holds, stop accepting, finish what is in
 * flight (HTTP/2 sessions get a GOAWAY); idle keep-alive connections stay until their next
 * request (answered with Connection: close) or until their keep-alive timer finds them
 * quiet. */
void cu_engine_stop(cu_engine_t *e);

#endif
