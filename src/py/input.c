/* wsgi.input: the request body as a binary file, streamed from the connection with
 * cu_body_read (GIL released during the call). Memory stays bounded: read(n) allocates at
 * most n (or what is left of a known Content-Length), readline keeps one 8 KiB look-ahead
 * buffer; only read() / readline() without a limit grow with the body, as the app asked. */
#include "py/py_internal.h"

#define INPUT_BUF 8192
#define READ_STEP 65536 /* first allocation of an unbounded read of a chunked body */

typedef struct {
    PyObject_HEAD cu_conn_t *c; /* borrowed; NULL once the request is over */
    char *buf; /* readline look-ahead: bytes [pos, len) are body not yet returned */
    size_t pos;
    size_t len;
    unsigned eof : 1;
} cu__input_t;

static PyObject *detached(void)
{
    PyErr_SetString(PyExc_ValueError, "I/O operation on wsgi.input of a finished request");
    return NULL;
}

/* Read up to n body bytes from the connection into dst (caller's memory, stable while the
 * GIL is released). Returns bytes, 0 at the end, -1 with OSError set. */
static ssize_t fill(cu__input_t *in, char *dst, size_t n)
{
    cu_conn_t *c = in->c;
    if (in->eof || c->body.done) {
        in->eof = 1;
        return 0;
    }
    ssize_t r;
    PyThreadState *ts = PyEval_SaveThread();
    r = cu_body_read(c, dst, n);
    PyEval_RestoreThread(ts);
    if (r == 0)
        in->eof = 1;
    if (r < 0) {
        in->eof = 1;
        PyErr_SetString(PyExc_OSError, "could not read the request body (client disconnected, "
                                       "timed out or sent invalid chunked framing)");
    }
    return r;
}

static int parse_size(PyObject *const *args, Py_ssize_t nargs, const char *fn, Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fn, nargs);
        return -1;
    }
    if (nargs == 1 && args[0] != Py_None) {
        if (!PyIndex_Check(args[0])) {
            PyErr_Format(PyExc_TypeError, "%s() argument must be int or None, not %.100s", fn,
                         Py_TYPE(args[0])->tp_name);
            return -1;
        }
        *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
        if (*size == -1 && PyErr_Occurred())
            return -1;
        if (*size < 0)
            *size = -1;
    }
    return 0;
}

static PyObject *input_read(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    cu__input_t *in = (cu__input_t *)op;
    Py_ssize_t size;
    if (parse_size(args, nargs, "read", &size) < 0)
        return NULL;
    if (in->c == NULL)
        return detached();
    size_t have = in->len - in->pos;
    size_t want = size < 0 ? (size_t)PY_SSIZE_T_MAX : (size_t)size;
    if (want <= have) {
        PyObject *r = PyBytes_FromStringAndSize(in->buf + in->pos, (Py_ssize_t)want);
        if (r != NULL)
            in->pos += want;
        return r;
    }

    /* Allocate what the body can still hold when its length is known, else start small
     * and double: a read(huge) of a chunked body, or of an HTTP/2 body without
     * content-length (it ends with the stream), must not reserve `huge`. */
    const cu_conn_t *c = in->c;
    int64_t rem = c->body.done ? 0 : c->request.body_to_eof ? -1 : c->body.remaining;
    size_t alloc;
    if (rem >= 0)
        alloc = (uint64_t)rem < want - have ? have + (size_t)rem : want;
    else
        alloc = want - have < READ_STEP ? want : have + READ_STEP;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)alloc); /* new ref */
    if (out == NULL)
        return NULL;
    if (have > 0)
        memcpy(PyBytes_AS_STRING(out), in->buf + in->pos, have);
    in->pos = in->len = 0;
    size_t n = have;
    while (n < want && !in->eof && !in->c->body.done) {
        if (n == alloc) {
            size_t grow = alloc < READ_STEP ? READ_STEP : alloc;
            alloc = want - alloc < grow ? want : alloc + grow;
            if (_PyBytes_Resize(&out, (Py_ssize_t)alloc) < 0)
                return NULL;
        }
        ssize_t r = fill(in, PyBytes_AS_STRING(out) + n, alloc - n);
        if (r < 0) {
            Py_DECREF(out);
            return NULL;
        }
        n += (size_t)r;
    }
    if (n != alloc && _PyBytes_Resize(&out, (Py_ssize_t)n) < 0)
        return NULL;
    return out;
}

/* One line (up to `limit` bytes) as bytes; b"" at the end of the body. */
static PyObject *readline_impl(cu__input_t *in, size_t limit)
{
    char *acc = NULL; /* only for lines longer than what the buffer holds at once */
    size_t acclen = 0;
    PyObject *r = NULL;
    if (limit == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    for (;;) {
        size_t avail = in->len - in->pos;
        if (avail > 0) {
            size_t scan = avail < limit - acclen ? avail : limit - acclen;
            const char *start = in->buf + in->pos;
            const char *nl = memchr(start, '\n', scan);
            size_t take = nl ? (size_t)(nl - start) + 1 : scan;
            int complete = nl != NULL || acclen + take == limit;
            if (complete && acc == NULL) {
                r = PyBytes_FromStringAndSize(start, (Py_ssize_t)take);
                if (r != NULL)
                    in->pos += take;
                return r;
            }
            acc = cu_xrealloc(acc, acclen + take);
            memcpy(acc + acclen, start, take);
            acclen += take;
            in->pos += take;
            if (complete)
                break;
        }
        if (in->buf == NULL)
            in->buf = cu_xmalloc(INPUT_BUF);
        in->pos = in->len = 0;
        ssize_t got = fill(in, in->buf, INPUT_BUF);
        if (got < 0) {
            cu_free(acc);
            return NULL;
        }
        if (got == 0)
            break;
        in->len = (size_t)got;
    }
    r = PyBytes_FromStringAndSize(acc, (Py_ssize_t)acclen);
    cu_free(acc);
    return r;
}

static PyObject *input_readline(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    cu__input_t *in = (cu__input_t *)op;
    Py_ssize_t size;
    if (parse_size(args, nargs, "readline", &size) < 0)
        return NULL;
    if (in->c == NULL)
        return detached();
    return readline_impl(in, size < 0 ? (size_t)PY_SSIZE_T_MAX : (size_t)size);
}

static PyObject *input_readlines(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    cu__input_t *in = (cu__input_t *)op;
    Py_ssize_t hint;
    if (parse_size(args, nargs, "readlines", &hint) < 0)
        return NULL;
    if (in->c == NULL)
        return detached();
    PyObject *lines = PyList_New(0); /* new ref */
    if (lines == NULL)
        return NULL;
    size_t total = 0;
    for (;;) {
        PyObject *line = readline_impl(in, (size_t)PY_SSIZE_T_MAX); /* new ref */
        if (line == NULL) {
            Py_DECREF(lines);
            return NULL;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0) {
            Py_DECREF(line);
            break;
        }
        int rc = PyList_Append(lines, line);
        Py_DECREF(line);
        if (rc < 0) {
            Py_DECREF(lines);
            return NULL;
        }
        total += (size_t)n;
        if (hint > 0 && total >= (size_t)hint)
            break;
    }
    return lines;
}

static PyObject *input_next(PyObject *op)
{
    cu__input_t *in = (cu__input_t *)op;
    if (in->c == NULL)
        return detached();
    PyObject *line = readline_impl(in, (size_t)PY_SSIZE_T_MAX);
    if (line != NULL && PyBytes_GET_SIZE(line) == 0)
        Py_CLEAR(line); /* StopIteration */
    return line;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
     "read(size=-1) -> bytes: up to size bytes, all of the rest when size < 0 or None."},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline(size=-1) -> bytes: one line, at most size bytes."},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1) -> list of lines, stopping once hint bytes were read."},
    {NULL, NULL, 0, NULL},
};

static void input_dealloc(PyObject *op)
{
    cu__input_t *in = (cu__input_t *)op;
    cu_free(in->buf);
    Py_TYPE(op)->tp_free(op);
}

PyTypeObject cu__input_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.Input",
    .tp_basicsize = sizeof(cu__input_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, read from the connection as the app asks.",
    .tp_dealloc = input_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_next,
    .tp_methods = input_methods,
};

/* One spare object per thread: when the app kept no reference to the last request's
 * input, it is reused instead of allocated again. */
static _Thread_local PyObject *spare;

PyObject *cu__input_new(cu_conn_t *c)
{
    cu__input_t *in;
    if (spare != NULL && Py_REFCNT(spare) == 1) {
        in = (cu__input_t *)spare;
    } else {
        Py_CLEAR(spare);
        in = PyObject_New(cu__input_t, &cu__input_type);
        if (in == NULL)
            return NULL;
        in->buf = NULL;
        spare = (PyObject *)in;
    }
    in->c = c;
    in->pos = in->len = 0;
    in->eof = 0;
    Py_INCREF(in);
    return (PyObject *)in;
}

void cu__input_detach(PyObject *input)
{
    cu__input_t *in = (cu__input_t *)input;
    in->c = NULL;
    in->pos = in->len = 0;
}
