/* The Python stack of every thread, written to an fd without taking the GIL: the worker
 * timeout report uses it while an app thread is stuck holding the GIL. */
#include "py/py_internal.h"

#include <unistd.h>

/* CPython's own dumper, the one faulthandler runs from its signal handler and watchdog
 * thread: reads the thread states without the GIL, writes with write(2) only. Exported by
 * libpython (internal/pycore_traceback.h), declared here to keep internal headers out. */
PyAPI_FUNC(const char *)
    _Py_DumpTracebackThreads(int fd, PyInterpreterState *interp, PyThreadState *current_tstate);

void cu_py_dump_stacks(int fd)
{
    const char *err = _Py_DumpTracebackThreads(fd, PyInterpreterState_Main(), NULL);
    if (err != NULL) {
        ssize_t w = write(fd, err, strlen(err));
        w = write(fd, "\n", 1);
        (void)w;
    }
}
