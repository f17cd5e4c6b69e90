/* Dirty arbiters (gunicorn 25+): a child of the master that supervises a pool of dirty
 * workers and routes calls from HTTP workers to them over gunicorn's wire protocol.
 *   master  -> cu_dirty_master_* (supervise.c): socket path; proc/kind_dirty.c: the child
 *   arbiter -> cu_dirty_arbiter_main (arbiter.c): socket, routing, stash, worker pool
 *   worker  -> cu_dirty_worker_main (worker.c): apps loaded once, dirty_threads calls */
#ifndef CU_DIRTY_H
#define CU_DIRTY_H

#include "config/config.h"
#include "core/buf.h"
#include "proc/heartbeat.h"

#include <sys/types.h>

/* ---- in the master ---- */

/* Is the dirty arbiter configured? (dirty_workers > 0 and dirty_apps set, as gunicorn.) */
int cu_dirty_enabled(const cu_config_t *cfg);

/* Before any child is forked: pick the arbiter's socket path (a private mkdtemp directory)
 * and export it in GUNICORN_DIRTY_SOCKET for the HTTP workers. CU_OK or CU_ERROR (logged).
 * Does nothing when the arbiter is not configured. */
int cu_dirty_master_init(const cu_config_t *cfg);

/* The path cu_dirty_master_init chose, or NULL. */
const char *cu_dirty_socket_path(void);

/* Control socket (`show dirty`, `dirty add|remove N`): ask the arbiter at arbiter_pid (0:
 * none) over its socket (5 s at most) and append gunicorn's JSON answer to o. */
void cu_dirty_ctl_show(cu_buf_t *o, pid_t arbiter_pid);
void cu_dirty_ctl_manage(cu_buf_t *o, pid_t arbiter_pid, int op, int count);
/* The arbiter's workers as a JSON list (empty when it does not answer); returns how many. */
size_t cu_dirty_ctl_workers(cu_buf_t *o, pid_t arbiter_pid);

/* At master exit: remove the socket directory. */
void cu_dirty_master_cleanup(void);

/* ---- in the arbiter process (never returns) ---- */
/* `slot`: its heartbeat slot in the master's table, stamped once a second. */
_Noreturn void cu_dirty_arbiter_main(const cu_config_t *cfg, const char *socket_path,
                                     const char *proc_name, cu_heartbeat_slot_t *slot);

/* ---- in a dirty worker process (never returns) ---- */
typedef struct cu_dirty_worker_ctx_s {
    const cu_config_t *cfg;
    const char *proc_name;
    int fd; /* the worker's end of its socketpair with the arbiter */
    int age;
    pid_t ppid; /* the arbiter */
    const char *const *apps;
    size_t napps;
    cu_heartbeat_slot_t *slot;
} cu_dirty_worker_ctx_t;

_Noreturn void cu_dirty_worker_main(const cu_dirty_worker_ctx_t *ctx);

#endif
