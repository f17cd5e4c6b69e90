/* gunicorn's server hooks: the callables from the config file, the Python objects they
 * receive (server, worker, req, resp, cfg, log) and the C entry points the master and the
 * workers call. Every entry point is a NULL check when its hook is not set. */
#include "py/py_internal.h"

#include "core/log.h"
#include "py/hooks.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    H_ON_STARTING,
    H_ON_RELOAD,
    H_WHEN_READY,
    H_PRE_FORK,
    H_POST_FORK,
    H_POST_WORKER_INIT,
    H_WORKER_INT,
    H_WORKER_ABORT,
    H_PRE_EXEC,
    H_PRE_REQUEST,
    H_POST_REQUEST,
    H_CHILD_EXIT,
    H_WORKER_EXIT,
    H_NWORKERS_CHANGED,
    H_ON_EXIT,
    H_SSL_CONTEXT,
    H_N
};

static const char *const hook_names[H_N] = {
    "on_starting", "on_reload",        "when_ready",   "pre_fork",
    "post_fork",   "post_worker_init", "worker_int",   "worker_abort",
    "pre_exec",    "pre_request",      "post_request", "child_exit",
    "worker_exit", "nworkers_changed", "on_exit",      "ssl_context",
};

static PyObject *hook_fn[H_N]; /* new refs; NULL = not set */
static int post_request_arity;
static int any_hook;
PyObject *cu__hook_pre_request_fn, *cu__hook_post_request_fn; /* borrowed from hook_fn */

/* This worker, recorded by cu_py_hook_post_fork (plain C: no GIL needed). */
static int self_age;
static pid_t self_ppid;

/* The Python side, built on first use with the GIL held. */
static PyObject *support; /* the helper module (classes below) */
static PyObject *cfg_obj; /* Config */
static PyObject *log_obj; /* Log */
static PyObject *arbiter; /* Arbiter */
static PyObject *by_age;  /* dict: age -> Worker */
static PyObject *self_worker;

static const char support_src[] =
    "import os, sys, ast, traceback\n"
    "\n"
    "class Log:\n"
    "    '''server.log / worker.log: gunicorn's logger methods, into the error log.'''\n"
    "    def __init__(self, emit):\n"
    "        self._emit = emit\n"
    "    def log(self, lvl, msg, *args, **kw):\n"
    "        text = str(msg)\n"
    "        if args:\n"
    "            if len(args) == 1 and isinstance(args[0], dict) and args[0]:\n"
    "                args = args[0]\n"
    "            try:\n"
    "                text = text % args\n"
    "            except Exception:\n"
    "                text = '%s %r' % (text, args)\n"
    "        if kw.get('exc_info'):\n"
    "            text += '\\n' + traceback.format_exc().rstrip('\\n')\n"
    "        self._emit(int(lvl), text)\n"
    "    def debug(self, msg, *a, **kw): self.log(10, msg, *a, **kw)\n"
    "    def info(self, msg, *a, **kw): self.log(20, msg, *a, **kw)\n"
    "    def warning(self, msg, *a, **kw): self.log(30, msg, *a, **kw)\n"
    "    warn = warning\n"
    "    def error(self, msg, *a, **kw): self.log(40, msg, *a, **kw)\n"
    "    def critical(self, msg, *a, **kw): self.log(50, msg, *a, **kw)\n"
    "    def exception(self, msg, *a, **kw):\n"
    "        kw.setdefault('exc_info', True)\n"
    "        self.log(40, msg, *a, **kw)\n"
    "    def reopen_files(self): pass\n"
    "    def close_on_exec(self): pass\n"
    "    def access(self, *a, **kw): pass\n"
    "\n"
    "def lit(text):\n"
    "    try:\n"
    "        return ast.literal_eval(text)\n"
    "    except Exception:\n"
    "        return text\n"
    "\n"
    "class Setting:\n"
    "    __slots__ = ('name', 'value')\n"
    "    def __init__(self, name, value):\n"
    "        self.name, self.value = name, value\n"
    "    def get(self):\n"
    "        return self.value\n"
    "    def __repr__(self):\n"
    "        return '<Setting %s = %r>' % (self.name, self.value)\n"
    "\n"
    "class Config:\n"
    "    '''server.cfg: every setting by name, read-only like gunicorn's.'''\n"
    "    def __init__(self, values):\n"
    "        object.__setattr__(self, 'settings',\n"
    "                           {k: Setting(k, v) for k, v in values.items()})\n"
    "    def __getattr__(self, name):\n"
    "        s = self.settings.get(name)\n"
    "        if s is None:\n"
    "            raise AttributeError('No configuration setting for: %s' % name)\n"
    "        return s.value\n"
    "    def __setattr__(self, name, value):\n"
    "        if name in self.settings:\n"
    "            raise AttributeError('Invalid access!')\n"
    "        object.__setattr__(self, name, value)\n"
    "    @property\n"
    "    def proc_name(self):\n"
    "        pn = self.settings['proc_name'].value\n"
    "        return pn if pn is not None else self.settings['default_proc_name'].value\n"
    "    @property\n"
    "    def worker_class_str(self):\n"
    "        wc = self.settings['worker_class'].value\n"
    "        sync = wc == 'sync' or str(wc).endswith('SyncWorker')\n"
    "        return 'gthread' if sync and self.threads > 1 else wc\n"
    "    @property\n"
    "    def address(self):\n"
    "        return list(self.bind)\n"
    "    @property\n"
    "    def env(self):\n"
    "        return dict(e.split('=', 1) for e in self.raw_env)\n"
    "    @property\n"
    "    def is_ssl(self):\n"
    "        return bool(self.certfile or self.keyfile)\n"
    "    @property\n"
    "    def uid(self):\n"
    "        return os.geteuid()\n"
    "    @property\n"
    "    def gid(self):\n"
    "        return os.getegid()\n"
    "    @property\n"
    "    def sendfile(self):\n"
    "        return True\n"
    "    def __str__(self):\n"
    "        w = max(len(k) for k in self.settings)\n"
    "        out = []\n"
    "        for k in sorted(self.settings):\n"
    "            v = self.settings[k].value\n"
    "            if callable(v):\n"
    "                v = '<%s()>' % getattr(v, '__qualname__', type(v).__qualname__)\n"
    "            out.append('%-*s = %s' % (w, k, v))\n"
    "        return '\\n'.join(out)\n"
    "\n"
    "class Arbiter:\n"
    "    '''server: what hooks read from gunicorn's Arbiter.'''\n"
    "    def __init__(self, cfg, log):\n"
    "        self.cfg, self.log = cfg, log\n"
    "        self.pid = None\n"
    "        self.num_workers = None\n"
    "        self.WORKERS = {}\n"
    "        self.LISTENERS = []\n"
    "        self.address = cfg.address\n"
    "        self.master_name = 'Master'\n"
    "        self.proc_name = cfg.proc_name\n"
    "        self.timeout = cfg.timeout\n"
    "        self.worker_age = 0\n"
    "        self.reexec_pid = 0\n"
    "        self.master_pid = 0\n"
    "        self.app = None\n"
    "    def __repr__(self):\n"
    "        return '<cunicorn Arbiter pid=%s>' % self.pid\n"
    "\n"
    "class Worker:\n"
    "    '''worker: what hooks read from gunicorn's Worker.'''\n"
    "    def __init__(self, age, ppid, cfg, log):\n"
    "        self.age, self.ppid, self.cfg, self.log = age, ppid, cfg, log\n"
    "        self.pid = None\n"
    "        self.alive = True\n"
    "        self.booted = False\n"
    "        self.aborted = False\n"
    "        self.nr = 0\n"
    "        self.max_requests = cfg.max_requests or sys.maxsize\n"
    "        self.timeout = cfg.timeout\n"
    "        self.app = self.wsgi = None\n"
    "        self.sockets = []\n"
    "        self.exitcode = None\n"
    "        self.status = None\n"
    "    def notify(self):\n"
    "        pass\n"
    "    def __str__(self):\n"
    "        return '<Worker %s>' % self.pid\n"
    "\n"
    "class Request:\n"
    "    '''req: the parsed request head, as gunicorn's Request exposes it.'''\n"
    "    def __init__(self, method, uri, path, query, fragment, version, headers, scheme,\n"
    "                 peer_addr, must_close):\n"
    "        self.method, self.uri, self.path = method, uri, path\n"
    "        self.query, self.fragment, self.version = query, fragment, version\n"
    "        self.headers, self.scheme = headers, scheme\n"
    "        self.peer_addr = self.remote_addr = peer_addr\n"
    "        self.trailers = []\n"
    "        self._must_close = must_close\n"
    "    def should_close(self):\n"
    "        return self._must_close\n"
    "    def __repr__(self):\n"
    "        return '<Request %s %s>' % (self.method, self.uri)\n"
    "\n"
    "class Response:\n"
    "    '''resp: what post_request reads from gunicorn's Response.'''\n"
    "    def __init__(self, status, headers, sent):\n"
    "        self.status = status\n"
    "        try:\n"
    "            self.status_code = int(status.split(None, 1)[0]) if status else None\n"
    "        except ValueError:\n"
    "            self.status_code = None\n"
    "        self.headers = headers\n"
    "        self.sent = self.response_length = sent\n"
    "        self.headers_sent = status is not None\n"
    "    def __repr__(self):\n"
    "        return '<Response %s>' % self.status\n"
    "\n"
    "def noop(*args, **kw):\n"
    "    pass\n";

PyObject *cu__py_module_from_source(const char *name, const char *src)
{
    PyObject *m = PyModule_New(name); /* new ref */
    if (m == NULL)
        return NULL;
    PyObject *d = PyModule_GetDict(m); /* borrowed */
    if (PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyObject *r = PyRun_String(src, Py_file_input, d, d);
    if (r == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(r);
    return m;
}

/* Log.emit: (level, text) into the error log. */
static PyObject *emit(PyObject *self, PyObject *args)
{
    int level;
    const char *text;
    if (!PyArg_ParseTuple(args, "is", &level, &text))
        return NULL;
    cu_log(level, "%s", text);
    Py_RETURN_NONE;
}

static PyMethodDef emit_def = {"emit", emit, METH_VARARGS, "Write one error-log line."};

/* The cfg object: every setting's value, read back from cu_config_t as Python literals;
 * hooks as their callables. */
static PyObject *build_cfg(const cu_config_t *cfg)
{
    PyObject *values = PyDict_New(); /* new ref */
    PyObject *lit = PyObject_GetAttrString(support, "lit");
    PyObject *noop = PyObject_GetAttrString(support, "noop");
    PyObject *obj = NULL;
    if (values == NULL || lit == NULL || noop == NULL)
        goto done;
    const char *name;
    for (size_t i = 0; (name = cu_config_setting_name(i)) != NULL; i++) {
        PyObject *v = NULL;
        for (int h = 0; h < H_N; h++)
            if (strcmp(hook_names[h], name) == 0)
                v = Py_NewRef(hook_fn[h] ? hook_fn[h] : noop);
        if (v == NULL) {
            char *mem = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&mem, &len);
            if (f == NULL)
                goto done;
            (void)cu_config_print_value(cfg, name, 1, f);
            fclose(f);
            v = PyObject_CallFunction(lit, "s#", mem, (Py_ssize_t)len);
            cu_free(mem);
        }
        if (v == NULL || PyDict_SetItemString(values, name, v) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
    }
    obj = PyObject_CallMethod(support, "Config", "O", values);
done:
    Py_XDECREF(values);
    Py_XDECREF(lit);
    Py_XDECREF(noop);
    return obj;
}

/* Build the helper module and the shared objects once (GIL held). */
/* HUP: hooks see the new settings from now on (server.cfg, worker.cfg). GIL held. */
void cu__hooks_reconfigure(void)
{
    if (arbiter == NULL || cu__py.cfg == NULL)
        return;
    PyObject *nc = build_cfg(cu__py.cfg); /* new ref */
    if (nc == NULL || PyObject_SetAttrString(arbiter, "cfg", nc) < 0) {
        Py_XDECREF(nc);
        cu__py_log_exception(CU_LOG_WARNING, "cannot update server.cfg after reload");
        return;
    }
    Py_SETREF(cfg_obj, nc);
}

static int ensure_objects(void)
{
    if (arbiter != NULL)
        return CU_OK;
    if (support == NULL) {
        support = cu__py_module_from_source("cunicorn._hooks", support_src);
        if (support == NULL)
            goto fail;
    }
    PyObject *fn = PyCFunction_New(&emit_def, NULL); /* new ref */
    if (fn == NULL)
        goto fail;
    log_obj = PyObject_CallMethod(support, "Log", "O", fn);
    Py_DECREF(fn);
    if (log_obj == NULL || cu__py.cfg == NULL)
        goto fail;
    cfg_obj = build_cfg(cu__py.cfg);
    if (cfg_obj == NULL)
        goto fail;
    by_age = PyDict_New();
    if (by_age == NULL)
        goto fail;
    arbiter = PyObject_CallMethod(support, "Arbiter", "OO", cfg_obj, log_obj);
    if (arbiter == NULL)
        goto fail;
    return CU_OK;
fail:
    cu__py_log_exception(CU_LOG_ERROR, "cannot build the objects server hooks receive");
    return CU_ERROR;
}

static int set_attr_int(PyObject *o, const char *name, long v)
{
    PyObject *x = PyLong_FromLong(v);
    int rc = x ? PyObject_SetAttrString(o, name, x) : -1;
    Py_XDECREF(x);
    return rc;
}

/* Refresh server from the master's view. */
static int refresh_arbiter(const cu_hook_arbiter_t *a)
{
    if (a == NULL)
        return 0;
    if (set_attr_int(arbiter, "pid", (long)a->pid) < 0 ||
        set_attr_int(arbiter, "num_workers", a->num_workers) < 0)
        return -1;
    if (a->proc_name != NULL) {
        PyObject *s = PyUnicode_FromString(a->proc_name);
        int rc = s ? PyObject_SetAttrString(arbiter, "proc_name", s) : -1;
        Py_XDECREF(s);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The Worker object for age (created on first sight). Borrowed ref, or NULL (error set). */
static PyObject *worker_for(int age, pid_t pid, pid_t ppid)
{
    PyObject *key = PyLong_FromLong(age);
    if (key == NULL)
        return NULL;
    PyObject *w = PyDict_GetItemWithError(by_age, key); /* borrowed */
    if (w == NULL && !PyErr_Occurred()) {
        PyObject *nw =
            PyObject_CallMethod(support, "Worker", "ilOO", age, (long)ppid, cfg_obj, log_obj);
        if (nw != NULL && PyDict_SetItem(by_age, key, nw) == 0)
            w = nw;
        Py_XDECREF(nw);
    }
    Py_DECREF(key);
    if (w != NULL && pid > 0 && set_attr_int(w, "pid", (long)pid) < 0)
        return NULL;
    return w;
}

/* Call hook h with n arguments; log what it raises. GIL held. */
static int call_hook(int h, PyObject *const *args, size_t n)
{
    PyObject *r = PyObject_Vectorcall(hook_fn[h], args, n, NULL);
    if (r == NULL) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Exception in %s hook", hook_names[h]);
        cu__py_log_exception(CU_LOG_ERROR, msg);
        return CU_ERROR;
    }
    Py_DECREF(r);
    return CU_OK;
}

/* server-only hooks: (server) */
static int master_hook(int h, const cu_hook_arbiter_t *a)
{
    if (hook_fn[h] == NULL)
        return CU_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    if (ensure_objects() == CU_OK) {
        if (refresh_arbiter(a) < 0)
            cu__py_log_exception(CU_LOG_ERROR, "cannot update the server object");
        else
            rc = call_hook(h, &arbiter, 1);
    }
    PyGILState_Release(g);
    return rc;
}

int cu_py_hooks_any(void)
{
    return any_hook;
}

int cu__hook_set(const char *name, PyObject *fn, int arity)
{
    for (int h = 0; h < H_N; h++) {
        if (strcmp(hook_names[h], name) != 0)
            continue;
        Py_XSETREF(hook_fn[h], Py_XNewRef(fn));
        if (h == H_POST_REQUEST)
            post_request_arity = arity;
        cu__hook_pre_request_fn = hook_fn[H_PRE_REQUEST];
        cu__hook_post_request_fn = hook_fn[H_POST_REQUEST];
        any_hook = 0;
        for (int i = 0; i < H_N; i++)
            any_hook |= hook_fn[i] != NULL;
        return CU_OK;
    }
    return CU_ERROR;
}

int cu__hook_ssl_context(PyObject **fn, PyObject **conf)
{
    *fn = hook_fn[H_SSL_CONTEXT];
    *conf = NULL;
    if (*fn == NULL)
        return CU_OK;
    if (ensure_objects() != CU_OK)
        return CU_ERROR;
    *conf = cfg_obj;
    return CU_OK;
}

/* ---- master ---- */

int cu_py_hook_on_starting(const cu_hook_arbiter_t *a)
{
    return master_hook(H_ON_STARTING, a);
}

int cu_py_hook_when_ready(const cu_hook_arbiter_t *a)
{
    return master_hook(H_WHEN_READY, a);
}

void cu_py_hook_on_reload(const cu_hook_arbiter_t *a)
{
    (void)master_hook(H_ON_RELOAD, a);
}

void cu_py_hook_pre_exec(const cu_hook_arbiter_t *a)
{
    (void)master_hook(H_PRE_EXEC, a);
}

void cu_py_hook_on_exit(const cu_hook_arbiter_t *a)
{
    (void)master_hook(H_ON_EXIT, a);
}

/* (server, worker) hooks and the WORKERS bookkeeping. */
enum { W_PRE_FORK, W_SPAWNED, W_CHILD_EXIT };

static void worker_event(int what, const cu_hook_arbiter_t *a, const cu_hook_worker_t *w)
{
    int h = what == W_PRE_FORK ? H_PRE_FORK : what == W_CHILD_EXIT ? H_CHILD_EXIT : -1;
    if (!any_hook || (what == W_PRE_FORK && hook_fn[h] == NULL))
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    if (ensure_objects() != CU_OK)
        goto out;
    PyObject *wo = NULL;
    if (refresh_arbiter(a) < 0 || (wo = worker_for(w->age, w->pid, w->ppid)) == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot update the worker object");
        goto out;
    }
    Py_INCREF(wo);
    PyObject *workers = PyObject_GetAttrString(arbiter, "WORKERS"); /* new ref */
    PyObject *pid = PyLong_FromLong((long)w->pid);
    if (workers == NULL || pid == NULL) {
        PyErr_Clear();
    } else if (what == W_SPAWNED) {
        if (PyObject_SetItem(workers, pid, wo) < 0)
            PyErr_Clear();
    } else if (what == W_CHILD_EXIT) {
        if (PyObject_DelItem(workers, pid) < 0)
            PyErr_Clear();
        if (WIFEXITED(w->status))
            (void)set_attr_int(wo, "exitcode", WEXITSTATUS(w->status));
        (void)set_attr_int(wo, "status", w->status);
        (void)PyObject_SetAttrString(wo, "alive", Py_False);
        PyErr_Clear();
    }
    Py_XDECREF(workers);
    Py_XDECREF(pid);
    if (h >= 0 && hook_fn[h] != NULL) {
        PyObject *args[2] = {arbiter, wo};
        (void)call_hook(h, args, 2);
    }
    if (what == W_CHILD_EXIT) {
        PyObject *key = PyLong_FromLong(w->age);
        if (key == NULL || PyDict_DelItem(by_age, key) < 0)
            PyErr_Clear();
        Py_XDECREF(key);
    }
    Py_DECREF(wo);
out:
    PyGILState_Release(g);
}

void cu_py_hook_pre_fork(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w)
{
    worker_event(W_PRE_FORK, a, w);
}

void cu_py_hook_spawned(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w)
{
    worker_event(W_SPAWNED, a, w);
}

void cu_py_hook_child_exit(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w)
{
    worker_event(W_CHILD_EXIT, a, w);
}

void cu_py_hook_nworkers_changed(const cu_hook_arbiter_t *a, int new_value, int old_value)
{
    if (hook_fn[H_NWORKERS_CHANGED] == NULL)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    if (ensure_objects() == CU_OK && refresh_arbiter(a) == 0) {
        PyObject *nv = PyLong_FromLong(new_value);
        PyObject *ov = old_value < 0 ? Py_NewRef(Py_None) : PyLong_FromLong(old_value);
        if (nv && ov) {
            PyObject *args[3] = {arbiter, nv, ov};
            (void)call_hook(H_NWORKERS_CHANGED, args, 3);
        } else {
            PyErr_Clear();
        }
        Py_XDECREF(nv);
        Py_XDECREF(ov);
    } else {
        PyErr_Clear();
    }
    PyGILState_Release(g);
}

/* ---- worker ---- */

/* This process's Worker object (GIL held, objects built). Borrowed, or NULL. */
static PyObject *me(void)
{
    if (self_worker != NULL)
        return self_worker;
    PyObject *w = worker_for(self_age, getpid(), self_ppid ? self_ppid : getppid());
    if (w == NULL)
        return NULL;
    self_worker = Py_NewRef(w);
    return self_worker;
}

int cu_py_hook_post_fork(const cu_hook_arbiter_t *a, const cu_hook_worker_t *w)
{
    self_age = w->age;
    self_ppid = w->ppid;
    if (!any_hook)
        return CU_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    Py_CLEAR(self_worker);
    if (ensure_objects() == CU_OK) {
        PyObject *wo = NULL;
        if (refresh_arbiter(a) < 0 || (wo = me()) == NULL)
            cu__py_log_exception(CU_LOG_ERROR, "cannot update the worker object");
        else if (hook_fn[H_POST_FORK] == NULL)
            rc = CU_OK;
        else
            rc = call_hook(H_POST_FORK, (PyObject *[]){arbiter, wo}, 2);
    }
    PyGILState_Release(g);
    return rc;
}

int cu__hook_post_worker_init(void)
{
    if (!any_hook)
        return CU_OK;
    if (ensure_objects() != CU_OK)
        return CU_ERROR;
    PyObject *wo = me();
    if (wo == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot build the worker object");
        return CU_ERROR;
    }
    if (cu__py.app != NULL && (PyObject_SetAttrString(wo, "wsgi", cu__py.app) < 0 ||
                               PyObject_SetAttrString(arbiter, "app", cu__py.app) < 0))
        PyErr_Clear();
    int rc = hook_fn[H_POST_WORKER_INIT] ? call_hook(H_POST_WORKER_INIT, &wo, 1) : CU_OK;
    if (rc == CU_OK && PyObject_SetAttrString(wo, "booted", Py_True) < 0)
        PyErr_Clear();
    return rc;
}

static void worker_hook(int h)
{
    if (hook_fn[h] == NULL)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *wo;
    if (ensure_objects() == CU_OK && (wo = me()) != NULL) {
        if (PyObject_SetAttrString(wo, "alive", Py_False) < 0)
            PyErr_Clear();
        (void)call_hook(h, &wo, 1);
    } else {
        PyErr_Clear();
    }
    PyGILState_Release(g);
}

void cu_py_hook_worker_int(void)
{
    worker_hook(H_WORKER_INT);
}

void cu_py_hook_worker_abort(void)
{
    worker_hook(H_WORKER_ABORT);
}

void cu_py_hook_worker_exit(const cu_hook_arbiter_t *a)
{
    if (hook_fn[H_WORKER_EXIT] == NULL)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *wo;
    if (ensure_objects() == CU_OK && refresh_arbiter(a) == 0 && (wo = me()) != NULL) {
        PyObject *r =
            PyObject_Vectorcall(hook_fn[H_WORKER_EXIT], (PyObject *[]){arbiter, wo}, 2, NULL);
        if (r == NULL)
            cu__py_log_exception(CU_LOG_WARNING, "Exception during worker exit");
        Py_XDECREF(r);
    } else {
        PyErr_Clear();
    }
    PyGILState_Release(g);
}

/* The Python-level signal handler: runs in the app's thread (sync worker) when the C
 * handler saw SIGINT/SIGQUIT/SIGABRT inside the app. Runs the hook, worker_exit, then
 * leaves like gunicorn's handle_quit / handle_abort. */
static PyObject *on_signal_in_app(PyObject *self, PyObject *args)
{
    int sig = SIGQUIT;
    PyObject *frame;
    if (!PyArg_ParseTuple(args, "i|O", &sig, &frame))
        PyErr_Clear();
    int h = sig == SIGABRT ? H_WORKER_ABORT : H_WORKER_INT;
    PyObject *wo;
    if (ensure_objects() == CU_OK && (wo = me()) != NULL) {
        if (PyObject_SetAttrString(wo, "alive", Py_False) < 0)
            PyErr_Clear();
        if (sig == SIGABRT && PyObject_SetAttrString(wo, "aborted", Py_True) < 0)
            PyErr_Clear();
        if (hook_fn[h] != NULL)
            (void)call_hook(h, &wo, 1);
        cu_log_info("Worker exiting (pid: %d)", (int)getpid());
        if (hook_fn[H_WORKER_EXIT] != NULL) {
            PyObject *r =
                PyObject_Vectorcall(hook_fn[H_WORKER_EXIT], (PyObject *[]){arbiter, wo}, 2, NULL);
            if (r == NULL)
                cu__py_log_exception(CU_LOG_WARNING, "Exception during worker exit");
            Py_XDECREF(r);
        }
    }
    PyErr_Clear();
    static const char *names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < CU_NELEM(names); i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
    _exit(sig == SIGABRT ? 1 : 0);
}

static PyMethodDef sig_def = {"on_signal_in_app", on_signal_in_app, METH_VARARGS,
                              "worker_int / worker_abort from inside the app."};
static volatile sig_atomic_t armed[3]; /* SIGINT, SIGQUIT, SIGABRT */

static int arm_index(int sig)
{
    return sig == SIGINT ? 0 : sig == SIGQUIT ? 1 : sig == SIGABRT ? 2 : -1;
}

void cu_py_hook_arm_signals(void)
{
    if (hook_fn[H_WORKER_INT] == NULL && hook_fn[H_WORKER_ABORT] == NULL &&
        hook_fn[H_WORKER_EXIT] == NULL)
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *signal = PyImport_ImportModule("signal"); /* new ref */
    PyObject *fn = PyCFunction_New(&sig_def, NULL);     /* new ref */
    static const int sigs[] = {SIGINT, SIGQUIT, SIGABRT};
    for (size_t i = 0; signal && fn && i < CU_NELEM(sigs); i++) {
        int h = sigs[i] == SIGABRT ? H_WORKER_ABORT : H_WORKER_INT;
        if (hook_fn[h] == NULL && hook_fn[H_WORKER_EXIT] == NULL)
            continue;
        /* signal.signal() installs Python's C handler too: put the worker's back, keeping
         * the Python-level entry that PyErr_SetInterruptEx() trips. */
        struct sigaction old;
        sigaction(sigs[i], NULL, &old);
        PyObject *r = PyObject_CallMethod(signal, "signal", "iO", sigs[i], fn);
        sigaction(sigs[i], &old, NULL);
        if (r == NULL) {
            cu__py_log_exception(CU_LOG_WARNING, "cannot arm the worker_int/worker_abort hooks");
            continue;
        }
        Py_DECREF(r);
        armed[i] = 1;
    }
    if (signal == NULL || fn == NULL)
        PyErr_Clear();
    Py_XDECREF(signal);
    Py_XDECREF(fn);
    PyGILState_Release(g);
}

int cu_py_hook_signal_in_app(int sig)
{
    int i = arm_index(sig);
    if (i < 0 || !armed[i])
        return 0;
    return PyErr_SetInterruptEx(sig) == 0;
}

/* ---- requests (wsgi.c, GIL held) ---- */

static PyObject *str_of(cu_str_t s)
{
    return PyUnicode_DecodeLatin1(s.p ? s.p : "", (Py_ssize_t)s.len, NULL);
}

/* The req object for the request on c (new ref). */
static PyObject *build_request(cu_conn_t *c)
{
    const cu_req_t *r = &c->request;
    PyObject *method = str_of(r->method);
    if (method != NULL && r->method_lower) {
        PyObject *up = PyObject_CallMethod(method, "upper", NULL);
        Py_SETREF(method, up);
    }
    PyObject *headers = PyList_New((Py_ssize_t)r->nheaders);
    for (size_t i = 0; headers && i < r->nheaders; i++) {
        PyObject *n = str_of(r->headers[i].name);
        PyObject *up = n ? PyObject_CallMethod(n, "upper", NULL) : NULL;
        PyObject *v = str_of(r->headers[i].value);
        PyObject *t = up && v ? PyTuple_Pack(2, up, v) : NULL;
        Py_XDECREF(n);
        Py_XDECREF(up);
        Py_XDECREF(v);
        if (t == NULL) {
            Py_CLEAR(headers);
            break;
        }
        PyList_SET_ITEM(headers, (Py_ssize_t)i, t);
    }
    PyObject *peer = r->peer->is_unix ? PyUnicode_FromString("")
                                      : Py_BuildValue("(si)", r->peer->host, r->peer->port);
    PyObject *uri = str_of(r->target), *path = str_of(r->path), *query = str_of(r->query);
    PyObject *frag = str_of(r->fragment);
    PyObject *req = NULL;
    if (method && headers && peer && uri && path && query && frag)
        req = PyObject_CallMethod(support, "Request", "OOOOO(ii)OsOO", method, uri, path, query,
                                  frag, r->version_major, r->version_minor, headers, r->scheme,
                                  peer, r->keep_alive ? Py_False : Py_True);
    Py_XDECREF(method);
    Py_XDECREF(headers);
    Py_XDECREF(peer);
    Py_XDECREF(uri);
    Py_XDECREF(path);
    Py_XDECREF(query);
    Py_XDECREF(frag);
    return req;
}

PyObject *cu__hook_request(cu_conn_t *c, int *raised)
{
    *raised = 0;
    if (ensure_objects() != CU_OK)
        return NULL;
    PyObject *req = build_request(c);
    if (req == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot build the req object for the request hooks");
        return NULL;
    }
    if (hook_fn[H_PRE_REQUEST] == NULL) {
        cu_log_debug("%.*s %.*s", (int)c->request.method.len, c->request.method.p,
                     (int)c->request.path.len, c->request.path.p);
        return req;
    }
    PyObject *wo = me();
    if (wo == NULL) {
        *raised = 1;
        return req;
    }
    PyObject *r = PyObject_Vectorcall(hook_fn[H_PRE_REQUEST], (PyObject *[]){wo, req}, 2, NULL);
    if (r == NULL)
        *raised = 1; /* the exception stays pending: wsgi.c answers 500 */
    Py_XDECREF(r);
    return req;
}

/* The app's status line and headers, as the response keeps them. */
static PyObject *build_response(cu_conn_t *c)
{
    const cu_resp_head_t *h = &c->resp.h;
    if (h->status == 0)
        return Py_BuildValue("(OOK)", Py_None, Py_None, (unsigned long long)c->resp.body_sent);
    cu_str_t st = cu_resp_status_text(h);
    PyObject *status = PyUnicode_DecodeLatin1(st.p, (Py_ssize_t)st.len, NULL);
    PyObject *headers = PyList_New((Py_ssize_t)h->nfields);
    for (size_t i = 0; headers && i < h->nfields; i++) {
        cu_str_t n = cu_resp_field_name(h, i), v = cu_resp_field_value(h, i);
        PyObject *t = Py_BuildValue("(s#s#)", n.p, (Py_ssize_t)n.len, v.p, (Py_ssize_t)v.len);
        if (t == NULL)
            Py_CLEAR(headers);
        else
            PyList_SET_ITEM(headers, (Py_ssize_t)i, t);
    }
    PyObject *args = status && headers ? Py_BuildValue("(OOK)", status, headers,
                                                       (unsigned long long)c->resp.body_sent)
                                       : NULL;
    Py_XDECREF(status);
    Py_XDECREF(headers);
    return args;
}

void cu__hook_post_request(cu_conn_t *c, PyObject *req, PyObject *env, int pre_failed)
{
    if (hook_fn[H_POST_REQUEST] == NULL || req == NULL)
        return;
    PyObject *exc_type, *exc_val, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_val, &exc_tb);
    PyObject *wo = me();
    PyObject *resp = NULL, *e = NULL;
    if (wo == NULL)
        goto fail;
    if (pre_failed) {
        resp = Py_NewRef(Py_None);
    } else {
        PyObject *args = build_response(c);                          /* new ref */
        PyObject *cls = PyObject_GetAttrString(support, "Response"); /* new ref */
        resp = args && cls ? PyObject_CallObject(cls, args) : NULL;
        Py_XDECREF(args);
        Py_XDECREF(cls);
        if (resp == NULL)
            goto fail;
    }
    e = env && !pre_failed ? Py_NewRef(env) : PyDict_New();
    if (e == NULL)
        goto fail;
    PyObject *argv[4] = {wo, req, e, resp};
    PyObject *r =
        PyObject_Vectorcall(hook_fn[H_POST_REQUEST], argv, (size_t)post_request_arity, NULL);
    if (r == NULL)
        cu__py_log_exception(CU_LOG_ERROR, "Exception in post_request hook");
    Py_XDECREF(r);
    goto out;
fail:
    cu__py_log_exception(CU_LOG_ERROR, "Exception in post_request hook");
out:
    Py_XDECREF(resp);
    Py_XDECREF(e);
    PyErr_Restore(exc_type, exc_val, exc_tb);
}
