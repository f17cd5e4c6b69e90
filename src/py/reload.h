/* --reload and --spew in a worker (gunicorn's Reloader / InotifyReloader and debug.spew).
 * reload: a thread watches the files of the imported modules and reload_extra_files globs;
 * when one changes it logs "Worker reloading: PATH modified" and stops the worker
 * gracefully (SIGTERM to itself), so the master starts a fresh one.
 * spew: sys.settrace printing "module:line: source" for every line run. */
#ifndef CU_PY_RELOAD_H
#define CU_PY_RELOAD_H

#include "config/config.h"

/* In the worker, GIL held, after the app was loaded. Returns CU_OK or CU_ERROR (logged). */
int cu__reload_start(const cu_config_t *cfg);
int cu__spew_start(const cu_config_t *cfg);

#endif
