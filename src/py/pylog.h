/* Logging extras set up once in the master after the interpreter started (cu_py_init):
 * capture_output, syslog, statsd, and Python logging (logconfig, logconfig_dict,
 * logconfig_json). Workers inherit all of it through fork. */
#ifndef CU_PY_PYLOG_H
#define CU_PY_PYLOG_H

#include "config/config.h"

/* With the GIL held, in the master, after chdir. Installs the cu_log and access-log sinks
 * when something needs them (none: the C fast path stays as it is). Returns CU_OK, or
 * CU_ERROR after logging why (a bad logging config: gunicorn refuses to start too). */
int cu__pylog_setup(const cu_config_t *cfg);

/* A dict setting from the config file as given (new ref), or NULL when it was not set
 * (secure_scheme_headers, logconfig_dict). GIL held; never raises. */
struct _object;
struct _object *cu__pylog_kept_dict(const char *name);

#endif
