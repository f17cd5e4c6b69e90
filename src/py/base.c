/* What every py/ file shares, and nothing else: the process-wide state (cu__py), traceback
 * logging, and the server's own Python modules (src/py/lib/, embedded by
 * tools/embed_py.py). It calls no other py/ file, so the others depend on it and on each
 * other in one direction only (runtime.c on top). */
#include "py/py_internal.h"
#include "py/embedded.h"

#include "core/log.h"
#include "py/pylog.h"

cu__py_t cu__py;

/* ---- the server's own Python modules (src/py/lib/, embedded by tools/embed_py.py) ---- */

PyObject *cu__py_module(const char *name)
{
    const cu__py_file_t *f = cu__py_files;
    while (f->module && strcmp(f->module, name) != 0)
        f++;
    if (f->module == NULL) {
        PyErr_Format(PyExc_ImportError, "no embedded module %s", name);
        return NULL;
    }
    /* Compiled under the file's own name, so tracebacks through it point at its lines. */
    PyObject *code = Py_CompileString(f->src, f->path, Py_file_input); /* new ref */
    if (code == NULL)
        return NULL;
    PyObject *m = PyModule_New(name);               /* new ref */
    PyObject *d = m ? PyModule_GetDict(m) : NULL;   /* borrowed */
    PyObject *file = PyUnicode_FromString(f->path); /* new ref */
    PyObject *r = NULL;
    if (d && file && PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(d, "__file__", file) == 0)
        r = PyEval_EvalCode(code, d, d); /* new ref */
    Py_XDECREF(file);
    Py_DECREF(code);
    if (r == NULL) {
        Py_XDECREF(m);
        return NULL;
    }
    Py_DECREF(r);
    return m;
}

/* ---- tracebacks ---- */

void cu__py_log_exception(int level, const char *msg)
{
    PyObject *type, *value, *tb;
    if (PyErr_Occurred() && cu__pylog_exception(level, msg))
        return; /* logger_class formats the traceback itself */
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        cu_log(level, "%s", msg);
        return;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        (void)PyException_SetTraceback(value, tb);

    PyObject *lines = NULL, *text = NULL, *empty = NULL;
    if (cu__py.format_exception != NULL)
        lines = PyObject_CallFunctionObjArgs(cu__py.format_exception, type, value ? value : Py_None,
                                             tb ? tb : Py_None, NULL);
    if (lines != NULL && (empty = PyUnicode_FromStringAndSize("", 0)) != NULL)
        text = PyUnicode_Join(empty, lines);
    Py_XDECREF(lines);
    Py_XDECREF(empty);

    Py_ssize_t tlen = 0;
    const char *t = text ? PyUnicode_AsUTF8AndSize(text, &tlen) : NULL;
    if (t == NULL) {
        /* Formatting failed (no traceback module, or a broken __str__): say what we can. */
        PyErr_Clear();
        cu_log(level, "%s (%s)", msg, ((PyTypeObject *)type)->tp_name);
    } else {
        size_t mlen = strlen(msg);
        char *block = cu_xmalloc(mlen + 1 + (size_t)tlen);
        memcpy(block, msg, mlen);
        block[mlen] = '\n';
        memcpy(block + mlen + 1, t, (size_t)tlen);
        cu_log_block(level, block, mlen + 1 + (size_t)tlen);
        cu_free(block);
    }
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
}
