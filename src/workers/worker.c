/* Worker process entry: signal handling, app loading, and the choice of worker class. */
#include "workers/worker.h"
#include "core/log.h"
#include "log/access.h"
#include "py/hooks.h"
#include "py/py.h"
#include "workers/engine.h"
#include "workers/gthread.h"

#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define CU_LSAN_CHECK() __lsan_do_recoverable_leak_check()
#else
#define CU_LSAN_CHECK() ((void)0)
#endif

static volatile sig_atomic_t stop_graceful, stop_now, reopen_logs, aborting;
static volatile sig_atomic_t in_app; /* threads inside the app right now */
static cu_loop_t *sig_loop;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGTERM: stop_graceful = 1; break;
    case SIGQUIT:
    case SIGINT:
        /* Quick stop. A thread inside the app cannot return to its loop soon: leave from
         * the app (after the worker_int hook, if set), like gunicorn's SystemExit. */
        if (in_app) {
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
        if (in_app) {
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
    in_app++;
    int rc = cu_py_handle_request(c);
    in_app--;
    return rc;
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
    int lrc = cu_py_load_app(cfg);
    if (lrc != CU_OK) /* gunicorn: AppImportError -> 4 "App failed to load", else 3 */
        return lrc == CU_PY_APP_IMPORT_ERROR ? CU_APP_LOAD_ERROR : CU_WORKER_BOOT_ERROR;
    int threaded = cfg->worker_class == CU_WORKER_GTHREAD;
    if (cu_py_worker_init(cfg, threaded) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    cu_py_hook_arm_signals();

    cu_engine_t e;
    if (cu_engine_init(&e, ctx, app_dispatch) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    e.tick = tick; /* also acts on a signal that came during boot, at the first iteration */
    sig_loop = e.loop;
    if (threaded && cu_gthread_setup(&e, cfg->threads) != CU_OK) {
        sig_loop = NULL;
        cu_engine_destroy(&e);
        return CU_WORKER_BOOT_ERROR;
    }
    cu_engine_run(&e);
    sig_loop = NULL;
    if (stop_now) {
        /* Quick stop: app threads may still hold connections; the process just leaves. */
        if (threaded)
            cu_gthread_teardown(&e, 0);
        return CU_WORKER_EXIT_OK;
    }
    if (threaded)
        cu_gthread_teardown(&e, 1);
    cu_engine_destroy(&e);
    cu_py_worker_exit();
    /* Workers leave with _exit(), which skips LeakSanitizer's exit check: run it here. */
    CU_LSAN_CHECK();
    return CU_WORKER_EXIT_OK;
}
