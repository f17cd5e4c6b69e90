/* The gevent worker class's Python side: gevent's import, version check and monkey
 * patching (gunicorn's GeventWorker.init_process), the hub driving the engine
 * (src/py/lib/_gevent.py steps it from greenlets), and the `block` hook that waits for a
 * slow client with gevent's wait_read / wait_write instead of poll().
 *
 * Threads: gevent runs every greenlet on the worker's one OS thread. step() releases the
 * GIL around cu_engine_step as the engine's contract asks (dispatch takes it back with
 * PyGILState_Ensure); an app that yields inside dispatch switches greenlets with that C
 * stack saved by greenlet, and the GIL is always held by this thread when Python runs. */
#include "py/py_internal.h"

#include "core/clock.h"
#include "core/log.h"

#include <poll.h>

static PyObject *driver_mod;  /* cunicorn._gevent */
static PyObject *wait_fns[2]; /* gevent.socket.wait_read, wait_write */
static const cu_py_gevent_engine_t *engine;

int cu_py_gevent_prepare(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = CU_ERROR;
    PyObject *gevent = PyImport_ImportModule("gevent"); /* new ref */
    if (gevent == NULL) {
        PyErr_Clear();
        cu_log_error("gevent worker requires gevent 24.10.1 or higher: gevent is not "
                     "installed for %s (pip install 'gevent>=24.10.1')",
                     Py_GetVersion());
        goto out;
    }
    driver_mod = cu__py_module("cunicorn._gevent");
    if (driver_mod == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot load the gevent driver");
        goto out;
    }
    PyObject *ver = PyObject_GetAttrString(gevent, "__version__"); /* new ref */
    PyObject *ok = ver ? PyObject_CallMethod(driver_mod, "version_ok", "O", ver) : NULL;
    int good = ok != NULL && PyObject_IsTrue(ok) == 1;
    if (!good) {
        PyErr_Clear();
        const char *v = ver && PyUnicode_Check(ver) ? PyUnicode_AsUTF8(ver) : NULL;
        cu_log_error("gevent worker requires gevent 24.10.1 or higher (found %s; "
                     "pip install -U 'gevent>=24.10.1')",
                     v ? v : "an unknown version");
        PyErr_Clear();
    }
    Py_XDECREF(ok);
    Py_XDECREF(ver);
    if (!good)
        goto out;
    PyObject *r = PyObject_CallMethod(driver_mod, "patch", NULL); /* new ref */
    if (r == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "gevent monkey patching failed");
        goto out;
    }
    Py_DECREF(r);
    PyObject *sock = PyImport_ImportModule("gevent.socket"); /* new ref */
    if (sock != NULL) {
        wait_fns[0] = PyObject_GetAttrString(sock, "wait_read");
        wait_fns[1] = PyObject_GetAttrString(sock, "wait_write");
        Py_DECREF(sock);
    }
    if (wait_fns[0] == NULL || wait_fns[1] == NULL) {
        cu__py_log_exception(CU_LOG_ERROR, "gevent.socket.wait_read/wait_write missing");
        goto out;
    }
    rc = CU_OK;
out:
    Py_XDECREF(gevent);
    PyGILState_Release(g);
    return rc;
}

/* Steps taken in one call while the engine's fd stays ready: the loop takes one event per
 * step (workers/worker.c), this takes several per trip through the hub. */
#define STEPS_PER_CALL 64

static unsigned step_calls; /* changes when another stepper starts while ours is suspended */

static PyObject *py_step(PyObject *self, PyObject *unused)
{
    int done = 0;
    unsigned me = ++step_calls;
    Py_BEGIN_ALLOW_THREADS for (int i = 0; i < STEPS_PER_CALL; i++)
    {
        done = engine->step(engine->arg);
        if (done || step_calls != me)
            break; /* stopped, or an app yielded here and another stepper took over */
        struct pollfd p = {.fd = engine->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            break;
    }
    Py_END_ALLOW_THREADS return PyBool_FromLong(done);
}

static PyObject *py_next_deadline(PyObject *self, PyObject *unused)
{
    int64_t d = engine->deadline(engine->arg);
    int64_t delay = d < 0 ? -1 : d - cu_mono_ms();
    return Py_BuildValue("LL", (long long)d, (long long)(delay < 0 && d >= 0 ? 0 : delay));
}

static PyMethodDef step_def = {"step", py_step, METH_NOARGS, "cu_engine_step; True once stopped"};
static PyMethodDef deadline_def = {"next_deadline", py_next_deadline, METH_NOARGS,
                                   "(deadline ms, delay ms) of the engine's next timer"};

/* ---- which request holds the hub ----
 * A request's greenlet is registered while its app runs (greenlet -> conn); a tracer on
 * every greenlet switch notes the conn of the greenlet switched to, so when the master
 * aborts a worker whose hub was blocked (WORKER TIMEOUT), the log names that request. */
static PyObject *inflight;          /* {greenlet: int(conn pointer)} */
static PyObject *getcurrent;        /* greenlet.getcurrent */
static cu_conn_t *volatile holding; /* the conn whose greenlet runs now, or NULL */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

/* greenlet switches by copying stack slices to the heap and back, which ASan's stack
 * shadow does not follow: the redzones of the frames suspended in one greenlet would stay
 * poisoned under the frames of the next (false stack-buffer-overflow reports). After
 * every switch, in the target greenlet, the shadow of the stack is cleared, as before a
 * longjmp: this frame up to the stack's top, and 512 KiB below it, where uninstrumented
 * code (libssl) uses the stack without resetting its shadow. Frames entered afterwards
 * poison their own redzones again. (The copy itself reads redzones: the tests run such a
 * worker with ASAN_OPTIONS replace_intrin=0.) */
static void asan_switched(void)
{
    char *sp = __builtin_frame_address(0);
    size_t below = 512 << 10;
    __asan_unpoison_memory_region(sp - below, below); /* first: the call below runs there */
    __asan_handle_no_return();
}
#else
static void asan_switched(void) {}
#endif

static PyObject *on_switch(PyObject *self, PyObject *args)
{
    asan_switched();
    PyObject *event, *pair;
    if (PyArg_ParseTuple(args, "OO", &event, &pair) && PyTuple_Check(pair) &&
        PyTuple_GET_SIZE(pair) == 2) {
        PyObject *p = PyDict_GetItemWithError(inflight, PyTuple_GET_ITEM(pair, 1)); /* borrowed */
        holding = p ? PyLong_AsVoidPtr(p) : NULL;
    }
    PyErr_Clear();
    Py_RETURN_NONE;
}

static PyMethodDef switch_def = {"on_switch", on_switch, METH_VARARGS, NULL};

static int follow_switches(void)
{
    PyObject *greenlet = PyImport_ImportModule("greenlet"); /* new ref */
    PyObject *fn = PyCFunction_New(&switch_def, NULL);      /* new ref */
    inflight = PyDict_New();
    getcurrent = greenlet ? PyObject_GetAttrString(greenlet, "getcurrent") : NULL;
    PyObject *r = greenlet && fn && inflight && getcurrent
                      ? PyObject_CallMethod(greenlet, "settrace", "O", fn)
                      : NULL;
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_XDECREF(greenlet);
    return r ? CU_OK : CU_ERROR;
}

/* Register (c) or unregister (NULL) the current greenlet's request. GIL held. */
static void note_request(cu_conn_t *c)
{
    PyObject *g = PyObject_CallNoArgs(getcurrent); /* new ref */
    if (g == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *v = c ? PyLong_FromVoidPtr(c) : NULL;
    if (c ? (v == NULL || PyDict_SetItem(inflight, g, v) < 0) : PyDict_DelItem(inflight, g) < 0)
        PyErr_Clear();
    Py_XDECREF(v);
    Py_DECREF(g);
    holding = c;
}

int cu_py_gevent_dispatch(cu_conn_t *c)
{
    PyGILState_STATE g = PyGILState_Ensure();
    note_request(c);
    PyGILState_Release(g);
    int rc = cu_py_handle_request(c);
    g = PyGILState_Ensure();
    note_request(NULL);
    PyGILState_Release(g);
    return rc;
}

void cu_py_gevent_note_abort(void)
{
    cu_conn_t *c = holding;
    if (c == NULL)
        return;
    cu_log_error("Worker timeout: the hub was blocked by the request %.*s %.*s from %s (a call "
                 "that does not yield to gevent)",
                 (int)c->request.method.len, c->request.method.p, (int)c->request.path.len,
                 c->request.path.p, c->peer.host[0] ? c->peer.host : "unix");
}

void cu_py_gevent_serve(const cu_py_gevent_engine_t *eng)
{
    engine = eng;
    PyGILState_STATE g = PyGILState_Ensure();
    if (follow_switches() != CU_OK)
        cu__py_log_exception(CU_LOG_WARNING, "greenlet.settrace failed: a worker timeout "
                                             "will not name its request");
    PyObject *step = PyCFunction_New(&step_def, NULL);         /* new ref */
    PyObject *deadline = PyCFunction_New(&deadline_def, NULL); /* new ref */
    PyObject *r = step && deadline
                      ? PyObject_CallMethod(driver_mod, "serve", "OiO", step, eng->fd, deadline)
                      : NULL;
    if (r == NULL)
        cu__py_log_exception(CU_LOG_ERROR, "gevent worker loop failed");
    Py_XDECREF(r);
    Py_XDECREF(step);
    Py_XDECREF(deadline);
    PyGILState_Release(g);
}

int cu_py_gevent_block(cu_conn_t *c, int events)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = wait_fns[(events & CU_EV_WRITE) ? 1 : 0];
    int ms = c->settings->io_timeout_ms;
    PyObject *r = ms > 0 ? PyObject_CallFunction(fn, "id", c->t.fd, ms / 1000.0)
                         : PyObject_CallFunction(fn, "i", c->t.fd);
    int rc = CU_OK;
    if (r == NULL) {
        /* gevent raises socket.timeout (TimeoutError) when the timeout passed */
        rc = PyErr_ExceptionMatches(PyExc_TimeoutError) ? CU_AGAIN : CU_ERROR;
        PyErr_Clear();
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc;
}
