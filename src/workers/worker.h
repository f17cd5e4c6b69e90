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

typedef struct cu_engine_s cu_engine_t;
typedef struct cu_conn_s cu_conn_t;

/* A worker class: how a worker process serves with the connection engine. setup runs
 * after cu_engine_init (start threads, a foreign loop); run serves until the engine stops
 * (cu_engine_run, or a loop of its own around cu_engine_step); teardown undoes setup (join
 * = 0 on a quick exit: do not wait). dispatch runs a complete request (the app) and returns
 * CU_OK or CU_ERROR (close the connection). `threaded`: the Python runtime is prepared for
 * several threads. `block`: how an app thread waits for a slow client (workers/blocking.h);
 * a class driven by an event loop has none. */
typedef struct cu_worker_class_s {
    const char *name; /* "sync", "gthread" */
    int threaded;
    int (*setup)(cu_engine_t *e, const cu_config_t *cfg);
    void (*run)(cu_engine_t *e);
    void (*teardown)(cu_engine_t *e, int join);
    int (*dispatch)(cu_engine_t *e, cu_conn_t *c);
    int (*block)(cu_conn_t *c, int events); /* blocking adapter; NULL: never block */
} cu_worker_class_t;

/* The class named `name`, or NULL. */
const cu_worker_class_t *cu_worker_class_find(const char *name);

/* Run the worker class chosen by cfg->worker_class in this (child) process. Installs the
 * worker's signal handlers, loads the app (unless preloaded), serves until told to stop.
 * Returns the process exit code; the caller _exit()s with it. */
int cu_worker_main(cu_worker_ctx_t *ctx);

#endif
