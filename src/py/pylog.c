/* Logging extras: capture_output, the syslog and statsd sinks, and the bridge to Python
 * logging ("gunicorn.error" / "gunicorn.access" loggers) used when a logging config is
 * given, so users' handlers and formatters see every line. */
#include "py/py_internal.h"
#include "py/pylog.h"

#include "core/log.h"
#include "log/access.h"
#include "log/statsd.h"
#include "log/syslog.h"
#include "py/hooks.h"

#include <unistd.h>

/* How gunicorn's Logger.setup arranges the two loggers before applying a user config. */
static struct {
    PyObject *logger;   /* logger_class instance; NULL = the C logger */
    PyObject *err_log;  /* gunicorn.error's bound .log (level, msg); NULL = no bridge */
    PyObject *acc_info; /* gunicorn.access's bound .info (msg) */
    int syslog_access;  /* access lines to syslog too */
} P;

PyObject *cu__pylog_kept_dict(const char *name)
{
    PyObject *mod =
        PyDict_GetItemString(PyImport_GetModuleDict(), "cunicorn._config"); /* borrowed */
    PyObject *kept = mod ? PyObject_GetAttrString(mod, "KEPT") : NULL;
    PyObject *v = kept && PyDict_Check(kept) ? PyDict_GetItemString(kept, name) : NULL;
    Py_XINCREF(v);
    Py_XDECREF(kept);
    PyErr_Clear();
    return v;
}

/* One call into Python logging from any thread. Returns 1 (delivered). */
static int py_emit(PyObject *fn, int level, const char *msg, size_t len)
{
    PyGILState_STATE g = PyGILState_Ensure();
    while (len > 0 && msg[len - 1] == '\n')
        len--;
    PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)len, "replace"); /* new ref */
    PyObject *r = NULL;
    if (s != NULL)
        r = level ? PyObject_CallFunction(fn, "iO", level, s) : PyObject_CallOneArg(fn, s);
    if (r == NULL)
        PyErr_Clear(); /* logging reports its own handler errors; nothing more to do */
    Py_XDECREF(r);
    Py_XDECREF(s);
    PyGILState_Release(g);
    return 1;
}

/* The logger_class method for a level, as gunicorn's code calls them. */
static const char *level_method(int level)
{
    return level >= CU_LOG_CRITICAL  ? "critical"
           : level >= CU_LOG_ERROR   ? "error"
           : level >= CU_LOG_WARNING ? "warning"
           : level >= CU_LOG_INFO    ? "info"
                                     : "debug";
}

/* One line to the logger_class instance, from any thread. */
static int logger_emit(int level, const char *msg, size_t len)
{
    PyGILState_STATE g = PyGILState_Ensure();
    while (len > 0 && msg[len - 1] == '\n')
        len--;
    PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)len, "replace"); /* new ref */
    PyObject *r = s ? PyObject_CallMethod(P.logger, level_method(level), "O", s) : NULL;
    if (r == NULL) {
        /* the user's logger failed: say so on the error log fd, once per line */
        PyErr_Print();
    }
    Py_XDECREF(r);
    Py_XDECREF(s);
    PyGILState_Release(g);
    return 1;
}

PyObject *cu__pylog_logger(void)
{
    return P.logger;
}

int cu__pylog_exception(int level, const char *msg)
{
    if (P.logger == NULL)
        return 0;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        (void)PyException_SetTraceback(value, tb);
    PyObject *info =
        PyTuple_Pack(3, type ? type : Py_None, value ? value : Py_None, tb ? tb : Py_None);
    PyObject *kw = info ? Py_BuildValue("{sO}", "exc_info", info) : NULL;
    PyObject *fn = PyObject_GetAttrString(P.logger, "log");
    PyObject *args = Py_BuildValue("(is)", level, msg);
    PyObject *r = fn && args && kw ? PyObject_Call(fn, args, kw) : NULL;
    if (r == NULL)
        PyErr_Print();
    Py_XDECREF(r);
    Py_XDECREF(args);
    Py_XDECREF(fn);
    Py_XDECREF(kw);
    Py_XDECREF(info);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return 1;
}

/* logger_class: load the class (a config-file class object, or "module.Class"; "simple"
 * and gunicorn's default mean the C logger) and make the one instance, as gunicorn's
 * arbiter does: cls(cfg), cfg being the object hooks get. */
static int logger_class(const cu_config_t *cfg)
{
    const char *uri = cfg->logger_class;
    if (uri == NULL || strcmp(uri, "simple") == 0 || strcmp(uri, "gunicorn.glogging.Logger") == 0 ||
        strcmp(uri, "egg:gunicorn#simple") == 0)
        return CU_OK;
    PyObject *cls = cu__pylog_kept_dict("logger_class"); /* new ref: a class from the file */
    if (cls == NULL) {
        const char *dot = strrchr(uri, '.');
        if (dot == NULL || dot == uri || dot[1] == '\0') {
            cu_log_error("logger_class: %s is not a module.Class path", uri);
            return CU_ERROR;
        }
        char *modname = cu_xstrndup(uri, (size_t)(dot - uri));
        PyObject *mod = PyImport_ImportModule(modname);
        cu_free(modname);
        cls = mod ? PyObject_GetAttrString(mod, dot + 1) : NULL;
        Py_XDECREF(mod);
    }
    PyObject *cfgobj = cls ? cu__hook_cfg_object() : NULL; /* borrowed */
    P.logger = cfgobj ? PyObject_CallOneArg(cls, cfgobj) : NULL;
    Py_XDECREF(cls);
    if (P.logger == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot set up logger_class");
        return CU_ERROR;
    }
    return CU_OK;
}

static int error_sink(int level, const char *msg, size_t len, int block)
{
    cu_statsd_log_level(level, block);
    cu_syslog_send(level, "error", msg, len);
    if (P.logger)
        return logger_emit(level, msg, len);
    if (P.err_log)
        return py_emit(P.err_log, level, msg, len);
    return 0;
}

static int access_sink(const char *line, size_t len)
{
    if (P.syslog_access)
        cu_syslog_send(CU_LOG_INFO, "access", line, len);
    if (P.acc_info)
        return py_emit(P.acc_info, 0, line, len);
    return 0;
}

/* gunicorn's capture_output: stdout and stderr become the error log file. */
static void capture_output(const cu_config_t *cfg)
{
    if (!cfg->capture_output || !cfg->errorlog || strcmp(cfg->errorlog, "-") == 0 || cu_log_fd <= 2)
        return;
    static const char *names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < CU_NELEM(names); i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
    fflush(stdout);
    fflush(stderr);
    dup2(cu_log_fd, 1);
    dup2(cu_log_fd, 2);
    cu_log_capture_std = 1;
}

/* syslog's tag: syslog_prefix, else the proc name with ':' as '.'. */
static void syslog_prefix(const cu_config_t *cfg, char *buf, size_t cap)
{
    const char *p = cfg->syslog_prefix;
    if (!p)
        p = cfg->proc_name ? cfg->proc_name
                           : (cfg->app_uri && cfg->app_from_args ? cfg->app_uri : "gunicorn");
    snprintf(buf, cap, "%s", p);
    if (!cfg->syslog_prefix)
        for (char *c = buf; *c; c++)
            if (*c == ':')
                *c = '.';
}

static int python_logging(const cu_config_t *cfg)
{
    PyObject *dictconf = cfg->logconfig_dict ? cu__pylog_kept_dict("logconfig_dict") : NULL;
    if (!dictconf && !cfg->logconfig && !cfg->logconfig_json && !cfg->paste)
        return CU_OK;
    int rc = CU_ERROR;
    PyObject *mod = cu__py_module("cunicorn._pylog"); /* new ref */
    PyObject *r = NULL;
    if (mod != NULL) {
        PyObject *args = Py_BuildValue(
            "(iszzOzz)", cu_log_level, cfg->errorlog ? cfg->errorlog : "-", cfg->accesslog,
            cfg->logconfig, dictconf ? dictconf : Py_None, cfg->logconfig_json, cfg->paste);
        PyObject *fn = args ? PyObject_GetAttrString(mod, "setup") : NULL;
        r = fn ? PyObject_Call(fn, args, NULL) : NULL;
        Py_XDECREF(fn);
        Py_XDECREF(args);
    }
    if (r == Py_None) { /* only --paste, without a [loggers] section */
        rc = CU_OK;
        goto out;
    }
    if (r == NULL || !PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot set up logging from the logging config");
        goto out;
    }
    P.err_log = Py_NewRef(PyTuple_GET_ITEM(r, 0));
    P.acc_info = Py_NewRef(PyTuple_GET_ITEM(r, 1));
    rc = CU_OK;
out:
    Py_XDECREF(r);
    Py_XDECREF(mod);
    Py_XDECREF(dictconf);
    return rc;
}

int cu__pylog_setup(const cu_config_t *cfg)
{
    char err[512];
    capture_output(cfg);
    if (cfg->statsd_host && cu_statsd_open(cfg->statsd_host, cfg->statsd_prefix,
                                           cfg->dogstatsd_tags, err, sizeof(err)) != CU_OK) {
        cu_log_error("statsd_host: %s", err);
        return CU_ERROR;
    }
    if (cfg->syslog) {
        char prefix[256];
        syslog_prefix(cfg, prefix, sizeof(prefix));
        if (cu_syslog_open(cfg->syslog_addr, cfg->syslog_facility, prefix, err, sizeof(err)) !=
            CU_OK) {
            cu_log_error("syslog: %s", err);
            return CU_ERROR;
        }
        P.syslog_access = !cfg->disable_redirect_access_to_syslog;
    }
    if (python_logging(cfg) != CU_OK)
        return CU_ERROR;
    if (logger_class(cfg) != CU_OK)
        return CU_ERROR;
    if (cu_statsd_enabled() || cu_syslog_enabled() || P.err_log || P.logger)
        cu_log_sink = error_sink;
    if (P.syslog_access || P.acc_info)
        cu_access_log_set_sink(access_sink);
    return CU_OK;
}
