/* The web worker, the first kind of child: `workers` of them serve the listeners with the
 * configured worker class; gunicorn's worker hooks (pre_fork, post_fork, child_exit,
 * worker_exit) surround their lives. */
#include "core/log.h"
#include "net/listen.h"
#include "proc/master_state.h"
#include "py/hooks.h"
#include "workers/worker.h"

#include <sys/stat.h>
#include <unistd.h>

static int web_want(const cu_master_t *m)
{
    return m->num_workers;
}

static cu_hook_worker_t hook_worker(const cu_master_t *m, const cu_child_t *k)
{
    cu_hook_worker_t w = {.age = k->age, .pid = k->pid, .ppid = m->pid};
    return w;
}

static void web_before_fork(cu_master_t *m, cu_child_t *k)
{
    cu_hook_arbiter_t a = cu__hook_arbiter(m);
    cu_hook_worker_t w = hook_worker(m, k);
    cu_py_hook_pre_fork(&a, &w);
}

static void web_spawned(cu_master_t *m, cu_child_t *k)
{
    cu_hook_arbiter_t a = cu__hook_arbiter(m);
    cu_hook_worker_t w = hook_worker(m, k);
    cu_py_hook_spawned(&a, &w);
}

static void web_exited(cu_master_t *m, cu_child_t *k, int status)
{
    cu_hook_arbiter_t a = cu__hook_arbiter(m);
    cu_hook_worker_t w = hook_worker(m, k);
    w.status = status;
    cu_py_hook_child_exit(&a, &w);
}

static int web_run(cu_master_t *m, cu_child_t *k)
{
    cu_worker_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = m->cfg;
    ctx.listeners = m->ls;
    ctx.nlisteners = m->nls;
    ctx.slot = &m->hb[k->slot];
    ctx.age = k->age;
    ctx.ppid = m->pid;
    ctx.slot->pid = k->pid;
    cu_log_info("Booting worker with pid: %d", (int)k->pid);

    cu_hook_arbiter_t a = cu__hook_arbiter(m);
    cu_hook_worker_t w = hook_worker(m, k);
    if (cu_py_hook_post_fork(&a, &w) != CU_OK)
        return CU_WORKER_BOOT_ERROR;

    umask((mode_t)m->cfg->umask);
    if (cu__drop_privileges(m) != CU_OK)
        return CU_WORKER_BOOT_ERROR;
    if (m->cfg->reuse_port) {
        cu_listener_t *own = NULL;
        if (cu_listeners_for_worker(m->cfg, m->ls, m->nls, &own) != CU_OK)
            return CU_WORKER_BOOT_ERROR;
        ctx.listeners = own;
    }

    int rc = cu_worker_main(&ctx);
    cu_log_info("Worker exiting (pid: %d)", (int)getpid());
    cu_py_hook_worker_exit(&a);
    return rc;
}

const cu_child_kind_t cu_kind_web = {
    .name = "web",
    .title = "worker",
    .want = web_want,
    .run = web_run,
    .before_fork = web_before_fork,
    .spawned = web_spawned,
    .exited = web_exited,
    .watch_heartbeat = 1,
    .halt_on_boot_fail = 1,
    .replace_on_reload = 1,
};
