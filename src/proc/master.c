/* The arbiter (gunicorn's Arbiter): binds, initialises Python, forks workers and keeps
 * `workers` of them alive, kills the ones whose heartbeat stalls, and turns signals from
 * the self-pipe into stops, scale changes and log reopens. Log lines are worded like
 * gunicorn's so log parsers and tests keep working. */
#include "proc/master.h"
#include "core/buf.h"
#include "core/clock.h"
#include "ctl/ctl.h"
#include "core/log.h"
#include "log/statsd.h"
#include "log/access.h"
#include "net/listen.h"
#include "net/tls.h"
#include "proc/heartbeat.h"
#include "proc/pidfile.h"
#include "proc/proctitle.h"
#include "proc/sdnotify.h"
#include "proc/signals.h"
#include "py/hooks.h"
#include "py/py.h"
#include "py/tls.h"
#include "workers/settings.h"
#include "workers/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CU_MIN_SLOTS           64
#define CU_KILL_AFTER_ABORT_MS 1000 /* SIGKILL a timed-out worker this long after SIGABRT */
#define CU_CRASH_WINDOW_MS     1000 /* a worker failing younger than this is crash-looping */
#define CU_QUICK_STOP_MS       2000 /* grace left to workers after a quick shutdown */
#define CU_LOOP_MS             1000

/* A worker as the master tracks it; kids[i] owns heartbeat slot i. */
typedef struct cu_child_s {
    pid_t pid; /* 0 = free */
    int age;
    int64_t spawned_ms;
    int64_t aborted_ms;       /* when WORKER TIMEOUT sent SIGABRT; 0 = not yet */
    unsigned terminating : 1; /* sent TERM to shrink the pool: no longer counted */
} cu_child_t;

#define CU_MAX_POLL 20

static int g_argc;
static char **g_argv;
static char g_start_cwd[PATH_MAX];

void cu_master_set_argv(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (!getcwd(g_start_cwd, sizeof(g_start_cwd)))
        g_start_cwd[0] = '\0';
}

enum cu_master_state { CU_RUN, CU_STOP_GRACEFUL, CU_STOP_QUICK };

typedef struct cu_master_s {
    cu_config_t *cfg;
    pid_t pid;
    const char *proc_name;
    cu_listener_t *ls;
    size_t nls;
    cu_heartbeat_slot_t *hb;
    cu_child_t *kids;
    size_t nslots;
    int num_workers;
    int age;
    int last_logged_count;
    int crash_streak; /* consecutive workers that failed within CU_CRASH_WINDOW_MS */
    int64_t spawn_not_before_ms;
    enum cu_master_state state;
    int exit_code;
    const char *reason; /* "Reason: ..." on halt, static text */

    cu_config_t *owned_cfg; /* a config loaded by HUP (freed here); NULL: main()'s */
    char *pidfile;          /* the pidfile this master wrote (renamed on USR2), or NULL */
    pid_t reexec_pid;       /* the new master USR2 started, while it lives */
    pid_t master_pid;       /* the old master, while this one is the upgrade (GUNICORN_PID) */
    int saved_workers;      /* num_workers before WINCH, restored if the upgrade dies */
    int systemd;            /* listeners came from systemd socket activation */
    const char *master_name;
    char proc_name_buf[256];
    cu_ctl_t *ctl;
    uid_t uid;
    gid_t gid;
    int set_uid, set_gid;
    char *username; /* for --initgroups */
    long page_kb;
    /* control-socket stats */
    time_t started;
    uint64_t spawned, killed, reloads;
    /* TLS listeners (net/tls.c): the server context and the factory every listener uses */
    cu_tls_t *tls;
    cu_transport_factory_t tls_factory;
} cu_master_t;

static cu_hook_arbiter_t hook_arbiter(const cu_master_t *m)
{
    cu_hook_arbiter_t a = {.pid = m->pid, .num_workers = m->num_workers, .proc_name = m->proc_name};
    return a;
}

static void set_num_workers(cu_master_t *m, int n)
{
    int old = m->num_workers;
    m->num_workers = n;
    if (old != n) {
        cu_hook_arbiter_t a = hook_arbiter(m);
        cu_py_hook_nworkers_changed(&a, n, old);
    }
}

static void reap_workers(cu_master_t *m, int stopping);
static void reexec_died(cu_master_t *m, int status);
static void log_listening(const cu_master_t *m);

static size_t live_workers(const cu_master_t *m, int count_terminating)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].pid && (count_terminating || !m->kids[i].terminating))
            n++;
    return n;
}

static void kill_worker(cu_master_t *m, size_t i, int sig)
{
    if (kill(m->kids[i].pid, sig) < 0 && errno != ESRCH)
        cu_log_warn("kill(%d, %d) failed: %s", (int)m->kids[i].pid, sig, strerror(errno));
}

static void kill_workers(cu_master_t *m, int sig)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].pid)
            kill_worker(m, i, sig);
}

static void halt_with(cu_master_t *m, const char *reason, int code)
{
    m->state = CU_STOP_GRACEFUL;
    m->reason = reason;
    m->exit_code = code;
}

/* In the child, right after fork: never returns. */
static _Noreturn void run_child(cu_master_t *m, cu_worker_ctx_t *ctx)
{
    cu_signals_child_reset();
    cu_ctl_close(m->ctl, 0);
    m->ctl = NULL;
    ctx->slot->pid = getpid();
    cu_proctitle_set("cunicorn: worker [%s]", m->proc_name);
    cu_log_info("Booting worker with pid: %d", (int)getpid());

    cu_hook_arbiter_t a = hook_arbiter(m);
    cu_hook_worker_t w = {.age = ctx->age, .pid = getpid(), .ppid = ctx->ppid};
    if (cu_py_hook_post_fork(&a, &w) != CU_OK)
        _exit(CU_WORKER_BOOT_ERROR);

    umask((mode_t)m->cfg->umask);
    /* gunicorn's set_owner_process: groups first, while still allowed to. */
    if (m->set_gid) {
        int bad = 0;
        if (m->cfg->initgroups && m->username)
            bad = initgroups(m->username, m->gid) < 0;
        if (!bad && m->gid != getgid())
            bad = setgid(m->gid) < 0;
        if (bad) {
            cu_log_error("Can't change the group to %u: %s", (unsigned)m->gid, strerror(errno));
            _exit(CU_WORKER_BOOT_ERROR);
        }
    }
    if (m->set_uid && m->uid != getuid()) {
        if (m->cfg->initgroups && m->username && !m->set_gid)
            (void)initgroups(m->username, getgid());
        if (setuid(m->uid) < 0) {
            cu_log_error("Can't change the user to %u: %s", (unsigned)m->uid, strerror(errno));
            _exit(CU_WORKER_BOOT_ERROR);
        }
    }
    if (m->cfg->reuse_port) {
        cu_listener_t *own = NULL;
        cu_listen_opts_t lo;
        if (cu_listeners_for_worker(cu_settings_listen(m->cfg, &lo), m->ls, m->nls, &own) != CU_OK)
            _exit(CU_WORKER_BOOT_ERROR);
        ctx->listeners = own;
    }

    int rc = cu_worker_main(ctx);
    cu_log_info("Worker exiting (pid: %d)", (int)getpid());
    cu_py_hook_worker_exit(&a);
    _exit(rc);
}

static int spawn_worker(cu_master_t *m)
{
    size_t i = 0;
    while (i < m->nslots && m->kids[i].pid)
        i++;
    if (i == m->nslots)
        return CU_AGAIN; /* every slot busy (workers still stopping): retried next pass */

    /* Stamp before fork so a slow-booting worker gets the full timeout. */
    int64_t now = cu_mono_ms();
    cu_heartbeat_slot_t *slot = &m->hb[i];
    slot->pid = 0;
    slot->requests = 0;
    slot->booted_ms = now;
    slot->stamp_ms = now;

    cu_worker_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = m->cfg;
    ctx.listeners = m->ls;
    ctx.nlisteners = m->nls;
    ctx.slot = slot;
    ctx.age = ++m->age;
    ctx.ppid = m->pid;

    cu_hook_arbiter_t a = hook_arbiter(m);
    cu_hook_worker_t w = {.age = ctx.age, .ppid = m->pid};
    cu_py_hook_pre_fork(&a, &w);

    /* Until the child has reset its handlers, a signal sent to it would run the master's
     * handler and land in the master's self-pipe: block them across fork (the child
     * unblocks in cu_signals_child_reset, after SIG_DFL is back). */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = cu_py_fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        cu_log_error("Unable to fork a worker: %s", strerror(errno));
        m->spawn_not_before_ms = now + 1000;
        return CU_ERROR;
    }
    if (pid == 0)
        run_child(m, &ctx);

    slot->pid = pid;
    cu_child_t *k = &m->kids[i];
    memset(k, 0, sizeof(*k));
    k->pid = pid;
    k->age = ctx.age;
    k->spawned_ms = now;
    m->spawned++;
    w.pid = pid;
    cu_py_hook_spawned(&a, &w);
    return CU_OK;
}

/* Keep num_workers running: spawn the missing, TERM the oldest extras (gunicorn kills by
 * lowest age first). */
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

static void manage_workers(cu_master_t *m)
{
    /* A worker retiring on its own (max_requests) is replaced at once, before it exits. */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].pid && !m->kids[i].terminating && m->hb[i].retiring)
            m->kids[i].terminating = 1;
    size_t live = live_workers(m, 0);
    size_t want = (size_t)m->num_workers;
    if (live < want && cu_mono_ms() >= m->spawn_not_before_ms) {
        for (; live < want && m->state == CU_RUN; live++) {
            if (spawn_worker(m) != CU_OK)
                break;
        }
    }
    while (live > want) {
        size_t oldest = m->nslots;
        for (size_t i = 0; i < m->nslots; i++)
            if (m->kids[i].pid && !m->kids[i].terminating &&
                (oldest == m->nslots || m->kids[i].age < m->kids[oldest].age))
                oldest = i;
        if (oldest == m->nslots)
            break;
        kill_worker(m, oldest, SIGTERM);
        m->kids[oldest].terminating = 1;
        live--;
    }
    if ((int)live != m->last_logged_count) {
        m->last_logged_count = (int)live;
        cu_log_debug("%d workers", (int)live);
        cu_statsd_gauge("gunicorn.workers", (long)live);
    }
    if (m->cfg->enable_backlog_metric && cu_statsd_enabled())
        report_backlog(m);
}

/* SIGABRT the workers whose heartbeat is older than timeout; SIGKILL them if they are
 * still stuck a second later. */
static void murder_workers(cu_master_t *m)
{
    if (m->cfg->timeout <= 0)
        return;
    int64_t now = cu_mono_ms(), limit = (int64_t)m->cfg->timeout * 1000;
    for (size_t i = 0; i < m->nslots; i++) {
        cu_child_t *k = &m->kids[i];
        if (!k->pid || now - m->hb[i].stamp_ms <= limit)
            continue;
        if (!k->aborted_ms) {
            cu_log_crit("WORKER TIMEOUT (pid:%d)", (int)k->pid);
            k->aborted_ms = now;
            kill_worker(m, i, SIGABRT);
        } else if (now - k->aborted_ms >= CU_KILL_AFTER_ABORT_MS) {
            kill_worker(m, i, SIGKILL);
        }
    }
}

static size_t find_child(const cu_master_t *m, pid_t pid)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].pid == pid)
            return i;
    return m->nslots;
}

/* Reap every exited child; log like gunicorn's reap_workers. A worker that could not boot
 * or load the app halts the master (unless it is already stopping). */
static void reap_workers(cu_master_t *m, int stopping)
{
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        if (pid == m->reexec_pid) {
            reexec_died(m, status);
            continue;
        }
        size_t i = find_child(m, pid);
        if (i == m->nslots) {
            cu_log_debug("Reaped unknown child process (pid:%d, status:%d)", (int)pid, status);
            continue;
        }
        cu_child_t *k = &m->kids[i];
        int code = -1;
        if (WIFEXITED(status)) {
            code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
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
        if (code > 0)
            cu_log_error("Worker (pid:%d) exited with code %d.", (int)pid, code);

        int64_t now = cu_mono_ms();
        if (code != 0 && !k->terminating && now - k->spawned_ms < CU_CRASH_WINDOW_MS) {
            /* gunicorn respawns at once; a worker that dies on arrival would then spin
             * the CPU. Back off 200 ms per consecutive crash, capped at 2 s. */
            m->crash_streak++;
            if (m->crash_streak > 1) {
                int64_t delay = (int64_t)(m->crash_streak - 1) * 200;
                m->spawn_not_before_ms = now + (delay > 2000 ? 2000 : delay);
            }
        } else if (now - k->spawned_ms >= CU_CRASH_WINDOW_MS) {
            m->crash_streak = 0;
        }

        cu_hook_arbiter_t a = hook_arbiter(m);
        cu_hook_worker_t w = {.age = k->age, .pid = pid, .ppid = m->pid, .status = status};
        cu_py_hook_child_exit(&a, &w);

        memset((void *)&m->hb[i], 0, sizeof(m->hb[i]));
        memset(k, 0, sizeof(*k));

        if (stopping || m->state != CU_RUN)
            continue;
        if (code == CU_WORKER_BOOT_ERROR)
            halt_with(m, "Worker failed to boot.", CU_WORKER_BOOT_ERROR);
        else if (code == CU_APP_LOAD_ERROR)
            halt_with(m, "App failed to load.", CU_APP_LOAD_ERROR);
    }
}

/* ---- pidfile, upgrade (USR2), promotion ---- */

static char *path_with(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = cu_xmalloc(n);
    snprintf(p, n, "%s%s", path, suffix);
    return p;
}

/* The new master exited: the upgrade failed (or it was stopped before us). This master
 * takes the pidfile back and, if WINCH emptied it, its workers. */
static void reexec_died(cu_master_t *m, int status)
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
        set_num_workers(m, m->saved_workers);
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
static void reexec(cu_master_t *m)
{
    if (m->reexec_pid) {
        cu_log_warn("USR2 signal ignored. Child exists.");
        return;
    }
    if (m->master_pid) {
        cu_log_warn("USR2 signal ignored. Parent exists.");
        return;
    }
    if (!g_argv || !g_argv[0]) {
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
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = cu_py_fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        cu_log_error("USR2: fork failed: %s", strerror(errno));
        reexec_died(m, -1);
        return;
    }
    if (pid > 0) {
        m->reexec_pid = pid;
        cu_log_info("Started the new master (pid:%d)", (int)pid);
        return;
    }

    /* The child: becomes the new master. */
    cu_hook_arbiter_t a = hook_arbiter(m);
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
    if (g_start_cwd[0] && chdir(g_start_cwd) < 0)
        cu_log_warn("chdir(%s): %s", g_start_cwd, strerror(errno));
    execvp(g_argv[0], g_argv);
    cu_log_error("USR2: exec %s failed: %s", g_argv[0], strerror(errno));
    _exit(1);
}

/* In an upgraded master: once the old master is gone, this one takes over its name. */
static void maybe_promote(cu_master_t *m)
{
    if (!m->master_pid || getppid() == m->master_pid)
        return;
    cu_log_info("Master has been promoted.");
    m->master_pid = 0;
    m->master_name = "Master";
    unsetenv("GUNICORN_PID");
    cu_proctitle_set("cunicorn: master [%s]", m->proc_name);
}

/* ---- HUP ---- */

static int strlist_eq(const cu_strlist_t *a, const cu_strlist_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

static const char *proc_name_of(cu_master_t *m, const cu_config_t *cfg)
{
    const char *base = cfg->proc_name ? cfg->proc_name : cfg->app_uri ? cfg->app_uri : "cunicorn";
    if (!m->master_pid)
        return base;
    snprintf(m->proc_name_buf, sizeof(m->proc_name_buf), "%s.2", base);
    return m->proc_name_buf;
}

/* TLS (certfile or keyfile set): build the server context for cfg, through the ssl_context
 * hook when one is set, and make every listener use it. At startup a failure stops the
 * server with the reason (naming the setting); on HUP the previous context stays. */
static int tls_apply(cu_master_t *m, const cu_config_t *cfg, int starting)
{
    char err[1024];
    cu_tls_t *tls = NULL;
    if (cu_tls_enabled(cfg) && !(tls = cu_py_tls_new(cfg, err, sizeof(err)))) {
        if (starting) {
            cu_log_error("TLS: %s", err);
            fprintf(stderr, "\nError: %s\n\n", err);
            return CU_ERROR;
        }
        cu_log_error("Reload: TLS: %s; keeping the previous TLS context", err);
        tls = m->tls;
    }
    if (tls && tls != m->tls) {
        if (m->tls)
            cu_tls_inherit_tickets(tls, m->tls);
        cu_tls_factory(tls, &m->tls_factory);
    }
    for (size_t i = 0; i < m->nls; i++)
        m->ls[i].tf = tls ? &m->tls_factory : NULL;
    if (m->tls != tls)
        cu_tls_free(m->tls); /* workers forked with it keep their own copy */
    m->tls = tls;
    return CU_OK;
}

/* gunicorn's Arbiter.reload: read the configuration again (argv, GUNICORN_CMD_ARGS and the
 * config file), replace the listeners if the addresses changed, start a full set of new
 * workers, then gracefully stop every old one. A configuration that fails to load leaves
 * everything as it was. */
static void reload(cu_master_t *m)
{
    cu_log_info("Hang up: %s", m->master_name);
    cu_sd_notify("RELOADING=1\nSTATUS=Reloading");
    m->reloads++;

    cu_config_t *nc = cu_xcalloc(1, sizeof(*nc));
    cu_config_defaults(nc);
    int rc = g_argv ? cu_config_parse_argv(nc, g_argc, g_argv) : CU_ERROR;
    if (rc != CU_OK || !nc->app_uri || !nc->app_uri[0]) {
        cu_log_error("Reload failed: the configuration did not load; keeping the current one");
        cu_config_free(nc);
        cu_free(nc);
        cu_sd_notify("READY=1\nSTATUS=Reload failed");
        return;
    }

    if (!strlist_eq(&m->cfg->bind, &nc->bind) || m->cfg->reuse_port != nc->reuse_port) {
        cu_listener_t *ls = NULL;
        size_t n = 0;
        cu_listen_opts_t lo;
        if (cu_listeners_open(cu_settings_listen(nc, &lo), &ls, &n) == CU_OK) {
            /* Old unix paths the new set reuses were just re-bound: do not unlink them. */
            for (size_t i = 0; i < m->nls; i++) {
                if (!m->ls[i].unix_path)
                    continue;
                int kept = 0;
                for (size_t j = 0; j < n; j++)
                    kept |= ls[j].unix_path && strcmp(ls[j].unix_path, m->ls[i].unix_path) == 0;
                if (!kept)
                    (void)unlink(m->ls[i].unix_path);
            }
            cu_listeners_close(m->ls, m->nls, 0);
            m->ls = ls;
            m->nls = n;
            m->systemd = 0;
            log_listening(m);
        } else {
            cu_log_error("Reload: can't open the new listeners; keeping the current ones");
            cu_config_free(nc);
            cu_free(nc);
            cu_sd_notify("READY=1\nSTATUS=Reload failed");
            return;
        }
    }

    if (nc->loglevel) {
        int lvl = cu_log_level_parse(nc->loglevel);
        if (lvl > 0)
            cu_log_level = lvl;
    }
    cu_log_reopen();

    /* The new settings are live from here. */
    cu_config_t *old = m->owned_cfg;
    m->cfg = nc;
    m->owned_cfg = nc;
    m->proc_name = proc_name_of(m, nc);
    (void)cu_py_reconfigure(nc); /* chdir, sys.path, raw_env, server.cfg: as gunicorn */
    (void)tls_apply(m, nc, 0);   /* renewed certificates, changed SSL settings */

    cu_hook_arbiter_t a = hook_arbiter(m);
    cu_py_hook_on_reload(&a);

    if (!m->master_pid && (!old || !old->pidfile || !nc->pidfile ||
                           strcmp(old->pidfile ? old->pidfile : "", nc->pidfile) != 0)) {
        if (m->pidfile)
            cu_pidfile_unlink(m->pidfile, m->pid);
        cu_free(m->pidfile);
        char err[512];
        if (nc->pidfile && cu_pidfile_create(nc->pidfile, m->pid, err, sizeof(err)) == CU_OK)
            m->pidfile = cu_xstrdup(nc->pidfile);
        else if (nc->pidfile)
            cu_log_error("%s", err);
    }
    if (old) {
        cu_config_free(old);
        cu_free(old);
    }
    cu_proctitle_set("cunicorn: master [%s]", m->proc_name);

    /* New workers first: the listen backlog holds what arrives while they boot, and the
     * old ones finish what they have. */
    int want = nc->workers < 0 ? 1 : nc->workers;
    if ((size_t)want * 2 > m->nslots)
        want = (int)(m->nslots / 2);
    set_num_workers(m, want);
    for (size_t i = 0; i < m->nslots; i++) {
        if (m->kids[i].pid && !m->kids[i].terminating) {
            m->kids[i].terminating = 1;
            kill_worker(m, i, SIGTERM);
        }
    }
    manage_workers(m);
    cu_sd_notify("READY=1\nSTATUS=Reloaded");
}

/* ---- memory limit ---- */

static long rss_kb(pid_t pid, long page_kb)
{
    char path[64], buf[128];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return -1;
    buf[r] = '\0';
    long size = 0, res = 0;
    if (sscanf(buf, "%ld %ld", &size, &res) != 2)
        return -1;
    return res * page_kb;
}

/* --max-worker-memory: a worker past the limit is replaced, then stopped gracefully. */
static void check_memory(cu_master_t *m)
{
    if (m->cfg->max_worker_memory <= 0)
        return;
    long limit = (long)m->cfg->max_worker_memory * 1024;
    int recycled = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        cu_child_t *k = &m->kids[i];
        if (!k->pid || k->terminating)
            continue;
        long kb = rss_kb(k->pid, m->page_kb);
        if (kb < 0 || kb <= limit)
            continue;
        cu_log_warn("Worker (pid:%d) uses %ld MB, over max_worker_memory (%d MB): recycling",
                    (int)k->pid, kb / 1024, m->cfg->max_worker_memory);
        k->terminating = 1;
        recycled = 1;
    }
    if (!recycled)
        return;
    manage_workers(m); /* the replacements */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].pid && m->kids[i].terminating && !m->kids[i].aborted_ms)
            kill_worker(m, i, SIGTERM);
}

/* ---- control socket commands ---- */

static int parse_count(const char *s, int *out, cu_buf_t *o)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < INT_MIN || v > INT_MAX) {
        cu_ctl_printf(o, "Invalid argument: invalid literal for int() with base 10: '%s'", s);
        return CU_ERROR;
    }
    *out = (int)v;
    return CU_OK;
}

static void json_workers(cu_master_t *m, cu_buf_t *o, int web)
{
    int64_t now = cu_mono_ms();
    int last = 0, first = 1;
    (void)cu_buf_append(o, "[", 1);
    for (;;) {
        size_t best = m->nslots;
        for (size_t i = 0; i < m->nslots; i++)
            if (m->kids[i].pid && m->kids[i].age > last &&
                (best == m->nslots || m->kids[i].age < m->kids[best].age))
                best = i;
        if (best == m->nslots)
            break;
        const cu_child_t *k = &m->kids[best];
        const cu_heartbeat_slot_t *h = &m->hb[best];
        last = k->age;
        long kb = rss_kb(k->pid, m->page_kb);
        cu_ctl_printf(o,
                      "%s{\"pid\": %d, %s\"age\": %d, \"booted\": %s, \"aborted\": %s, "
                      "\"last_heartbeat\": %.2f, \"requests\": %llu, \"rss_kb\": %ld, "
                      "\"uptime\": %.2f, \"terminating\": %s}",
                      first ? "" : ", ", (int)k->pid, web ? "\"type\": \"web\", " : "", k->age,
                      h->pid ? "true" : "false", k->aborted_ms ? "true" : "false",
                      (double)(now - h->stamp_ms) / 1000.0, (unsigned long long)h->requests, kb,
                      (double)(now - k->spawned_ms) / 1000.0, k->terminating ? "true" : "false");
        first = 0;
    }
    (void)cu_buf_append(o, "]", 1);
}

static void json_config(cu_master_t *m, cu_buf_t *o)
{
    const cu_config_t *c = m->cfg;
    cu_ctl_printf(o, "{\"bind\": [");
    for (size_t i = 0; i < c->bind.n; i++) {
        if (i)
            cu_ctl_printf(o, ", ");
        cu_ctl_json_str(o, c->bind.v[i]);
    }
    cu_ctl_printf(o, "], \"workers\": %d, \"worker_class\": ", c->workers);
    cu_ctl_json_str(o, c->worker_class_str ? c->worker_class_str : "sync");
    cu_ctl_printf(o,
                  ", \"threads\": %d, \"timeout\": %d, \"graceful_timeout\": %d, "
                  "\"keepalive\": %d, \"max_requests\": %d, \"max_requests_jitter\": %d, "
                  "\"worker_connections\": %d, \"preload_app\": %s, \"daemon\": %s, "
                  "\"max_worker_memory\": %d, \"reuse_port\": %s, \"pidfile\": ",
                  c->threads, c->timeout, c->graceful_timeout, c->keepalive, c->max_requests,
                  c->max_requests_jitter, c->worker_connections, c->preload_app ? "true" : "false",
                  c->daemon ? "true" : "false", c->max_worker_memory,
                  c->reuse_port ? "true" : "false");
    if (c->pidfile)
        cu_ctl_json_str(o, c->pidfile);
    else
        cu_ctl_printf(o, "null");
    cu_ctl_printf(o, ", \"proc_name\": ");
    cu_ctl_json_str(o, m->proc_name);
    cu_ctl_printf(o, ", \"control_socket\": ");
    if (c->control_socket)
        cu_ctl_json_str(o, c->control_socket);
    else
        cu_ctl_printf(o, "null");
    cu_ctl_printf(o, ", \"control_socket_disable\": %s}",
                  c->control_socket_disable ? "true" : "false");
}

static int ctl_show(cu_master_t *m, const char *what, cu_buf_t *o)
{
    if (strcmp(what, "workers") == 0) {
        cu_ctl_printf(o, "{\"workers\": ");
        json_workers(m, o, 0);
        cu_ctl_printf(o, ", \"count\": %zu}", live_workers(m, 1));
    } else if (strcmp(what, "all") == 0) {
        cu_ctl_printf(o,
                      "{\"arbiter\": {\"pid\": %d, \"type\": \"arbiter\", \"role\": \"master\"}, "
                      "\"web_workers\": ",
                      (int)m->pid);
        json_workers(m, o, 1);
        cu_ctl_printf(o,
                      ", \"web_worker_count\": %zu, \"dirty_arbiter\": null, "
                      "\"dirty_workers\": [], \"dirty_worker_count\": 0}",
                      live_workers(m, 1));
    } else if (strcmp(what, "stats") == 0) {
        uint64_t requests = 0;
        for (size_t i = 0; i < m->nslots; i++)
            if (m->kids[i].pid)
                requests += m->hb[i].requests;
        cu_ctl_printf(o,
                      "{\"uptime\": %.2f, \"pid\": %d, \"workers_current\": %zu, "
                      "\"workers_target\": %d, \"workers_spawned\": %llu, "
                      "\"workers_killed\": %llu, \"reloads\": %llu, \"dirty_arbiter_pid\": null, "
                      "\"requests_live_workers\": %llu}",
                      (double)(time(NULL) - m->started), (int)m->pid, live_workers(m, 1),
                      m->num_workers, (unsigned long long)m->spawned, (unsigned long long)m->killed,
                      (unsigned long long)m->reloads, (unsigned long long)requests);
    } else if (strcmp(what, "config") == 0) {
        json_config(m, o);
    } else if (strcmp(what, "listeners") == 0) {
        cu_ctl_printf(o, "{\"listeners\": [");
        for (size_t i = 0; i < m->nls; i++) {
            char d[512];
            cu_listener_describe(&m->ls[i], d, sizeof(d));
            const char *type = m->ls[i].family == AF_UNIX    ? "unix"
                               : m->ls[i].family == AF_INET6 ? "tcp6"
                               : m->ls[i].family == AF_INET  ? "tcp"
                                                             : "unknown";
            cu_ctl_printf(o, "%s{\"address\": ", i ? ", " : "");
            cu_ctl_json_str(o, d);
            cu_ctl_printf(o, ", \"fd\": %d, \"type\": \"%s\"}", m->ls[i].fd, type);
        }
        cu_ctl_printf(o, "], \"count\": %zu}", m->nls);
    } else if (strcmp(what, "dirty") == 0) {
        cu_ctl_printf(o, "{\"enabled\": false, \"pid\": null, \"workers\": [], \"apps\": []}");
    } else {
        cu_ctl_printf(o, "Invalid argument: Unknown show target: %s", what);
        return CU_ERROR;
    }
    return CU_OK;
}

static int ctl_worker(cu_master_t *m, int argc, char **argv, cu_buf_t *o)
{
    const char *act = argv[0];
    int n = 1;
    if (strcmp(act, "add") == 0 || strcmp(act, "remove") == 0) {
        if (argc > 1 && parse_count(argv[1], &n, o) != CU_OK)
            return CU_ERROR;
        if (n < 1)
            n = 1;
        int prev = m->num_workers, total;
        if (act[0] == 'a') {
            total = prev + n;
            if ((size_t)total > m->nslots / 2)
                total = (int)(m->nslots / 2);
        } else {
            total = prev - n < 1 ? 1 : prev - n;
        }
        cu_log_info("Number of workers changed from %d to %d", prev, total);
        set_num_workers(m, total);
        manage_workers(m);
        if (act[0] == 'a')
            cu_ctl_printf(o, "{\"added\": %d, \"previous\": %d, \"total\": %d}", total - prev, prev,
                          total);
        else
            cu_ctl_printf(o, "{\"removed\": %d, \"previous\": %d, \"total\": %d}", prev - total,
                          prev, total);
        return CU_OK;
    }
    if (strcmp(act, "kill") == 0) {
        if (argc < 2) {
            cu_ctl_printf(o, "Invalid argument: Missing PID for worker kill");
            return CU_ERROR;
        }
        int pid;
        if (parse_count(argv[1], &pid, o) != CU_OK)
            return CU_ERROR;
        size_t i = pid > 0 ? find_child(m, (pid_t)pid) : m->nslots;
        if (i == m->nslots) {
            cu_ctl_printf(o, "{\"success\": false, \"error\": \"Worker %d not found\"}", pid);
            return CU_OK;
        }
        /* Replaced at once: the pool does not shrink while this one finishes. */
        m->kids[i].terminating = 1;
        kill_worker(m, i, SIGTERM);
        m->killed++;
        manage_workers(m);
        cu_ctl_printf(o, "{\"success\": true, \"killed\": %d}", pid);
        return CU_OK;
    }
    cu_ctl_printf(o, "Invalid argument: Unknown worker action: %s", act);
    return CU_ERROR;
}

static int ctl_command(void *ctx, int argc, char **argv, cu_buf_t *o)
{
    cu_master_t *m = ctx;
    for (char *p = argv[0]; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    const char *cmd = argv[0];
    if (strcmp(cmd, "show") == 0) {
        if (argc < 2) {
            cu_ctl_printf(o, "Invalid argument: Missing show target "
                             "(all|workers|dirty|config|stats|listeners)");
            return CU_ERROR;
        }
        for (char *p = argv[1]; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        return ctl_show(m, argv[1], o);
    }
    if (strcmp(cmd, "worker") == 0) {
        if (argc < 2) {
            cu_ctl_printf(o, "Invalid argument: Missing worker action (add|remove|kill)");
            return CU_ERROR;
        }
        return ctl_worker(m, argc - 1, argv + 1, o);
    }
    if (strcmp(cmd, "dirty") == 0) {
        cu_ctl_printf(o, "{\"success\": false, \"error\": \"Dirty arbiter not running\"}");
        return CU_OK;
    }
    /* These go through the signal path, exactly like kill -HUP/-USR1/-TERM/-INT. */
    if (strcmp(cmd, "reload") == 0) {
        kill(m->pid, SIGHUP);
        cu_ctl_printf(o, "{\"status\": \"reloading\"}");
        return CU_OK;
    }
    if (strcmp(cmd, "reopen") == 0) {
        kill(m->pid, SIGUSR1);
        cu_ctl_printf(o, "{\"status\": \"reopening\"}");
        return CU_OK;
    }
    if (strcmp(cmd, "shutdown") == 0) {
        const char *mode = argc > 1 ? argv[1] : "graceful";
        kill(m->pid, strcmp(mode, "quick") == 0 ? SIGINT : SIGTERM);
        cu_ctl_printf(o, "{\"status\": \"shutting_down\", \"mode\": ");
        cu_ctl_json_str(o, mode);
        cu_ctl_printf(o, "}");
        return CU_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        cu_ctl_printf(o, "{\"commands\": {\"show all\": \"all processes\", \"show workers\": "
                         "\"workers (pid, age, requests, rss)\", \"show stats\": \"counters\", "
                         "\"show config\": \"main settings\", \"show listeners\": \"sockets\", "
                         "\"worker add [N]\": \"more workers\", \"worker remove [N]\": "
                         "\"fewer workers\", \"worker kill PID\": \"replace one worker\", "
                         "\"reload\": \"like HUP\", \"reopen\": \"like USR1\", "
                         "\"shutdown [graceful|quick]\": \"stop\"}}");
        return CU_OK;
    }
    cu_ctl_printf(o, "Invalid argument: Unknown command: %s", cmd);
    return CU_ERROR;
}

static void open_control_socket(cu_master_t *m)
{
    const cu_config_t *c = m->cfg;
    if (c->control_socket_disable)
        return;
    char path[2 * PATH_MAX + 32];
    if (c->control_socket && c->control_socket[0] == '/') {
        snprintf(path, sizeof(path), "%s", c->control_socket);
    } else if (c->control_socket) {
        snprintf(path, sizeof(path), "%s/%s", g_start_cwd, c->control_socket);
    } else {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        struct stat st;
        if (xdg && *xdg && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(path, sizeof(path), "%s/gunicorn.ctl", xdg);
        } else {
            const char *home = getenv("HOME");
            struct passwd *pw = home ? NULL : getpwuid(getuid());
            snprintf(path, sizeof(path), "%s/.gunicorn/gunicorn.ctl",
                     home ? home
                     : pw ? pw->pw_dir
                          : "/tmp");
        }
    }
    m->ctl = cu_ctl_open(path, c->control_socket_mode, ctl_command, m);
}

/* ---- signals ---- */

static void handle_signal(cu_master_t *m, int sig)
{
    if (sig == SIGCHLD)
        cu_log_debug("Handling signal: %s", cu_signal_name(sig));
    else
        cu_log_info("Handling signal: %s", cu_signal_name(sig));

    switch (sig) {
    case SIGCHLD: reap_workers(m, 0); break;
    /* QUIT is graceful here (gunicorn treats it as quick): the TERM path. */
    case SIGTERM:
    case SIGQUIT: m->state = CU_STOP_GRACEFUL; break;
    case SIGINT: m->state = CU_STOP_QUICK; break;
    case SIGTTIN:
        if ((size_t)m->num_workers * 2 >= m->nslots) {
            cu_log_warn("TTIN ignored: already at the maximum of %zu workers", m->nslots / 2);
            break;
        }
        cu_log_info("Number of workers changed from %d to %d", m->num_workers, m->num_workers + 1);
        set_num_workers(m, m->num_workers + 1);
        manage_workers(m);
        break;
    case SIGTTOU:
        if (m->num_workers <= 1)
            break;
        cu_log_info("Number of workers changed from %d to %d", m->num_workers, m->num_workers - 1);
        set_num_workers(m, m->num_workers - 1);
        manage_workers(m);
        break;
    case SIGUSR1:
        cu_log_reopen();
        cu_access_log_reopen();
        kill_workers(m, SIGUSR1);
        break;
    case SIGHUP: reload(m); break;
    case SIGUSR2: reexec(m); break;
    case SIGWINCH:
        /* gunicorn acts on WINCH only when daemonized (terminals send it on resize); it is
         * also the step after USR2, so a master with a new one beside it obeys too. */
        if (m->cfg->daemon || m->reexec_pid) {
            cu_log_info("graceful stop of workers");
            if (m->num_workers > 0)
                m->saved_workers = m->num_workers;
            set_num_workers(m, 0);
            manage_workers(m);
        } else {
            cu_log_debug("SIGWINCH ignored. Not daemonized");
        }
        break;
    default: cu_log_info("Ignoring unknown signal: %d", sig); break;
    }
}

/* How long the main loop may sleep: 1 s, less when a spawn backoff or a pending SIGKILL
 * comes due sooner. */
static int poll_timeout(const cu_master_t *m)
{
    int64_t now = cu_mono_ms(), t = CU_LOOP_MS;
    if (m->spawn_not_before_ms > now && live_workers(m, 0) < (size_t)m->num_workers)
        t = m->spawn_not_before_ms - now;
    for (size_t i = 0; i < m->nslots; i++) {
        const cu_child_t *k = &m->kids[i];
        if (k->pid && k->aborted_ms) {
            int64_t due = k->aborted_ms + CU_KILL_AFTER_ABORT_MS - now;
            if (due < t)
                t = due;
        }
    }
    return t < 10 ? 10 : (int)t;
}

/* gunicorn's Arbiter.stop: close the listeners, signal the workers (TERM graceful, QUIT
 * quick), wait up to graceful_timeout while reaping, then SIGKILL whatever is left.
 * An INT during a graceful stop turns it into a quick one. */
static void stop_workers(cu_master_t *m, int graceful)
{
    /* Unix socket files stay when another master (upgrade) or systemd still uses them. */
    cu_listeners_close(m->ls, m->nls, !m->reexec_pid && !m->master_pid && !m->systemd);
    m->ls = NULL;
    m->nls = 0;

    int quick = !graceful;
    int64_t limit = cu_mono_ms() + (int64_t)m->cfg->graceful_timeout * 1000;
    kill_workers(m, graceful ? SIGTERM : SIGQUIT);
    reap_workers(m, 1);
    while (live_workers(m, 1) > 0 && cu_mono_ms() < limit) {
        struct pollfd p = {.fd = cu_signals_fd(), .events = POLLIN};
        (void)poll(&p, 1, 100);
        int sig;
        while ((sig = cu_signals_next()) > 0) {
            if (sig == SIGINT && !quick) {
                cu_log_info("Quick shutdown requested");
                quick = 1;
                kill_workers(m, SIGQUIT);
                int64_t soon = cu_mono_ms() + CU_QUICK_STOP_MS;
                if (soon < limit)
                    limit = soon;
            }
        }
        reap_workers(m, 1);
    }
    if (live_workers(m, 1) == 0)
        return;
    kill_workers(m, SIGKILL);
    /* SIGKILL is not instant; reap for a moment so no zombie outlives the master's logs. */
    for (int i = 0; i < 100 && live_workers(m, 1) > 0; i++) {
        usleep(10 * 1000);
        reap_workers(m, 1);
    }
}

/* errorlog is relative to --chdir like every other path, but it is opened before
 * cu_py_init changes directory. */
static int open_error_log(const cu_config_t *cfg)
{
    const char *path = cfg->errorlog ? cfg->errorlog : "-";
    int rc;
    if (strcmp(path, "-") != 0 && path[0] != '/' && cfg->chdir && cfg->chdir[0]) {
        size_t n = strlen(cfg->chdir) + strlen(path) + 2;
        char *full = cu_xmalloc(n);
        snprintf(full, n, "%s/%s", cfg->chdir, path);
        rc = cu_log_open(full);
        cu_free(full);
    } else {
        rc = cu_log_open(path);
    }
    if (rc < 0)
        fprintf(stderr, "\nError: can't open error log '%s': %s\n\n", path, strerror(-rc));
    return rc;
}

static void log_listening(const cu_master_t *m)
{
    char all[2048], one[512];
    size_t o = 0;
    all[0] = '\0';
    for (size_t i = 0; i < m->nls; i++) {
        cu_listener_describe(&m->ls[i], one, sizeof(one));
        int w = snprintf(all + o, sizeof(all) - o, "%s%s", i ? "," : "", one);
        if (w < 0 || (size_t)w >= sizeof(all) - o)
            break;
        o += (size_t)w;
    }
    cu_log_info("Listening at: %s (%d)", all, (int)m->pid);
}

/* gunicorn's util.daemonize: fork, setsid, fork, umask 022, stdio to /dev/null. */
static int daemonize(void)
{
    pid_t p = fork();
    if (p < 0)
        return CU_ERROR;
    if (p > 0)
        _exit(0);
    setsid();
    p = fork();
    if (p < 0)
        return CU_ERROR;
    if (p > 0)
        _exit(0);
    umask(022);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        for (int i = 0; i < 3; i++)
            if (fd != i)
                dup2(fd, i);
        if (fd > 2)
            close(fd);
    }
    return CU_OK;
}

/* --user/--group as gunicorn reads them: a number, or a name looked up in passwd/group. */
static int resolve_ids(cu_master_t *m)
{
    const cu_config_t *c = m->cfg;
    char *end;
    if (c->user && c->user[0]) {
        unsigned long v = strtoul(c->user, &end, 10);
        struct passwd *pw = *end ? getpwnam(c->user) : getpwuid((uid_t)v);
        if (*end && !pw) {
            fprintf(stderr, "\nError: No such user: '%s'\n\n", c->user);
            return CU_ERROR;
        }
        m->uid = pw ? pw->pw_uid : (uid_t)v;
        m->set_uid = 1;
        m->username = pw ? cu_xstrdup(pw->pw_name) : NULL;
    }
    if (c->group && c->group[0]) {
        unsigned long v = strtoul(c->group, &end, 10);
        struct group *gr = *end ? getgrnam(c->group) : NULL;
        if (*end && !gr) {
            fprintf(stderr, "\nError: No such group: '%s'\n\n", c->group);
            return CU_ERROR;
        }
        m->gid = gr ? gr->gr_gid : (gid_t)v;
        m->set_gid = 1;
    }
    return CU_OK;
}

/* Listeners handed over by systemd or an old master, else bound from --bind. */
static int open_listeners(cu_master_t *m)
{
    int nsd = cu_sd_listen_fds();
    const char *inherited = getenv("GUNICORN_FD");
    int fds[64];
    size_t n = 0;
    cu_listen_opts_t lo;
    if (nsd > 0) {
        n = (size_t)nsd < CU_NELEM(fds) ? (size_t)nsd : CU_NELEM(fds);
        for (size_t i = 0; i < n; i++)
            fds[i] = CU_SD_LISTEN_FDS_START + (int)i;
        m->systemd = 1;
        return cu_listeners_inherit(cu_settings_listen(m->cfg, &lo), fds, n, &m->ls, &m->nls);
    }
    if (inherited && m->master_pid) {
        for (const char *p = inherited; *p && n < CU_NELEM(fds);) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            fds[n++] = (int)v;
            p = *end == ',' ? end + 1 : end;
        }
        unsetenv("GUNICORN_FD");
        return cu_listeners_inherit(cu_settings_listen(m->cfg, &lo), fds, n, &m->ls, &m->nls);
    }
    unsetenv("GUNICORN_FD");
    return cu_listeners_open(cu_settings_listen(m->cfg, &lo), &m->ls, &m->nls);
}

int cu_master_run(cu_config_t *cfg)
{
    cu_master_t m;
    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
    m.master_name = "Master";
    const char *gpid = getenv("GUNICORN_PID");
    if (gpid && *gpid) {
        m.master_pid = (pid_t)strtol(gpid, NULL, 10);
        m.master_name = "Master.2";
    }
    if (cfg->daemon && !m.master_pid && daemonize() != CU_OK) {
        fprintf(stderr, "\nError: can't daemonize: %s\n\n", strerror(errno));
        return 1;
    }
    m.pid = getpid();
    m.proc_name = proc_name_of(&m, cfg);
    m.num_workers = cfg->workers < 0 ? 1 : cfg->workers;
    m.last_logged_count = -1;
    m.started = time(NULL);
    long ps = sysconf(_SC_PAGESIZE);
    m.page_kb = ps > 0 ? ps / 1024 : 4;

    if (cfg->loglevel) {
        int lvl = cu_log_level_parse(cfg->loglevel);
        if (lvl > 0)
            cu_log_level = lvl;
    }
    if (resolve_ids(&m) != CU_OK)
        return 1;
    if (open_error_log(cfg) < 0)
        return 1;

    /* Python (and --preload) come first, like gunicorn's Arbiter.setup: a broken app fails
     * before anything is bound. */
    if (cu_py_init(cfg) != CU_OK)
        return 1;
    if (cfg->preload_app && cu_py_load_app(cfg) != CU_OK)
        return 1;

    cu_log_info("Starting cunicorn %s", CU_VERSION);

    char err[512];
    int code = 1;
    if (cfg->pidfile) {
        if (cu_pidfile_create(cfg->pidfile, m.pid, err, sizeof(err)) != CU_OK) {
            fprintf(stderr, "\nError: %s\n\n", err);
            return 1;
        }
        m.pidfile = cu_xstrdup(cfg->pidfile);
    }
    /* gunicorn sets num_workers in Arbiter.setup, before start(): nworkers_changed first. */
    cu_hook_arbiter_t ha = hook_arbiter(&m);
    cu_py_hook_nworkers_changed(&ha, m.num_workers, -1);
    if (cu_py_hook_on_starting(&ha) != CU_OK)
        goto fail_signals;
    int rc = cu_signals_init();
    if (rc < 0) {
        cu_log_error("Can't install signal handlers: %s", strerror(-rc));
        goto fail_signals;
    }
    if (open_listeners(&m) != CU_OK)
        goto fail_listen;
    if (tls_apply(&m, cfg, 1) != CU_OK)
        goto fail_heartbeat;
    if (m.set_uid || m.set_gid) {
        /* gunicorn hands unix sockets to the workers' user. */
        for (size_t i = 0; i < m.nls; i++)
            if (m.ls[i].unix_path && chown(m.ls[i].unix_path, m.set_uid ? m.uid : (uid_t)-1,
                                           m.set_gid ? m.gid : (gid_t)-1) < 0)
                cu_log_warn("chown(%s): %s", m.ls[i].unix_path, strerror(errno));
    }
    cu_log_debug("Arbiter booted");
    log_listening(&m);
    cu_log_info("Using worker: %s", cfg->worker_class_str ? cfg->worker_class_str : "sync");
    cu_sd_notify("READY=1\nSTATUS=cunicorn arbiter booted");

    /* Twice the pool (HUP runs old and new side by side), at least CU_MIN_SLOTS. */
    m.nslots = (size_t)m.num_workers * 4;
    if (m.nslots < CU_MIN_SLOTS)
        m.nslots = CU_MIN_SLOTS;
    m.hb = cu_heartbeat_create(m.nslots);
    if (!m.hb) {
        cu_log_error("Can't map the heartbeat table: %s", strerror(errno));
        goto fail_heartbeat;
    }
    m.kids = cu_xcalloc(m.nslots, sizeof(*m.kids));
    cu_proctitle_set("cunicorn: master [%s]", m.proc_name);

    ha = hook_arbiter(&m);
    if (cu_py_hook_when_ready(&ha) != CU_OK)
        goto fail_ready;

    manage_workers(&m);
    open_control_socket(&m);
    while (m.state == CU_RUN) {
        struct pollfd p[CU_MAX_POLL];
        p[0] = (struct pollfd){.fd = cu_signals_fd(), .events = POLLIN};
        size_t np = 1 + cu_ctl_pollfds(m.ctl, p + 1, CU_MAX_POLL - 1);
        (void)poll(p, (nfds_t)np, poll_timeout(&m));
        int sig;
        while (m.state == CU_RUN && (sig = cu_signals_next()) > 0)
            handle_signal(&m, sig);
        if (m.state != CU_RUN)
            break;
        cu_ctl_process(m.ctl, p + 1, np - 1);
        /* Reaping every pass as well: a CHLD byte lost to a full pipe must not leave a
         * dead worker counted as alive. */
        reap_workers(&m, 0);
        if (m.state != CU_RUN)
            break;
        maybe_promote(&m);
        murder_workers(&m);
        check_memory(&m);
        manage_workers(&m);
    }

    cu_sd_notify("STOPPING=1");
    cu_ctl_close(m.ctl, 1);
    m.ctl = NULL;
    stop_workers(&m, m.state != CU_STOP_QUICK);
    code = m.exit_code;
fail_ready:
    if (code == 0)
        cu_log_info("Shutting down: %s", m.master_name);
    else
        cu_log_error("Shutting down: %s", m.master_name);
    if (m.reason) {
        if (code == 0)
            cu_log_info("Reason: %s", m.reason);
        else
            cu_log_error("Reason: %s", m.reason);
    }
    if (m.pidfile)
        cu_pidfile_unlink(m.pidfile, m.pid);
    cu_free(m.pidfile);
    ha = hook_arbiter(&m);
    cu_py_hook_on_exit(&ha);
    cu_free(m.kids);
    cu_heartbeat_destroy(m.hb, m.nslots);
fail_heartbeat:
    cu_listeners_close(m.ls, m.nls, !m.reexec_pid && !m.master_pid && !m.systemd);
fail_listen:
fail_signals:
    cu_tls_free(m.tls);
    if (m.pidfile)
        cu_pidfile_unlink(m.pidfile, m.pid);
    cu_free(m.pidfile);
    cu_free(m.username);
    if (m.owned_cfg) {
        cu_config_free(m.owned_cfg);
        cu_free(m.owned_cfg);
    }
    return code;
}
