/* wsgi.errors: a text stream that appends to the error log (stderr for --error-logfile -),
 * as gunicorn's WSGIErrorsWrapper does. Writes are raw, not prefixed with a log header. */
#include "py/py_internal.h"

#include "core/log.h"

#include <errno.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
} cu__errors_t;

static int write_obj(PyObject *data)
{
    const char *p;
    Py_ssize_t n;
    if (PyUnicode_Check(data)) {
        p = PyUnicode_AsUTF8AndSize(data, &n);
        if (p == NULL) {
            /* Lone surrogates: write what a text stream with errors=backslashreplace would. */
            PyErr_Clear();
            PyObject *b = PyUnicode_AsEncodedString(data, "utf-8", "backslashreplace");
            if (b == NULL)
                return -1;
            int rc = write_obj(b);
            Py_DECREF(b);
            return rc;
        }
    } else if (PyBytes_Check(data)) {
        p = PyBytes_AS_STRING(data);
        n = PyBytes_GET_SIZE(data);
    } else {
        PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    /* `data` is immutable and we hold a reference, so p stays valid without the GIL. */
    int fd = cu_log_fd;
    PyThreadState *ts = PyEval_SaveThread();
    cu_write_all(fd, p, (size_t)n);
    PyEval_RestoreThread(ts);
    return 0;
}

static PyObject *errors_write(PyObject *self, PyObject *data)
{
    if (write_obj(data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq); /* new ref */
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = write_obj(item);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
    /* Every write already went to the fd. */
    Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "Write a str (or bytes) to the error log."},
    {"writelines", errors_writelines, METH_O, "Write each string of an iterable."},
    {"flush", errors_flush, METH_NOARGS, "Nothing to do: writes are unbuffered."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject cu__errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.ErrorsWrapper",
    .tp_basicsize = sizeof(cu__errors_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: a write-only text stream into the error log.",
    .tp_methods = errors_methods,
    .tp_new = PyType_GenericNew,
};

PyObject *cu__errors_new(void)
{
    return PyObject_CallNoArgs((PyObject *)&cu__errors_type);
}
