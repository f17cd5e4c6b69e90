/* Process titles ("cunicorn: master [app]") by overwriting the argv/environ area, the way
 * ps(1) and /proc/<pid>/cmdline read them, plus prctl(PR_SET_NAME) for top/comm. */
#ifndef CU_PROCTITLE_H
#define CU_PROCTITLE_H

#include "core/cu_core.h"

/* Call first thing in main(), before anything reads argv or the environment: moves the
 * environment strings and argv[i] strings to the heap (argv[i] pointers are updated in
 * place, `environ` is replaced), so the original contiguous area can hold a title.
 * Never fails: without a usable area cu_proctitle_set only sets the comm name. */
void cu_proctitle_init(int argc, char **argv);

/* Set the title; truncated to the available area. */
void cu_proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
