/* The dirty arbiter as a kind of child: one of it while dirty_workers > 0 and dirty_apps
 * are set, forked before the web workers (cu__kinds order) and restarted when it dies; it
 * stamps its heartbeat slot once a second. What it does is src/dirty/arbiter.c. */
#include "core/log.h"
#include "dirty/dirty.h"
#include "proc/master_state.h"
#include "workers/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int dirty_want(const cu_master_t *m)
{
    return cu_dirty_enabled(m->cfg) && cu_dirty_socket_path() ? 1 : 0;
}

static int dirty_run(cu_master_t *m, cu_child_t *k)
{
    /* The HTTP listeners are the web workers' business. */
    for (size_t i = 0; i < m->nls; i++)
        if (m->ls[i].fd >= 0)
            close(m->ls[i].fd);
    cu_heartbeat_slot_t *slot = &m->hb[k->slot];
    slot->pid = getpid();
    /* --user/--group as for the web workers (gunicorn's dirty workers set_owner_process);
     * the socket's private directory goes to that user first, while we still may. */
    if (m->set_uid || m->set_gid) {
        char dir[300];
        snprintf(dir, sizeof(dir), "%s", cu_dirty_socket_path());
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        if (chown(dir, m->set_uid ? m->uid : (uid_t)-1, m->set_gid ? m->gid : (gid_t)-1) < 0)
            cu_log_warn("chown(%s): %s", dir, strerror(errno));
    }
    umask((mode_t)m->cfg->umask);
    if (cu__drop_privileges(m) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    cu_dirty_arbiter_main(m->cfg, cu_dirty_socket_path(), m->proc_name, slot);
}

static void dirty_spawned(cu_master_t *m, cu_child_t *k)
{
    cu_log_info("Spawned dirty arbiter (pid: %d) at %s", (int)k->pid, cu_dirty_socket_path());
}

static void dirty_exited(cu_master_t *m, cu_child_t *k, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        cu_log_info("Dirty arbiter (pid:%d) exited", (int)k->pid);
    else if (WIFEXITED(status))
        cu_log_error("Dirty arbiter (pid:%d) exited with code %d", (int)k->pid,
                     WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        cu_log_warn("Dirty arbiter (pid:%d) killed by signal %d", (int)k->pid, WTERMSIG(status));
}

const cu_child_kind_t cu_kind_dirty_arbiter = {
    .name = "dirty-arbiter",
    .title = "dirty arbiter",
    .want = dirty_want,
    .run = dirty_run,
    .spawned = dirty_spawned,
    .exited = dirty_exited,
    .watch_heartbeat = 1,
};
