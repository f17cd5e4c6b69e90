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

/* logger_class: the instance of the user's gunicorn Logger class (borrowed), or NULL when
 * the C logger serves (the default). Set by cu__pylog_setup in the master, inherited by
 * the workers; while it is set, every error-log line goes to its critical/error/warning/
 * info/debug method, and wsgi.c calls its access(resp, req, environ, request_time) for
 * every request instead of writing the access line. GIL held to use it. */
struct _object *cu__pylog_logger(void);

/* Log the pending Python exception with msg through the logger_class instance:
 * logger.log(level, msg, exc_info=(type, value, tb)), so it formats the traceback as
 * gunicorn's Logger.exception does. Returns 1 when done (the exception is cleared), 0 when
 * there is no such logger (nothing touched). GIL held. */
int cu__pylog_exception(int level, const char *msg);

/* A dict setting from the config file as given (new ref), or NULL when it was not set
 * (secure_scheme_headers, logconfig_dict). GIL held; never raises. */
struct _object;
struct _object *cu__pylog_kept_dict(const char *name);

#endif
