/* The master's side of the dirty arbiter: its socket path (exported to the HTTP workers in
 * GUNICORN_DIRTY_SOCKET), forking it before the HTTP workers, restarting it when it dies,
 * forwarding signals. */
#include "dirty/dirty.h"

#include "core/clock.h"
#include "core/log.h"
#include "py/dirty.h"
#include "py/py.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];
static char g_path[300];
static pid_t g_pid;
static int64_t g_spawned_ms, g_not_before_ms;

int cu_dirty_enabled(const cu_config_t *cfg)
{
    return cfg->dirty_workers > 0 && cfg->dirty_apps.n > 0;
}

int cu_dirty_master_init(const cu_config_t *cfg)
{
    if (!cu_dirty_enabled(cfg) || g_path[0])
        return CU_OK;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/cunicorn-dirty-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        cu_log_error("Can't create the dirty arbiter's directory %s: %s", g_dir, strerror(errno));
        g_dir[0] = '\0';
        return CU_ERROR;
    }
    snprintf(g_path, sizeof(g_path), "%s/arbiter.sock", g_dir);
    return cu_py_dirty_export_socket(g_path);
}

pid_t cu_dirty_master_spawn(const cu_config_t *cfg, const char *proc_name,
                            void (*child_setup)(void *), void *arg)
{
    if (!cu_dirty_enabled(cfg) || g_pid || !g_path[0] || cu_mono_ms() < g_not_before_ms)
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = cu_py_fork();
    if (pid == 0) {
        if (child_setup)
            child_setup(arg);
        cu_dirty_arbiter_main(cfg, g_path, proc_name);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        cu_log_error("Unable to fork the dirty arbiter: %s", strerror(errno));
        g_not_before_ms = cu_mono_ms() + 1000;
        return -1;
    }
    g_pid = pid;
    g_spawned_ms = cu_mono_ms();
    cu_log_info("Spawned dirty arbiter (pid: %d) at %s", (int)pid, g_path);
    return pid;
}

int cu_dirty_master_reaped(pid_t pid, int status)
{
    if (!g_pid || pid != g_pid)
        return 0;
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) != 0)
            cu_log_error("Dirty arbiter (pid:%d) exited with code %d", (int)pid,
                         WEXITSTATUS(status));
        else
            cu_log_info("Dirty arbiter (pid:%d) exited", (int)pid);
    } else if (WIFSIGNALED(status)) {
        cu_log_warn("Dirty arbiter (pid:%d) killed by signal %d", (int)pid, WTERMSIG(status));
    }
    /* One that dies on arrival is restarted at most once a second. */
    if (cu_mono_ms() - g_spawned_ms < 1000)
        g_not_before_ms = cu_mono_ms() + 1000;
    g_pid = 0;
    return 1;
}

pid_t cu_dirty_master_pid(void)
{
    return g_pid;
}

void cu_dirty_master_signal(int sig)
{
    if (g_pid && kill(g_pid, sig) < 0 && errno == ESRCH)
        g_pid = 0;
}

void cu_dirty_master_cleanup(void)
{
    if (g_path[0])
        unlink(g_path);
    if (g_dir[0])
        rmdir(g_dir);
}
