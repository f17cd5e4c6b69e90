/* The Python side of dirty arbiters (see py/dirty.h): TLV <-> Python objects, loading the
 * DirtyApp classes, running an action and turning its result, generator or exception into
 * frames, and the four dirty hooks with the arbiter and worker objects they receive. */
#include "py/py_internal.h"

#include "core/log.h"
#include "dirty/proto.h"
#include "py/dirty.h"
#include "py/hooks.h"

#include <unistd.h>

static PyObject *helper;  /* cunicorn._dirty (src/py/lib/_dirty.py) */
static PyObject *apps;    /* worker: dict path -> app instance */
static PyObject *arb_obj; /* arbiter: the Arbiter object; worker: NULL */
static PyObject *self_wk; /* worker: its Worker object */

static int ensure_helper(void)
{
    if (helper == NULL)
        helper = cu__py_module("cunicorn._dirty");
    return helper ? CU_OK : CU_ERROR;
}

/* ---- TLV -> Python ---- */

static PyObject *from_tlv(const cu_tlv_t *v)
{
    switch (v->type) {
    case CU_TLV_NONE: Py_RETURN_NONE;
    case CU_TLV_BOOL: return PyBool_FromLong(v->b);
    case CU_TLV_INT: return PyLong_FromLongLong(v->i);
    case CU_TLV_FLOAT: return PyFloat_FromDouble(v->f);
    case CU_TLV_BYTES: return PyBytes_FromStringAndSize((const char *)v->p, (Py_ssize_t)v->len);
    case CU_TLV_STR: return PyUnicode_DecodeUTF8((const char *)v->p, (Py_ssize_t)v->len, "strict");
    case CU_TLV_LIST: {
        PyObject *l = PyList_New((Py_ssize_t)v->count);
        size_t off = 0;
        cu_tlv_t item;
        for (Py_ssize_t i = 0; l && cu_tlv_next(v, &off, &item); i++) {
            PyObject *x = from_tlv(&item);
            if (x == NULL) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, i, x);
        }
        return l;
    }
    case CU_TLV_DICT: {
        PyObject *d = PyDict_New();
        size_t off = 0;
        cu_tlv_t k, x;
        while (d && cu_tlv_next(v, &off, &k) && cu_tlv_next(v, &off, &x)) {
            PyObject *pk = from_tlv(&k), *px = pk ? from_tlv(&x) : NULL;
            if (px == NULL || PyDict_SetItem(d, pk, px) < 0)
                Py_CLEAR(d);
            Py_XDECREF(pk);
            Py_XDECREF(px);
        }
        return d;
    }
    }
    PyErr_SetString(PyExc_ValueError, "unknown TLV type");
    return NULL;
}

/* ---- Python -> TLV (gunicorn's TLVEncoder.encode rules) ---- */

static int to_tlv(PyObject *o, cu_buf_t *b, int depth)
{
    int rc = CU_ERROR;
    if (depth > CU_TLV_MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "value nested too deeply for TLV encoding");
        return CU_ERROR;
    }
    if (o == Py_None)
        rc = cu_tlv_put_none(b);
    else if (PyBool_Check(o))
        rc = cu_tlv_put_bool(b, o == Py_True);
    else if (PyLong_Check(o)) {
        long long v = PyLong_AsLongLong(o);
        if (v == -1 && PyErr_Occurred())
            return CU_ERROR;
        rc = cu_tlv_put_int(b, v);
    } else if (PyFloat_Check(o))
        rc = cu_tlv_put_float(b, PyFloat_AS_DOUBLE(o));
    else if (PyBytes_Check(o))
        rc = cu_tlv_put_bytes(b, PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    else if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (s == NULL)
            return CU_ERROR;
        rc = cu_tlv_put_str(b, s, (size_t)n);
    } else if (PyList_Check(o) || PyTuple_Check(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        if ((size_t)n > CU_TLV_MAX_ITEMS) {
            PyErr_Format(PyExc_ValueError, "List too large: %zd items", n);
            return CU_ERROR;
        }
        rc = cu_tlv_put_list(b, (uint32_t)n);
        for (Py_ssize_t i = 0; rc == CU_OK && i < n; i++) {
            /* a list may change size under a callee: re-check each index */
            if (i >= PySequence_Fast_GET_SIZE(o))
                return CU_ERROR;
            rc = to_tlv(PySequence_Fast_GET_ITEM(o, i), b, depth + 1);
            if (rc != CU_OK)
                return CU_ERROR;
        }
    } else if (PyDict_Check(o)) {
        Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0;
        PyObject *k, *v;
        rc = cu_tlv_put_dict(b, (uint32_t)n);
        while (rc == CU_OK && PyDict_Next(o, &pos, &k, &v)) {
            PyObject *ks = PyUnicode_Check(k) ? Py_NewRef(k) : PyObject_Str(k);
            if (ks == NULL)
                return CU_ERROR;
            rc = to_tlv(ks, b, depth + 1);
            Py_DECREF(ks);
            if (rc == CU_OK)
                rc = to_tlv(v, b, depth + 1);
            if (rc != CU_OK)
                return CU_ERROR;
        }
    } else {
        PyErr_Format(PyExc_TypeError, "Unsupported type for TLV encoding: %s", Py_TYPE(o)->tp_name);
        return CU_ERROR;
    }
    if (rc != CU_OK && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "message too large (64 MiB)");
    return rc;
}

/* A frame whose payload is {key: value}. CU_ERROR with a Python exception set. */
static int frame_of(cu_buf_t *b, uint8_t type, uint64_t id, const char *key, PyObject *value)
{
    size_t at = cu_dirty_frame_begin(b);
    if (at == (size_t)-1 || cu_tlv_put_dict(b, 1) != CU_OK || cu_tlv_put_cstr(b, key) != CU_OK) {
        PyErr_SetString(PyExc_MemoryError, "frame");
        return CU_ERROR;
    }
    if (to_tlv(value, b, 1) != CU_OK)
        return CU_ERROR;
    return cu_dirty_frame_end(b, at, type, id);
}

/* Send a frame without the GIL (GIL held on entry and exit). */
static int emit_frame(cu_buf_t *b, cu_dirty_emit_cb emit, void *arg)
{
    PyThreadState *ts = PyEval_SaveThread();
    int rc = emit(arg, cu_buf_head(b), cu_buf_unread(b));
    PyEval_RestoreThread(ts);
    b->pos = b->len = 0;
    return rc;
}

/* The pending exception as an ERROR frame (DirtyAppError with its traceback). */
static void send_exception(cu_buf_t *b, uint64_t id, PyObject *app_path, PyObject *action,
                           cu_dirty_emit_cb emit, void *arg)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc != NULL && tb != NULL)
        PyException_SetTraceback(exc, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *d = PyObject_CallMethod(helper, "error", "OOO", exc ? exc : Py_None,
                                      app_path ? app_path : Py_None, action ? action : Py_None);
    Py_XDECREF(exc);
    b->pos = b->len = 0;
    if (d != NULL) {
        PyObject *e = PyDict_GetItemString(d, "error"); /* borrowed */
        if (e == NULL || frame_of(b, CU_DIRTY_ERROR, id, "error", e) != CU_OK)
            Py_CLEAR(d);
    }
    Py_XDECREF(d);
    if (d == NULL) {
        PyErr_Clear();
        b->pos = b->len = 0;
        cu_dirty_put_error(b, id, "DirtyAppError", "the error could not be encoded", NULL, NULL, 0,
                           NULL, 0);
    }
    (void)emit_frame(b, emit, arg);
}

void cu_py_dirty_call(const uint8_t *p, size_t n, uint64_t id, cu_dirty_emit_cb emit, void *arg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    cu_buf_t b;
    cu_buf_init(&b, 256, CU_DIRTY_MAX_MSG + CU_DIRTY_HDR_SIZE);
    PyObject *msg = NULL, *res = NULL;
    cu_tlv_t d;
    if (cu_tlv_read_full(p, n, &d) != CU_OK || d.type != CU_TLV_DICT ||
        (msg = from_tlv(&d)) == NULL) {
        PyErr_Clear();
        cu_dirty_put_error(&b, id, "DirtyProtocolError", "Malformed request payload", NULL, NULL, 0,
                           NULL, 0);
        (void)emit_frame(&b, emit, arg);
        goto done;
    }
    PyObject *app_path = PyDict_GetItemString(msg, "app_path"); /* borrowed */
    PyObject *action = PyDict_GetItemString(msg, "action");
    PyObject *args = PyDict_GetItemString(msg, "args");
    PyObject *kwargs = PyDict_GetItemString(msg, "kwargs");
    PyObject *app = app_path && apps ? PyDict_GetItem(apps, app_path) : NULL;
    if (app == NULL) {
        const char *path = app_path && PyUnicode_Check(app_path) ? PyUnicode_AsUTF8(app_path) : "";
        char text[512];
        snprintf(text, sizeof(text), "Dirty app not found: %s", path ? path : "");
        const char *k[] = {"app_path"}, *v[] = {path ? path : ""};
        cu_dirty_put_error(&b, id, "DirtyAppNotFoundError", text, k, v, 1, NULL, 0);
        (void)emit_frame(&b, emit, arg);
        goto done;
    }
    PyObject *targs = args && PyList_Check(args) ? PyList_AsTuple(args) : PyTuple_New(0);
    PyObject *tkw = kwargs && PyDict_Check(kwargs) ? Py_NewRef(kwargs) : PyDict_New();
    if (targs && tkw)
        res =
            PyObject_CallMethod(helper, "call", "OOOO", app, action ? action : Py_None, targs, tkw);
    Py_XDECREF(targs);
    Py_XDECREF(tkw);
    if (res == NULL) {
        send_exception(&b, id, app_path, action, emit, arg);
        goto done;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
    PyObject *value = PyTuple_GET_ITEM(res, 1); /* borrowed */
    if (kind == 0) {
        if (frame_of(&b, CU_DIRTY_RESPONSE, id, "result", value) != CU_OK)
            send_exception(&b, id, app_path, action, emit, arg);
        else
            (void)emit_frame(&b, emit, arg);
        goto done;
    }
    /* A generator: CHUNK per item, then END; an exception mid-stream becomes ERROR. */
    int ok = 1;
    for (;;) {
        PyObject *item = PyIter_Next(value);
        if (item == NULL)
            break;
        int rc = frame_of(&b, CU_DIRTY_CHUNK, id, "data", item);
        Py_DECREF(item);
        if (rc != CU_OK)
            break;
        if (emit_frame(&b, emit, arg) != CU_OK) {
            ok = 0; /* the arbiter is gone: stop producing */
            break;
        }
    }
    if (PyErr_Occurred()) {
        send_exception(&b, id, app_path, action, emit, arg);
    } else if (ok) {
        uint8_t end[CU_DIRTY_HDR_SIZE];
        cu_dirty_hdr_encode(end, CU_DIRTY_END, 0, id);
        cu_buf_append(&b, end, sizeof(end));
        (void)emit_frame(&b, emit, arg);
    }
    PyObject *r = PyObject_CallMethod(value, "close", NULL);
    if (r == NULL)
        cu__py_log_exception(CU_LOG_WARNING, "Error closing a dirty stream");
    Py_XDECREF(r);
done:
    Py_XDECREF(res);
    Py_XDECREF(msg);
    cu_buf_free(&b);
    PyGILState_Release(g);
}

/* ---- apps ---- */

static PyObject *str_list(const char *const *v, size_t n)
{
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        PyObject *s = PyUnicode_FromString(v[i]);
        if (s == NULL)
            Py_CLEAR(l);
        else
            PyList_SET_ITEM(l, (Py_ssize_t)i, s);
    }
    return l;
}

int cu_py_dirty_app_workers(const char *import_path, int *count)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    *count = -1;
    PyObject *r = ensure_helper() == CU_OK
                      ? PyObject_CallMethod(helper, "app_workers", "s", import_path)
                      : NULL;
    if (r != NULL) {
        *count = (int)PyLong_AsLong(r);
        rc = CU_OK;
    } else {
        char msg[512];
        snprintf(msg, sizeof(msg), "Could not read workers attribute from %s", import_path);
        cu__py_log_exception(CU_LOG_WARNING, msg);
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc;
}

int cu_py_dirty_worker_load(int age, pid_t ppid, const char *const *paths, size_t n)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    PyObject *cfg = Py_None, *log = Py_None, *l = NULL;
    if (ensure_helper() != CU_OK)
        goto fail;
    l = str_list(paths, n);
    if (l == NULL)
        goto fail;
    Py_CLEAR(arb_obj); /* inherited from the arbiter: not ours */
    int hooked = cu__hook_named("dirty_worker_init", &cfg, &log);
    apps = PyObject_CallMethod(helper, "load", "O", l);
    if (apps == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        cu_log_info("Initialized dirty app: %s", paths[i]);
    self_wk = PyObject_CallMethod(helper, "Worker", "illOOO", age, (long)getpid(), (long)ppid, l,
                                  cfg, log);
    if (self_wk == NULL || PyObject_SetAttrString(self_wk, "apps", apps) < 0)
        goto fail;
    if (hooked && cu__hook_call_named("dirty_worker_init", &self_wk, 1) != CU_OK)
        goto done; /* logged by the hook call */
    PyObject_SetAttrString(self_wk, "booted", Py_True);
    rc = CU_OK;
    goto done;
fail:
    cu__py_log_exception(CU_LOG_ERROR, "Failed to load dirty apps");
done:
    Py_XDECREF(l);
    PyGILState_Release(g);
    return rc;
}

void cu_py_dirty_worker_close(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (apps && PyDict_Next(apps, &pos, &k, &v)) {
        PyObject *r = PyObject_CallMethod(v, "close", NULL);
        if (r == NULL) {
            char msg[512];
            snprintf(msg, sizeof(msg), "Error closing dirty app %s", PyUnicode_AsUTF8(k));
            cu__py_log_exception(CU_LOG_ERROR, msg);
        }
        Py_XDECREF(r);
    }
    Py_CLEAR(apps);
    PyGILState_Release(g);
}

/* ---- hooks in the arbiter ---- */

static int set_int(PyObject *o, const char *name, long v)
{
    PyObject *x = PyLong_FromLong(v);
    int rc = x ? PyObject_SetAttrString(o, name, x) : -1;
    Py_XDECREF(x);
    return rc;
}

void cu_py_dirty_hook_starting(pid_t pid, const char *socket_path, int num_workers)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *cfg = Py_None, *log = Py_None;
    int hooked = cu__hook_named("on_dirty_starting", &cfg, &log);
    if (ensure_helper() == CU_OK)
        arb_obj = PyObject_CallMethod(helper, "Arbiter", "lsiOO", (long)pid, socket_path,
                                      num_workers, cfg, log);
    if (arb_obj == NULL)
        cu__py_log_exception(CU_LOG_ERROR, "cannot build the dirty arbiter object");
    else if (hooked)
        (void)cu__hook_call_named("on_dirty_starting", &arb_obj, 1);
    PyGILState_Release(g);
}

void cu_py_dirty_hook_post_fork(int age, pid_t pid, const char *const *paths, size_t napps,
                                int num_workers)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *cfg = Py_None, *log = Py_None, *l = NULL, *w = NULL, *key = NULL, *ws = NULL;
    int hooked = cu__hook_named("dirty_post_fork", &cfg, &log);
    if (arb_obj == NULL || !hooked)
        goto done;
    if ((l = str_list(paths, napps)) == NULL ||
        (w = PyObject_CallMethod(helper, "Worker", "illOOO", age, (long)pid, (long)getpid(), l, cfg,
                                 log)) == NULL ||
        (key = PyLong_FromLong((long)pid)) == NULL ||
        (ws = PyObject_GetAttrString(arb_obj, "workers")) == NULL ||
        PyDict_SetItem(ws, key, w) < 0 || set_int(arb_obj, "num_workers", num_workers) < 0) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot build the dirty worker object");
        goto done;
    }
    PyObject *args[2] = {arb_obj, w};
    (void)cu__hook_call_named("dirty_post_fork", args, 2);
done:
    Py_XDECREF(l);
    Py_XDECREF(w);
    Py_XDECREF(key);
    Py_XDECREF(ws);
    PyGILState_Release(g);
}

void cu_py_dirty_hook_worker_exit(int age, pid_t pid, int num_workers)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *cfg = Py_None, *log = Py_None, *key = NULL, *ws = NULL, *w = NULL;
    int hooked = cu__hook_named("dirty_worker_exit", &cfg, &log);
    if (arb_obj == NULL || !hooked)
        goto done;
    if ((key = PyLong_FromLong((long)pid)) == NULL ||
        (ws = PyObject_GetAttrString(arb_obj, "workers")) == NULL)
        goto fail;
    w = PyDict_GetItemWithError(ws, key); /* borrowed */
    if (w == NULL && PyErr_Occurred())
        goto fail;
    if (w == NULL) {
        PyObject *l = PyList_New(0);
        w = l ? PyObject_CallMethod(helper, "Worker", "illOOO", age, (long)pid, (long)getpid(), l,
                                    cfg, log)
              : NULL;
        Py_XDECREF(l);
        if (w == NULL)
            goto fail;
    } else {
        Py_INCREF(w);
        if (PyDict_DelItem(ws, key) < 0)
            PyErr_Clear();
    }
    PyObject_SetAttrString(w, "alive", Py_False);
    set_int(arb_obj, "num_workers", num_workers);
    PyObject *args[2] = {arb_obj, w};
    (void)cu__hook_call_named("dirty_worker_exit", args, 2);
    Py_DECREF(w);
    goto done;
fail:
    cu__py_log_exception(CU_LOG_ERROR, "cannot build the dirty worker object");
done:
    Py_XDECREF(key);
    Py_XDECREF(ws);
    PyGILState_Release(g);
}

int cu_py_dirty_export_socket(const char *path)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    PyObject *os = PyImport_ImportModule("os");
    PyObject *env = os ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *v = PyUnicode_DecodeFSDefault(path);
    if (env && v && PyMapping_SetItemString(env, "GUNICORN_DIRTY_SOCKET", v) == 0)
        rc = CU_OK;
    else
        cu__py_log_exception(CU_LOG_ERROR, "cannot set GUNICORN_DIRTY_SOCKET");
    Py_XDECREF(v);
    Py_XDECREF(env);
    Py_XDECREF(os);
    PyGILState_Release(g);
    return rc;
}
