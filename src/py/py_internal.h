/* Private to src/py/: the process-wide Python state and the C types behind the WSGI
 * layer (wsgi.input, wsgi.file_wrapper, wsgi.errors, start_response). Includes Python.h,
 * so nothing outside src/py/ may include this file. */
#ifndef CU_PY_INTERNAL_H
#define CU_PY_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "py/py.h"

/* Blocking calls are bracketed with explicit PyEval_SaveThread()/PyEval_RestoreThread()
 * pairs rather than Py_BEGIN/END_ALLOW_THREADS, whose unbalanced braces clang-format
 * cannot lay out. */

/* Who calls whom, one way only: base.c (this state, tracebacks, embedded modules) <- the
 * types, environ.c, hooks.c, pylog.c, config_file.c, app.c, paste.c, reload.c <- wsgi.c
 * <- runtime.c (init, reconfigure, fork: it sets up all of them).
 *
 * Everything below lives in the process that runs it: set by cu_py_init in the master,
 * inherited by fork, completed per worker by cu_py_worker_init. All of it is touched only
 * with the GIL held. */
typedef struct cu__py_s {
    PyThreadState *main_ts; /* the initialising thread's state, saved after init */
    const cu_config_t *cfg;
    PyObject *module;           /* the builtin module `_cunicorn` (new ref) */
    PyObject *app;              /* the WSGI callable once loaded (new ref) */
    PyObject *format_exception; /* traceback.format_exception (new ref) */
    PyObject *exc_header;       /* cunicorn.InvalidResponseHeader (new ref) */
    PyObject *exc_header_name;  /* cunicorn.InvalidResponseHeaderName (new ref) */
} cu__py_t;

extern cu__py_t cu__py;

/* ---- runtime.c ---- */

/* Start the interpreter if it is not running yet (PyConfig, traceback), without the
 * process setup cu_py_init does (chdir, sys.path, raw_env): the config file is evaluated
 * in it before the settings are final. Returns CU_OK or CU_ERROR (logged), without the
 * GIL either way (cu__py.main_ts holds the main thread state). */
int cu__py_start(void);

/* ---- base.c ---- */

/* A fresh module object running the embedded source of `name` ("cunicorn._config":
 * src/py/lib/_config.py). New ref, or NULL with an exception set. GIL held. */
PyObject *cu__py_module(const char *name);

/* Log the pending Python exception: `msg` first, then its formatted traceback, as one
 * block at `level` (gunicorn's log.exception). Clears the exception. GIL held. */
void cu__py_log_exception(int level, const char *msg);

/* ---- types (each file registers its own type in the module) ---- */

extern PyTypeObject cu__input_type;       /* input.c: wsgi.input */
extern PyTypeObject cu__filewrapper_type; /* filewrapper.c: wsgi.file_wrapper */
extern PyTypeObject cu__errors_type;      /* errors.c: wsgi.errors */
extern PyTypeObject cu__start_resp_type;  /* start_response.c: start_response */

/* wsgi.input for one request. `c` is borrowed; cu__input_detach() must be called before
 * the connection moves on, after which reads raise ValueError. Returns a new ref or NULL
 * with an exception set. A detached object that nobody else references is recycled. */
PyObject *cu__input_new(cu_conn_t *c);
void cu__input_detach(PyObject *input);

/* The file_wrapper object's parts (borrowed), for the sendfile path. */
typedef struct cu__filewrapper_s {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} cu__filewrapper_t;

/* wsgi.errors: writes to the error log. Returns a new ref. */
PyObject *cu__errors_new(void);

/* The start_response callable for one request; `c` borrowed until cu__start_resp_detach.
 * Returns a new ref or NULL with an exception set. */
typedef struct cu__start_resp_s {
    PyObject_HEAD vectorcallfunc vectorcall;
    cu_conn_t *c; /* NULL once the request is over */
    unsigned status_set : 1;
    unsigned io_failed : 1; /* a write() hit a dead client */
} cu__start_resp_t;

/* environ["gunicorn.socket"] for the request on c (new ref; socket.c): touching it takes
 * the connection over (c->taken_over). cu__sock_detach() when the request ends. */
extern PyTypeObject cu__sock_type;
PyObject *cu__sock_new(cu_conn_t *c);
void cu__sock_detach(PyObject *sock);

PyObject *cu__start_resp_new(cu_conn_t *c);
/* environ["wsgi.early_hints"] for the request on c (new ref, start_response.c); a no-op
 * after cu__early_hints_detach(). */
extern PyTypeObject cu__hints_type;
PyObject *cu__early_hints_new(cu_conn_t *c);
void cu__early_hints_detach(PyObject *hints);
/* headers (a sequence of (name, value), str or latin-1 bytes, validated as start_response
 * validates) appended to *h, values stripped of surrounding SP/HTAB. 0, or -1 with an
 * exception (start_response.c; also ASGI's trailers and informational responses). */
int cu__py_fields_from(PyObject *headers, cu_resp_head_t *h);
/* gunicorn.http2.send_trailers for the request of sr (new ref). */
PyObject *cu__start_resp_send_trailers(PyObject *sr);
void cu__start_resp_detach(PyObject *sr);

/* Module-level objects shared by the types; created in runtime.c's module init. */
int cu__types_ready(PyObject *module);

/* ---- environ.c ---- */

/* Build the per-worker template and key tables (GIL held). */
int cu__environ_init(const cu_config_t *cfg, int multithread);

/* The request's scheme as wsgi.url_scheme gets it: the transport's, changed by
 * secure_scheme_headers only when the peer is in forwarded_allow_ips. 1 https, 0 http, -1
 * when two of those headers contradict each other (answer 400). For the ASGI scope. GIL
 * held; after cu_py_worker_init. */
int cu__request_https(const cu_conn_t *c);

/* The environ for the request on `c`: a copy of the template plus the per-request keys,
 * with `input` as wsgi.input. Returns a new ref, or NULL when the request must be refused
 * without calling the app: then *status / msg say what to answer (400 contradictory scheme
 * headers, 500 SCRIPT_NAME mismatch) and no exception is pending; or NULL with a Python
 * exception set (out of memory) and *status = 0. */
PyObject *cu__environ_build(cu_conn_t *c, PyObject *input, int *status, char *msg, size_t msglen);

/* ---- paste.c ---- */

/* --paste: load cfg->paste with PasteDeploy into cu__py.app. GIL held.
 * Returns like cu_py_load_app (CU_PY_APP_IMPORT_ERROR when PasteDeploy is missing or the
 * file does not exist, with a message on stderr). */
int cu__paste_load(const cu_config_t *cfg);

/* hooks.c: rebuild the cfg object hooks receive from cu__py.cfg (HUP). GIL held. */
void cu__hooks_reconfigure(void);

#endif
