/* gunicorn.conf.py: evaluated by the embedded interpreter while the command line is being
 * applied (defaults < config file < GUNICORN_CMD_ARGS < argv). Module-level names that are
 * settings go through gunicorn's validators; hooks are kept by py/hooks.c; settings
 * cunicorn does not support yet are errors when they differ from gunicorn's default. */
#include "py/py_internal.h"

#include "core/log.h"
#include "py/hooks.h"

#include <limits.h>
#include <unistd.h>

/* cunicorn._config (src/py/lib/_config.py): how gunicorn reads the file and validates
 * Python values (what C cannot see: types). */
static PyObject *loader;

/* The text of a Python object for messages: str(v). */
static void print_str(FILE *out, PyObject *v)
{
    PyObject *s = PyObject_Str(v);
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    fputs(t ? t : "?", out);
    Py_XDECREF(s);
    PyErr_Clear();
}

/* gunicorn: "Invalid value for k: v" then "Error: <reason>", exit 1. */
static int invalid_value(const char *name, PyObject *value, const char *why)
{
    fprintf(stderr, "Invalid value for %s: ", name);
    print_str(stderr, value);
    /* the C validators prefix their messages with the setting name */
    size_t n = strlen(name);
    if (strncmp(why, name, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
        why += n + 2;
    fprintf(stderr, "\n\n\nError: %s\n", why);
    return 1;
}

/* The pending exception as "Error: <str(exc)>" after the invalid-value line. */
static int invalid_value_exc(const char *name, PyObject *value)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    PyErr_Clear();
    int rc = invalid_value(name, value, t ? t : "invalid value");
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    return rc;
}

/* Apply one converted value. Returns CU_OK, or an exit code after the message. */
static int apply(cu_config_t *cfg, const char *name, PyObject *value, PyObject *what)
{
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 0));
    char err[512];
    int rc = CU_OK;
    if (kind == NULL)
        return 1;
    if (strcmp(kind, "set") == 0) {
        const char *v = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 1));
        if (v == NULL)
            return invalid_value_exc(name, value);
        rc = cu_config_set(cfg, name, v, err, sizeof(err));
    } else if (strcmp(kind, "none") == 0) {
        rc = cu_config_set(cfg, name, NULL, err, sizeof(err));
    } else if (strcmp(kind, "list") == 0) {
        PyObject *l = PyTuple_GET_ITEM(what, 1);
        Py_ssize_t n = PyList_GET_SIZE(l);
        const char **v = cu_xcalloc((size_t)n + 1, sizeof(*v));
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(l, i);
            v[i] = x == Py_None ? "None" : PyUnicode_AsUTF8(x);
            if (v[i] == NULL) {
                cu_free(v);
                return invalid_value_exc(name, value);
            }
        }
        rc = cu_config_set_list(cfg, name, v, (size_t)n, err, sizeof(err));
        cu_free(v);
    } else if (strcmp(kind, "hook") == 0) {
        int arity = (int)PyLong_AsLong(PyTuple_GET_ITEM(what, 2));
        const char *shown = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 3));
        if (cu__hook_set(name, PyTuple_GET_ITEM(what, 1), arity) != CU_OK || shown == NULL)
            return invalid_value_exc(name, value);
        cu_config_set_shown(cfg, name, shown);
    }
    if (rc != CU_OK)
        return invalid_value(name, value, err);
    return CU_OK;
}

/* Apply the namespace's settings in its order. GIL held. */
static int apply_namespace(cu_config_t *cfg, PyObject *ns, const char *shown)
{
    PyObject *convert = PyObject_GetAttrString(loader, "convert"); /* new ref */
    if (convert == NULL)
        return 1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int rc = CU_OK, not_yet = 0;
    while (rc == CU_OK && PyDict_Next(ns, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        enum cu_config_vtype vt;
        if (name == NULL) {
            PyErr_Clear();
            continue;
        }
        /* gunicorn lower-cases names before setting them, but only looks up exact ones */
        if (cu_config_lookup(name, &vt) != CU_OK)
            continue;
        char def[PATH_MAX + 64];
        const char *deftext = cu_config_default_text(name, def, sizeof(def));
        PyObject *what = PyObject_CallFunction(convert, "isOs", (int)vt, name, value, deftext);
        if (what == NULL) {
            rc = invalid_value_exc(name, value);
            break;
        }
        const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 0));
        if (kind != NULL && strcmp(kind, "notyet") == 0) {
            if (PyObject_IsTrue(PyTuple_GET_ITEM(what, 1))) {
                fprintf(stderr, "cunicorn: setting '%s' (from %s) is not supported yet\n", name,
                        shown);
                not_yet++;
            } else {
                cu_log_debug("%s (from %s) has gunicorn's default value: nothing to do", name,
                             shown);
            }
        } else if (kind != NULL && strcmp(kind, "skip") != 0) {
            rc = apply(cfg, name, value, what);
        }
        Py_DECREF(what);
    }
    Py_DECREF(convert);
    if (rc == CU_OK && not_yet)
        rc = 1;
    return rc;
}

/* sys.path.insert(0, cwd) as gunicorn's chdir() does before reading the file. */
static int cwd_on_path(const cu_config_t *cfg)
{
    PyObject *syspath = PySys_GetObject("path");                              /* borrowed */
    PyObject *dir = PyUnicode_DecodeFSDefault(cfg->chdir ? cfg->chdir : "."); /* new ref */
    if (syspath == NULL || dir == NULL) {
        Py_XDECREF(dir);
        return -1;
    }
    int has = PySequence_Contains(syspath, dir);
    int rc = has < 0 ? -1 : has ? 0 : PyList_Insert(syspath, 0, dir);
    Py_DECREF(dir);
    return rc;
}

static int load_file(cu_config_t *cfg, const char *path, const char *shown, void *ctx)
{
    CU_UNUSED(ctx);
    if (cu__py_start() != CU_OK)
        return 1;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 1;
    PyObject *ns = NULL;
    if (loader == NULL) {
        loader = cu__py_module("cunicorn._config");
        /* in sys.modules so py/pylog.c finds the dict settings it keeps (KEPT) */
        if (loader != NULL &&
            PyDict_SetItemString(PyImport_GetModuleDict(), "cunicorn._config", loader) < 0)
            Py_CLEAR(loader);
    }
    if (loader == NULL || cwd_on_path(cfg) < 0) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot prepare to read the config file");
        goto out;
    }
    ns = PyObject_CallMethod(loader, "load", "s", path); /* new ref: the module's dict */
    if (ns == NULL) {
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyObject *fail = PyObject_GetAttrString(loader, "Fail"); /* new ref */
        PyErr_Clear();
        if (fail != NULL && PyErr_GivenExceptionMatches(type, fail)) {
            Py_XDECREF(type);
            Py_XDECREF(exc);
            Py_XDECREF(tb);
        } else {
            fprintf(stderr, "Failed to read config file: %s\n", path);
            PyErr_Restore(type, exc, tb);
            PyErr_Print();
        }
        Py_XDECREF(fail);
        goto out;
    }
    rc = apply_namespace(cfg, ns, shown);
out:
    Py_XDECREF(ns);
    fflush(stderr);
    PyGILState_Release(g);
    return rc;
}

void cu_py_config_file_install(void)
{
    cu_config_set_file_loader(load_file, NULL);
}
