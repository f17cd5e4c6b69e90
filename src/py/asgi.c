/* The ASGI worker's Python side: the HTTP scope built from the neutral request, the
 * receive/send callables over the connection's buffers, requests run as tasks of the
 * worker's asyncio loop (src/py/lib/_asgi.py owns the loop and the lifespan protocol),
 * and the engine stepped from that loop. Everything here runs on the worker's one thread,
 * GIL held, inside the loop: nothing blocks on the network except the documented fallback
 * of the blocking adapter (a chunked body split inside its framing, one write larger than
 * the connection's backlog). */
#include "py/py_internal.h"

#include "py/hooks.h"

#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/proto.h"
#include "http/ws.h"
#include "http/ws_deflate.h"
#include "log/access.h"
#include "log/statsd.h"
#include "workers/engine.h"
#include "workers/h2.h"
#include "workers/worker.h"

#define RECV_CHUNK  (64 * 1024)  /* most body bytes one http.request message carries */
#define READ_AHEAD  (256 * 1024) /* body bytes the loop reads before the app asks */
#define SEND_HIGH   (256 * 1024) /* unsent output that makes send() wait for the client */
#define SEND_PIECE  (512 * 1024) /* a larger body is written this much at a time */
#define BIN_RESERVE 16384

/* receive() and send() may wait at the same time (one task listens for the disconnect
 * while another streams): one waiter each. */
enum { WAIT_RECV, WAIT_SEND };

/* One request's receive/send state. c is NULL once the response is complete or the
 * connection was given back to the engine. */
typedef struct asgi_req_s {
    PyObject_HEAD cu_conn_t *c;
    PyObject *waiter[2];  /* the loop futures receive() and send() wait on (WAIT_*) */
    PyObject *task;       /* the app's task until it is done */
    PyObject *hreq;       /* the hooks' request object when pre/post_request are set */
    PyObject *body_timer; /* loop TimerHandle while receive() waits for body bytes */
    Py_buffer pend;       /* a large body being written piece by piece (pend.obj: active) */
    size_t pend_off;
    int pend_more; /* its message's more_body */
    unsigned started : 1;
    unsigned complete : 1;
    unsigned want_trailers : 1;  /* http.response.start said trailers: True (HTTP/2) */
    unsigned body_done : 1;      /* ... and the body ended: http.response.trailers is next */
    unsigned maybe_trailers : 1; /* HTTP/2, unannounced but a Trailer header field was sent */
    unsigned final_body : 1;     /* the last http.request (more_body False) was delivered */
    unsigned eof : 1;            /* the client closed its side: http.disconnect */
    unsigned gone : 1;           /* writing failed: send() raises ClientDisconnected */
    unsigned read_paused : 1;
    unsigned body_eof : 1; /* HTTP/2: the stream's read returned 0 (END_STREAM, the body's
                            * end; the client is still there) */
    /* WebSocket session (RFC 6455 over the same connection, after a 101) */
    unsigned ws : 1;
    unsigned ws_connect_sent : 1; /* websocket.connect was received by the app */
    unsigned ws_accepted : 1;     /* the 101 went out */
    unsigned ws_closed : 1;       /* a close frame was sent: no more data frames */
    unsigned ws_have_hdr : 1;     /* ws_f holds the header of the frame being read */
    unsigned ws_deflate : 1;      /* permessage-deflate was negotiated */
    unsigned ws_compressed : 1;   /* the message being assembled is compressed (RSV1) */
    cu_ws_deflate_t ws_z;
    int ws_close_code; /* for websocket.disconnect */
    cu_ws_frame_t ws_f;
    uint64_t ws_done; /* payload bytes of ws_f consumed */
    int ws_msg_op;    /* CU_WS_TEXT / CU_WS_BINARY of the message being assembled, 0: none */
    uint32_t ws_utf8;
    cu_buf_t ws_msg;         /* the message's payload so far (cap: websocket_max_message_size) */
    PyObject *ws_queue;      /* complete messages the app has not received yet (list) */
    cu_resp_head_t trailers; /* http.response.trailers so far (more_trailers) */
} asgi_req_t;

#define WS_QUEUE_MAX 16 /* messages read ahead before reading pauses */

/* Per worker, GIL held. */
static struct {
    cu_engine_t *e;
    const cu_config_t *cfg;
    PyObject *app;
    PyObject *loop;
    PyObject *create_task; /* loop.create_task */
    PyObject *create_future;
    PyObject *call_later;
    PyObject *call_soon;
    PyObject *pending;     /* HTTP/2 responses to complete at the loop's next pass (list) */
    PyObject *complete_cb; /* the callback that does it (scheduled when pending fills) */
    PyObject *step_cb;     /* _asgi.py's step(): steps the engine, keeps its timer */
    PyObject *k_extensions, *k_ext_trailers, *k_ext_priority, *k_weight, *k_depends_on;
    PyObject *state; /* the lifespan state dict: copied into each scope */
    PyObject *root_path;
    PyObject *disconnected; /* cunicorn.ClientDisconnected (OSError) */
    PyObject *msg_disconnect;
    PyObject *k_type, *k_body, *k_more_body, *k_status, *k_headers, *k_trailers, *k_more_trailers;
    PyObject *s_http_request, *s_start, *s_resp_body, *s_add_done_callback, *s_cancel;
    PyObject *s_informational, *s_trailers;
    PyObject *scope_asgi; /* {"version": "3.0", "spec_version": "2.4"} */
    PyObject *empty_bytes;
    cu_conn_t *dispatching; /* the connection cu_py_asgi_dispatch is running, until finished */
    PyObject *ws_live;      /* open WebSocket sessions (a set): closed with 1001 on stop */
    cu_buf_t zbuf;          /* scratch for permessage-deflate output */
    int ws_stopping;        /* that was done */
    int dispatch_rc;
} A;

static PyTypeObject ready_type;
static PyTypeObject req_type;

static void ws_process(asgi_req_t *r);
static PyObject *ws_send(asgi_req_t *r, PyObject *msg, PyObject *type);
static void ws_close(asgi_req_t *r, int code, const char *reason, size_t rlen);
static void ws_deny(asgi_req_t *r);

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

/* What receive() answers once the client is gone: new ref. */
static PyObject *disconnect_msg(asgi_req_t *r)
{
    if (!r->ws)
        return Py_NewRef(A.msg_disconnect);
    return Py_BuildValue("{s:s,s:i}", "type", "websocket.disconnect", "code",
                         r->ws_close_code ? r->ws_close_code : CU_WS_CLOSE_ABNORMAL);
}

/* Resolve a pending waiter (if any) with a result or an exception type. */
static void stop_body_timer(asgi_req_t *r)
{
    if (r->body_timer == NULL)
        return;
    PyObject *rv = PyObject_CallMethod(r->body_timer, "cancel", NULL);
    if (rv == NULL)
        PyErr_Clear();
    Py_XDECREF(rv);
    Py_CLEAR(r->body_timer);
}

static void wake(asgi_req_t *r, int which, PyObject *result /* borrowed */, PyObject *exc_type)
{
    if (which == WAIT_RECV)
        stop_body_timer(r);
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
    if (r->hreq != NULL) {
        cu__hook_post_request(c, r->hreq, NULL, 0);
        Py_CLEAR(r->hreq);
    }
    if (r->pend.obj != NULL)
        PyBuffer_Release(&r->pend);
    /* A body the app did not read is not drained here (that would block the loop): the
     * connection closes instead. */
    if (!c->body.done || r->ws)
        c->closing = 1;
    if (r->ws)
        c->keep_alive = 0;
    r->c = NULL;
    c->app_data = NULL;
    if (r->ws && A.ws_live != NULL && PySet_Discard(A.ws_live, (PyObject *)r) < 0)
        PyErr_Clear();
    PyObject *dm = disconnect_msg(r);
    wake(r, WAIT_RECV, dm, NULL);
    Py_XDECREF(dm);
    PyErr_Clear();
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
static PyObject *ws_try_receive(asgi_req_t *r);

static PyObject *try_receive(asgi_req_t *r)
{
    if (r->ws)
        return ws_try_receive(r);
    cu_conn_t *c = r->c;
    if (c == NULL || r->gone)
        return Py_NewRef(A.msg_disconnect);
    if (r->final_body)
        return r->eof ? Py_NewRef(A.msg_disconnect) : NULL;
    if (c->body.done) {
        r->final_body = 1;
        return body_message(Py_NewRef(A.empty_bytes), 0);
    }
    if (body_ready(c) || r->body_eof) {
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
        if (cu_resp_continue(c) != CU_OK)
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

static PyObject *asgi_body_timeout(PyObject *self, PyObject *unused)
{
    asgi_req_t *r = (asgi_req_t *)self;
    Py_CLEAR(r->body_timer);
    cu_conn_t *c = r->c;
    if (c == NULL || c->body.done || r->waiter[WAIT_RECV] == NULL)
        Py_RETURN_NONE;
    Py_INCREF(r);
    c->body.timed_out = 1;
    c->body.error = 1;
    if (!r->started) {
        (void)cu_resp_error(c, 408, "Timed out reading the request body");
        r->started = 1;
        r->complete = 1;
    } else {
        cu_conn_abort(c);
    }
    client_gone(r);
    finish(r, CU_ERROR);
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyMethodDef body_timeout_def = {"_body_timeout", asgi_body_timeout, METH_NOARGS, NULL};

static PyObject *asgi_receive(PyObject *self, PyObject *unused)
{
    asgi_req_t *r = (asgi_req_t *)self;
    if (r->waiter[WAIT_RECV] != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "receive() called while another receive() waits");
        return NULL;
    }
    if (r->ws && r->ws_accepted && r->c != NULL)
        ws_process(r); /* frames already buffered while reading was paused */
    PyObject *m = try_receive(r);
    if (m != NULL) {
        PyObject *rv = ready_new(m);
        Py_DECREF(m);
        return rv;
    }
    if (PyErr_Occurred())
        return NULL;
    r->read_paused = 0; /* the app wants bytes: read again */
    PyObject *fut = waiter_new(r, WAIT_RECV);
    if (fut != NULL && !r->ws && r->c != NULL && !r->c->body.done) {
        /* A client that stalls mid-body: 408 (or the connection closes) after the io
         * timeout, as for WSGI; the app hears http.disconnect. */
        PyObject *cb = PyCFunction_New(&body_timeout_def, (PyObject *)r);
        r->body_timer = cb ? PyObject_CallFunction(A.call_later, "dO",
                                                   r->c->settings->io_timeout_ms / 1000.0, cb)
                           : NULL;
        Py_XDECREF(cb);
        if (r->body_timer == NULL)
            PyErr_Clear();
    }
    return fut;
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
    /* The trailers extension is offered on HTTP/2 only (build_scope); elsewhere the key
     * is ignored, as the spec asks of a server without it. */
    PyObject *tr = c->proto->trailers ? PyDict_GetItemWithError(msg, A.k_trailers) : NULL;
    int want = tr != NULL ? PyObject_IsTrue(tr) : 0;
    if (want < 0 || PyErr_Occurred())
        return -1;
    r->want_trailers = want;
    /* gunicorn 27 also takes trailers sent without the key (its HTTP/2 responses leave when
     * the app returns) and documents announcing them with a Trailer field: such a
     * response waits one pass of the loop for them (body_ended). */
    for (size_t i = 0; c->proto->trailers && !want && i < c->resp.h.nfields; i++) {
        cu_str_t fn = cu_resp_field_name(&c->resp.h, i);
        if (fn.len == 7 && cu_str_ieq_lit(fn, "trailer"))
            r->maybe_trailers = 1;
    }
    r->started = 1;
    return 0;
}

/* The body's last message is written. On HTTP/2, trailers may follow: announced
 * ("trailers": True, as the ASGI spec asks) the response waits for them; announced only
 * with a Trailer field (gunicorn 27's documented use) it ends at the next pass of the loop
 * unless they came first. 1 when the response is not complete yet, 0 when the caller
 * completes it now. The responses of one pass share one loop callback (A.pending). */
static int body_ended(asgi_req_t *r)
{
    if (!r->want_trailers && !r->maybe_trailers)
        return 0;
    if (!r->want_trailers) {
        if (PyList_GET_SIZE(A.pending) == 0) {
            PyObject *h = PyObject_CallOneArg(A.call_soon, A.complete_cb);
            if (h == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(h);
        }
        if (PyList_Append(A.pending, (PyObject *)r) < 0) {
            PyErr_Clear();
            return 0;
        }
        r->want_trailers = 1;
    }
    r->body_done = 1;
    return 1;
}

static PyObject *asgi_complete_pending(PyObject *self, PyObject *unused)
{
    PyObject *list = A.pending;
    A.pending = PyList_New(0);
    if (A.pending == NULL) {
        A.pending = list;
        return NULL;
    }
    int done = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        asgi_req_t *r = (asgi_req_t *)PyList_GET_ITEM(list, i);
        if (r->body_done && !r->complete && r->c != NULL) {
            r->complete = 1;
            finish(r, cu_resp_finish(r->c));
            done = 1;
        }
    }
    Py_DECREF(list);
    /* Step the engine now: the responses leave in this pass of the loop, not the next
     * (as when the body's end completed them at once). */
    if (done && A.step_cb != NULL) {
        PyObject *rv = PyObject_CallNoArgs(A.step_cb);
        if (rv == NULL)
            return NULL;
        Py_DECREF(rv);
    }
    Py_RETURN_NONE;
}

static PyMethodDef complete_def = {"_complete_pending", asgi_complete_pending, METH_NOARGS, NULL};

/* Go on with a large body (r->pend) while the unsent output is small; when it is all
 * written, finish the response (more_body False) or let send() return. */
static void send_pending(asgi_req_t *r)
{
    cu_conn_t *c = r->c;
    while (c != NULL && r->pend.obj != NULL && cu_buf_unread(&c->out) <= SEND_HIGH) {
        size_t left = (size_t)r->pend.len - r->pend_off;
        size_t n = left < SEND_PIECE ? left : SEND_PIECE;
        if (n > 0 && cu_resp_write(c, (const char *)r->pend.buf + r->pend_off, n) != CU_OK) {
            PyBuffer_Release(&r->pend);
            r->gone = 1;
            client_gone(r);
            finish(r, CU_ERROR); /* wakes send() with ClientDisconnected */
            return;
        }
        r->pend_off += n;
        if (r->pend_off < (size_t)r->pend.len)
            continue;
        PyBuffer_Release(&r->pend);
        if (!r->pend_more && body_ended(r))
            break; /* trailers may follow */
        if (!r->pend_more) {
            r->complete = 1;
            finish(r, cu_resp_finish(c)); /* wakes send() */
            return;
        }
    }
    if (r->pend.obj == NULL && r->c != NULL && cu_buf_unread(&r->c->out) <= SEND_HIGH)
        wake(r, WAIT_SEND, NULL, NULL);
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
    if ((size_t)view.len > SEND_PIECE) {
        /* Written SEND_PIECE at a time as the client takes it (send_pending from the loop's
         * write events): the HTTP/1 writer would otherwise wait for the socket. */
        r->pend = view;
        r->pend_off = 0;
        r->pend_more = more;
        PyObject *fut = waiter_new(r, WAIT_SEND);
        if (fut != NULL)
            send_pending(r);
        return fut;
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
    if (!more && body_ended(r)) {
        /* trailers may follow */
    } else if (!more) {
        r->complete = 1;
        rc = cu_resp_finish(c);
        finish(r, rc);
        return ready_new(NULL);
    }
    if (cu_buf_unread(&c->out) > SEND_HIGH)
        return waiter_new(r, WAIT_SEND); /* back-pressure: the client reads slower */
    return ready_new(NULL);
}

/* http.response.informational (gunicorn 27: 103 Early Hints and other 1xx before the
 * response): queued after any unsent output; nothing is sent to an HTTP/1.0 client. */
static PyObject *send_informational(asgi_req_t *r, PyObject *msg)
{
    cu_conn_t *c = r->c;
    PyObject *st = PyDict_GetItemWithError(msg, A.k_status); /* borrowed */
    long status = st ? PyLong_AsLong(st) : -1;
    if (status < 100 || status > 199 || status == 101) {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_TypeError) ||
            PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_RuntimeError,
                         "http.response.informational needs a 1xx status other than 101, got %R",
                         st ? st : Py_None);
        }
        return NULL;
    }
    PyObject *hs = PyDict_GetItemWithError(msg, A.k_headers);
    if (hs == NULL && PyErr_Occurred())
        return NULL;
    cu_resp_head_t h;
    memset(&h, 0, sizeof(h));
    cu_buf_init(&h.store, 0, 1 << 16);
    cu_str_t *nv = NULL;
    PyObject *ret = NULL;
    if (hs != NULL && hs != Py_None && cu__py_fields_from(hs, &h) < 0)
        goto out;
    nv = PyMem_Calloc(2 * h.nfields + 1, sizeof(*nv));
    if (nv == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (size_t i = 0; i < h.nfields; i++) {
        nv[i] = cu_resp_field_name(&h, i);
        nv[h.nfields + i] = cu_resp_field_value(&h, i);
    }
    if (cu_resp_interim(c, (int)status, nv, nv + h.nfields, h.nfields) != CU_OK ||
        cu_conn_flush_nb(c) == CU_ERROR) {
        r->gone = 1;
        client_gone(r);
        finish(r, CU_ERROR);
        ret = raise_gone(r);
        goto out;
    }
    /* What the socket did not take goes out with the next write, or on a write event. */
    ret = cu_buf_unread(&c->out) > SEND_HIGH ? waiter_new(r, WAIT_SEND) : ready_new(NULL);
out:
    PyMem_Free(nv);
    cu_resp_head_free(&h);
    return ret;
}

/* http.response.trailers (the extension offered on HTTP/2): gathered until more_trailers
 * is false, then sent after the body, and the response is complete. */
static PyObject *send_trailers(asgi_req_t *r, PyObject *msg)
{
    cu_conn_t *c = r->c;
    if (!r->body_done) {
        PyErr_SetString(PyExc_RuntimeError,
                        "http.response.trailers sent before the body ended (more_body False)");
        return NULL;
    }
    PyObject *hs = PyDict_GetItemWithError(msg, A.k_headers);
    PyObject *more_o =
        hs || !PyErr_Occurred() ? PyDict_GetItemWithError(msg, A.k_more_trailers) : NULL;
    if (PyErr_Occurred())
        return NULL;
    int more = more_o ? PyObject_IsTrue(more_o) : 0;
    if (more < 0 || (hs != NULL && hs != Py_None && cu__py_fields_from(hs, &r->trailers) < 0))
        return NULL;
    if (more)
        return ready_new(NULL);
    if (cu_resp_trailers(c, &r->trailers) != CU_OK) {
        PyErr_SetString(PyExc_RuntimeError, "trailers cannot be sent on this stream");
        return NULL;
    }
    r->complete = 1;
    finish(r, cu_resp_finish(c));
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
    if (r->ws)
        return ws_send(r, msg, type);
    if (r->gone)
        return raise_gone(r);
    int is_trailers = PyObject_RichCompareBool(type, A.s_trailers, Py_EQ);
    if (is_trailers < 0)
        return NULL;
    if (is_trailers && !r->want_trailers)
        return ready_new(NULL); /* not offered here, or not announced: ignored, as gunicorn */
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
    if (!r->started && PyObject_RichCompareBool(type, A.s_informational, Py_EQ) == 1)
        return send_informational(r, msg);
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
    if (is_trailers)
        return send_trailers(r, msg);
    if (r->body_done) {
        PyErr_Format(PyExc_RuntimeError,
                     "Expected ASGI message 'http.response.trailers', but got %R", type);
        return NULL;
    }
    if (PyObject_RichCompareBool(type, A.s_resp_body, Py_EQ) != 1) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_RuntimeError,
                         "Expected ASGI message 'http.response.body', but got %R", type);
        return NULL;
    }
    return send_body(r, msg);
}

/* ---- WebSocket sessions (RFC 6455; frames by http/ws.c) ---- */

#define WS_DEFLATE_MIN 64 /* smaller messages go uncompressed */

static int ws_write(asgi_req_t *r, int opcode, const void *p, size_t n)
{
    cu_conn_t *c = r->c;
    uint8_t h[10];
    int rsv1 = 0;
    if (r->ws_deflate && opcode < CU_WS_CLOSE && n >= WS_DEFLATE_MIN) {
        A.zbuf.pos = A.zbuf.len = 0;
        if (cu_ws_deflate(&r->ws_z, p, n, &A.zbuf) == CU_OK) {
            p = cu_buf_head(&A.zbuf);
            n = cu_buf_unread(&A.zbuf);
            rsv1 = 1;
        }
    }
    size_t hl = cu_ws_frame_header(h, opcode, 1, rsv1, n);
    if (cu_buf_append(&c->out, h, hl) != CU_OK || cu_buf_append(&c->out, p, n) != CU_OK ||
        cu_conn_flush_nb(c) == CU_ERROR) {
        r->gone = 1;
        client_gone(r);
        return -1;
    }
    return 0;
}

static void ws_close(asgi_req_t *r, int code, const char *reason, size_t rlen)
{
    if (r->ws_closed || r->c == NULL)
        return;
    uint8_t p[125];
    size_t n = 0;
    if (code != CU_WS_CLOSE_NO_STATUS) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        if (rlen > 123)
            rlen = 123;
        if (rlen)
            memcpy(p + 2, reason, rlen);
        n += rlen;
    }
    r->ws_closed = 1;
    (void)ws_write(r, CU_WS_CLOSE, p, n);
}

/* A protocol error from the client: close with `code`, the app hears the disconnect. */
static void ws_fail(asgi_req_t *r, int code)
{
    ws_close(r, code, NULL, 0);
    if (!r->ws_close_code)
        r->ws_close_code = code;
    r->eof = 1;
    finish(r, CU_ERROR);
}

/* The handshake refused before accept: 403, as gunicorn and uvicorn answer. */
static void ws_deny(asgi_req_t *r)
{
    cu_conn_t *c = r->c;
    c->keep_alive = 0;
    if (cu_resp_begin(c, "403 Forbidden", 13) == CU_OK) {
        cu_resp_hold(c);
        (void)cu_resp_finish(c);
    }
    r->started = 1;
    r->complete = 1;
    if (!r->ws_close_code)
        r->ws_close_code = CU_WS_CLOSE_POLICY;
    finish(r, CU_ERROR);
}

/* Turn the buffered client bytes into messages on ws_queue; answer pings and the close
 * handshake. Stops when more bytes are needed, or the queue is full (back-pressure). */
static void ws_process(asgi_req_t *r)
{
    cu_conn_t *c = r->c;
    uint64_t max = (uint64_t)A.cfg->websocket_max_message_size;
    while (r->c != NULL && !r->ws_closed && PyList_GET_SIZE(r->ws_queue) < WS_QUEUE_MAX) {
        uint8_t *head = (uint8_t *)cu_buf_head(&c->bin); /* NULL when nothing was read */
        size_t avail = cu_buf_unread(&c->bin);
        cu_ws_frame_t *f = &r->ws_f;
        if (!r->ws_have_hdr) {
            int code = 0;
            int hl = cu_ws_parse_header(head, avail, 1, r->ws_deflate, max, f, &code);
            if (hl == -2)
                return;
            if (hl < 0) {
                ws_fail(r, code);
                return;
            }
            int data = f->opcode < CU_WS_CLOSE;
            if (data && (f->opcode == CU_WS_CONT) == (r->ws_msg_op == 0)) {
                ws_fail(r, CU_WS_CLOSE_PROTOCOL); /* a continuation of nothing, or a new
                                                   * message inside a fragmented one */
                return;
            }
            if (data && max && cu_buf_unread(&r->ws_msg) + f->len > max) {
                ws_fail(r, CU_WS_CLOSE_TOO_BIG);
                return;
            }
            if (data && f->opcode != CU_WS_CONT) {
                r->ws_msg_op = f->opcode;
                r->ws_utf8 = 0;
                r->ws_compressed = f->rsv1;
            }
            cu_buf_consume(&c->bin, (size_t)hl);
            r->ws_have_hdr = 1;
            r->ws_done = 0;
            continue;
        }
        if (f->opcode >= CU_WS_CLOSE) {
            if (avail < f->len)
                return; /* control payloads are at most 125 bytes: wait for all of it */
            uint8_t p[125];
            size_t n = (size_t)f->len;
            if (n)
                memcpy(p, head, n);
            cu_ws_mask(p, n, f->mask, 0);
            cu_buf_consume(&c->bin, n);
            r->ws_have_hdr = 0;
            if (f->opcode == CU_WS_PING) {
                (void)ws_write(r, CU_WS_PONG, p, n);
            } else if (f->opcode == CU_WS_CLOSE) {
                int code;
                if (cu_ws_close_parse(p, n, &code) != 0) {
                    ws_fail(r, code);
                    return;
                }
                r->ws_close_code = code;
                /* Echo the code (RFC 6455 5.5.1), then the connection closes. */
                ws_close(r, code == CU_WS_CLOSE_NO_STATUS ? CU_WS_CLOSE_NORMAL : code, NULL, 0);
                r->eof = 1;
                finish(r, CU_ERROR);
                return;
            }
            continue;
        }
        size_t take = (size_t)(f->len - r->ws_done) < avail ? (size_t)(f->len - r->ws_done) : avail;
        if (take == 0 && r->ws_done < f->len)
            return;
        if (take == 0)
            head = (uint8_t *)""; /* an empty frame: nothing to unmask or copy */
        cu_ws_mask(head, take, f->mask, r->ws_done);
        if (r->ws_msg_op == CU_WS_TEXT && !r->ws_compressed &&
            cu_ws_utf8(&r->ws_utf8, head, take) != 0) {
            ws_fail(r, CU_WS_CLOSE_INVALID_DATA);
            return;
        }
        if (take && cu_buf_append(&r->ws_msg, head, take) != CU_OK) {
            ws_fail(r, CU_WS_CLOSE_TOO_BIG);
            return;
        }
        cu_buf_consume(&c->bin, take);
        r->ws_done += take;
        if (r->ws_done < f->len)
            return;
        r->ws_have_hdr = 0;
        if (!f->fin)
            continue;
        if (r->ws_msg_op == CU_WS_TEXT && r->ws_utf8 != 0) {
            ws_fail(r, CU_WS_CLOSE_INVALID_DATA); /* ends inside a character */
            return;
        }
        const char *d = cu_buf_head(&r->ws_msg);
        Py_ssize_t dl = (Py_ssize_t)cu_buf_unread(&r->ws_msg);
        if (r->ws_compressed) {
            A.zbuf.pos = A.zbuf.len = 0;
            int zr = cu_ws_inflate(&r->ws_z, (const uint8_t *)(d ? d : ""), (size_t)dl, &A.zbuf,
                                   (size_t)max);
            if (zr != CU_OK) {
                ws_fail(r, zr == CU_DONE ? CU_WS_CLOSE_TOO_BIG : CU_WS_CLOSE_INVALID_DATA);
                return;
            }
            d = cu_buf_head(&A.zbuf);
            dl = (Py_ssize_t)cu_buf_unread(&A.zbuf);
            uint32_t st = 0;
            if (r->ws_msg_op == CU_WS_TEXT &&
                (cu_ws_utf8(&st, (const uint8_t *)(d ? d : ""), (size_t)dl) != 0 || st != 0)) {
                ws_fail(r, CU_WS_CLOSE_INVALID_DATA);
                return;
            }
        }
        PyObject *m =
            r->ws_msg_op == CU_WS_TEXT
                ? Py_BuildValue("{s:s,s:s#}", "type", "websocket.receive", "text", d ? d : "", dl)
                : Py_BuildValue("{s:s,s:y#}", "type", "websocket.receive", "bytes", d ? d : "", dl);
        r->ws_msg.pos = r->ws_msg.len = 0;
        r->ws_msg_op = 0;
        if (m == NULL || PyList_Append(r->ws_queue, m) < 0) {
            Py_XDECREF(m);
            PyErr_Clear();
            ws_fail(r, CU_WS_CLOSE_INTERNAL);
            return;
        }
        Py_DECREF(m);
    }
    if (r->c != NULL && PyList_GET_SIZE(r->ws_queue) >= WS_QUEUE_MAX)
        r->read_paused = 1;
}

static PyObject *ws_try_receive(asgi_req_t *r)
{
    if (!r->ws_connect_sent) {
        r->ws_connect_sent = 1;
        return Py_BuildValue("{s:s}", "type", "websocket.connect");
    }
    if (PyList_GET_SIZE(r->ws_queue) > 0) {
        PyObject *m = Py_NewRef(PyList_GET_ITEM(r->ws_queue, 0));
        if (PySequence_DelItem(r->ws_queue, 0) < 0) {
            Py_DECREF(m);
            return NULL;
        }
        if (r->read_paused && PyList_GET_SIZE(r->ws_queue) < WS_QUEUE_MAX / 2) {
            r->read_paused = 0;
            set_watch(r);
        }
        return m;
    }
    if (r->c == NULL || r->gone || r->eof || r->ws_closed)
        return disconnect_msg(r);
    return NULL;
}

/* Client headers of the 101 and extra headers from websocket.accept. */
static int ws_accept(asgi_req_t *r, PyObject *msg)
{
    cu_conn_t *c = r->c;
    const cu_req_t *q = &c->request;
    const cu_header_t *key = NULL;
    for (size_t i = 0; i < q->nheaders; i++)
        if (q->headers[i].name.len == 17 &&
            strncasecmp(q->headers[i].name.p, "sec-websocket-key", 17) == 0)
            key = &q->headers[i];
    char acc[29];
    cu_ws_accept(key ? key->value.p : "", key ? key->value.len : 0, acc);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                     acc);
    if (cu_buf_append(&c->out, head, (size_t)n) != CU_OK)
        return -1;
    const cu_header_t *ext = NULL;
    for (size_t i = 0; i < q->nheaders; i++)
        if (q->headers[i].name.len == 24 &&
            strncasecmp(q->headers[i].name.p, "sec-websocket-extensions", 24) == 0)
            ext = &q->headers[i];
    char zresp[96];
    if (ext != NULL && !A.cfg->websocket_deflate_disable &&
        cu_ws_deflate_negotiate(ext->value.p, ext->value.len, zresp, sizeof(zresp))) {
        r->ws_deflate = 1;
        if (cu_buf_append(&c->out, "Sec-WebSocket-Extensions: ", 26) != CU_OK ||
            cu_buf_append(&c->out, zresp, strlen(zresp)) != CU_OK ||
            cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
            return -1;
    }
    PyObject *sub = PyDict_GetItemString(msg, "subprotocol"); /* borrowed */
    if (sub != NULL && sub != Py_None) {
        const char *sp = PyUnicode_AsUTF8(sub);
        if (sp == NULL || strpbrk(sp, "\r\n") != NULL) {
            PyErr_SetString(PyExc_RuntimeError, "invalid subprotocol");
            return -1;
        }
        if (cu_buf_append(&c->out, "Sec-WebSocket-Protocol: ", 24) != CU_OK ||
            cu_buf_append(&c->out, sp, strlen(sp)) != CU_OK ||
            cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
            return -1;
    }
    PyObject *hs = PyDict_GetItemString(msg, "headers");
    if (hs != NULL && hs != Py_None) {
        PyObject *it = PyObject_GetIter(hs);
        PyObject *h;
        while (it && (h = PyIter_Next(it)) != NULL) {
            PyObject *nm = PySequence_GetItem(h, 0), *v = PySequence_GetItem(h, 1);
            int ok = nm && v && PyBytes_Check(nm) && PyBytes_Check(v) &&
                     !memchr(PyBytes_AS_STRING(v), '\n', (size_t)PyBytes_GET_SIZE(v)) &&
                     !memchr(PyBytes_AS_STRING(v), '\r', (size_t)PyBytes_GET_SIZE(v)) &&
                     !memchr(PyBytes_AS_STRING(nm), ':', (size_t)PyBytes_GET_SIZE(nm));
            if (ok) {
                (void)cu_buf_append(&c->out, PyBytes_AS_STRING(nm), (size_t)PyBytes_GET_SIZE(nm));
                (void)cu_buf_append(&c->out, ": ", 2);
                (void)cu_buf_append(&c->out, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
                (void)cu_buf_append(&c->out, "\r\n", 2);
            } else if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_RuntimeError, "invalid websocket.accept header %R", h);
            }
            Py_XDECREF(nm);
            Py_XDECREF(v);
            Py_DECREF(h);
            if (!ok)
                break;
        }
        Py_XDECREF(it);
        if (PyErr_Occurred())
            return -1;
    }
    if (cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
        return -1;
    (void)cu_resp_head_status(&c->resp.h, 101, "101 Switching Protocols", 23);
    r->started = 1;
    r->ws_accepted = 1;
    /* Frames the client sent right behind its handshake are read with the rest. */
    if (c->rpos < c->in.len) {
        if (cu_buf_append(&c->bin, c->in.data + c->rpos, c->in.len - c->rpos) != CU_OK)
            return -1;
        c->rpos = c->in.len;
    }
    if (cu_conn_flush_nb(c) == CU_ERROR) {
        r->gone = 1;
        client_gone(r);
    }
    ws_process(r);
    set_watch(r);
    return 0;
}

static PyObject *ws_send(asgi_req_t *r, PyObject *msg, PyObject *type)
{
    const char *t = PyUnicode_Check(type) ? PyUnicode_AsUTF8(type) : NULL;
    if (t == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "message type must be a str");
        return NULL;
    }
    if (r->c == NULL || r->gone || (r->ws_closed && strcmp(t, "websocket.close") != 0)) {
        PyErr_SetString(A.disconnected, "websocket closed");
        return NULL;
    }
    if (!r->ws_accepted && strcmp(t, "websocket.http.response.start") == 0 && !r->started) {
        /* The denial extension: an HTTP response instead of the handshake. */
        if (start_response(r, msg) < 0)
            return NULL;
        r->c->keep_alive = 0;
        return ready_new(NULL);
    }
    if (!r->ws_accepted && r->started && strcmp(t, "websocket.http.response.body") == 0)
        return send_body(r, msg);
    if (strcmp(t, "websocket.accept") == 0) {
        if (r->ws_accepted || r->started) {
            PyErr_SetString(PyExc_RuntimeError, "websocket.accept sent twice or after a response");
            return NULL;
        }
        if (ws_accept(r, msg) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "cannot send the handshake response");
            return NULL;
        }
        return ready_new(NULL);
    }
    if (strcmp(t, "websocket.close") == 0) {
        if (!r->ws_accepted) {
            ws_deny(r);
            return ready_new(NULL);
        }
        PyObject *co = PyDict_GetItemString(msg, "code");
        PyObject *ro = PyDict_GetItemString(msg, "reason");
        int code = co && co != Py_None ? (int)PyLong_AsLong(co) : CU_WS_CLOSE_NORMAL;
        Py_ssize_t rl = 0;
        const char *reason = ro && ro != Py_None ? PyUnicode_AsUTF8AndSize(ro, &rl) : "";
        if (PyErr_Occurred())
            return NULL;
        ws_close(r, code, reason, (size_t)rl);
        if (!r->ws_close_code)
            r->ws_close_code = code;
        finish(r, CU_ERROR);
        return ready_new(NULL);
    }
    if (strcmp(t, "websocket.send") != 0) {
        PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R for a websocket", type);
        return NULL;
    }
    if (!r->ws_accepted) {
        PyErr_SetString(PyExc_RuntimeError, "websocket.send before websocket.accept");
        return NULL;
    }
    PyObject *b = PyDict_GetItemString(msg, "bytes");
    PyObject *tx = PyDict_GetItemString(msg, "text");
    int rc;
    if (b != NULL && b != Py_None) {
        Py_buffer v;
        if (PyObject_GetBuffer(b, &v, PyBUF_SIMPLE) < 0)
            return NULL;
        rc = ws_write(r, CU_WS_BINARY, v.buf, (size_t)v.len);
        PyBuffer_Release(&v);
    } else if (tx != NULL && tx != Py_None) {
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(tx, &n);
        if (u == NULL)
            return NULL;
        rc = ws_write(r, CU_WS_TEXT, u, (size_t)n);
    } else {
        PyErr_SetString(PyExc_RuntimeError, "websocket.send needs bytes or text");
        return NULL;
    }
    if (rc < 0)
        return raise_gone(r);
    if (r->c != NULL && cu_buf_unread(&r->c->out) > SEND_HIGH)
        return waiter_new(r, WAIT_SEND);
    set_watch(r);
    return ready_new(NULL);
}

static int is_websocket(const cu_req_t *q)
{
    for (size_t i = 0; i < q->nheaders; i++) {
        const cu_header_t *h = &q->headers[i];
        if (h->name.len == 7 && strncasecmp(h->name.p, "upgrade", 7) == 0 && h->value.len == 9 &&
            strncasecmp(h->value.p, "websocket", 9) == 0)
            return 1;
    }
    return 0;
}

static const cu_header_t *find_header(const cu_req_t *q, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < q->nheaders; i++)
        if (q->headers[i].name.len == nl && strncasecmp(q->headers[i].name.p, name, nl) == 0)
            return &q->headers[i];
    return NULL;
}

/* Before any Python: version 13 and a key, or the handshake is answered here. CU_OK to go
 * on, CU_ERROR when answered (426 or 400). */
static int ws_precheck(cu_conn_t *c)
{
    const cu_header_t *v = find_header(&c->request, "sec-websocket-version");
    if (v == NULL || v->value.len != 2 || memcmp(v->value.p, "13", 2) != 0) {
        c->keep_alive = 0;
        if (cu_resp_begin(c, "426 Upgrade Required", 20) == CU_OK &&
            cu_resp_header(c, "Sec-WebSocket-Version", 21, "13", 2) == CU_OK) {
            cu_resp_hold(c);
            (void)cu_resp_finish(c);
        }
        access_log(c);
        return CU_ERROR;
    }
    if (find_header(&c->request, "sec-websocket-key") == NULL) {
        (void)cu_resp_error(c, 400, "Missing Sec-WebSocket-Key");
        access_log(c);
        return CU_ERROR;
    }
    return CU_OK;
}

/* ---- events on the connection while the app owns it ---- */

void cu_py_asgi_app_io(cu_engine_t *e, cu_conn_t *c, int events)
{
    asgi_req_t *r = c->app_data;
    if (r == NULL) {
        (void)cu_engine_app_watch(e, c, 0);
        return;
    }
    int stream = cu_h2_is_stream(c); /* an HTTP/2 stream's events come from workers/h2.c */
    Py_INCREF(r);
    if ((r->waiter[WAIT_SEND] != NULL || r->ws) && (events & (CU_EV_WRITE | CU_EV_ERROR))) {
        int rc = cu_conn_flush_nb(c);
        if (rc == CU_ERROR) {
            r->gone = 1;
            client_gone(r);
            wake(r, WAIT_SEND, NULL, A.disconnected);
        } else if (r->pend.obj != NULL) {
            send_pending(r);
        } else if (cu_buf_unread(&c->out) <= SEND_HIGH / 2) {
            wake(r, WAIT_SEND, NULL, NULL);
        }
    }
    if ((events & (CU_EV_READ | CU_EV_ERROR)) && r->c != NULL && !r->eof) {
        /* Body bytes in `in` not consumed yet: the app reads them first, unless they end
         * inside a chunk header (the rest is on the socket: read it into bin, where the
         * decoder goes on after `in`). */
        if (!c->body.done && c->rpos < c->in.len && (!c->request.chunked || body_ready(c))) {
            r->read_paused = 1;
        } else if (cu_buf_unread(&c->bin) >= READ_AHEAD ||
                   cu_buf_reserve(&c->bin, BIN_RESERVE) != CU_OK) {
            r->read_paused = 1; /* back-pressure: the app has not taken what we have */
        } else {
            ssize_t n = c->t.ops->read(&c->t, c->bin.data + c->bin.len, c->bin.cap - c->bin.len);
            if (n > 0)
                c->bin.len += (size_t)n;
            else if (n == 0 && stream)
                r->body_eof = 1; /* END_STREAM: receive() ends the body, no disconnect */
            else if (n != CU_AGAIN)
                client_gone(r);
        }
        if (stream && (events & CU_EV_ERROR))
            client_gone(r); /* RST_STREAM, or the connection went */
        if (r->ws && r->ws_accepted)
            ws_process(r);
        if (r->waiter[WAIT_RECV] != NULL) {
            PyObject *m = try_receive(r);
            if (m != NULL) {
                wake(r, WAIT_RECV, m, NULL);
                Py_DECREF(m);
            } else if (PyErr_Occurred()) {
                PyErr_Clear();
                m = disconnect_msg(r);
                wake(r, WAIT_RECV, m, NULL);
                Py_XDECREF(m);
            }
        }
    }
    if ((r->gone || r->eof) && r->waiter[WAIT_RECV] != NULL) {
        PyObject *m = r->ws ? try_receive(r) : disconnect_msg(r);
        if (m == NULL) {
            PyErr_Clear();
            m = disconnect_msg(r);
        }
        wake(r, WAIT_RECV, m, NULL);
        Py_XDECREF(m);
    }
    if (r->ws && r->ws_accepted && r->eof && r->c != NULL && !PyList_GET_SIZE(r->ws_queue)) {
        if (!r->ws_close_code)
            r->ws_close_code = CU_WS_CLOSE_ABNORMAL;
        finish(r, CU_ERROR); /* the client dropped the connection without a close frame */
    }
    set_watch(r);
    Py_DECREF(r);
}

/* ---- the request's task ---- */

/* The app's coroutine ended: log what it raised, answer 500 (or cut the response) when it
 * left the response unfinished. `exc` borrowed, NULL when it returned. */
static void app_finished(asgi_req_t *r, PyObject *exc, int cancelled)
{
    if (exc == NULL && !cancelled && r->body_done && !r->complete && r->c != NULL) {
        /* It announced trailers and sent none: the response ends without them. */
        r->complete = 1;
        finish(r, cu_resp_finish(r->c));
    }
    if (exc != NULL && !(r->gone && PyErr_GivenExceptionMatches(exc, A.disconnected))) {
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc),
                      PyException_GetTraceback(exc));
        cu__py_log_exception(CU_LOG_ERROR, "Exception in ASGI application");
    } else if (!r->complete && r->c != NULL && !cancelled && !r->eof && !r->ws) {
        cu_log_error("ASGI callable returned without completing response");
    }
    if (r->c != NULL && r->ws && r->ws_accepted) {
        /* The app left an open WebSocket: close it properly. */
        ws_close(r, exc != NULL ? CU_WS_CLOSE_INTERNAL : CU_WS_CLOSE_NORMAL, NULL, 0);
        finish(r, CU_ERROR);
    } else if (r->c != NULL && r->ws && !r->started) {
        /* It returned (or failed) before accepting: the handshake is refused. */
        ws_deny(r);
    } else if (r->c != NULL) {
        cu_conn_t *c = r->c;
        if (!r->started || !c->resp.head_sent) {
            (void)cu_resp_error(c, 500, NULL);
        } else {
            cu_conn_abort(c);
            (void)cu_conn_flush_nb(c);
        }
        finish(r, CU_ERROR);
    }
    PyObject *dm = disconnect_msg(r);
    wake(r, WAIT_RECV, dm, NULL);
    Py_XDECREF(dm);
    PyErr_Clear();
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
    Py_CLEAR(r->ws_queue);
    Py_CLEAR(r->hreq);
    Py_CLEAR(r->body_timer);
    if (r->pend.obj != NULL)
        PyBuffer_Release(&r->pend);
    cu_buf_free(&r->ws_msg);
    cu_resp_head_free(&r->trailers);
    cu_ws_deflate_free(&r->ws_z);
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

/* The first `count` request headers as the scope's list of (name, value) bytes pairs. */
static PyObject *build_headers(const cu_req_t *q, size_t count)
{
    PyObject *list = PyList_New((Py_ssize_t)count);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
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

/* The request headers the scope shows: on an HTTP/2 stream, workers/h2.c appends
 * `version: 2` last (gunicorn's HTTP_VERSION for WSGI); the client did not send it and
 * gunicorn's ASGI scope has no such header. */
static size_t scope_nheaders(cu_conn_t *c)
{
    const cu_req_t *q = &c->request;
    size_t n = q->nheaders;
    if (n && cu_h2_is_stream(c) && q->headers[n - 1].name.len == 7 &&
        memcmp(q->headers[n - 1].name.p, "version", 7) == 0)
        n--;
    return n;
}

/* An HTTP/2 stream's scope offers what gunicorn 27's does: response trailers, and the
 * stream's priority (RFC 7540 5.3) as http.response.priority. */
static int h2_extensions(PyObject *s, const cu_req_t *q)
{
    PyObject *ext = _PyDict_NewPresized(2), *tr = PyDict_New(), *prio = _PyDict_NewPresized(2);
    PyObject *w = PyLong_FromLong(q->priority_weight);
    PyObject *d = PyLong_FromLong(q->priority_depends_on);
    int rc = ext && tr && prio && w && d && PyDict_SetItem(prio, A.k_weight, w) == 0 &&
                     PyDict_SetItem(prio, A.k_depends_on, d) == 0 &&
                     PyDict_SetItem(ext, A.k_ext_trailers, tr) == 0 &&
                     PyDict_SetItem(ext, A.k_ext_priority, prio) == 0 &&
                     PyDict_SetItem(s, A.k_extensions, ext) == 0
                 ? 0
                 : -1;
    Py_XDECREF(ext);
    Py_XDECREF(tr);
    Py_XDECREF(prio);
    Py_XDECREF(w);
    Py_XDECREF(d);
    return rc;
}

static PyObject *build_scope(cu_conn_t *c, int https)
{
    const cu_req_t *q = &c->request;
    PyObject *s = _PyDict_NewPresized(14);
    if (s == NULL)
        return NULL;
    PyObject *ver;
    if (q->version_major == 1 && q->version_minor <= 1) {
        ver = shared(q->version_minor ? V_V11 : V_V10);
    } else if (q->version_major >= 2) {
        ver = PyUnicode_FromFormat("%d", q->version_major); /* "2", as the ASGI spec says */
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
    PyObject *scheme = shared(https ? V_SCHEME_HTTPS : V_SCHEME_HTTP);
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
        set_key(s, K_HEADERS, build_headers(q, scope_nheaders(c))) < 0 ||
        set_key(s, K_SERVER, server_tuple(q->listener)) < 0 || set_key(s, K_CLIENT, client) < 0 ||
        (A.state != NULL && set_key(s, K_STATE, PyDict_Copy(A.state)) < 0)) {
        Py_DECREF(s);
        return NULL;
    }
    if (cu_h2_is_stream(c) && h2_extensions(s, q) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return s;
}

/* The websocket scope: the HTTP one less `method`, with ws/wss, the offered subprotocols
 * and the denial-response extension. */
static PyObject *ws_scope(cu_conn_t *c, int https)
{
    PyObject *s = build_scope(c, https);
    if (s == NULL)
        return NULL;
    const char *sch = https ? "wss" : "ws";
    PyObject *subs = PyList_New(0);
    const cu_req_t *q = &c->request;
    for (size_t i = 0; subs && i < q->nheaders; i++) {
        const cu_header_t *h = &q->headers[i];
        if (h->name.len != 22 || strncasecmp(h->name.p, "sec-websocket-protocol", 22) != 0)
            continue;
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e2 = comma ? comma : end;
            const char *a = p;
            while (a < e2 && (*a == ' ' || *a == '\t'))
                a++;
            const char *b = e2;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            if (b > a) {
                PyObject *u = PyUnicode_DecodeLatin1(a, b - a, NULL);
                if (u == NULL || PyList_Append(subs, u) < 0)
                    Py_CLEAR(subs);
                Py_XDECREF(u);
            }
            p = comma ? comma + 1 : end;
        }
    }
    PyObject *ext = Py_BuildValue("{s:{}}", "websocket.http.response");
    if (subs == NULL || ext == NULL ||
        PyDict_SetItem(s, keys[K_TYPE], PyUnicode_InternFromString("websocket")) < 0 ||
        PyDict_DelItem(s, keys[K_METHOD]) < 0 ||
        set_key(s, K_SCHEME, PyUnicode_FromString(sch)) < 0 ||
        PyDict_SetItemString(s, "subprotocols", subs) < 0 ||
        PyDict_SetItemString(s, "extensions", ext) < 0) {
        Py_XDECREF(subs);
        Py_XDECREF(ext);
        Py_DECREF(s);
        return NULL;
    }
    Py_DECREF(subs);
    Py_DECREF(ext);
    return s;
}

/* ---- dispatch (from inside cu_engine_step, GIL held) ---- */

int cu_py_asgi_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    PyObject *scope = NULL, *recv = NULL, *send = NULL, *coro = NULL, *task = NULL;
    PyObject *done = NULL, *rv = NULL;
    /* The scheme as for WSGI: secure_scheme_headers count from trusted forwarders only. */
    int https = cu__request_https(c);
    if (https < 0) {
        (void)cu_resp_error(c, 400, "Contradictory scheme headers");
        access_log(c);
        return CU_ERROR;
    }
    /* WebSockets over HTTP/2 (RFC 8441) are not served: a stream is always http. */
    int ws = !cu_h2_is_stream(c) && is_websocket(&c->request);
    if (ws && ws_precheck(c) != CU_OK)
        return CU_ERROR;
    asgi_req_t *r = PyObject_New(asgi_req_t, &req_type);
    if (r == NULL)
        goto fail;
    memset((char *)r + sizeof(PyObject), 0, sizeof(*r) - sizeof(PyObject));
    r->c = c;
    r->ws = ws;
    cu_buf_init(&r->ws_msg, 0, ws ? (size_t)A.cfg->websocket_max_message_size + 1 : 0);
    cu_buf_init(&r->trailers.store, 0, 1 << 16);
    if (ws && (r->ws_queue = PyList_New(0)) == NULL)
        goto fail;
    if (cu__hook_pre_request_fn != NULL || cu__hook_post_request_fn != NULL) {
        /* gunicorn's ASGI worker calls pre_request before the app, post_request after. */
        int raised = 0;
        r->hreq = cu__hook_request(c, &raised);
        if (raised)
            goto fail; /* answered 500 like an app error */
    }
    scope = ws ? ws_scope(c, https) : build_scope(c, https);
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
    if (rv != NULL) {
        r->task = Py_NewRef(task);
        if (ws && PySet_Add(A.ws_live, (PyObject *)r) < 0)
            PyErr_Clear();
    } else {
        /* Answer through the same path as the app's own failure. */
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "cannot run the ASGI application");
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
    (void)cu_resp_error(c, 500, NULL);
    access_log(c);
    if (r != NULL && r->hreq != NULL)
        cu__hook_post_request(c, r->hreq, NULL, 1);
    Py_XDECREF(r);
    return CU_ERROR;
}

/* ---- the engine seen from src/py/lib/_asgi.py ---- */

/* Run what is ready; then the seconds until the engine's next timer (-1: none), or -2
 * stopped after a graceful stop (lifespan shutdown runs), -3 after a quick one. */
static PyObject *eng_step(PyObject *m, PyObject *unused)
{
    int rc = cu_engine_step(A.e);
    if (PyErr_Occurred())
        PyErr_Clear();
    if (A.e->stopping && !A.ws_stopping && PySet_GET_SIZE(A.ws_live) > 0) {
        /* A graceful stop: WebSockets never end by themselves; close them (1001 "going
         * away"), so the worker can leave once in-flight HTTP requests are done. */
        A.ws_stopping = 1;
        PyObject *live = PySequence_List(A.ws_live);
        for (Py_ssize_t i = 0; live && i < PyList_GET_SIZE(live); i++) {
            asgi_req_t *r = (asgi_req_t *)PyList_GET_ITEM(live, i);
            if (r->c == NULL)
                continue;
            if (r->ws_accepted) {
                ws_close(r, CU_WS_CLOSE_GOING_AWAY, NULL, 0);
                r->ws_close_code = CU_WS_CLOSE_GOING_AWAY;
                r->eof = 1;
                finish(r, CU_ERROR);
            }
        }
        Py_XDECREF(live);
        PyErr_Clear();
        rc = cu_engine_step(A.e);
    }
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
    PyObject *loop, *state, *step = NULL;
    if (!PyArg_ParseTuple(args, "OO|O", &loop, &state, &step))
        return NULL;
    Py_XSETREF(A.step_cb, Py_XNewRef(step));
    Py_XSETREF(A.loop, Py_NewRef(loop));
    Py_XSETREF(A.state, Py_NewRef(state));
    Py_XSETREF(A.create_task, PyObject_GetAttrString(loop, "create_task"));
    Py_XSETREF(A.create_future, PyObject_GetAttrString(loop, "create_future"));
    Py_XSETREF(A.call_later, PyObject_GetAttrString(loop, "call_later"));
    Py_XSETREF(A.call_soon, PyObject_GetAttrString(loop, "call_soon"));
    if (A.pending == NULL)
        A.pending = PyList_New(0);
    if (A.complete_cb == NULL)
        A.complete_cb = PyCFunction_New(&complete_def, NULL);
    if (!A.create_task || !A.create_future || !A.call_later || !A.call_soon || !A.pending ||
        !A.complete_cb)
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
        intern(&A.s_add_done_callback, "add_done_callback") || intern(&A.s_cancel, "cancel") ||
        intern(&A.k_trailers, "trailers") || intern(&A.k_more_trailers, "more_trailers") ||
        intern(&A.s_informational, "http.response.informational") ||
        intern(&A.s_trailers, "http.response.trailers") || intern(&A.k_extensions, "extensions") ||
        intern(&A.k_ext_trailers, "http.response.trailers") ||
        intern(&A.k_ext_priority, "http.response.priority") || intern(&A.k_weight, "weight") ||
        intern(&A.k_depends_on, "depends_on"))
        return -1;
    A.empty_bytes = PyBytes_FromStringAndSize("", 0);
    A.ws_live = PySet_New(NULL);
    cu_buf_init(&A.zbuf, 0, (size_t)cfg->websocket_max_message_size + 65536);
    A.msg_disconnect = Py_BuildValue("{s:s}", "type", "http.disconnect");
    A.scope_asgi = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    A.root_path = PyUnicode_FromString(cfg->root_path ? cfg->root_path : "");
    A.disconnected = PyErr_NewExceptionWithDoc(
        "cunicorn.ClientDisconnected",
        "send() after the client closed the connection (an OSError, like uvicorn's).",
        PyExc_OSError, NULL);
    if (!A.empty_bytes || !A.ws_live || !A.msg_disconnect || !A.scope_asgi || !A.root_path ||
        !A.disconnected)
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
    PyObject *mod = NULL, *eng = NULL, *rv = NULL;
    A.e = e;
    A.app = Py_XNewRef(cu__py.app);
    if (A.app == NULL || asgi_globals(cfg) < 0)
        goto done;
    mod = cu__py_module("cunicorn._asgi"); /* new ref */
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
    PyGILState_Release(g);
    return code;
}
