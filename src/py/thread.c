/* Long-lived app threads (gthread): one thread state per thread for its whole life. */
#include <Python.h>

#include "py/py.h"

/* Each app thread keeps the outer PyGILState_Ensure open until it exits, so the nested
 * Ensure/Release of every request finds the same thread state instead of creating one. */
static _Thread_local PyGILState_STATE outer;

void cu_py_thread_attach(void)
{
    outer = PyGILState_Ensure();
    (void)PyEval_SaveThread();
}

void cu_py_thread_detach(void)
{
    PyEval_RestoreThread(PyGILState_GetThisThreadState());
    PyGILState_Release(outer);
}
