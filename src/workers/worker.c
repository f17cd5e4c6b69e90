/* Worker process entry: signal handling, app loading, and the worker class table. */
#include "workers/worker.h"
#include "core/clock.h"
#include "core/log.h"
#include "log/access.h"
#include "proc/heartbeat.h"
#include "py/hooks.h"
#include "py/py.h"
#include "workers/blocking.h"
#include "workers/engine.h"
#include "workers/gthread.h"
#include "workers/watchdog.h"

#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CU_LSAN_CHECK() __lsan_do_recoverable_leak_check()
#else
#define CU_LSAN_CHECK() ((void)0)
#endif

static volatile sig_atomic_t stop_graceful, stop_now, reopen_logs, aborting;
/* Threads inside the app right now. gthread threads change it concurrently, so it is an
 * atomic (lock-free, hence also safe to read in the signal handler). */
static atomic_int in_app;
static cu_loop_t *sig_loop;
static volatile sig_atomic_t gevent_class; /* the gevent worker class runs here */

static void on_signal(int sig)
{
    switch (sig) {
    case SIGTERM: stop_graceful = 1; break;
    case SIGQUIT:
    case SIGINT:
        /* Quick stop. A thread inside the app cannot return to its loop soon: leave from
         * the app (after the worker_int hook, if set), like gunicorn's SystemExit. */
        if (atomic_load(&in_app) > 0) {
            if (cu_py_hook_signal_in_app(sig))
                return;
            _exit(0);
        }
        stop_now = 1;
        break;
    case SIGUSR1: reopen_logs = 1; break;
    case SIGABRT:
        /* Sent by the master when the heartbeat went stale (WORKER TIMEOUT). The
         * worker_abort hook runs first when set; the master SIGKILLs if it never does. */
        if (gevent_class)
            cu_py_gevent_note_abort(); /* which request's greenlet blocked the hub */
        if (atomic_load(&in_app) > 0) {
            /* The reporting thread answers and logs the stuck requests, then leaves. */
            if (cu_watchdog_fire())
                return;
            if (cu_py_hook_signal_in_app(sig))
                return;
            _exit(1);
        }
        aborting = 1;
        break;
    default: break;
    }
    if (sig_loop)
        cu_loop_wakeup(sig_loop);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    int sigs[] = {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGABRT};
    for (size_t i = 0; i < CU_NELEM(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sigaction(SIGTTIN, &sa, NULL);
    sigaction(SIGTTOU, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
}

static void tick(cu_engine_t *e)
{
    if (aborting) {
        cu_py_hook_worker_abort();
        _exit(1);
    }
    if (stop_now) {
        if (!e->quit)
            cu_py_hook_worker_int();
        e->quit = 1;
        return;
    }
    if (stop_graceful)
        cu_engine_stop(e);
    if (reopen_logs) {
        reopen_logs = 0;
        cu_log_reopen();
        cu_access_log_reopen();
    }
}

static int app_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    int slot = cu_watchdog_enter(c);
    atomic_fetch_add(&in_app, 1);
    int rc = cu_py_handle_request(c);
    atomic_fetch_sub(&in_app, 1);
    cu_watchdog_leave(slot);
    return rc;
}

/* After the timeout report (watchdog thread): the worker_abort hook runs in the app's
 * thread when armed (then SystemExit, as gunicorn); otherwise the worker leaves now. */
static void after_timeout_report(void)
{
    if (cu_py_hook_signal_in_app(SIGABRT))
        return;
    _exit(1);
}

/* ---- reporting to the master (heartbeat slot in shared memory) ---- */

static void report_stamp(void *arg)
{
    cu_heartbeat_stamp(arg, cu_mono_ms());
}

static void report_served(void *arg, uint64_t n)
{
    ((cu_heartbeat_slot_t *)arg)->requests = n;
}

static void report_retiring(void *arg)
{
    ((cu_heartbeat_slot_t *)arg)->retiring = 1;
}

/* ---- worker classes ---- */

static int sync_setup(cu_engine_t *e, const cu_config_t *cfg)
{
    return CU_OK;
}

static void sync_teardown(cu_engine_t *e, int join) {}

static int gthread_setup(cu_engine_t *e, const cu_config_t *cfg)
{
    return cu_gthread_setup(e, cfg->threads);
}

/* gevent: the hub drives the engine (py/gevent.c); each request runs in a greenlet and a
 * slow client is waited for with gevent's primitives. The engine's watchers are one-shot
 * so that a connection whose app is suspended in a greenlet gets no events meanwhile. */
static int gevent_setup(cu_engine_t *e, const cu_config_t *cfg)
{
    e->oneshot = CU_EV_ONESHOT;
    /* An app that yields suspends its step mid-batch: take one event per step so that no
     * other connection's event waits behind it (the driver steps again while ready). */
    cu_loop_set_batch(e->loop, 1);
    return CU_OK;
}

static int gevent_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    atomic_fetch_add(&in_app, 1);
    int rc = cu_py_gevent_dispatch(c);
    atomic_fetch_sub(&in_app, 1);
    return rc;
}

static int gevent_step(void *arg)
{
    return cu_engine_step(arg) == CU_DONE;
}

static int64_t gevent_deadline(void *arg)
{
    return cu_engine_next_deadline(arg);
}

static void gevent_run(cu_engine_t *e)
{
    cu_py_gevent_engine_t eng = {gevent_step, gevent_deadline, cu_engine_fd(e), e};
    cu_py_gevent_serve(&eng);
    e->quit = 1;
}

/* asgi: the worker's thread runs an asyncio loop (py/asgi.c, src/py/lib/_asgi.py) that
 * steps the engine; requests complete later (dispatch returns CU_AGAIN). */
static int asgi_exit_code;

static int asgi_setup(cu_engine_t *e, const cu_config_t *cfg)
{
    e->app_io = cu_py_asgi_app_io;
    return CU_OK;
}

static void asgi_run(cu_engine_t *e)
{
    asgi_exit_code = cu_py_asgi_serve(e, e->cfg);
    if (asgi_exit_code != CU_WORKER_EXIT_OK)
        e->quit = 1;
}

/* The worker classes, by the name the configuration resolved (config.c decides, as
 * gunicorn does, that sync with --threads > 1 is gthread). A new class (asyncio, gevent)
 * is one more row: its run may drive the engine with cu_engine_step from its own loop. */
static const cu_worker_class_t worker_classes[] = {
    {"sync", 0, sync_setup, cu_engine_run, sync_teardown, app_dispatch, cu_blocking_wait},
    {"gthread", 1, gthread_setup, cu_engine_run, cu_gthread_teardown, app_dispatch,
     cu_blocking_wait},
    {"gevent", 1, gevent_setup, gevent_run, sync_teardown, gevent_dispatch, cu_py_gevent_block},
    /* block: only the fallback for a chunked body split inside its framing and for one
     * send() larger than the connection's 2 MiB backlog; everything else waits in the loop. */
    {"asgi", 0, asgi_setup, asgi_run, sync_teardown, cu_py_asgi_dispatch, cu_blocking_wait},
};

const cu_worker_class_t *cu_worker_class_find(const char *name)
{
    for (size_t i = 0; i < CU_NELEM(worker_classes); i++)
        if (strcmp(worker_classes[i].name, name) == 0)
            return &worker_classes[i];
    return NULL;
}

int cu_worker_main(cu_worker_ctx_t *ctx)
{
    const cu_config_t *cfg = ctx->cfg;
    install_signals();
    char err[256] = "";
    int arc = cu_access_log_open(cfg->accesslog, cfg->access_log_format, err, sizeof(err));
    if (arc != CU_OK) {
        cu_log_error("Error opening access log %s: %s", cfg->accesslog ? cfg->accesslog : "-",
                     arc == CU_ERROR ? err : strerror(-arc));
        return CU_WORKER_BOOT_ERROR;
    }
    /* gunicorn's GeventWorker patches in init_process, before load_wsgi (after the
     * master's import with --preload) */
    gevent_class = cfg->worker_class == CU_WORKER_GEVENT;
    if (gevent_class && cu_py_gevent_prepare() != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    int lrc = cu_py_load_app(cfg);
    if (lrc != CU_OK) /* gunicorn: AppImportError -> 4 "App failed to load", else 3 */
        return lrc == CU_PY_APP_IMPORT_ERROR ? CU_APP_LOAD_ERROR : CU_WORKER_BOOT_ERROR;
    const cu_worker_class_t *wc =
        cu_worker_class_find(cfg->worker_class == CU_WORKER_GTHREAD  ? "gthread"
                             : cfg->worker_class == CU_WORKER_GEVENT ? "gevent"
                             : cfg->worker_class == CU_WORKER_ASGI   ? "asgi"
                                                                     : "sync");
    cu_assert(wc != NULL);
    if (cfg->worker_class_alias && ctx->age <= 1)
        cu_log_info("Worker class %s runs as cunicorn's asgi worker", cfg->worker_class_str);
    if (cu_py_worker_init(cfg, wc->threaded) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    cu_py_hook_arm_signals();
    (void)cu_watchdog_start(wc->threaded ? cfg->threads : 1, cu_py_dump_stacks,
                            after_timeout_report);

    cu_engine_t e;
    if (cu_engine_init(&e, ctx, wc->dispatch) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    e.tick = tick; /* also acts on a signal that came during boot, at the first iteration */
    e.settings.block = wc->block;
    if (ctx->slot) {
        e.report.stamp = report_stamp;
        e.report.served = report_served;
        e.report.retiring = report_retiring;
        e.report.arg = ctx->slot;
    }
    sig_loop = e.loop;
    if (wc->setup(&e, cfg) != CU_OK) {
        sig_loop = NULL;
        cu_engine_destroy(&e);
        return CU_WORKER_BOOT_ERROR;
    }
    wc->run(&e);
    sig_loop = NULL;
    if (asgi_exit_code != CU_WORKER_EXIT_OK) {
        wc->teardown(&e, 0);
        return asgi_exit_code; /* lifespan startup failed: the master stops */
    }
    if (stop_now) {
        /* Quick stop: app threads may still hold connections; the process just leaves. */
        wc->teardown(&e, 0);
        return CU_WORKER_EXIT_OK;
    }
    wc->teardown(&e, 1);
    cu_engine_destroy(&e);
    cu_py_worker_exit();
    /* Workers leave with _exit(), which skips LeakSanitizer's exit check: run it here. */
    CU_LSAN_CHECK();
    return CU_WORKER_EXIT_OK;
}
