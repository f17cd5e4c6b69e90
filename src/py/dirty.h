/* The Python side of the dirty arbiter and its workers, for C code that does not include
 * Python.h: loading DirtyApp classes, running their actions, the dirty hooks. Every
 * function takes the GIL itself; none may be called from a signal handler. */
#ifndef CU_PY_DIRTY_H
#define CU_PY_DIRTY_H

#include "core/cu_core.h"

#include <sys/types.h>

/* In the master: GUNICORN_DIRTY_SOCKET=path in os.environ (and so in the C environment),
 * for the HTTP workers forked next. CU_OK or CU_ERROR (logged). */
int cu_py_dirty_export_socket(const char *path);

/* ---- in the dirty arbiter ---- */

/* The `workers` class attribute of the app class at import_path ("module:Class"),
 * importing its module: *count = N, or -1 when it is None (every worker loads it).
 * CU_ERROR when the class cannot be found (a warning is logged; the caller treats it as
 * None and the worker's load reports the real error). */
int cu_py_dirty_app_workers(const char *import_path, int *count);

/* gunicorn's on_dirty_starting(arbiter), dirty_post_fork(arbiter, worker) (in the arbiter,
 * after fork) and dirty_worker_exit(arbiter, worker) (after the worker was reaped). The
 * arbiter object carries pid, socket_path, num_workers, workers {pid: worker}, cfg, log;
 * a worker object pid, ppid, age, app_paths, cfg, log. Exceptions are logged. */
void cu_py_dirty_hook_starting(pid_t pid, const char *socket_path, int num_workers);
void cu_py_dirty_hook_post_fork(int age, pid_t pid, const char *const *apps, size_t napps,
                                int num_workers);
void cu_py_dirty_hook_worker_exit(int age, pid_t pid, int num_workers);

/* ---- in a dirty worker ---- */

/* Import and instantiate each app class (once), call every init(), then the
 * dirty_worker_init(worker) hook. CU_ERROR when any of it raised (logged with the
 * traceback): the worker must exit with CU_WORKER_BOOT_ERROR. */
int cu_py_dirty_worker_load(int age, pid_t ppid, const char *const *apps, size_t n);

/* Write one complete frame (header + payload); returns CU_OK or CU_ERROR (peer gone). Called
 * without the GIL. */
typedef int (*cu_dirty_emit_cb)(void *arg, const void *frame, size_t n);

/* Run the REQUEST whose TLV payload is p[0..n) and emit its answer frames for request id:
 * RESPONSE; or CHUNK... END for a generator / async generator; or ERROR (DirtyAppError with
 * the traceback, DirtyAppNotFoundError, DirtyProtocolError for a bad payload). Called from
 * a thread attached with cu_py_thread_attach, without the GIL. */
void cu_py_dirty_call(const uint8_t *p, size_t n, uint64_t id, cu_dirty_emit_cb emit, void *arg);

/* Call every app's close() (errors logged). */
void cu_py_dirty_worker_close(void);

#endif
