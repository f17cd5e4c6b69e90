/* environ["gunicorn.socket"]: the connection's socket, for apps that take the connection
 * over (Flask-Sock / simple-websocket, python-socketio's threading mode, anything that
 * speaks its own protocol after a 101). A small proxy stands in the environ of every
 * request; the first time the app touches it, it becomes a real blocking socket.socket on
 * a dup of the connection's fd and the connection is marked taken over: from then on the
 * server writes nothing on it (no response, no error page, no keep-alive) and only lets go
 * of its own fd when the app returns, so the connection lives as long as the app's socket.
 * The request is still counted and logged (status 101 for an Upgrade request the app
 * answered itself). */
#include "py/py_internal.h"

#include <unistd.h>

typedef struct {
    PyObject_HEAD cu_conn_t *c; /* borrowed; NULL once the request is over */
    PyObject *sock;             /* the socket.socket the app got (new ref), or NULL */
} cu__sock_t;

/* The real socket: a dup of the connection's fd, blocking, after whatever the server still
 * had queued for this connection went out (pipelined responses before this one). */
static PyObject *materialize(cu__sock_t *self)
{
    if (self->sock != NULL)
        return self->sock;
    cu_conn_t *c = self->c;
    if (c == NULL) {
        PyErr_SetString(PyExc_OSError, "gunicorn.socket used after the request finished");
        return NULL;
    }
    if (c->t.ops != &cu_transport_plain) {
        PyErr_Format(PyExc_OSError, "gunicorn.socket: a %s connection cannot be taken over",
                     c->t.ops->name);
        return NULL;
    }
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = cu_buf_unread(&c->out) ? cu_conn_flush(c) : CU_OK;
    PyEval_RestoreThread(ts);
    if (rc != CU_OK) {
        PyErr_SetString(PyExc_OSError, "gunicorn.socket: the client is gone");
        return NULL;
    }
    static PyObject *socket_cls; /* socket.socket, kept for the process's life */
    if (socket_cls == NULL) {
        PyObject *mod = PyImport_ImportModule("socket");
        socket_cls = mod ? PyObject_GetAttrString(mod, "socket") : NULL;
        Py_XDECREF(mod);
        if (socket_cls == NULL)
            return NULL;
    }
    int fd = dup(c->t.fd);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *kw = Py_BuildValue("{si}", "fileno", fd);
    PyObject *args = PyTuple_New(0);
    PyObject *s = kw && args ? PyObject_Call(socket_cls, args, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(args);
    if (s == NULL) {
        close(fd);
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(s, "setblocking", "O", Py_True);
    if (r == NULL) {
        Py_DECREF(s); /* closes fd */
        return NULL;
    }
    Py_DECREF(r);
    self->sock = s;
    c->taken_over = 1;
    return s;
}

static PyObject *sock_getattro(PyObject *op, PyObject *name)
{
    /* Introspection (copy, pickle, debug printers) is not the app using the socket. */
    if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) > 1 &&
        PyUnicode_READ_CHAR(name, 0) == '_' && PyUnicode_READ_CHAR(name, 1) == '_')
        return PyObject_GenericGetAttr(op, name);
    PyObject *s = materialize((cu__sock_t *)op);
    return s ? PyObject_GetAttr(s, name) : NULL;
}

static PyObject *sock_repr(PyObject *op)
{
    cu__sock_t *self = (cu__sock_t *)op;
    if (self->sock)
        return PyObject_Repr(self->sock);
    return PyUnicode_FromString("<cunicorn connection socket (not taken over)>");
}

static void sock_dealloc(PyObject *op)
{
    Py_CLEAR(((cu__sock_t *)op)->sock);
    Py_TYPE(op)->tp_free(op);
}

PyTypeObject cu__sock_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.ConnectionSocket",
    .tp_basicsize = sizeof(cu__sock_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "environ['gunicorn.socket']: the connection's socket; using it takes the "
              "connection over",
    .tp_getattro = sock_getattro,
    .tp_repr = sock_repr,
    .tp_dealloc = sock_dealloc,
};

static PyObject *spare; /* recycled when nobody else holds it (GIL held) */

PyObject *cu__sock_new(cu_conn_t *c)
{
    cu__sock_t *self;
    if (spare != NULL && Py_REFCNT(spare) == 1) {
        self = (cu__sock_t *)spare;
    } else {
        Py_CLEAR(spare);
        self = PyObject_New(cu__sock_t, &cu__sock_type);
        if (self == NULL)
            return NULL;
        self->sock = NULL;
        spare = (PyObject *)self;
    }
    self->c = c;
    Py_INCREF(self);
    return (PyObject *)self;
}

void cu__sock_detach(PyObject *sock)
{
    cu__sock_t *self = (cu__sock_t *)sock;
    self->c = NULL;
    /* The app's socket lives on only through the app's own references (the proxy refuses
     * further use): unclosed, it closes when the app drops it. */
    Py_CLEAR(self->sock);
}
