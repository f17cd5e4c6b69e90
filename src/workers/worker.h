/* What the master hands a freshly forked worker, and the worker entry point. */
#ifndef CU_WORKER_H
#define CU_WORKER_H

#include "config/config.h"
#include "net/listen.h"

typedef struct cu_heartbeat_slot_s cu_heartbeat_slot_t;

typedef struct cu_worker_ctx_s {
    const cu_config_t *cfg;
    cu_listener_t *listeners;
    size_t nlisteners;
    cu_heartbeat_slot_t *slot; /* this worker's liveness slot in shared memory */
    int age;                   /* spawn counter, gunicorn's worker.age */
    pid_t ppid;                /* master pid: exit if it changes (orphaned) */
} cu_worker_ctx_t;

/* Exit codes the master understands (gunicorn's). */
#define CU_WORKER_EXIT_OK    0
#define CU_WORKER_BOOT_ERROR 3
#define CU_APP_LOAD_ERROR    4

/* Run the worker class chosen by cfg->worker_class in this (child) process. Installs the
 * worker's signal handlers, loads the app (unless preloaded), serves until told to stop.
 * Returns the process exit code; the caller _exit()s with it. */
int cu_worker_main(cu_worker_ctx_t *ctx);

#endif
