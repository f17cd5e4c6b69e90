/* Children of every kind: the fork dance, spawn, reap, pool size and heartbeat timeouts.
 * What a kind of child does lives in its own file (kind_web.c); this file only runs the
 * table in child.h. Log lines are gunicorn's. */
#include "proc/child.h"
#include "core/clock.h"
#include "core/log.h"
#include "log/statsd.h"
#include "proc/master_state.h"
#include "proc/proctitle.h"
#include "proc/signals.h"
#include "py/py.h"
#include "workers/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The dirty arbiter first: its socket is up before HTTP workers call it, as in gunicorn. */
const cu_child_kind_t *const cu__kinds[] = {&cu_kind_dirty_arbiter, &cu_kind_web, NULL};

pid_t cu__fork(void)
{
    /* Until the child has reset its handlers, a signal sent to it would run the master's
     * handler and land in the master's self-pipe: block them across fork (the child
     * unblocks after SIG_DFL is back). */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = cu_py_fork();
    if (pid != 0) {
        int saved = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    return pid;
}

/* In the child, right after the fork dance: never returns. */
static _Noreturn void run_child(cu_master_t *m, cu_child_t *k)
{
    cu_signals_child_reset();
    /* The master's loop and control socket are shared open files: close our copies without
     * touching the registrations, which belong to the master. */
    cu_ctl_close(m->ctl, 0);
    m->ctl = NULL;
    cu_loop_destroy(m->loop);
    m->loop = NULL;
    k->pid = getpid();
    cu_proctitle_set("cunicorn: %s [%s]", k->kind->title, m->proc_name);
    _exit(k->kind->run(m, k));
}

int cu__child_spawn(cu_master_t *m, const cu_child_kind_t *kind)
{
    size_t i = 0;
    while (i < m->nslots && m->kids[i].kind)
        i++;
    if (i == m->nslots)
        return CU_AGAIN; /* every slot busy (children still stopping): retried next pass */

    /* Stamp before fork so a slow-booting child gets the full timeout. */
    int64_t now = cu_mono_ms();
    cu_heartbeat_slot_t *slot = &m->hb[i];
    memset((void *)slot, 0, sizeof(*slot));
    slot->booted_ms = now;
    slot->stamp_ms = now;

    cu_child_t *k = &m->kids[i];
    memset(k, 0, sizeof(*k));
    k->kind = kind;
    k->slot = i;
    k->age = ++m->age;
    k->spawned_ms = now;
    if (kind->before_fork)
        kind->before_fork(m, k);

    pid_t pid = cu__fork();
    if (pid < 0) {
        cu_log_error("Unable to fork a worker: %s", strerror(errno));
        m->spawn_not_before_ms = now + 1000;
        memset(k, 0, sizeof(*k));
        return CU_ERROR;
    }
    if (pid == 0)
        run_child(m, k);

    slot->pid = pid;
    k->pid = pid;
    m->spawned++;
    if (kind->spawned)
        kind->spawned(m, k);
    return CU_OK;
}

size_t cu__child_count(const cu_master_t *m, const cu_child_kind_t *kind, int count_terminating)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        const cu_child_t *k = &m->kids[i];
        if (k->kind && (!kind || k->kind == kind) && (count_terminating || !k->terminating))
            n++;
    }
    return n;
}

size_t cu__child_find(const cu_master_t *m, pid_t pid)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].kind && m->kids[i].pid == pid)
            return i;
    return m->nslots;
}

void cu__child_kill(cu_master_t *m, size_t i, int sig)
{
    if (kill(m->kids[i].pid, sig) < 0 && errno != ESRCH)
        cu_log_warn("kill(%d, %d) failed: %s", (int)m->kids[i].pid, sig, strerror(errno));
}

void cu__children_kill(cu_master_t *m, const cu_child_kind_t *kind, int sig)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].kind && (!kind || m->kids[i].kind == kind))
            cu__child_kill(m, i, sig);
}

/* gunicorn's enable_backlog_metric: connections waiting in the TCP listen queues. For a
 * listening socket the kernel reports the accept-queue length in tcpi_unacked. */
static void report_backlog(const cu_master_t *m)
{
    long total = 0;
    for (size_t i = 0; i < m->nls; i++) {
        if (m->ls[i].family == AF_UNIX || m->ls[i].fd < 0)
            continue;
        struct tcp_info ti;
        socklen_t len = sizeof(ti);
        if (getsockopt(m->ls[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
            total += (long)ti.tcpi_unacked;
    }
    cu_statsd_histogram("gunicorn.backlog", total);
}

static void manage_kind(cu_master_t *m, const cu_child_kind_t *kind)
{
    size_t live = cu__child_count(m, kind, 0);
    size_t want = (size_t)kind->want(m);
    if (live < want && cu_mono_ms() >= m->spawn_not_before_ms) {
        for (; live < want && m->state == CU_RUN; live++) {
            if (cu__child_spawn(m, kind) != CU_OK)
                break;
        }
    }
    while (live > want) {
        size_t oldest = m->nslots;
        for (size_t i = 0; i < m->nslots; i++) {
            const cu_child_t *k = &m->kids[i];
            if (k->kind == kind && !k->terminating &&
                (oldest == m->nslots || k->age < m->kids[oldest].age))
                oldest = i;
        }
        if (oldest == m->nslots)
            break;
        cu__child_kill(m, oldest, SIGTERM);
        m->kids[oldest].terminating = 1;
        live--;
    }
    if (kind == &cu_kind_web && (int)live != m->last_logged_count) {
        m->last_logged_count = (int)live;
        cu_log_debug("%d workers", (int)live);
        cu_statsd_gauge("gunicorn.workers", (long)live);
    }
}

void cu__children_manage(cu_master_t *m)
{
    /* A child retiring on its own (max_requests) is replaced at once, before it exits. */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].kind && !m->kids[i].terminating && m->hb[i].retiring)
            m->kids[i].terminating = 1;
    for (size_t k = 0; cu__kinds[k]; k++)
        manage_kind(m, cu__kinds[k]);
    if (m->cfg->enable_backlog_metric && cu_statsd_enabled())
        report_backlog(m);
}

void cu__children_murder(cu_master_t *m)
{
    if (m->cfg->timeout <= 0)
        return;
    int64_t now = cu_mono_ms(), limit = (int64_t)m->cfg->timeout * 1000;
    for (size_t i = 0; i < m->nslots; i++) {
        cu_child_t *k = &m->kids[i];
        if (!k->kind || !k->kind->watch_heartbeat || now - m->hb[i].stamp_ms <= limit)
            continue;
        if (!k->aborted_ms) {
            cu_log_crit("WORKER TIMEOUT (pid:%d)", (int)k->pid);
            k->aborted_ms = now;
            cu__child_kill(m, i, SIGABRT);
        } else if (now - k->aborted_ms >= CU_KILL_AFTER_ABORT_MS) {
            cu__child_kill(m, i, SIGKILL);
        }
    }
}

int64_t cu__children_next_due(const cu_master_t *m, int64_t cap)
{
    int64_t now = cu_mono_ms(), t = cap;
    if (m->spawn_not_before_ms > now) {
        for (size_t k = 0; cu__kinds[k]; k++) {
            if (cu__child_count(m, cu__kinds[k], 0) < (size_t)cu__kinds[k]->want(m)) {
                t = m->spawn_not_before_ms - now;
                break;
            }
        }
    }
    for (size_t i = 0; i < m->nslots; i++) {
        const cu_child_t *k = &m->kids[i];
        if (k->kind && k->aborted_ms) {
            int64_t due = k->aborted_ms + CU_KILL_AFTER_ABORT_MS - now;
            if (due < t)
                t = due;
        }
    }
    return t < 0 ? 0 : t;
}

static void log_status(pid_t pid, int status)
{
    if (!WIFSIGNALED(status))
        return;
    int sig = WTERMSIG(status);
    char other[32];
    const char *name = cu_signal_abbrev(sig);
    if (!name) {
        snprintf(other, sizeof(other), "signal %d", sig);
        name = other;
    }
    if (sig == SIGKILL)
        cu_log_error("Worker (pid:%d) was sent %s! Perhaps out of memory?", (int)pid, name);
    else if (sig == SIGTERM)
        cu_log_info("Worker (pid:%d) was sent %s!", (int)pid, name);
    else
        cu_log_warn("Worker (pid:%d) was sent %s!", (int)pid, name);
}

void cu__children_reap(cu_master_t *m, int stopping)
{
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        if (pid == m->reexec_pid) {
            cu__reexec_died(m, status);
            continue;
        }
        size_t i = cu__child_find(m, pid);
        if (i == m->nslots) {
            cu_log_debug("Reaped unknown child process (pid:%d, status:%d)", (int)pid, status);
            continue;
        }
        cu_child_t *k = &m->kids[i];
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        log_status(pid, status);
        if (code > 0)
            cu_log_error("Worker (pid:%d) exited with code %d.", (int)pid, code);

        int64_t now = cu_mono_ms();
        if (code != 0 && !k->terminating && now - k->spawned_ms < CU_CRASH_WINDOW_MS) {
            /* gunicorn respawns at once; a child that dies on arrival would then spin the
             * CPU. Back off 200 ms per consecutive crash, capped at 2 s. */
            m->crash_streak++;
            if (m->crash_streak > 1) {
                int64_t delay = (int64_t)(m->crash_streak - 1) * 200;
                m->spawn_not_before_ms = now + (delay > 2000 ? 2000 : delay);
            }
        } else if (now - k->spawned_ms >= CU_CRASH_WINDOW_MS) {
            m->crash_streak = 0;
        }

        const cu_child_kind_t *kind = k->kind;
        if (kind->exited)
            kind->exited(m, k, status);
        memset((void *)&m->hb[i], 0, sizeof(m->hb[i]));
        memset(k, 0, sizeof(*k));

        if (stopping || m->state != CU_RUN || !kind->halt_on_boot_fail)
            continue;
        if (code == CU_WORKER_BOOT_ERROR)
            cu__halt(m, "Worker failed to boot.", CU_WORKER_BOOT_ERROR);
        else if (code == CU_APP_LOAD_ERROR)
            cu__halt(m, "App failed to load.", CU_APP_LOAD_ERROR);
    }
}
