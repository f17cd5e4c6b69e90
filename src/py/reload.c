/* The worker's code reloader (inotify or polling, in a C thread that takes the GIL only to
 * list sys.modules) and --spew's trace function. */
#include "py/py_internal.h"
#include "py/reload.h"

#include "core/log.h"
#include "py/hooks.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    PyObject *helper;
    char **extra;
    size_t nextra;
    int use_inotify;
    char **files; /* watched files (absolute) */
    time_t *mtimes;
    size_t nfiles;
} R;

static void files_free(void)
{
    for (size_t i = 0; i < R.nfiles; i++)
        cu_free(R.files[i]);
    cu_free(R.files);
    cu_free(R.mtimes);
    R.nfiles = 0;
}

/* Refresh R.files from sys.modules and the extra globs; new files get their mtime now. */
static void refresh(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *extra = PyList_New(0);
    for (size_t i = 0; extra && i < R.nextra; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(R.extra[i]);
        if (s == NULL || PyList_Append(extra, s) < 0)
            Py_CLEAR(extra);
        Py_XDECREF(s);
    }
    PyObject *l = extra ? PyObject_CallMethod(R.helper, "files", "O", extra) : NULL;
    Py_XDECREF(extra);
    if (l == NULL || !PyList_Check(l)) {
        PyErr_Clear();
        Py_XDECREF(l);
        PyGILState_Release(g);
        return;
    }
    size_t n = (size_t)PyList_GET_SIZE(l);
    char **files = cu_xcalloc(n ? n : 1, sizeof(*files));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = PyUnicode_AsUTF8(PyList_GET_ITEM(l, (Py_ssize_t)i));
        if (f)
            files[k++] = cu_xstrdup(f);
        else
            PyErr_Clear();
    }
    Py_DECREF(l);
    PyGILState_Release(g);

    time_t *mt = cu_xcalloc(k ? k : 1, sizeof(*mt));
    for (size_t i = 0; i < k; i++) {
        mt[i] = -1;
        for (size_t j = 0; j < R.nfiles; j++)
            if (strcmp(R.files[j], files[i]) == 0)
                mt[i] = R.mtimes[j];
        struct stat st;
        if (mt[i] == -1)
            mt[i] = stat(files[i], &st) == 0 ? st.st_mtime : 0;
    }
    files_free();
    R.files = files;
    R.mtimes = mt;
    R.nfiles = k;
}

static void changed(const char *path)
{
    cu_log_info("Worker reloading: %s modified", path);
    kill(getpid(), SIGTERM);
}

/* Polling (gunicorn's Reloader): stat every file once a second. */
static void run_poll(void)
{
    for (;;) {
        refresh();
        for (size_t i = 0; i < R.nfiles; i++) {
            struct stat st;
            if (stat(R.files[i], &st) != 0)
                continue;
            if (st.st_mtime > R.mtimes[i]) {
                changed(R.files[i]);
                return;
            }
        }
        sleep(1);
    }
}

/* inotify: watch the directories of the files; a change to one of them restarts. */
static void run_inotify(int ifd)
{
    char **dirs = NULL;
    size_t ndirs = 0;
    for (;;) {
        refresh();
        for (size_t i = 0; i < R.nfiles; i++) {
            char d[PATH_MAX];
            snprintf(d, sizeof(d), "%s", R.files[i]);
            char *slash = strrchr(d, '/');
            if (!slash)
                continue;
            *slash = '\0';
            size_t j = 0;
            while (j < ndirs && strcmp(dirs[j], d) != 0)
                j++;
            if (j < ndirs)
                continue;
            if (inotify_add_watch(ifd, d,
                                  IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MODIFY |
                                      IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                                      IN_ATTRIB) < 0)
                continue;
            dirs = cu_xrealloc(dirs, (ndirs + 1) * sizeof(*dirs));
            dirs[ndirs++] = cu_xstrdup(d);
        }
        struct pollfd p = {.fd = ifd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(ifd, buf, sizeof(buf));
        for (char *q = buf; n > 0 && q < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)(void *)q;
            q += sizeof(*ev) + ev->len;
            if (ev->len == 0)
                continue;
            /* which watched directory: find it by descriptor order (wd = index + 1) */
            if (ev->wd < 1 || (size_t)ev->wd > ndirs)
                continue;
            char path[PATH_MAX * 2];
            snprintf(path, sizeof(path), "%s/%s", dirs[ev->wd - 1], ev->name);
            for (size_t i = 0; i < R.nfiles; i++) {
                if (strcmp(R.files[i], path) == 0) {
                    changed(path);
                    goto done;
                }
            }
        }
    }
done:
    for (size_t i = 0; i < ndirs; i++)
        cu_free(dirs[i]);
    cu_free(dirs);
}

static void *reload_main(void *arg)
{
    CU_UNUSED(arg);
    if (R.use_inotify) {
        int ifd = inotify_init1(IN_CLOEXEC);
        if (ifd >= 0) {
            run_inotify(ifd);
            close(ifd);
            return NULL;
        }
        cu_log_warn("inotify unavailable (%s): polling for changes", strerror(errno));
    }
    run_poll();
    return NULL;
}

static int helper(void)
{
    if (R.helper == NULL)
        R.helper = cu__py_module("cunicorn._reload");
    if (R.helper == NULL)
        cu__py_log_exception(CU_LOG_ERROR, "cannot set up --reload / --spew");
    return R.helper ? CU_OK : CU_ERROR;
}

int cu__reload_start(const cu_config_t *cfg)
{
    if (!cfg->reload)
        return CU_OK;
    if (helper() != CU_OK)
        return CU_ERROR;
    cu_log_warn("Reloader is on. Use in development only!");
    R.use_inotify = !cfg->reload_engine || strcmp(cfg->reload_engine, "poll") != 0;
    R.extra = cfg->reload_extra_files.v;
    R.nextra = cfg->reload_extra_files.n;
    /* The watcher never takes signals: they belong to the worker's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, NULL, reload_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        cu_log_error("cannot start the reloader: %s", strerror(rc));
        return CU_ERROR;
    }
    pthread_detach(t);
    return CU_OK;
}

int cu__spew_start(const cu_config_t *cfg)
{
    if (!cfg->spew)
        return CU_OK;
    if (helper() != CU_OK)
        return CU_ERROR;
    PyObject *fn = PyObject_GetAttrString(R.helper, "spew"); /* new ref */
    /* this thread and threads started later, as gunicorn's sys.settrace (plus threading) */
    PyObject *threading = PyImport_ImportModule("threading"); /* new ref */
    PyObject *sysmod = PyImport_ImportModule("sys");          /* new ref */
    PyObject *r1 = NULL, *r2 = NULL;
    if (fn && threading && sysmod) {
        r1 = PyObject_CallMethod(sysmod, "settrace", "O", fn);
        r2 = PyObject_CallMethod(threading, "settrace", "O", fn);
    }
    int rc = r1 && r2 ? CU_OK : CU_ERROR;
    if (rc != CU_OK)
        cu__py_log_exception(CU_LOG_ERROR, "cannot start --spew");
    Py_XDECREF(r1);
    Py_XDECREF(r2);
    Py_XDECREF(sysmod);
    Py_XDECREF(threading);
    Py_XDECREF(fn);
    return rc;
}
