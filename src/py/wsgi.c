/* One WSGI request: environ, the app call, the response body (fast path for a list of
 * bytes, sendfile for wsgi.file_wrapper, any iterable otherwise), close(), the access log,
 * and gunicorn's handling of app errors (500 before the head went out, close after). */
#include "py/py_internal.h"

#include "core/clock.h"
#include "py/hooks.h"
#include "core/log.h"
#include "log/access.h"
#include "log/statsd.h"
#include "py/pylog.h"
#include "py/reload.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* How writing the body ended. */
enum { BODY_OK = 0, BODY_PYERR = -1, BODY_IOERR = -2 };

#define BATCH 32 /* list items written per GIL release */

int cu__types_ready(PyObject *m)
{
    static const struct {
        PyTypeObject *t;
        const char *name;
    } types[] = {
        {&cu__input_type, "Input"},          {&cu__filewrapper_type, "FileWrapper"},
        {&cu__errors_type, "ErrorsWrapper"}, {&cu__sock_type, "ConnectionSocket"},
        {&cu__hints_type, "EarlyHints"},     {&cu__start_resp_type, "StartResponse"},
    };
    for (size_t i = 0; i < CU_NELEM(types); i++) {
        if (PyType_Ready(types[i].t) < 0)
            return CU_ERROR;
        if (PyModule_AddObjectRef(m, types[i].name, (PyObject *)types[i].t) < 0)
            return CU_ERROR;
    }
    return CU_OK;
}

int cu_py_worker_init(const cu_config_t *cfg, int multithread)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = cu__environ_init(cfg, multithread);
    if (rc != CU_OK)
        cu__py_log_exception(CU_LOG_ERROR, "Cannot build the WSGI environ template");
    /* gunicorn's Worker.init_process: the app is loaded, serving has not begun */
    if (rc == CU_OK) /* --reload watches what the app imported; --spew traces from here */
        rc = cu__reload_start(cfg) == CU_OK ? cu__spew_start(cfg) : CU_ERROR;
    if (rc == CU_OK)
        rc = cu__hook_post_worker_init();
    PyGILState_Release(g);
    if (rc == CU_OK)
        cu_py_hook_arm_signals();
    return rc;
}

/* ---- hook points (gunicorn's pre_request / post_request) ---- */

/* Returns the hooks' req object (new ref) when a request hook is set, else NULL after
 * gunicorn's default pre_request (a debug line). *raised: pre_request raised (pending). */
static PyObject *pre_request(cu_conn_t *c, int *raised)
{
    *raised = 0;
    if (cu__hook_pre_request_fn != NULL || cu__hook_post_request_fn != NULL)
        return cu__hook_request(c, raised);
    cu_log_debug("%.*s %.*s", (int)c->request.method.len, c->request.method.p,
                 (int)c->request.path.len, c->request.path.p);
    return NULL;
}

static void post_request(cu_conn_t *c, PyObject *req, PyObject *env, int pre_failed)
{
    if (cu__hook_post_request_fn != NULL)
        cu__hook_post_request(c, req, env, pre_failed);
}

/* ---- body ---- */

static int need_status(const cu__start_resp_t *sr)
{
    if (sr->status_set)
        return 0;
    PyErr_SetString(PyExc_AssertionError, "the application did not call start_response()");
    return -1;
}

static int not_bytes(PyObject *item)
{
    PyErr_Format(PyExc_TypeError, "%R is not a byte", item);
    return BODY_PYERR;
}

/* A list or tuple of bytes: written in batches with the GIL released once per batch, the
 * last one finishing the response in the same release. */
static int write_seq(cu_conn_t *c, cu__start_resp_t *sr, PyObject *seq)
{
    Py_ssize_t n = Py_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!PyBytes_Check(items[i]))
            return not_bytes(items[i]);
    if (need_status(sr) < 0)
        return BODY_PYERR;

    /* The whole body is in hand: let the writer send it with the head, with a length. */
    cu_resp_hold(c);
    Py_ssize_t i = 0;
    do {
        /* Own the items while the GIL is away: another thread could shrink a list. */
        PyObject *hold[BATCH];
        int k = 0;
        n = Py_SIZE(seq);
        items = PySequence_Fast_ITEMS(seq);
        for (; i < n && k < BATCH; i++)
            if (PyBytes_Check(items[i]) && PyBytes_GET_SIZE(items[i]) > 0)
                hold[k++] = Py_NewRef(items[i]);
        int last = i >= n, rc = CU_OK;
        /* When the loop flushes for us (gthread) and it all fits the writer's buffers, these
         * calls only copy memory: keeping the GIL saves a thread switch per request. */
        size_t bytes = 0;
        for (int j = 0; j < k; j++)
            bytes += (size_t)PyBytes_GET_SIZE(hold[j]);
        int nonblocking = last && c->defer_flush && bytes <= CU_RESP_BUFFERED_MAX;
        PyThreadState *ts = nonblocking ? NULL : PyEval_SaveThread();
        for (int j = 0; j < k && rc == CU_OK; j++)
            rc = cu_resp_write(c, PyBytes_AS_STRING(hold[j]), (size_t)PyBytes_GET_SIZE(hold[j]));
        if (last && rc == CU_OK)
            rc = cu_resp_finish(c);
        if (ts)
            PyEval_RestoreThread(ts);
        for (int j = 0; j < k; j++)
            Py_DECREF(hold[j]);
        if (rc != CU_OK)
            return BODY_IOERR;
    } while (i < n);
    return BODY_OK;
}

static int finish(cu_conn_t *c)
{
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = cu_resp_finish(c);
    PyEval_RestoreThread(ts);
    return rc == CU_OK ? BODY_OK : BODY_IOERR;
}

/* Any iterable: each item written as it comes (the app may be streaming). */
static int write_iter(cu_conn_t *c, cu__start_resp_t *sr, PyObject *result)
{
    PyObject *it = PyObject_GetIter(result); /* new ref */
    if (it == NULL)
        return BODY_PYERR;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        if (!PyBytes_Check(item)) {
            not_bytes(item);
            Py_DECREF(item);
            Py_DECREF(it);
            return BODY_PYERR;
        }
        if (need_status(sr) < 0) {
            Py_DECREF(item);
            Py_DECREF(it);
            return BODY_PYERR;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        int rc = CU_OK;
        if (len > 0) {
            PyThreadState *ts = PyEval_SaveThread();
            rc = cu_resp_write(c, PyBytes_AS_STRING(item), (size_t)len);
            PyEval_RestoreThread(ts);
        }
        Py_DECREF(item);
        if (rc != CU_OK) {
            Py_DECREF(it);
            return BODY_IOERR;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred() || need_status(sr) < 0)
        return BODY_PYERR;
    return finish(c);
}

/* wsgi.file_wrapper around a real file: sendfile(2) from its current offset. Returns 1
 * when the file cannot be sent that way (no fileno, not a regular file): iterate instead. */
static int write_file(cu_conn_t *c, cu__start_resp_t *sr, cu__filewrapper_t *fw)
{
    if (fw->filelike == NULL || !cu_config_use_sendfile(cu__py.cfg))
        return 1;
    PyObject *fno = PyObject_CallMethod(fw->filelike, "fileno", NULL); /* new ref */
    if (fno == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError) && !PyErr_ExceptionMatches(PyExc_OSError))
            return BODY_PYERR;
        PyErr_Clear();
        return 1;
    }
    int fd = PyLong_Check(fno) ? (int)PyLong_AsLong(fno) : -1;
    Py_DECREF(fno);
    if (fd < 0) {
        PyErr_Clear();
        return 1;
    }
    struct stat st;
    off_t offset = lseek(fd, 0, SEEK_CUR);
    if (offset < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 1;
    if (need_status(sr) < 0)
        return BODY_PYERR;
    int64_t count = st.st_size > offset ? (int64_t)(st.st_size - offset) : 0;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = cu_resp_sendfile(c, fd, offset, count);
    if (rc == CU_OK)
        rc = cu_resp_finish(c);
    PyEval_RestoreThread(ts);
    (void)lseek(fd, offset, SEEK_SET);
    return rc == CU_OK ? BODY_OK : BODY_IOERR;
}

static int write_result(cu_conn_t *c, cu__start_resp_t *sr, PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return write_seq(c, sr, result);
    if (PyObject_TypeCheck(result, &cu__filewrapper_type)) {
        int rc = write_file(c, sr, (cu__filewrapper_t *)result);
        if (rc != 1)
            return rc;
    }
    return write_iter(c, sr, result);
}

/* PEP 3333: close() of the iterable, whatever happened. Returns -1 if it raised (the
 * exception is pending). */
static int close_result(PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
        return 0;
    PyObject *close = PyObject_GetAttrString(result, "close"); /* new ref */
    if (close == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---- errors ---- */

/* The app (or its iterable, or close()) raised; the exception is pending. Answer like
 * gunicorn's sync worker: 500 while nothing of the response is on the wire, otherwise log
 * and drop the connection. SystemExit and KeyboardInterrupt raised by the app are handled
 * the same way (gunicorn's sync worker answers them with a 500 too); the worker lives on.
 * Returns CU_ERROR: the connection closes either way. */
static int app_error(cu_conn_t *c, const cu__start_resp_t *sr)
{
    if (c->body.error || sr->io_failed) {
        /* A body read failed under the app (or write() hit a dead client): the client's
         * doing, not the app's. Bad chunked framing or a stalled upload still get their
         * status while nothing of the response is committed. */
        PyErr_Clear();
        int status = !c->body.error || c->resp.head_sent ? 0
                     : c->body.timed_out                 ? 408
                     : c->body.too_large                 ? 431
                     : c->body.malformed                 ? 400
                                                         : 0;
        if (status == 0) {
            cu_log_debug("Ignored premature client disconnection.");
            cu_conn_abort(c);
            return CU_ERROR;
        }
        if (status != 408)
            cu_log_warn("Invalid request from ip=%s: %s", c->request.peer->host,
                        status == 431 ? "Request Header Fields Too Large"
                                      : "Invalid chunked request body");
        PyThreadState *ts = PyEval_SaveThread();
        (void)cu_resp_error(c, status, NULL);
        PyEval_RestoreThread(ts);
        return CU_ERROR;
    }
    if (c->resp.head_sent) {
        cu__py_log_exception(CU_LOG_ERROR, "Error handling request");
        cu_conn_abort(c);
        return CU_ERROR;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "Error handling request %.*s %.*s", (int)c->request.method.len,
             c->request.method.p, (int)(c->request.target.len < 400 ? c->request.target.len : 400),
             c->request.target.p);
    cu__py_log_exception(CU_LOG_ERROR, msg);
    PyThreadState *ts = PyEval_SaveThread();
    (void)cu_resp_error(c, 500, NULL);
    PyEval_RestoreThread(ts);
    return CU_ERROR;
}

/* ---- access log ---- */

static ssize_t env_lookup(void *ctx, const char *name, size_t nlen, char *buf, size_t cap)
{
    PyObject *key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)nlen, NULL); /* new ref */
    if (key == NULL) {
        PyErr_Clear();
        return -1;
    }
    PyObject *v = PyDict_GetItemWithError((PyObject *)ctx, key); /* borrowed */
    Py_DECREF(key);
    if (v == NULL) {
        PyErr_Clear();
        return -1;
    }
    PyObject *s = PyObject_Str(v); /* new ref */
    Py_ssize_t n = 0;
    const char *t = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (t == NULL) {
        PyErr_Clear();
        Py_XDECREF(s);
        return -1;
    }
    size_t len = (size_t)n < cap ? (size_t)n : cap;
    memcpy(buf, t, len);
    Py_DECREF(s);
    return (ssize_t)len;
}

static void access_log(cu_conn_t *c, PyObject *env, PyObject *hreq)
{
    int64_t end_us = cu_wall_us();
    cu_statsd_request(c->resp.h.status,
                      end_us - c->request.start_us); /* no-op unless statsd_host */
    PyObject *logger = cu__pylog_logger();
    if (logger != NULL) { /* logger_class: gunicorn calls its access() for every request */
        cu__hook_logger_access(logger, c, hreq, env, end_us - c->request.start_us);
        return;
    }
    if (!cu_access_log_enabled())
        return;
    cu_access_rec_t rec = {
        .req = &c->request,
        .resp = &c->resp.h,
        .body_sent = c->resp.body_sent,
        .start_us = c->request.start_us,
        .end_us = end_us,
        .env = env ? env_lookup : NULL,
        .env_ctx = env,
    };
    cu_access_log_write(&rec);
}

/* ---- the request ---- */

/* What gunicorn adds to the environ beyond PEP 3333: wsgi.early_hints (*hints) and
 * gunicorn.socket (*sock): new refs, for their detach calls. GIL held. */
static int add_server_extras(PyObject *env, cu_conn_t *c, PyObject **hints, PyObject **sock)
{
    static PyObject *k_hints, *k_sock; /* interned, kept for the process's life */
    if (k_hints == NULL && (k_hints = PyUnicode_InternFromString("wsgi.early_hints")) == NULL)
        return -1;
    if (k_sock == NULL && (k_sock = PyUnicode_InternFromString("gunicorn.socket")) == NULL)
        return -1;
    *hints = cu__early_hints_new(c);
    if (*hints == NULL || PyDict_SetItem(env, k_hints, *hints) < 0)
        return -1;
    /* A TLS connection already has its gunicorn.socket (py/tls.c: getpeercert() and the
     * other ssl.SSLSocket facts); it cannot be taken over. */
    int has = PyDict_Contains(env, k_sock);
    if (has != 0)
        return has < 0 ? -1 : 0;
    *sock = cu__sock_new(c);
    return *sock ? PyDict_SetItem(env, k_sock, *sock) : -1;
}

/* The app took the connection over through gunicorn.socket: whatever it returned or
 * raised, nothing more goes on the wire (the engine lets go of the connection). Its way
 * out under gunicorn is StopIteration, which gunicorn logs as "Closing connection.". The
 * access log shows 101 for an Upgrade the app answered itself. */
static int after_take_over(cu_conn_t *c, PyObject *result)
{
    if (result == NULL) {
        if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            PyErr_Clear();
            cu_log_debug("Closing connection.");
        } else {
            cu__py_log_exception(CU_LOG_ERROR, "Error handling request (connection taken over)");
        }
    }
    if (c->resp.h.status == 0) {
        for (size_t i = 0; i < c->request.nheaders; i++)
            if (cu_str_ieq_lit(c->request.headers[i].name, "upgrade")) {
                (void)cu_resp_head_status(&c->resp.h, 101, "101 Switching Protocols", 23);
                break;
            }
    }
    return CU_ERROR;
}

static int handle(cu_conn_t *c)
{
    int rc = CU_OK;
    PyObject *input = NULL, *sr = NULL, *env = NULL, *result = NULL, *gsock = NULL;
    PyObject *hints = NULL, *hreq;
    int pre_failed;

    hreq = pre_request(c, &pre_failed);
    if (pre_failed) {
        /* gunicorn: an exception in pre_request is an error handling the request */
        rc = app_error(c, &(cu__start_resp_t){.c = c});
        goto done;
    }
    input = cu__input_new(c);
    if (input != NULL)
        sr = cu__start_resp_new(c);
    if (sr == NULL) {
        rc = app_error(c, &(cu__start_resp_t){.c = c});
        goto done;
    }
    cu__start_resp_t *srp = (cu__start_resp_t *)sr;

    int status = 0;
    char msg[512];
    env = cu__environ_build(c, input, &status, msg, sizeof(msg));
    if (env == NULL) {
        if (status == 0) {
            rc = app_error(c, srp);
        } else {
            cu_log_warn("Invalid request from ip=%s: %s", c->request.peer->host, msg);
            PyThreadState *ts = PyEval_SaveThread();
            (void)cu_resp_error(c, status, msg);
            PyEval_RestoreThread(ts);
            rc = CU_ERROR;
        }
        goto done;
    }
    if (add_server_extras(env, c, &hints, &gsock) < 0) {
        rc = app_error(c, srp);
        goto done;
    }

    /* on HTTP/2: gunicorn.http2.send_trailers and the stream's priority */
    if (c->request.version_major == 2) {
        PyObject *st = cu__start_resp_send_trailers(sr);
        if (st == NULL || PyDict_SetItemString(env, "gunicorn.http2.send_trailers", st) < 0)
            PyErr_Clear();
        Py_XDECREF(st);
        /* the stream's priority, as gunicorn reports it */
        PyObject *w = PyLong_FromLong(c->request.priority_weight);
        PyObject *d = PyLong_FromLong(c->request.priority_depends_on);
        if (!w || !d || PyDict_SetItemString(env, "gunicorn.http2.priority_weight", w) < 0 ||
            PyDict_SetItemString(env, "gunicorn.http2.priority_depends_on", d) < 0)
            PyErr_Clear();
        Py_XDECREF(w);
        Py_XDECREF(d);
    }

    PyObject *args[2] = {env, sr};
    result = PyObject_Vectorcall(cu__py.app, args, 2, NULL);
    if (c->taken_over) {
        rc = after_take_over(c, result);
    } else if (result == NULL) {
        rc = app_error(c, srp);
    } else {
        int b = write_result(c, srp, result);
        if (b == BODY_PYERR) {
            rc = app_error(c, srp);
        } else if (b == BODY_IOERR) {
            cu_log_debug("Ignored premature client disconnection.");
            cu_conn_abort(c);
            rc = CU_ERROR;
        }
    }

done:
    access_log(c, env, hreq);
    if (result != NULL && close_result(result) < 0) {
        cu__py_log_exception(CU_LOG_ERROR, "Error handling request");
        /* The response may be complete already; make sure the connection is not reused. */
        c->closing = 1;
        c->keep_alive = 0;
    }
    if (input != NULL)
        cu__input_detach(input);
    if (sr != NULL)
        cu__start_resp_detach(sr);
    if (gsock != NULL)
        cu__sock_detach(gsock);
    if (hints != NULL)
        cu__early_hints_detach(hints);
    post_request(c, hreq, env, pre_failed);
    Py_CLEAR(hreq);
    Py_CLEAR(result);
    Py_CLEAR(env);
    Py_CLEAR(sr);
    Py_CLEAR(input);
    Py_CLEAR(gsock);
    Py_CLEAR(hints);
    return rc;
}

int cu_py_handle_request(cu_conn_t *c)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = handle(c);
    PyGILState_Release(g);
    return rc;
}
