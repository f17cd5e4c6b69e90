/* Binary upgrade: USR2 forks and execs a new master that inherits the listeners
 * (GUNICORN_FD, or LISTEN_FDS/LISTEN_PID under systemd) and renames the pidfile to
 * .oldbin; WINCH empties the old pool; the new master is promoted when the old one exits,
 * and the old one takes everything back if the new one dies. */
#include "core/log.h"
#include "proc/master_state.h"
#include "proc/proctitle.h"
#include "proc/sdnotify.h"
#include "proc/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *path_with(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = cu_xmalloc(n);
    snprintf(p, n, "%s%s", path, suffix);
    return p;
}

/* The new master exited: the upgrade failed (or it was stopped before us). This master
 * takes the pidfile back and, if WINCH emptied it, its workers. */
void cu__reexec_died(cu_master_t *m, int status)
{
    cu_log_warn("Reexec'd master (pid:%d) exited (status %d); this master keeps serving",
                (int)m->reexec_pid, status);
    m->reexec_pid = 0;
    if (m->pidfile && m->cfg->pidfile) {
        struct stat st;
        if (stat(m->cfg->pidfile, &st) < 0 && rename(m->pidfile, m->cfg->pidfile) == 0) {
            free(m->pidfile);
            m->pidfile = cu_xstrdup(m->cfg->pidfile);
        }
    }
    if (m->saved_workers > 0 && m->num_workers == 0) {
        cu__set_num_workers(m, m->saved_workers);
        m->saved_workers = 0;
    }
}

static void clear_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

/* USR2: fork, and exec this program again with the same argv from the startup directory,
 * handing over the listeners (GUNICORN_FD, or LISTEN_FDS/LISTEN_PID under systemd). */
void cu__reexec(cu_master_t *m)
{
    if (m->reexec_pid) {
        cu_log_warn("USR2 signal ignored. Child exists.");
        return;
    }
    if (m->master_pid) {
        cu_log_warn("USR2 signal ignored. Parent exists.");
        return;
    }
    if (!cu__argv || !cu__argv[0]) {
        cu_log_error("USR2 signal ignored: the command line is unknown");
        return;
    }
    char *oldbin = NULL;
    if (m->pidfile) {
        oldbin = path_with(m->cfg->pidfile ? m->cfg->pidfile : m->pidfile, ".oldbin");
        if (rename(m->pidfile, oldbin) == 0) {
            free(m->pidfile);
            m->pidfile = oldbin;
        } else {
            cu_log_warn("Can't rename the pidfile to %s: %s", oldbin, strerror(errno));
            cu_free(oldbin);
        }
    }
    pid_t me = getpid();
    pid_t pid = cu__fork();
    if (pid < 0) {
        cu_log_error("USR2: fork failed: %s", strerror(errno));
        cu__reexec_died(m, -1);
        return;
    }
    if (pid > 0) {
        m->reexec_pid = pid;
        cu_log_info("Started the new master (pid:%d)", (int)pid);
        return;
    }

    /* The child: becomes the new master. */
    cu_hook_arbiter_t a = cu__hook_arbiter(m);
    cu_py_hook_pre_exec(&a);
    char buf[1024], num[32];
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->nls; i++) {
        clear_cloexec(m->ls[i].fd);
        int w = snprintf(buf + o, sizeof(buf) - o, "%s%d", i ? "," : "", m->ls[i].fd);
        if (w > 0 && (size_t)w < sizeof(buf) - o)
            o += (size_t)w;
    }
    snprintf(num, sizeof(num), "%d", (int)me);
    setenv("GUNICORN_PID", num, 1);
    if (m->systemd) {
        snprintf(num, sizeof(num), "%d", (int)getpid());
        setenv("LISTEN_PID", num, 1);
        snprintf(num, sizeof(num), "%zu", m->nls);
        setenv("LISTEN_FDS", num, 1);
    } else {
        setenv("GUNICORN_FD", buf, 1);
    }
    /* Default handlers and an empty mask (signals were blocked across fork). */
    cu_signals_child_reset();
    if (cu__start_cwd[0] && chdir(cu__start_cwd) < 0)
        cu_log_warn("chdir(%s): %s", cu__start_cwd, strerror(errno));
    execvp(cu__argv[0], cu__argv);
    cu_log_error("USR2: exec %s failed: %s", cu__argv[0], strerror(errno));
    _exit(1);
}

/* In an upgraded master: once the old master is gone, this one takes over its name. */
void cu__maybe_promote(cu_master_t *m)
{
    if (!m->master_pid || getppid() == m->master_pid)
        return;
    cu_log_info("Master has been promoted.");
    m->master_pid = 0;
    m->master_name = "Master";
    unsetenv("GUNICORN_PID");
    cu_proctitle_set("cunicorn: master [%s]", m->proc_name);
}

/* gunicorn acts on WINCH only when daemonized (terminals send it on resize); it is also the
 * step after USR2, so a master with a new one beside it obeys too. */
void cu__winch(cu_master_t *m)
{
    if (!m->cfg->daemon && !m->reexec_pid) {
        cu_log_debug("SIGWINCH ignored. Not daemonized");
        return;
    }
    cu_log_info("graceful stop of workers");
    if (m->num_workers > 0)
        m->saved_workers = m->num_workers;
    cu__set_num_workers(m, 0);
    cu__children_manage(m);
}
