/* --paste / --paster: load the application from a PasteDeploy config file
 * (PATH[#SECTION]) with --paste-global KEY=VALUE defaults, as gunicorn's pasterapp does. */
#include "py/py_internal.h"
#include "py/reload.h"

#include "core/log.h"
#include "py/hooks.h"

int cu__paste_load(const cu_config_t *cfg)
{
    PyObject *mod = cu__py_module("cunicorn._paste"); /* new ref */
    PyObject *pairs = mod ? PyList_New(0) : NULL;
    for (size_t i = 0; pairs && i < cfg->raw_paste_global_conf.n; i++) {
        PyObject *s = PyUnicode_FromString(cfg->raw_paste_global_conf.v[i]);
        if (s == NULL || PyList_Append(pairs, s) < 0)
            Py_CLEAR(pairs);
        Py_XDECREF(s);
    }
    PyObject *app = pairs ? PyObject_CallMethod(mod, "load", "sO", cfg->paste, pairs) : NULL;
    Py_XDECREF(pairs);
    int rc = CU_OK;
    if (app == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *missing = mod ? PyObject_GetAttrString(mod, "Missing") : NULL; /* new ref */
        PyErr_Clear();
        if (missing && PyErr_GivenExceptionMatches(type, missing)) {
            PyObject *s = value ? PyObject_Str(value) : NULL;
            const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
            fprintf(stderr, "Error: %s\n", t ? t : "cannot load the PasteDeploy application");
            fflush(stderr);
            PyErr_Clear();
            Py_XDECREF(s);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            rc = CU_PY_APP_IMPORT_ERROR;
        } else {
            PyErr_Restore(type, value, tb);
            cu__py_log_exception(CU_LOG_ERROR, "Exception in worker process");
            rc = CU_ERROR;
        }
        Py_XDECREF(missing);
    } else {
        cu__py.app = app;
    }
    Py_XDECREF(mod);
    return rc;
}
