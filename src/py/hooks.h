/* gunicorn's server hooks (on_starting ... on_exit) as a C API for the master and the
 * workers. The callables come from the config file (py/config_file.c); each call below is
 * a NULL check and returns at once when its hook is not set, so callers need no guard.
 *
 * Rules for every function here: called WITHOUT the GIL (they take it), never from a
 * signal handler, and they never raise: a hook that raises is logged ("Exception in
 * <name> hook" with the traceback) and, where the return type is int, reported as
 * CU_ERROR so the caller can stop where gunicorn stops (see each function).
 *
 * The Python objects the hooks receive mirror what gunicorn passes: an arbiter (`server`:
 * pid, cfg, log, num_workers, WORKERS, proc_name, master_name, timeout, worker_age) and a
 * worker (pid, ppid, age, cfg, log, alive, booted, nr, max_requests, timeout). The
 * structs below carry the C side's view of them; the hooks module keeps one Python object
 * per arbiter and per worker age, refreshed from these structs at each call. */
#ifndef CU_PY_HOOKS_H
#define CU_PY_HOOKS_H

#include "config/config.h"

#include <sys/types.h>

/* The master as hooks see it (gunicorn's Arbiter). */
typedef struct cu_hook_arbiter_s {
    pid_t pid;
    int num_workers;       /* the target number of workers */
    const char *proc_name; /* NULL: cfg.proc_name */
} cu_hook_arbiter_t;

/* One worker as hooks see it (gunicorn's Worker). */
typedef struct cu_hook_worker_s {
    int age;    /* spawn counter, unique per worker */
    pid_t pid;  /* 0 before the fork (pre_fork) */
    pid_t ppid; /* the master */
    int status; /* child_exit: the waitpid() status; else 0 */
} cu_hook_worker_t;

/* Is any server hook set? (A cheap test for callers that must build the structs.) */
int cu_py_hooks_any(void);

/* ---- master process ---- */

/* gunicorn: Arbiter.start, after "Starting gunicorn" and the pidfile, before signals and
 * listeners. CU_ERROR: the hook raised; gunicorn exits (1) then too. */
int cu_py_hook_on_starting(const cu_hook_arbiter_t *a);

/* gunicorn: end of Arbiter.start, listeners open and "Using worker" logged, before the
 * first worker is spawned. CU_ERROR: the hook raised; gunicorn exits (1) then too. */
int cu_py_hook_when_ready(const cu_hook_arbiter_t *a);

/* gunicorn: Arbiter.reload, after the config was re-read and listeners replaced, before
 * the new workers are spawned. Errors are logged only. */
void cu_py_hook_on_reload(const cu_hook_arbiter_t *a);

/* gunicorn: Arbiter.spawn_worker, before fork(); w->pid is 0. Errors are logged and the
 * worker is spawned anyway (gunicorn would stop the master). */
void cu_py_hook_pre_fork(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w);

/* In the master right after a successful fork (w->pid set): registers the worker in
 * server.WORKERS. Never calls a hook. */
void cu_py_hook_spawned(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w);

/* gunicorn: Arbiter.reap_workers, after a worker was reaped and its exit logged (w->status
 * is the waitpid status). Removes it from server.WORKERS. Errors are logged only. */
void cu_py_hook_child_exit(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w);

/* gunicorn: the num_workers setter: at startup (old = -1, Python None), TTIN, TTOU.
 * Errors are logged only. */
void cu_py_hook_nworkers_changed(const cu_hook_arbiter_t *a, int new_value, int old_value);

/* gunicorn: in the forked child of USR2 just before exec. Errors are logged only. */
void cu_py_hook_pre_exec(const cu_hook_arbiter_t *a);

/* gunicorn: Arbiter.halt, after "Shutting down" and the pidfile unlink. Errors are logged
 * only. */
void cu_py_hook_on_exit(const cu_hook_arbiter_t *a);

/* ---- worker process ---- */

/* gunicorn: in the child right after fork, "Booting worker" logged, before the worker
 * initialises. Always call it (hook or not): it records who this worker is for the later
 * worker hooks. CU_ERROR: the hook raised; the worker must exit with
 * CU_WORKER_BOOT_ERROR (3), as gunicorn's does. */
int cu_py_hook_post_fork(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w);

/* post_worker_init is called by cu_py_worker_init() itself (after the app was loaded,
 * before serving); it fails the worker boot when the hook raises, as in gunicorn. */

/* gunicorn: Worker.handle_quit (SIGINT/SIGQUIT) and Worker.handle_abort (SIGABRT, the
 * master's WORKER TIMEOUT), before the worker exits. Call from normal context, e.g. the
 * loop tick that saw the flag the signal handler set. */
void cu_py_hook_worker_int(void);
void cu_py_hook_worker_abort(void);

/* For the signal handler of a sync worker that is inside the application: when worker_int
 * (SIGINT/SIGQUIT) or worker_abort (SIGABRT) is set, arrange for the hook to run in the
 * app's thread at its next Python instruction, followed by _exit (0 for int, 1 for abort)
 * and return 1; return 0 when that hook is not set (the handler then does what it does
 * now). Async-signal-safe. Needs cu_py_hook_arm_signals() to have run in the worker. */
int cu_py_hook_signal_in_app(int sig);

/* In the worker after its signal handlers are installed: registers Python-level handlers
 * for SIGINT/SIGQUIT/SIGABRT (only for the hooks that are set) without replacing the C
 * handlers, so cu_py_hook_signal_in_app can use them. */
void cu_py_hook_arm_signals(void);

/* gunicorn: in the worker as it exits ("Worker exiting (pid: N)" logged first), whatever
 * the reason. Errors are logged as a warning ("Exception during worker exit"). */
void cu_py_hook_worker_exit(const cu_hook_arbiter_t *a);

/* ---- py/ internal (files that include Python.h) ---- */
#ifdef Py_PYTHON_H
#include "http/conn.h"

/* Store a validated hook (new ref taken) under its setting name; NULL clears. `arity` is
 * the callable's positional arity (post_request: 2, 3 or 4). Returns CU_OK, or CU_ERROR for
 * a name that is not a server hook. GIL held. */
int cu__hook_set(const char *name, PyObject *fn, int arity);

/* The worker-side request hooks, called by wsgi.c with the GIL held, only when
 * cu__hook_pre_request_fn or cu__hook_post_request_fn is set. cu__hook_request builds the
 * `req` object (new ref, NULL on failure: logged) and calls pre_request (without one, it
 * logs gunicorn's default "METHOD PATH" debug line); *raised = 1 when pre_request raised,
 * with the exception pending (wsgi.c answers 500 like an app error).
 * cu__hook_post_request calls post_request with 2, 3 or 4 arguments (env NULL: {}; after a
 * failed pre_request env is {} and resp None, as in gunicorn); it logs its own errors and
 * leaves any pending exception as it was. */
extern PyObject *cu__hook_pre_request_fn, *cu__hook_post_request_fn;
PyObject *cu__hook_request(cu_conn_t *c, int *raised);
void cu__hook_post_request(cu_conn_t *c, PyObject *req, PyObject *env, int pre_failed);

/* A module object `name` running `src` (new ref; NULL with an exception set). */
PyObject *cu__py_module_from_source(const char *name, const char *src);

/* The ssl_context hook (borrowed; NULL when not set) and, when it is set, the Config
 * object hooks receive (borrowed). GIL held. CU_OK, or CU_ERROR with the error logged. */
int cu__hook_ssl_context(PyObject **fn, PyObject **conf);

/* The post_worker_init call, for cu_py_worker_init (GIL held): CU_ERROR if it raised
 * (logged). */
int cu__hook_post_worker_init(void);
#endif

#endif
