/* The embedded interpreter: initialisation in the master (PyConfig, chdir, sys.path,
 * raw_env), the builtin module `cunicorn`, fork through the PyOS_*Fork protocol, thread
 * attachment, and traceback logging. */
#include "py/py_internal.h"

#include "core/log.h"
#include "py/pylog.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

cu__py_t cu__py;

/* ---- the builtin module ---- */

static struct PyModuleDef cunicorn_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cunicorn",
    .m_doc = "cunicorn's C types for the WSGI layer (wsgi.input, wsgi.file_wrapper, ...).",
    .m_size = -1,
};

static PyObject *cunicorn_module_init(void)
{
    PyObject *m = PyModule_Create(&cunicorn_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "__version__", CU_VERSION) < 0)
        goto fail;

    /* gunicorn's names for an app's bad response header; they derive from Exception there
     * too, so an app's `except Exception` catches them the same way. */
    cu__py.exc_header = PyErr_NewException("cunicorn.InvalidResponseHeader", NULL, NULL);
    if (cu__py.exc_header == NULL)
        goto fail;
    cu__py.exc_header_name = PyErr_NewException("cunicorn.InvalidResponseHeaderName", NULL, NULL);
    if (cu__py.exc_header_name == NULL)
        goto fail;
    if (PyModule_AddObjectRef(m, "InvalidResponseHeader", cu__py.exc_header) < 0 ||
        PyModule_AddObjectRef(m, "InvalidResponseHeaderName", cu__py.exc_header_name) < 0)
        goto fail;
    if (cu__types_ready(m) != CU_OK)
        goto fail;
    return m;

fail:
    Py_DECREF(m);
    return NULL;
}

/* ---- init ---- */

/* sys.path.insert(0, dir) unless it is there already (gunicorn's rule). GIL held. */
static int path_prepend(PyObject *syspath, const char *dir)
{
    PyObject *s = PyUnicode_DecodeFSDefault(dir); /* new ref */
    if (s == NULL)
        return CU_ERROR;
    int has = PySequence_Contains(syspath, s);
    int rc = has < 0 ? -1 : has ? 0 : PyList_Insert(syspath, 0, s);
    Py_DECREF(s);
    return rc < 0 ? CU_ERROR : CU_OK;
}

/* An embedded interpreter finds no executable of its own, but apps spawn sys.executable
 * (multiprocessing, subprocess): point it at the interpreter that owns this libpython. */
static void set_executable(void)
{
    PyObject *exe = PySys_GetObject("executable");          /* borrowed */
    PyObject *prefix = PySys_GetObject("base_exec_prefix"); /* borrowed */
    if (exe == NULL || !PyUnicode_Check(exe) || PyUnicode_GET_LENGTH(exe) > 0 || prefix == NULL ||
        !PyUnicode_Check(prefix))
        return;
    const char *pre = PyUnicode_AsUTF8(prefix);
    char path[PATH_MAX];
    int n = pre ? snprintf(path, sizeof(path), "%s/bin/python%d.%d", pre, PY_MAJOR_VERSION,
                           PY_MINOR_VERSION)
                : -1;
    if (n > 0 && (size_t)n < sizeof(path) && access(path, X_OK) == 0) {
        PyObject *v = PyUnicode_DecodeFSDefault(path); /* new ref */
        if (v == NULL || PySys_SetObject("executable", v) < 0)
            PyErr_Clear();
        Py_XDECREF(v);
    }
    PyErr_Clear();
}

static int setup_process(const cu_config_t *cfg)
{
    char cwd[PATH_MAX];
    const char *dir = cfg->chdir;
    if (dir != NULL && dir[0] != '\0') {
        if (chdir(dir) < 0) {
            cu_log_error("Can't chdir to '%s': %s", dir, strerror(errno));
            return CU_ERROR;
        }
    }
    /* gunicorn puts cfg.chdir on sys.path as given; without one, the current directory. */
    if (dir == NULL || dir[0] == '\0') {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            cu_log_error("getcwd: %s", strerror(errno));
            return CU_ERROR;
        }
        dir = cwd;
    }

    PyObject *syspath = PySys_GetObject("path"); /* borrowed */
    if (syspath == NULL || !PyList_Check(syspath)) {
        cu_log_error("sys.path is not a list");
        return CU_ERROR;
    }
    if (path_prepend(syspath, dir) != CU_OK)
        goto fail_py;
    /* Each --pythonpath entry goes to the front in turn, so the last ends up first. */
    for (size_t i = 0; i < cfg->pythonpath.n; i++) {
        const char *p = cfg->pythonpath.v[i];
        char abs[PATH_MAX];
        if (p[0] != '/') {
            int n = snprintf(abs, sizeof(abs), "%s/%s", dir, p);
            if (n < 0 || (size_t)n >= sizeof(abs))
                continue;
            p = abs;
        }
        if (path_prepend(syspath, p) != CU_OK)
            goto fail_py;
    }

    if (cfg->raw_env.n > 0) {
        PyObject *os = PyImport_ImportModule("os"); /* new ref */
        if (os == NULL)
            goto fail_py;
        PyObject *osenv = PyObject_GetAttrString(os, "environ"); /* new ref */
        Py_DECREF(os);
        if (osenv == NULL)
            goto fail_py;
        for (size_t i = 0; i < cfg->raw_env.n; i++) {
            const char *kv = cfg->raw_env.v[i];
            const char *eq = strchr(kv, '=');
            if (eq == NULL || eq == kv) {
                cu_log_warn("Ignoring invalid environment setting '%s'", kv);
                continue;
            }
            /* os.environ's __setitem__ also calls putenv, so C code sees it too. */
            PyObject *k = PyUnicode_DecodeFSDefaultAndSize(kv, eq - kv);
            PyObject *v = PyUnicode_DecodeFSDefault(eq + 1);
            int rc = (k && v) ? PyObject_SetItem(osenv, k, v) : -1;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (rc < 0) {
                Py_DECREF(osenv);
                goto fail_py;
            }
        }
        Py_DECREF(osenv);
    }
    return CU_OK;

fail_py:
    cu__py_log_exception(CU_LOG_ERROR, "Python setup failed");
    return CU_ERROR;
}

int cu__py_start(void)
{
    if (Py_IsInitialized())
        return CU_OK;

    if (PyImport_AppendInittab("cunicorn", cunicorn_module_init) < 0) {
        cu_log_error("cannot register the cunicorn module");
        return CU_ERROR;
    }

    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    char *argv[] = {"cunicorn", NULL};
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, "cunicorn");
    if (!PyStatus_Exception(st))
        st = PyConfig_SetBytesArgv(&config, 1, argv);
    /* Inside an activated virtualenv, let getpath find its pyvenv.cfg the way the venv's
     * python would, so the venv's site-packages are importable as under gunicorn. */
    const char *venv = getenv("VIRTUAL_ENV");
    if (!PyStatus_Exception(st) && venv != NULL && venv[0] == '/') {
        char exe[PATH_MAX];
        int n = snprintf(exe, sizeof(exe), "%s/bin/python", venv);
        if (n > 0 && (size_t)n < sizeof(exe) && access(exe, X_OK) == 0)
            st = PyConfig_SetBytesString(&config, &config.executable, exe);
    }
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        cu_log_error("Python initialisation failed: %s%s%s", st.func ? st.func : "",
                     st.func ? ": " : "", st.err_msg ? st.err_msg : "unknown error");
        return CU_ERROR;
    }
    set_executable();
    PyObject *tb = PyImport_ImportModule("traceback"); /* new ref */
    if (tb != NULL) {
        cu__py.format_exception = PyObject_GetAttrString(tb, "format_exception");
        Py_DECREF(tb);
    }
    int rc = CU_OK;
    if (cu__py.format_exception == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot import traceback");
        rc = CU_ERROR;
    }
    cu__py.main_ts = PyEval_SaveThread();
    return rc;
}

int cu_py_init(const cu_config_t *cfg)
{
    /* The interpreter may be running already (the config file was evaluated in it); the
     * process setup happens once, with the final settings. */
    static int done;
    if (done)
        return CU_OK;
    cu__py.cfg = cfg;
    if (cu__py_start() != CU_OK)
        return CU_ERROR;
    done = 1;

    PyEval_RestoreThread(cu__py.main_ts);
    int rc = setup_process(cfg);
    if (rc == CU_OK) {
        /* Import the module now so a broken build fails at start, not on first use. */
        cu__py.module = PyImport_ImportModule("cunicorn");
        if (cu__py.module == NULL) {
            cu__py_log_exception(CU_LOG_ERROR, "cannot import the cunicorn module");
            rc = CU_ERROR;
        }
    }
    if (rc == CU_OK) /* syslog, statsd, capture_output, Python logging (py/pylog.c) */
        rc = cu__pylog_setup(cfg);
    cu__py.main_ts = PyEval_SaveThread();
    return rc;
}

int cu_py_reconfigure(const cu_config_t *cfg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    cu__py.cfg = cfg;
    int rc = setup_process(cfg);
    cu__hooks_reconfigure();
    PyGILState_Release(g);
    return rc;
}

/* ---- fork (thread attachment is in thread.c) ---- */

pid_t cu_py_fork(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyOS_BeforeFork();
    pid_t pid = fork();
    int saved = errno;
    if (pid == 0)
        PyOS_AfterFork_Child();
    else
        PyOS_AfterFork_Parent();
    PyGILState_Release(g);
    errno = saved;
    return pid;
}

void cu_py_worker_exit(void)
{
    if (!Py_IsInitialized())
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    static const char *names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < CU_NELEM(names); i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        if (f == NULL || f == Py_None)
            continue;
        PyObject *r = PyObject_CallMethod(f, "flush", NULL);
        if (r == NULL)
            PyErr_Clear();
        Py_XDECREF(r);
    }
    PyGILState_Release(g);
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
