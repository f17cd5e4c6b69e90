/* The ASGI worker's Python side: the HTTP scope built from the neutral request, the
 * receive/send callables over the connection's buffers, requests run as tasks of the
 * worker's asyncio loop (src/py/lib/asgi.py owns the loop and the lifespan protocol),
 * and the engine stepped from that loop. Everything here runs on the worker's one thread,
 * GIL held, inside the loop: nothing blocks on the network except the documented fallback
 * of the blocking adapter (a chunked body split inside its framing, one write larger than
 * the connection's backlog). */
#include "py/py_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "http/proto.h"
#include "log/access.h"
#include "log/statsd.h"
#include "workers/engine.h"
#include "workers/worker.h"

#include "asgi_py.h" /* generated from src/py/lib/asgi.py: cu__asgi_py_src */

#define RECV_CHUNK  (64 * 1024)  /* most body bytes one http.request message carries */
#define READ_AHEAD  (256 * 1024) /* body bytes the loop reads before the app asks */
#define SEND_HIGH   (256 * 1024) /* unsent output that makes send() wait for the client */
#define BIN_RESERVE 16384

/* receive() and send() may wait at the same time (one task listens for the disconnect
 * while another streams): one waiter each. */
enum { WAIT_RECV, WAIT_SEND };

/* One request's receive/send state. c is NULL once the response is complete or the
 * connection was given back to the engine. */
typedef struct asgi_req_s {
    PyObject_HEAD cu_conn_t *c;
    PyObject *waiter[2]; /* the loop futures receive() and send() wait on (WAIT_*) */
    PyObject *task;      /* the app's task until it is done */
    unsigned started : 1;
    unsigned complete : 1;
    unsigned final_body : 1; /* the last http.request (more_body False) was delivered */
    unsigned eof : 1;        /* the client closed its side: http.disconnect */
    unsigned gone : 1;       /* writing failed: send() raises ClientDisconnected */
    unsigned read_paused : 1;
} asgi_req_t;

/* Per worker, GIL held. */
static struct {
    cu_engine_t *e;
    const cu_config_t *cfg;
    PyObject *app;
    PyObject *loop;
    PyObject *create_task; /* loop.create_task */
    PyObject *create_future;
    PyObject *call_later;
    PyObject *state; /* the lifespan state dict: copied into each scope */
    PyObject *root_path;
    PyObject *disconnected; /* cunicorn.ClientDisconnected (OSError) */
    PyObject *msg_disconnect;
    PyObject *k_type, *k_body, *k_more_body, *k_status, *k_headers;
    PyObject *s_http_request, *s_start, *s_resp_body, *s_add_done_callback, *s_cancel;
    PyObject *scope_asgi; /* {"version": "3.0", "spec_version": "2.4"} */
    PyObject *empty_bytes;
    cu_conn_t *dispatching; /* the connection cu_py_asgi_dispatch is running, until finished */
    int dispatch_rc;
} A;

static PyTypeObject ready_type;
static PyTypeObject req_type;

/* ---- an awaitable that is already complete ---- */

typedef struct ready_s {
    PyObject_HEAD PyObject *value; /* NULL: None */
} ready_t;

static PyObject *ready_new(PyObject *value /* borrowed, may be NULL */)
{
    ready_t *r = PyObject_New(ready_t, &ready_type);
    if (r == NULL)
        return NULL;
    r->value = Py_XNewRef(value);
    return (PyObject *)r;
}

static void ready_dealloc(PyObject *self)
{
    Py_CLEAR(((ready_t *)self)->value);
    PyObject_Free(self);
}

static PyObject *ready_await(PyObject *self)
{
    return Py_NewRef(self);
}

/* The awaiting coroutine resumes at once with the value (StopIteration carries it). */
static PyObject *ready_next(PyObject *self)
{
    ready_t *r = (ready_t *)self;
    if (r->value != NULL && r->value != Py_None) {
        PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, r->value); /* new ref */
        if (exc != NULL) {
            PyErr_SetObject(PyExc_StopIteration, exc);
            Py_DECREF(exc);
        }
    }
    return NULL;
}

static PyAsyncMethods ready_async = {.am_await = ready_await};

static PyTypeObject ready_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.asgi_ready",
    .tp_basicsize = sizeof(ready_t),
    .tp_dealloc = ready_dealloc,
    .tp_as_async = &ready_async,
    .tp_iter = ready_await,
    .tp_iternext = ready_next,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- helpers ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static void access_log(cu_conn_t *c)
{
    int64_t end_us = cu_wall_us();
    cu_statsd_request(c->resp.h.status, end_us - c->request.start_us);
    if (!cu_access_log_enabled())
        return;
    cu_access_rec_t rec = {
        .req = &c->request,
        .resp = &c->resp.h,
        .body_sent = c->resp.body_sent,
        .start_us = c->request.start_us,
        .end_us = end_us,
    };
    cu_access_log_write(&rec);
}

/* Resolve a pending waiter (if any) with a result or an exception type. */
static void wake(asgi_req_t *r, int which, PyObject *result /* borrowed */, PyObject *exc_type)
{
    PyObject *fut = r->waiter[which];
    if (fut == NULL)
        return;
    r->waiter[which] = NULL;
    PyObject *done = PyObject_CallMethod(fut, "done", NULL);
    int is_done = done == NULL || PyObject_IsTrue(done);
    Py_XDECREF(done);
    PyObject *rv = NULL;
    if (!is_done) {
        if (exc_type != NULL)
            rv = PyObject_CallMethod(fut, "set_exception", "O", exc_type);
        else
            rv = PyObject_CallMethod(fut, "set_result", "O", result ? result : Py_None);
    }
    if (rv == NULL && PyErr_Occurred())
        PyErr_Clear();
    Py_XDECREF(rv);
    Py_DECREF(fut);
}

/* The response is over (complete, or the connection is lost): hand the connection back to
 * the engine. After this, receive() answers http.disconnect. */
static void finish(asgi_req_t *r, int rc)
{
    cu_conn_t *c = r->c;
    if (c == NULL)
        return;
    if (r->started || c->resp.h.status)
        access_log(c);
    /* A body the app did not read is not drained here (that would block the loop): the
     * connection closes instead. */
    if (!c->body.done)
        c->closing = 1;
    r->c = NULL;
    c->app_data = NULL;
    wake(r, WAIT_RECV, A.msg_disconnect, NULL);
    wake(r, WAIT_SEND, NULL, r->gone ? A.disconnected : NULL);
    if (A.dispatching == c) {
        /* Finished inside dispatch: the engine takes the result as dispatch's own (no
         * recursion into the next pipelined request from here). */
        A.dispatch_rc = rc;
        A.dispatching = NULL;
        return;
    }
    cu_engine_request_done(A.e, c, rc);
}

static void set_watch(asgi_req_t *r)
{
    if (r->c == NULL)
        return;
    int ev = 0;
    if (!r->eof && !r->gone && !r->read_paused)
        ev |= CU_EV_READ;
    if (r->waiter[WAIT_SEND] != NULL)
        ev |= CU_EV_WRITE;
    (void)cu_engine_app_watch(A.e, r->c, ev);
}

/* The client left while the app runs: it hears http.disconnect at once and is cancelled
 * after asgi_disconnect_grace_period unless it finished. */
static void client_gone(asgi_req_t *r)
{
    if (r->eof && r->gone)
        return;
    r->eof = 1;
    if (r->task != NULL && !r->complete) {
        PyObject *cancel = PyObject_GetAttr(r->task, A.s_cancel);
        PyObject *h = cancel ? PyObject_CallFunction(A.call_later, "iO",
                                                     A.cfg->asgi_disconnect_grace_period, cancel)
                             : NULL;
        if (h == NULL)
            PyErr_Clear();
        Py_XDECREF(h);
        Py_XDECREF(cancel);
    }
}

/* ---- receive ---- */

/* Can cu_body_read return without waiting on the socket? */
static int body_ready(cu_conn_t *c)
{
    if (c->body.done || c->body.error || c->body.pend_len)
        return 1;
    size_t in_left = c->rpos < c->in.len ? c->in.len - c->rpos : 0;
    size_t bin_left = cu_buf_unread(&c->bin);
    if (c->body.remaining >= 0)
        return in_left + bin_left > 0;
    /* Chunked: only if the buffered bytes finish a chunk header (or the body). */
    cu_chunked_t scan = c->body.chunked;
    cu_str_t parts[2] = {{c->in.data + c->rpos, in_left}, {cu_buf_head(&c->bin), bin_left}};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < parts[i].len) {
            size_t used = 0;
            cu_str_t d = {NULL, 0};
            int rc = cu_chunked_decode(&scan, parts[i].p + off, parts[i].len - off, &used, &d);
            off += used;
            if (rc != CU_AGAIN)
                return 1;
            if (used == 0)
                break;
        }
    }
    return 0;
}

static PyObject *body_message(PyObject *body /* stolen */, int more)
{
    PyObject *m = PyDict_New();
    if (m == NULL || PyDict_SetItem(m, A.k_type, A.s_http_request) < 0 ||
        PyDict_SetItem(m, A.k_body, body) < 0 ||
        PyDict_SetItem(m, A.k_more_body, more ? Py_True : Py_False) < 0)
        Py_CLEAR(m);
    Py_DECREF(body);
    return m;
}

/* The next receive() message if it can be had without waiting: new ref; NULL with no
 * exception set: must wait; NULL with an exception: failed. */
static PyObject *try_receive(asgi_req_t *r)
{
    cu_conn_t *c = r->c;
    if (c == NULL || r->gone)
        return Py_NewRef(A.msg_disconnect);
    if (r->final_body)
        return r->eof ? Py_NewRef(A.msg_disconnect) : NULL;
    if (c->body.done) {
        r->final_body = 1;
        return body_message(Py_NewRef(A.empty_bytes), 0);
    }
    if (body_ready(c)) {
        PyObject *b = PyBytes_FromStringAndSize(NULL, RECV_CHUNK);
        if (b == NULL)
            return NULL;
        ssize_t n = cu_body_read(c, PyBytes_AS_STRING(b), RECV_CHUNK);
        if (n < 0) {
            Py_DECREF(b);
            client_gone(r);
            return Py_NewRef(A.msg_disconnect);
        }
        if (_PyBytes_Resize(&b, n) < 0)
            return NULL;
        if (c->body.done)
            r->final_body = 1;
        return body_message(b, !c->body.done);
    }
    if (r->eof) {
        c->body.error = 1;
        return Py_NewRef(A.msg_disconnect);
    }
    if (c->body.continue_pending) {
        /* The client waits for us before sending the body. */
        c->body.continue_pending = 0;
        if (c->proto->continue_100 && c->proto->continue_100(c) != CU_OK)
            return Py_NewRef(A.msg_disconnect);
        if (cu_conn_flush_nb(c) == CU_ERROR) {
            r->gone = 1;
            client_gone(r);
            return Py_NewRef(A.msg_disconnect);
        }
    }
    return NULL;
}

static PyObject *waiter_new(asgi_req_t *r, int kind)
{
    PyObject *fut = PyObject_CallNoArgs(A.create_future);
    if (fut == NULL)
        return NULL;
    Py_XSETREF(r->waiter[kind], Py_NewRef(fut));
    set_watch(r);
    return fut;
}

static PyObject *asgi_receive(PyObject *self, PyObject *unused)
{
    asgi_req_t *r = (asgi_req_t *)self;
    if (r->waiter[WAIT_RECV] != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "receive() called while another receive() waits");
        return NULL;
    }
    PyObject *m = try_receive(r);
    if (m != NULL) {
        PyObject *rv = ready_new(m);
        Py_DECREF(m);
        return rv;
    }
    if (PyErr_Occurred())
        return NULL;
    r->read_paused = 0; /* the app wants bytes: read again */
    return waiter_new(r, WAIT_RECV);
}

/* ---- send ---- */

static PyObject *raise_gone(asgi_req_t *r)
{
    PyErr_SetString(A.disconnected, "client disconnected");
    return NULL;
}

static int start_response(asgi_req_t *r, PyObject *msg)
{
    cu_conn_t *c = r->c;
    PyObject *st = PyDict_GetItemWithError(msg, A.k_status); /* borrowed */
    long status = st ? PyLong_AsLong(st) : -1;
    if (status < 100 || status > 999) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "http.response.start needs an int status");
        return -1;
    }
    char line[64];
    int n = snprintf(line, sizeof(line), "%ld %s", status, reason_phrase((int)status));
    if (cu_resp_begin(c, line, (size_t)n) != CU_OK) {
        PyErr_SetString(PyExc_RuntimeError, "invalid response status");
        return -1;
    }
    PyObject *hs = PyDict_GetItemWithError(msg, A.k_headers);
    if (hs != NULL && hs != Py_None) {
        PyObject *it = PyObject_GetIter(hs);
        if (it == NULL)
            return -1;
        PyObject *h;
        while ((h = PyIter_Next(it)) != NULL) {
            PyObject *name = NULL, *value = NULL;
            int ok = PySequence_Check(h) && PySequence_Size(h) == 2;
            if (ok) {
                name = PySequence_GetItem(h, 0);
                value = PySequence_GetItem(h, 1);
                ok = name && value && PyBytes_Check(name) && PyBytes_Check(value);
            }
            if (ok && cu_resp_header(c, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name),
                                     PyBytes_AS_STRING(value),
                                     (size_t)PyBytes_GET_SIZE(value)) != CU_OK) {
                PyErr_Format(PyExc_RuntimeError, "invalid response header %R", h);
                ok = 0;
            } else if (!ok && !PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError,
                             "response headers must be [name, value] pairs of bytes, got %R", h);
            }
            Py_XDECREF(name);
            Py_XDECREF(value);
            Py_DECREF(h);
            if (!ok) {
                Py_DECREF(it);
                return -1;
            }
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            return -1;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    r->started = 1;
    return 0;
}

static PyObject *send_body(asgi_req_t *r, PyObject *msg)
{
    cu_conn_t *c = r->c;
    PyObject *body = PyDict_GetItemWithError(msg, A.k_body);
    PyObject *more_o = body ? PyDict_GetItemWithError(msg, A.k_more_body) : NULL;
    if (PyErr_Occurred())
        return NULL;
    int more = more_o ? PyObject_IsTrue(more_o) : 0;
    if (more < 0)
        return NULL;
    Py_buffer view = {0};
    if (body != NULL && PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (!c->resp.head_emitted) {
        if (!c->body.done)
            c->keep_alive = 0; /* the unread body is not drained: announce the close */
        if (!more)
            cu_resp_hold(c); /* the whole body is here: one write, with a Content-Length */
    }
    int rc = cu_resp_write(c, view.buf, (size_t)view.len);
    if (body != NULL)
        PyBuffer_Release(&view);
    if (rc != CU_OK) {
        r->gone = 1;
        client_gone(r);
        finish(r, CU_ERROR);
        return raise_gone(r);
    }
    if (!more) {
        r->complete = 1;
        rc = cu_resp_finish(c);
        finish(r, rc);
        return ready_new(NULL);
    }
    if (cu_buf_unread(&c->out) > SEND_HIGH)
        return waiter_new(r, WAIT_SEND); /* back-pressure: the client reads slower */
    return ready_new(NULL);
}

static PyObject *asgi_send(PyObject *self, PyObject *msg)
{
    asgi_req_t *r = (asgi_req_t *)self;
    if (!PyDict_Check(msg)) {
        PyErr_SetString(PyExc_TypeError, "send() takes a dict");
        return NULL;
    }
    PyObject *type = PyDict_GetItemWithError(msg, A.k_type);
    if (type == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "type");
        return NULL;
    }
    if (r->gone)
        return raise_gone(r);
    if (r->complete || r->c == NULL) {
        if (r->complete)
            PyErr_Format(PyExc_RuntimeError,
                         "Unexpected ASGI message %R sent, after response already completed", type);
        else
            PyErr_SetString(A.disconnected, "client disconnected");
        return NULL;
    }
    if (r->waiter[WAIT_SEND] != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "send() called while another send() waits");
        return NULL;
    }
    if (!r->started) {
        if (PyObject_RichCompareBool(type, A.s_start, Py_EQ) != 1) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_RuntimeError,
                             "Expected ASGI message 'http.response.start', but got %R", type);
            return NULL;
        }
        if (start_response(r, msg) < 0) {
            cu_resp_head_reset(&r->c->resp.h);
            return NULL;
        }
        return ready_new(NULL);
    }
    if (PyObject_RichCompareBool(type, A.s_resp_body, Py_EQ) != 1) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_RuntimeError,
                         "Expected ASGI message 'http.response.body', but got %R", type);
        return NULL;
    }
    return send_body(r, msg);
}

/* ---- events on the connection while the app owns it ---- */

void cu_py_asgi_app_io(cu_engine_t *e, cu_conn_t *c, int events)
{
    asgi_req_t *r = c->app_data;
    if (r == NULL) {
        (void)cu_engine_app_watch(e, c, 0);
        return;
    }
    Py_INCREF(r);
    if (r->waiter[WAIT_SEND] != NULL && (events & (CU_EV_WRITE | CU_EV_ERROR))) {
        int rc = cu_conn_flush_nb(c);
        if (rc == CU_ERROR) {
            r->gone = 1;
            client_gone(r);
            wake(r, WAIT_SEND, NULL, A.disconnected);
        } else if (cu_buf_unread(&c->out) <= SEND_HIGH / 2) {
            wake(r, WAIT_SEND, NULL, NULL);
        }
    }
    if ((events & (CU_EV_READ | CU_EV_ERROR)) && r->c != NULL && !r->eof) {
        /* Body bytes in `in` not consumed yet: the app reads them first (and a chunked
         * decoder must see them before anything read now). */
        if (!c->body.done && c->rpos < c->in.len) {
            r->read_paused = 1;
        } else if (cu_buf_unread(&c->bin) >= READ_AHEAD ||
                   cu_buf_reserve(&c->bin, BIN_RESERVE) != CU_OK) {
            r->read_paused = 1; /* back-pressure: the app has not taken what we have */
        } else {
            ssize_t n = c->t.ops->read(&c->t, c->bin.data + c->bin.len, c->bin.cap - c->bin.len);
            if (n > 0)
                c->bin.len += (size_t)n;
            else if (n != CU_AGAIN)
                client_gone(r);
        }
        if (r->waiter[WAIT_RECV] != NULL) {
            PyObject *m = try_receive(r);
            if (m != NULL) {
                wake(r, WAIT_RECV, m, NULL);
                Py_DECREF(m);
            } else if (PyErr_Occurred()) {
                PyErr_Clear();
                wake(r, WAIT_RECV, A.msg_disconnect, NULL);
            }
        }
    }
    if ((r->gone || r->eof) && r->waiter[WAIT_RECV] != NULL)
        wake(r, WAIT_RECV, A.msg_disconnect, NULL);
    set_watch(r);
    Py_DECREF(r);
}

/* ---- the request's task ---- */

/* The app's coroutine ended: log what it raised, answer 500 (or cut the response) when it
 * left the response unfinished. `exc` borrowed, NULL when it returned. */
static void app_finished(asgi_req_t *r, PyObject *exc, int cancelled)
{
    if (exc != NULL && !(r->gone && PyErr_GivenExceptionMatches(exc, A.disconnected))) {
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc),
                      PyException_GetTraceback(exc));
        cu__py_log_exception(CU_LOG_ERROR, "Exception in ASGI application");
    } else if (!r->complete && r->c != NULL && !cancelled && !r->eof) {
        cu_log_error("ASGI callable returned without completing response");
    }
    if (r->c != NULL) {
        cu_conn_t *c = r->c;
        if (!r->started || !c->resp.head_sent) {
            (void)cu_resp_error(c, 500, NULL);
        } else {
            cu_conn_abort(c);
            (void)cu_conn_flush_nb(c);
        }
        finish(r, CU_ERROR);
    }
    wake(r, WAIT_RECV, A.msg_disconnect, NULL);
}

static PyObject *asgi_task_done(PyObject *self, PyObject *task)
{
    asgi_req_t *r = (asgi_req_t *)self;
    Py_INCREF(r);
    PyObject *cancelled = PyObject_CallMethod(task, "cancelled", NULL);
    int was_cancelled = cancelled && PyObject_IsTrue(cancelled);
    Py_XDECREF(cancelled);
    PyErr_Clear();
    PyObject *exc = was_cancelled ? NULL : PyObject_CallMethod(task, "exception", NULL);
    if (exc == NULL)
        PyErr_Clear();
    app_finished(r, exc != Py_None ? exc : NULL, was_cancelled);
    Py_XDECREF(exc);
    Py_CLEAR(r->task);
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyMethodDef receive_def = {"receive", asgi_receive, METH_NOARGS, NULL};
static PyMethodDef send_def = {"send", asgi_send, METH_O, NULL};
static PyMethodDef done_def = {"_done", asgi_task_done, METH_O, NULL};

static void req_dealloc(PyObject *self)
{
    asgi_req_t *r = (asgi_req_t *)self;
    Py_CLEAR(r->waiter[WAIT_RECV]);
    Py_CLEAR(r->waiter[WAIT_SEND]);
    Py_CLEAR(r->task);
    PyObject_Free(self);
}

static PyTypeObject req_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.asgi_request",
    .tp_basicsize = sizeof(asgi_req_t),
    .tp_dealloc = req_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

/* ---- the scope ---- */

static PyObject *addr_tuple(const char *host, int port)
{
    return Py_BuildValue("(si)", host, port);
}

static PyObject *server_tuple(const cu_listener_t *l)
{
    static const cu_listener_t *cached_l;
    static PyObject *cached;
    if (l == NULL || l->family == AF_UNIX)
        Py_RETURN_NONE;
    if (l != cached_l) {
        Py_XSETREF(cached, addr_tuple(l->server_name, atoi(l->server_port)));
        cached_l = cached ? l : NULL;
    }
    return Py_XNewRef(cached);
}

/* Scope keys and the values most requests share, made once (interned): the scope is
 * built for every request. */
enum {
    K_TYPE,
    K_ASGI,
    K_HTTP_VERSION,
    K_METHOD,
    K_SCHEME,
    K_PATH,
    K_RAW_PATH,
    K_QUERY_STRING,
    K_ROOT_PATH,
    K_HEADERS,
    K_SERVER,
    K_CLIENT,
    K_STATE,
    V_HTTP,
    V_V11,
    V_V10,
    V_SCHEME_HTTP,
    V_SCHEME_HTTPS,
    V_GET,
    V_POST,
    V_HEAD,
    V_PUT,
    V_DELETE,
    V_PATCH,
    V_OPTIONS,
    NKEYS
};
static const char *const key_names[NKEYS] = {
    "type",         "asgi",      "http_version", "method",  "scheme", "path",  "raw_path",
    "query_string", "root_path", "headers",      "server",  "client", "state", "http",
    "1.1",          "1.0",       "http",         "https",   "GET",    "POST",  "HEAD",
    "PUT",          "DELETE",    "PATCH",        "OPTIONS",
};
static PyObject *keys[NKEYS];

static int set_key(PyObject *d, int k, PyObject *v /* stolen */)
{
    int rc = v ? PyDict_SetItem(d, keys[k], v) : -1;
    Py_XDECREF(v);
    return rc;
}

static PyObject *shared(int k)
{
    return Py_NewRef(keys[k]);
}

static PyObject *method_str(const char *p, size_t n)
{
    for (int k = V_GET; k <= V_OPTIONS; k++)
        if (strlen(key_names[k]) == n && memcmp(key_names[k], p, n) == 0)
            return shared(k);
    return PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
}

static PyObject *build_headers(const cu_req_t *q)
{
    PyObject *list = PyList_New((Py_ssize_t)q->nheaders);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < q->nheaders; i++) {
        const cu_header_t *h = &q->headers[i];
        PyObject *name = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h->name.len);
        PyObject *value = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h->value.len);
        if (name == NULL || value == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(value);
            Py_DECREF(list);
            return NULL;
        }
        char *n = PyBytes_AS_STRING(name);
        for (size_t j = 0; j < h->name.len; j++) {
            char ch = h->name.p[j];
            n[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        if (h->folded) {
            size_t vl = cu_header_value(h, PyBytes_AS_STRING(value));
            if (_PyBytes_Resize(&value, (Py_ssize_t)vl) < 0) {
                Py_DECREF(name);
                Py_DECREF(list);
                return NULL;
            }
        } else {
            memcpy(PyBytes_AS_STRING(value), h->value.p, h->value.len);
        }
        PyObject *t = PyTuple_Pack(2, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static PyObject *build_scope(cu_conn_t *c)
{
    const cu_req_t *q = &c->request;
    PyObject *s = _PyDict_NewPresized(14);
    if (s == NULL)
        return NULL;
    PyObject *ver;
    if (q->version_major == 1 && q->version_minor <= 1) {
        ver = shared(q->version_minor ? V_V11 : V_V10);
    } else {
        char vb[24];
        snprintf(vb, sizeof(vb), "%d.%d", q->version_major, q->version_minor);
        ver = PyUnicode_FromString(vb);
    }
    char mbuf[64];
    PyObject *method;
    if (q->method_lower && q->method.len <= sizeof(mbuf)) {
        for (size_t i = 0; i < q->method.len; i++) {
            char ch = q->method.p[i];
            mbuf[i] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        }
        method = method_str(mbuf, q->method.len);
    } else {
        method = method_str(q->method.p, q->method.len);
    }
    /* path: percent-decoded, then UTF-8 (invalid sequences replaced), as gunicorn does */
    PyObject *path = NULL;
    if (memchr(q->path.p, '%', q->path.len) == NULL) {
        path = PyUnicode_DecodeUTF8(q->path.p, (Py_ssize_t)q->path.len, "replace");
    } else {
        char *tmp = PyMem_Malloc(q->path.len);
        if (tmp != NULL) {
            size_t pl = cu_percent_decode(q->path, tmp);
            path = PyUnicode_DecodeUTF8(tmp, (Py_ssize_t)pl, "replace");
            PyMem_Free(tmp);
        }
    }
    PyObject *scheme = q->scheme == NULL || strcmp(q->scheme, "http") == 0 ? shared(V_SCHEME_HTTP)
                       : strcmp(q->scheme, "https") == 0                   ? shared(V_SCHEME_HTTPS)
                                                         : PyUnicode_FromString(q->scheme);
    const cu_peer_t *p = q->peer;
    PyObject *client =
        p && !p->is_unix && p->host[0] ? addr_tuple(p->host, p->port) : Py_NewRef(Py_None);
    if (set_key(s, K_TYPE, shared(V_HTTP)) < 0 || set_key(s, K_ASGI, Py_NewRef(A.scope_asgi)) < 0 ||
        set_key(s, K_HTTP_VERSION, ver) < 0 || set_key(s, K_METHOD, method) < 0 ||
        set_key(s, K_SCHEME, scheme) < 0 || set_key(s, K_PATH, path) < 0 ||
        set_key(s, K_RAW_PATH, PyBytes_FromStringAndSize(q->path.p, (Py_ssize_t)q->path.len)) < 0 ||
        set_key(s, K_QUERY_STRING,
                PyBytes_FromStringAndSize(q->query.p, (Py_ssize_t)q->query.len)) < 0 ||
        set_key(s, K_ROOT_PATH, Py_NewRef(A.root_path)) < 0 ||
        set_key(s, K_HEADERS, build_headers(q)) < 0 ||
        set_key(s, K_SERVER, server_tuple(q->listener)) < 0 || set_key(s, K_CLIENT, client) < 0 ||
        (A.state != NULL && set_key(s, K_STATE, PyDict_Copy(A.state)) < 0)) {
        Py_DECREF(s);
        return NULL;
    }
    return s;
}

/* ---- dispatch (from inside cu_engine_step, GIL held) ---- */

int cu_py_asgi_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    PyObject *scope = NULL, *recv = NULL, *send = NULL, *coro = NULL, *task = NULL;
    PyObject *done = NULL, *rv = NULL;
    asgi_req_t *r = PyObject_New(asgi_req_t, &req_type);
    if (r == NULL)
        goto fail;
    r->c = c;
    r->waiter[WAIT_RECV] = r->waiter[WAIT_SEND] = NULL;
    r->task = NULL;
    r->started = r->complete = r->final_body = r->eof = r->gone = r->read_paused = 0;
    scope = build_scope(c);
    recv = scope ? PyCFunction_New(&receive_def, (PyObject *)r) : NULL;
    send = recv ? PyCFunction_New(&send_def, (PyObject *)r) : NULL;
    if (send == NULL)
        goto fail;
    coro = PyObject_CallFunctionObjArgs(A.app, scope, recv, send, NULL);
    if (coro == NULL)
        goto fail;
    c->app_data = r;
    A.dispatching = c;
    A.dispatch_rc = CU_AGAIN;
    /* A Task from the start, even for an app that never waits: anyio (Starlette, FastAPI)
     * and sniffio look for the current task, and an app's first step run outside one
     * fails there. (Python 3.12's eager tasks would remove this loop trip.) */
    task = PyObject_CallOneArg(A.create_task, coro);
    done = task ? PyCFunction_New(&done_def, (PyObject *)r) : NULL;
    rv = done ? PyObject_CallMethodOneArg(task, A.s_add_done_callback, done) : NULL;
    if (rv == NULL)
        goto fail_started;
    r->task = Py_NewRef(task);
    Py_XDECREF(rv);
    Py_XDECREF(done);
    Py_XDECREF(task);
    Py_DECREF(coro);
    Py_DECREF(send);
    Py_DECREF(recv);
    Py_DECREF(scope);
    Py_DECREF(r);
    A.dispatching = NULL;
    return A.dispatch_rc;
fail_started:
    /* Answer through the same path as the app's own failure. */
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "cannot run the ASGI application");
    {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (tb != NULL && ev != NULL)
            PyException_SetTraceback(ev, tb);
        app_finished(r, ev, 0);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
    }
    Py_XDECREF(rv);
    Py_XDECREF(done);
    Py_XDECREF(task);
    Py_DECREF(coro);
    Py_DECREF(send);
    Py_DECREF(recv);
    Py_DECREF(scope);
    Py_DECREF(r);
    A.dispatching = NULL;
    return A.dispatch_rc;
fail:
    cu__py_log_exception(CU_LOG_ERROR, "Exception in ASGI application");
    if (r != NULL)
        r->c = NULL;
    Py_XDECREF(rv);
    Py_XDECREF(done);
    Py_XDECREF(task);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(recv);
    Py_XDECREF(scope);
    Py_XDECREF(r);
    (void)cu_resp_error(c, 500, NULL);
    access_log(c);
    return CU_ERROR;
}

/* ---- the engine seen from src/py/lib/asgi.py ---- */

/* Run what is ready; then the seconds until the engine's next timer (-1: none), or -2
 * stopped after a graceful stop (lifespan shutdown runs), -3 after a quick one. */
static PyObject *eng_step(PyObject *m, PyObject *unused)
{
    int rc = cu_engine_step(A.e);
    if (PyErr_Occurred())
        PyErr_Clear();
    if (rc == CU_DONE)
        return PyFloat_FromDouble(A.e->stopping ? -2.0 : -3.0);
    int64_t d = cu_engine_next_deadline(A.e);
    if (d < 0)
        return PyFloat_FromDouble(-1.0);
    int64_t now = cu_mono_ms();
    return PyFloat_FromDouble(d > now ? (double)(d - now) / 1000.0 : 0.0);
}

static PyObject *eng_fd(PyObject *m, PyObject *unused)
{
    return PyLong_FromLong(cu_engine_fd(A.e));
}

static PyObject *eng_start(PyObject *m, PyObject *args)
{
    PyObject *loop, *state;
    if (!PyArg_ParseTuple(args, "OO", &loop, &state))
        return NULL;
    Py_XSETREF(A.loop, Py_NewRef(loop));
    Py_XSETREF(A.state, Py_NewRef(state));
    Py_XSETREF(A.create_task, PyObject_GetAttrString(loop, "create_task"));
    Py_XSETREF(A.create_future, PyObject_GetAttrString(loop, "create_future"));
    Py_XSETREF(A.call_later, PyObject_GetAttrString(loop, "call_later"));
    if (!A.create_task || !A.create_future || !A.call_later)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *eng_log(PyObject *m, PyObject *args)
{
    int level;
    const char *msg;
    if (!PyArg_ParseTuple(args, "is", &level, &msg))
        return NULL;
    cu_log(level, "%s", msg);
    Py_RETURN_NONE;
}

static PyMethodDef eng_methods[] = {
    {"step", eng_step, METH_NOARGS, NULL},
    {"fd", eng_fd, METH_NOARGS, NULL},
    {"start", eng_start, METH_VARARGS, NULL},
    {"log", eng_log, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef eng_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cunicorn_asgi_engine",
    .m_size = -1,
    .m_methods = eng_methods,
};

static int intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot ? 0 : -1;
}

static int asgi_globals(const cu_config_t *cfg)
{
    if (PyType_Ready(&ready_type) < 0 || PyType_Ready(&req_type) < 0)
        return -1;
    A.cfg = cfg;
    for (int k = 0; k < NKEYS; k++)
        if (intern(&keys[k], key_names[k]) < 0)
            return -1;
    if (intern(&A.k_type, "type") || intern(&A.k_body, "body") ||
        intern(&A.k_more_body, "more_body") || intern(&A.k_status, "status") ||
        intern(&A.k_headers, "headers") || intern(&A.s_http_request, "http.request") ||
        intern(&A.s_start, "http.response.start") || intern(&A.s_resp_body, "http.response.body") ||
        intern(&A.s_add_done_callback, "add_done_callback") || intern(&A.s_cancel, "cancel"))
        return -1;
    A.empty_bytes = PyBytes_FromStringAndSize("", 0);
    A.msg_disconnect = Py_BuildValue("{s:s}", "type", "http.disconnect");
    A.scope_asgi = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    A.root_path = PyUnicode_FromString(cfg->root_path ? cfg->root_path : "");
    A.disconnected = PyErr_NewExceptionWithDoc(
        "cunicorn.ClientDisconnected",
        "send() after the client closed the connection (an OSError, like uvicorn's).",
        PyExc_OSError, NULL);
    if (!A.empty_bytes || !A.msg_disconnect || !A.scope_asgi || !A.root_path || !A.disconnected)
        return -1;
    if (cu__py.module &&
        PyObject_SetAttrString(cu__py.module, "ClientDisconnected", A.disconnected) < 0)
        return -1;
    return 0;
}

int cu_py_asgi_serve(cu_engine_t *e, const cu_config_t *cfg)
{
    int code = CU_WORKER_BOOT_ERROR;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *code_obj = NULL, *mod = NULL, *eng = NULL, *rv = NULL;
    A.e = e;
    A.app = Py_XNewRef(cu__py.app);
    if (A.app == NULL || asgi_globals(cfg) < 0)
        goto done;
    code_obj = Py_CompileString(cu__asgi_py_src, "cunicorn/asgi.py", Py_file_input);
    mod =
        code_obj ? PyImport_ExecCodeModuleEx("_cunicorn_asgi", code_obj, "cunicorn/asgi.py") : NULL;
    eng = mod ? PyModule_Create(&eng_module) : NULL;
    if (eng == NULL)
        goto done;
    rv = PyObject_CallMethod(mod, "serve", "OOss", eng, A.app, cfg->asgi_loop, cfg->asgi_lifespan);
    if (rv == NULL)
        goto done;
    code = (int)PyLong_AsLong(rv);
done:
    if (PyErr_Occurred())
        cu__py_log_exception(CU_LOG_ERROR, "Exception in ASGI worker");
    Py_XDECREF(rv);
    Py_XDECREF(eng);
    Py_XDECREF(mod);
    Py_XDECREF(code_obj);
    PyGILState_Release(g);
    return code;
}
