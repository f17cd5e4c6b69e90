/* wsgi.file_wrapper: wraps a file-like object so the response can go out with sendfile(2)
 * when it has a real file descriptor; otherwise it iterates read(blksize) blocks. */
#include "py/py_internal.h"

#include <structmember.h>

static int fw_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    cu__filewrapper_t *self = (cu__filewrapper_t *)op;
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n:FileWrapper", kwlist, &filelike, &blksize))
        return -1;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "blksize must be positive");
        return -1;
    }
    Py_INCREF(filelike);
    Py_XSETREF(self->filelike, filelike);
    self->blksize = blksize;
    return 0;
}

static int fw_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(((cu__filewrapper_t *)op)->filelike);
    return 0;
}

static int fw_clear(PyObject *op)
{
    Py_CLEAR(((cu__filewrapper_t *)op)->filelike);
    return 0;
}

static void fw_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    (void)fw_clear(op);
    Py_TYPE(op)->tp_free(op);
}

static PyObject *fw_next(PyObject *op)
{
    cu__filewrapper_t *self = (cu__filewrapper_t *)op;
    if (self->filelike == NULL)
        return NULL;
    PyObject *data = PyObject_CallMethod(self->filelike, "read", "n", self->blksize);
    if (data == NULL)
        return NULL;
    int empty = PyObject_Not(data);
    if (empty != 0) {
        Py_DECREF(data);
        return NULL; /* StopIteration (or the error from bool()) */
    }
    return data;
}

/* PEP 3333: the server calls close() on the iterable, which must close the file. */
static PyObject *fw_close(PyObject *op, PyObject *unused)
{
    cu__filewrapper_t *self = (cu__filewrapper_t *)op;
    if (self->filelike == NULL)
        Py_RETURN_NONE;
    PyObject *close = PyObject_GetAttrString(self->filelike, "close"); /* new ref */
    if (close == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return r;
}

static PyMethodDef fw_methods[] = {
    {"close", fw_close, METH_NOARGS, "Close the wrapped file (if it has close())."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fw_members[] = {
    {"filelike", T_OBJECT, offsetof(cu__filewrapper_t, filelike), READONLY, NULL},
    {"blksize", T_PYSSIZET, offsetof(cu__filewrapper_t, blksize), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject cu__filewrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cunicorn.FileWrapper",
    .tp_basicsize = sizeof(cu__filewrapper_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, blksize=8192)",
    .tp_traverse = fw_traverse,
    .tp_clear = fw_clear,
    .tp_dealloc = fw_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_next,
    .tp_methods = fw_methods,
    .tp_members = fw_members,
    .tp_init = fw_init,
    .tp_new = PyType_GenericNew,
};
