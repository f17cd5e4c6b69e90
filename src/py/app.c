/* Loading the WSGI application named by APP_MODULE, with gunicorn's rules and messages:
 * "module" (-> application), "module:name", "module:factory(literal args)", and, as an
 * extension, dotted attributes "module:obj.attr". */
#include "py/py_internal.h"
#include "py/reload.h"

#include "core/log.h"

/* The URI grammar is Python expression syntax, so the resolver is a few lines of Python
 * run through ast (cunicorn._app, src/py/lib/_app.py); C only drives it and sorts its
 * errors. AppImportError marks what gunicorn reports as a plain message (exit 4); anything
 * else is an exception raised by the app's own code (exit 3, with traceback). */

/* Print str(exc) to stderr as gunicorn does ("%s" % e), after flushing Python's streams so
 * the order on the terminal is right. GIL held; `value` borrowed. */
static void print_exc_str(PyObject *value)
{
    PyObject *s = value ? PyObject_Str(value) : NULL; /* new ref */
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    if (t == NULL)
        PyErr_Clear();
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (err != NULL && err != Py_None) {
        PyObject *r = PyObject_CallMethod(err, "flush", NULL);
        if (r == NULL)
            PyErr_Clear();
        Py_XDECREF(r);
    }
    fprintf(stderr, "%s\n", t ? t : "");
    fflush(stderr);
    Py_XDECREF(s);
}

static int load(const cu_config_t *cfg)
{
    if (cfg->app_uri == NULL || cfg->app_uri[0] == '\0') {
        fprintf(stderr, "No application module specified.\n");
        return CU_PY_APP_IMPORT_ERROR;
    }

    PyObject *mod = cu__py_module("cunicorn._app"); /* new ref */
    if (mod == NULL)
        goto fail_internal;
    PyObject *ns = PyModule_GetDict(mod);                              /* borrowed */
    PyObject *resolve = PyDict_GetItemString(ns, "resolve");           /* borrowed */
    PyObject *import_err = PyDict_GetItemString(ns, "AppImportError"); /* borrowed */
    if (resolve == NULL || import_err == NULL)
        goto fail_ns;

    PyObject *app = PyObject_CallFunction(resolve, "s", cfg->app_uri); /* new ref */
    if (app == NULL) {
        int rc = PyErr_ExceptionMatches(import_err) ? CU_PY_APP_IMPORT_ERROR : CU_ERROR;
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (rc == CU_PY_APP_IMPORT_ERROR) {
            cu_log_debug("Exception while loading the application");
            print_exc_str(value);
            Py_XDECREF(type);
            Py_XDECREF(tb);
        } else {
            /* Keep a copy of the value for the one-line message after the traceback. */
            Py_XINCREF(value);
            PyErr_Restore(type, value, tb);
            cu__py_log_exception(CU_LOG_ERROR, "Exception in worker process");
            print_exc_str(value);
        }
        Py_XDECREF(value);
        Py_DECREF(mod);
        return rc;
    }
    cu__py.app = app;
    Py_DECREF(mod);
    return CU_OK;

fail_ns:
    Py_DECREF(mod);
fail_internal:
    cu__py_log_exception(CU_LOG_ERROR, "cannot set up the application loader");
    return CU_ERROR;
}

int cu_py_load_app(const cu_config_t *cfg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = cu__py.app != NULL ? CU_OK : cfg->paste ? cu__paste_load(cfg) : load(cfg);
    PyGILState_Release(g);
    return rc;
}
