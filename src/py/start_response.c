/* start_response(status, headers, exc_info=None) and the write(data) callable it returns
 * (PEP 3333), validating like gunicorn's Response.start_response/process_headers before the
 * status and headers go to the connection's response writer. */
#include "py/py_internal.h"

#include <errno.h>

/* RFC 9110 tchar. */
static int is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != 0 && ch < 0x80 && strchr(extra, ch) != NULL);
}

/* field-vchar / SP / HTAB: what gunicorn's HEADER_VALUE_RE and STATUS_RE allow. */
static int is_vchar_or_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || (ch >= 0x21 && ch <= 0x7e) || ch >= 0x80;
}

/* The latin-1 bytes of a str whose characters all fit in one byte, else NULL. Borrowed. */
static const char *latin1(PyObject *s, Py_ssize_t *len)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return NULL;
    }
#endif
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
        return NULL;
    *len = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

static int status_ok(const char *p, Py_ssize_t n)
{
    if (n < 3 || !(p[0] >= '0' && p[0] <= '9') || !(p[1] >= '0' && p[1] <= '9') ||
        !(p[2] >= '0' && p[2] <= '9'))
        return 0;
    if (n == 3)
        return 1;
    if (p[3] != ' ')
        return 0;
    for (Py_ssize_t i = 4; i < n; i++)
        if (!is_vchar_or_ws((unsigned char)p[i]))
            return 0;
    return 1;
}

/* Check one (name, value) pair; on success *name and *value are borrowed str objects. */
static int check_header(PyObject *item, PyObject **name, PyObject **value)
{
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 2) {
        *name = PyTuple_GET_ITEM(item, 0);
        *value = PyTuple_GET_ITEM(item, 1);
    } else if ((PyTuple_Check(item) || PyList_Check(item)) && PySequence_Size(item) == 2) {
        *name = PySequence_Fast_GET_ITEM(item, 0);
        *value = PySequence_Fast_GET_ITEM(item, 1);
    } else {
        PyErr_Format(PyExc_TypeError, "response header %R is not a (name, value) tuple", item);
        return -1;
    }
    if (!PyUnicode_Check(*name)) {
        PyErr_Format(PyExc_TypeError, "%R is not a string", *name);
        return -1;
    }
    Py_ssize_t n;
    const char *p = latin1(*name, &n);
    int ok = p != NULL && n > 0;
    for (Py_ssize_t i = 0; ok && i < n; i++)
        ok = is_tchar((unsigned char)p[i]);
    if (!ok) {
        PyErr_Format(cu__py.exc_header_name,
                     "Invalid response header name from the application: %R", *name);
        return -1;
    }
    if (!PyUnicode_Check(*value)) {
        PyErr_Format(PyExc_TypeError, "%R is not a string", *value);
        return -1;
    }
    p = latin1(*value, &n);
    ok = p != NULL;
    for (Py_ssize_t i = 0; ok && i < n; i++)
        ok = is_vchar_or_ws((unsigned char)p[i]);
    if (!ok) {
        /* The name only: the value may hold data that must not travel further. */
        PyErr_Format(cu__py.exc_header, "Invalid response header from the application: %R", *name);
        return -1;
    }
    return 0;
}

/* ---- write(data) ---- */

static PyObject *sr_write(PyObject *op, PyObject *data)
{
    cu__start_resp_t *self = (cu__start_resp_t *)op;
    if (self->c == NULL) {
        PyErr_SetString(PyExc_ValueError, "write() called after the request finished");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "%R is not a byte", data);
        return NULL;
    }
    /* The caller holds `data` for the duration of the call. */
    cu_conn_t *c = self->c;
    const char *p = PyBytes_AS_STRING(data);
    size_t n = (size_t)PyBytes_GET_SIZE(data);
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = cu_resp_write(c, p, n);
    PyEval_RestoreThread(ts);
    if (rc != CU_OK) {
        self->io_failed = 1;
        errno = EPIPE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyMethodDef write_def = {"write", sr_write, METH_O,
                                "write(data): send bytes now (legacy WSGI write callable)."};

/* ---- wsgi.early_hints(headers) ---- */

/* The latin-1 bytes of a header part given as str or bytes; NULL if it is neither or
 * does not fit latin-1. */
static const char *part_bytes(PyObject *o, Py_ssize_t *n)
{
    if (PyBytes_Check(o)) {
        *n = PyBytes_GET_SIZE(o);
        return PyBytes_AS_STRING(o);
    }
    return PyUnicode_Check(o) ? latin1(o, n) : NULL;
}

/* The callable: a small object recycled between requests (like wsgi.input), so that
 * offering it costs no allocation per request. */
typedef struct {
    PyObject_HEAD vectorcallfunc vectorcall;
    cu_conn_t *c; /* borrowed; NULL once the request is over */
} cu__hints_t;

/* gunicorn 25+: send 103 Early Hints with these (name, value) pairs before the response,
 * validated like response headers; nothing once the response started or for HTTP/1.0. */
static PyObject *early_hints(cu__hints_t *self, PyObject *headers)
{
    if (self->c == NULL || self->c->resp.head_sent)
        Py_RETURN_NONE;
    PyObject *seq = PySequence_Fast(headers, "early hints must be a list of (name, value)");
    if (seq == NULL)
        return NULL;
    Py_ssize_t nh = PySequence_Fast_GET_SIZE(seq);
    cu_str_t *names = PyMem_Calloc((size_t)nh + 1, sizeof(*names));
    cu_str_t *values = PyMem_Calloc((size_t)nh + 1, sizeof(*values));
    PyObject *ret = NULL;
    if (names == NULL || values == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "early hint %R is not a (name, value) tuple", item);
            goto out;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t nl = 0, vl = 0;
        const char *np = part_bytes(name, &nl), *vp = part_bytes(value, &vl);
        int ok = np != NULL && nl > 0;
        for (Py_ssize_t k = 0; ok && k < nl; k++)
            ok = is_tchar((unsigned char)np[k]);
        if (!ok) {
            PyErr_Format(cu__py.exc_header_name,
                         "Invalid response header name from the application: %R", name);
            goto out;
        }
        ok = vp != NULL;
        for (Py_ssize_t k = 0; ok && k < vl; k++)
            ok = is_vchar_or_ws((unsigned char)vp[k]);
        if (!ok) {
            /* the name only, as gunicorn */
            PyErr_Format(cu__py.exc_header, "Invalid response header from the application: %R",
                         name);
            goto out;
        }
        while (vl > 0 && (*vp == ' ' || *vp == '\t'))
            vp++, vl--;
        while (vl > 0 && (vp[vl - 1] == ' ' || vp[vl - 1] == '\t'))
            vl--;
        names[i] = (cu_str_t){np, (size_t)nl};
        values[i] = (cu_str_t){vp, (size_t)vl};
    }
    /* seq keeps every name and value alive while the GIL is released */
    cu_conn_t *c = self->c;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = cu_resp_early_hints(c, names, values, (size_t)nh);
    PyEval_RestoreThread(ts);
    if (rc != CU_OK) {
        errno = EPIPE;
        PyErr_SetFromErrno(PyExc_OSError);
        goto out;
    }
    ret = Py_NewRef(Py_None);
out:
    PyMem_Free(names);
    PyMem_Free(values);
    Py_DECREF(seq);
    return ret;
}

static PyObject *hints_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "early_hints() takes one argument: the headers");
        return NULL;
    }
    return early_hints((cu__hints_t *)callable, args[0]);
}

PyTypeObject cu__hints_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.EarlyHints",
    .tp_basicsize = sizeof(cu__hints_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "wsgi.early_hints(headers): send 103 Early Hints with these (name, value) "
              "pairs now",
    .tp_vectorcall_offset = offsetof(cu__hints_t, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyObject *spare_hints; /* recycled when nobody else holds it (GIL held) */

PyObject *cu__early_hints_new(cu_conn_t *c)
{
    cu__hints_t *h;
    if (spare_hints != NULL && Py_REFCNT(spare_hints) == 1) {
        h = (cu__hints_t *)spare_hints;
    } else {
        Py_CLEAR(spare_hints);
        h = PyObject_New(cu__hints_t, &cu__hints_type);
        if (h == NULL)
            return NULL;
        h->vectorcall = hints_vectorcall;
        spare_hints = (PyObject *)h;
    }
    h->c = c;
    Py_INCREF(h);
    return (PyObject *)h;
}

void cu__early_hints_detach(PyObject *hints)
{
    ((cu__hints_t *)hints)->c = NULL;
}

/* ---- gunicorn.http2.send_trailers(trailers) ---- */

int cu__py_fields_from(PyObject *headers, cu_resp_head_t *h)
{
    PyObject *seq = PySequence_Fast(headers, "headers must be a sequence"); /* new ref */
    if (seq == NULL)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i), *pair = NULL;
        if ((PyTuple_Check(item) || PyList_Check(item)) && PySequence_Size(item) == 2) {
            PyObject *n = PySequence_GetItem(item, 0), *v = PySequence_GetItem(item, 1);
            if (n && PyBytes_Check(n))
                Py_SETREF(n,
                          PyUnicode_DecodeLatin1(PyBytes_AS_STRING(n), PyBytes_GET_SIZE(n), NULL));
            if (v && PyBytes_Check(v))
                Py_SETREF(v,
                          PyUnicode_DecodeLatin1(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), NULL));
            if (n && v)
                pair = PyTuple_Pack(2, n, v);
            Py_XDECREF(n);
            Py_XDECREF(v);
            if (pair == NULL) {
                rc = -1;
                break;
            }
        } else {
            Py_INCREF(item);
            pair = item;
        }
        PyObject *name, *value;
        if (check_header(pair, &name, &value) < 0) {
            rc = -1;
        } else {
            Py_ssize_t nl, vl;
            const char *np = latin1(name, &nl), *vp = latin1(value, &vl);
            while (vl && (*vp == ' ' || *vp == '\t'))
                vp++, vl--;
            while (vl && (vp[vl - 1] == ' ' || vp[vl - 1] == '\t'))
                vl--;
            if (cu_resp_head_add(h, np, (size_t)nl, vp, (size_t)vl) != CU_OK) {
                PyErr_SetString(PyExc_ValueError, "headers too large");
                rc = -1;
            }
        }
        Py_DECREF(pair);
    }
    Py_DECREF(seq);
    return rc;
}

static PyObject *sr_send_trailers(PyObject *op, PyObject *headers)
{
    cu__start_resp_t *self = (cu__start_resp_t *)op;
    cu_conn_t *c = self->c;
    if (c == NULL)
        Py_RETURN_NONE; /* the request is over: nothing to attach them to */
    cu_resp_head_t h;
    memset(&h, 0, sizeof(h));
    cu_buf_init(&h.store, 0, 1 << 16);
    PyObject *ret = NULL;
    if (cu__py_fields_from(headers, &h) == 0) {
        PyThreadState *ts = PyEval_SaveThread();
        int rc = cu_resp_trailers(c, &h);
        PyEval_RestoreThread(ts);
        if (rc == CU_OK)
            ret = Py_NewRef(Py_None);
        else
            PyErr_SetString(PyExc_RuntimeError, "trailers cannot be sent on this stream");
    }
    cu_resp_head_free(&h);
    return ret;
}

static PyMethodDef send_trailers_def = {
    "send_trailers", sr_send_trailers, METH_O,
    "gunicorn.http2.send_trailers(trailers): send trailers after the body (HTTP/2)."};

PyObject *cu__start_resp_send_trailers(PyObject *sr)
{
    return PyCFunction_NewEx(&send_trailers_def, sr, NULL);
}

/* ---- start_response ---- */

static PyObject *start_response(cu__start_resp_t *self, PyObject *status, PyObject *headers,
                                PyObject *exc_info)
{
    cu_conn_t *c = self->c;
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request finished");
        return NULL;
    }
    if (exc_info != NULL && exc_info != Py_None) {
        int truth = PyObject_IsTrue(exc_info);
        if (truth < 0)
            return NULL;
        if (truth && self->status_set && c->resp.head_sent) {
            /* Too late to change the response: re-raise the app's exception (PEP 3333). */
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
                return NULL;
            }
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            if (tb == Py_None)
                tb = NULL;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_XINCREF(tb);
            PyErr_Restore(t, v, tb);
            return NULL;
        }
    } else if (self->status_set) {
        PyErr_SetString(PyExc_AssertionError, "Response headers already set!");
        return NULL;
    }

    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "%R is not a string", status);
        return NULL;
    }
    Py_ssize_t slen;
    const char *sp = latin1(status, &slen);
    if (sp == NULL || !status_ok(sp, slen)) {
        PyErr_Format(PyExc_ValueError, "Invalid status %R", status);
        return NULL;
    }

    PyObject *seq = PySequence_Fast(headers, "response headers must be a list"); /* new ref */
    if (seq == NULL)
        return NULL;
    Py_ssize_t nh = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    /* Validate everything before the writer sees any of it. */
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *name, *value;
        if (check_header(items[i], &name, &value) < 0)
            goto fail_seq;
    }
    if (cu_resp_begin(c, sp, (size_t)slen) != CU_OK) {
        PyErr_Format(PyExc_ValueError, "Invalid status %R", status);
        goto fail_seq;
    }
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *name, *value;
        (void)check_header(items[i], &name, &value);
        Py_ssize_t nl, vl;
        const char *np = latin1(name, &nl), *vp = latin1(value, &vl);
        if (cu_resp_header(c, np, (size_t)nl, vp, (size_t)vl) != CU_OK) {
            /* Only a Content-Length that is not a number gets here. */
            PyErr_Format(PyExc_ValueError, "invalid value for header %R: %R", name, value);
            goto fail_seq;
        }
    }
    Py_DECREF(seq);
    self->status_set = 1;
    return PyCFunction_NewEx(&write_def, (PyObject *)self, NULL);

fail_seq:
    Py_DECREF(seq);
    return NULL;
}

static PyObject *sr_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[3] = {NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    static const char *const names[] = {"status", "headers", "exc_info"};
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
        int slot = -1;
        for (int j = 0; j < 3; j++)
            if (PyUnicode_CompareWithASCIIString(kw, names[j]) == 0)
                slot = j;
        if (slot < 0 || a[slot] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "start_response() got an unexpected or repeated "
                         "keyword argument %R",
                         kw);
            return NULL;
        }
        a[slot] = args[nargs + k];
    }
    if (a[0] == NULL || a[1] == NULL) {
        PyErr_SetString(PyExc_TypeError, "start_response() needs status and headers");
        return NULL;
    }
    return start_response((cu__start_resp_t *)callable, a[0], a[1], a[2]);
}

PyTypeObject cu__start_resp_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.StartResponse",
    .tp_basicsize = sizeof(cu__start_resp_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "start_response(status, headers, exc_info=None) -> write",
    .tp_vectorcall_offset = offsetof(cu__start_resp_t, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* Reused like wsgi.input's object when the app kept no reference to it. */
static _Thread_local PyObject *spare;

PyObject *cu__start_resp_new(cu_conn_t *c)
{
    cu__start_resp_t *sr;
    if (spare != NULL && Py_REFCNT(spare) == 1) {
        sr = (cu__start_resp_t *)spare;
    } else {
        Py_CLEAR(spare);
        sr = PyObject_New(cu__start_resp_t, &cu__start_resp_type);
        if (sr == NULL)
            return NULL;
        sr->vectorcall = sr_vectorcall;
        spare = (PyObject *)sr;
    }
    sr->c = c;
    sr->status_set = 0;
    sr->io_failed = 0;
    Py_INCREF(sr);
    return (PyObject *)sr;
}

void cu__start_resp_detach(PyObject *op)
{
    ((cu__start_resp_t *)op)->c = NULL;
}
