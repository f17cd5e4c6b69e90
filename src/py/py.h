/* The embedded Python runtime, seen from C code that does not include Python.h.
 * Only src/py/ includes Python.h; everything else calls these.
 *
 * GIL rules: after cu_py_init() returns, the calling thread does NOT hold the GIL.
 * Every function here takes and releases the GIL itself, except where noted. */
#ifndef CU_PY_H
#define CU_PY_H

#include "config/config.h"
#include "http/conn.h"

/* Initialise the interpreter once in the master: PyConfig with install_signal_handlers=0,
 * parse_argv=0; apply chdir, pythonpath (prepended to sys.path, with cwd first like
 * gunicorn), raw_env (os.environ). Returns CU_OK or CU_ERROR (message logged). */
int cu_py_init(const cu_config_t *cfg);

/* Plug the gunicorn.conf.py loader (py/config_file.c) into config/, which knows no Python:
 * call once in main() before the command line is parsed. */
void cu_py_config_file_install(void);

/* HUP in the master: make `cfg` the settings Python sees (hooks' server.cfg) and apply its
 * chdir, pythonpath and raw_env again, as gunicorn's reload does, so the next workers start
 * with them. `cfg` must outlive its use (the master keeps it). CU_OK or CU_ERROR (logged). */
int cu_py_reconfigure(const cu_config_t *cfg);

/* Import and resolve cfg->app_uri: "module:name", "module" (-> application),
 * "module:factory()" / "module:factory(1, 'a', k=2)" with literal arguments, dotted
 * attributes ("mod:obj.attr", an extension over gunicorn). Idempotent: a second call
 * after success does nothing (so --preload then worker start works).
 * Returns CU_OK; CU_PY_APP_IMPORT_ERROR when the URI does not name a usable object
 * (gunicorn's AppImportError: "Failed to find attribute 'x' in 'mod'.", "Application
 * object must be callable.", bad factory arguments; the message goes to stderr without a
 * traceback, the worker exits with CU_APP_LOAD_ERROR); or CU_ERROR when importing the
 * module or calling the factory raised (logged as "Exception in worker process" with the
 * traceback; the worker exits with CU_WORKER_BOOT_ERROR). */
#define CU_PY_APP_IMPORT_ERROR (-10)
int cu_py_load_app(const cu_config_t *cfg);

/* fork() through the PyOS_*Fork protocol. Returns like fork(). In the child the GIL is
 * released again before returning. */
pid_t cu_py_fork(void);

/* Per-worker setup after fork, before serving: builds the environ template for this
 * worker (constant keys, wsgi.* values, multithread/multiprocess flags). */
int cu_py_worker_init(const cu_config_t *cfg, int multithread);

/* Run the WSGI app for the request whose head is complete on `c` (c->req, c->peer,
 * c->listener). Builds the environ, calls the app, writes the response through
 * cu_resp_* and finishes it, closes the iterable, writes the access log line.
 * Must be called WITHOUT the GIL; takes it for the duration, releasing it around every
 * blocking socket call. Returns CU_OK when the connection may be reused, CU_ERROR when it
 * must be closed. Never raises: app errors are logged and answered with 500. */
int cu_py_handle_request(cu_conn_t *c);

/* gthread: attach the calling (non-Python) thread to the interpreter for its whole life,
 * so its thread state, and with it threading.local, persists across requests. Returns
 * without the GIL. detach undoes it at thread exit. Implemented in py/thread.c. */
void cu_py_thread_attach(void);
void cu_py_thread_detach(void);

/* ---- the gevent worker class (py/gevent.c, src/py/lib/_gevent.py) ---- */

/* Import gevent (>= 24.10.1, else the error gunicorn gives, with how to install it),
 * monkey-patch the process and reinit the hub after fork: gunicorn's GeventWorker
 * init_process, so before the app is imported unless --preload imported it in the master.
 * Without the GIL. CU_OK or CU_ERROR (logged). */
int cu_py_gevent_prepare(void);

/* The engine as the gevent driver sees it: step runs what is ready (cu_engine_step, 1 once
 * stopped), deadline the next timer (cu_engine_next_deadline, -1 none). */
typedef struct cu_py_gevent_engine_s {
    int (*step)(void *arg);
    int64_t (*deadline)(void *arg);
    int fd; /* readable when step has work */
    void *arg;
} cu_py_gevent_engine_t;

/* Serve with the gevent hub driving the engine until step says it stopped. Without the GIL;
 * step is called without it (the engine's contract: dispatch takes it). */
void cu_py_gevent_serve(const cu_py_gevent_engine_t *eng);

/* The worker class's `block`: wait for c's fd with gevent's wait primitives, yielding to
 * the hub (never blocks the process). CU_OK, CU_AGAIN after the io timeout, CU_ERROR.
 * Called without the GIL, from an app's greenlet. */
int cu_py_gevent_block(cu_conn_t *c, int events);

/* The worker class's dispatch: cu_py_handle_request, with the request noted as its
 * greenlet's (for cu_py_gevent_note_abort). Without the GIL. */
int cu_py_gevent_dispatch(cu_conn_t *c);

/* From the SIGABRT handler (WORKER TIMEOUT): log which request's greenlet holds the hub,
 * if one does. */
void cu_py_gevent_note_abort(void);

/* ---- the ASGI worker (asgi.c; its event loop and lifespan in src/py/lib/_asgi.py) ---- */

typedef struct cu_engine_s cu_engine_t;

/* Serve with the ASGI worker class until the engine stops: takes the GIL for good, runs
 * the asyncio (or uvloop, cfg->asgi_loop) loop on this thread with the engine stepped
 * from it, and the lifespan protocol (cfg->asgi_lifespan). Returns the worker's exit
 * code: 0, or CU_WORKER_BOOT_ERROR when lifespan startup failed or the loop could not
 * start (logged), so the master stops instead of respawning. */
int cu_py_asgi_serve(cu_engine_t *e, const cu_config_t *cfg);
/* The engine's dispatch for the ASGI class (called inside cu_engine_step, GIL held):
 * starts the app's task and returns CU_AGAIN (completed later through
 * cu_engine_request_done), or answers 500 and returns CU_ERROR. */
int cu_py_asgi_dispatch(cu_engine_t *e, cu_conn_t *c);
/* The engine's app_io for the ASGI class: the client's bytes, room to write, hang-up. */
void cu_py_asgi_app_io(cu_engine_t *e, cu_conn_t *c, int events);

/* Called by the worker on exit paths that must flush Python state (stdout/stderr). */
void cu_py_worker_exit(void);

/* Write every Python thread's stack to fd (faulthandler's format: "Thread 0x... (most
 * recent call first):" then "  File ..., line N in f"). Without the GIL, from any thread,
 * including one that never ran Python; meant for a process about to exit. */
void cu_py_dump_stacks(int fd);

#endif
