/* --paste / --paster: load the application from a PasteDeploy config file
 * (PATH[#SECTION]) with --paste-global KEY=VALUE defaults, as gunicorn's pasterapp does. */
#include "py/py_internal.h"
#include "py/reload.h"

#include "core/log.h"
#include "py/hooks.h"

static const char paste_src[] =
    "import os\n"
    "\n"
    "class Missing(Exception):\n"
    "    pass\n"
    "\n"
    "def load(uri, pairs):\n"
    "    try:\n"
    "        from paste.deploy import loadapp\n"
    "    except ImportError as e:\n"
    "        raise Missing('--paste needs the PasteDeploy package, which is not installed '\n"
    "                      '(pip install PasteDeploy): %s' % e)\n"
    "    uri = os.path.abspath(uri)\n"
    "    config_file = uri.split('#')[0]\n"
    "    if not os.path.exists(config_file):\n"
    "        raise Missing('%r not found' % config_file)\n"
    "    conf = dict(p.split('=', 1) for p in pairs) or None\n"
    "    if ':' not in uri:\n"
    "        uri = 'config:%s' % uri\n"
    "    return loadapp(uri, relative_to=os.getcwd(), global_conf=conf)\n";

int cu__paste_load(const cu_config_t *cfg)
{
    PyObject *mod = cu__py_module_from_source("cunicorn._paste", paste_src); /* new ref */
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
