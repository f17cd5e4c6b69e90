/* The server's own Python modules (src/py/lib/, one .py file each), embedded at build time by
 * tools/embed_py.py as cunicorn.<name>. No Python.h: the table is plain data. */
#ifndef CU_PY_EMBEDDED_H
#define CU_PY_EMBEDDED_H

#include <stddef.h>

typedef struct cu__py_file_s {
    const char *module; /* "cunicorn._config" */
    const char *path;   /* "cunicorn/_config.py", the filename tracebacks show */
    const char *src;    /* NUL-terminated source, byte for byte the .py file */
    size_t len;
} cu__py_file_t;

/* Terminated by an entry whose module is NULL. */
extern const cu__py_file_t cu__py_files[];

#endif
