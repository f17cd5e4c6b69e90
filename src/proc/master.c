/* The arbiter (gunicorn's Arbiter): binds, initialises Python, forks workers and keeps
 * `workers` of them alive, kills the ones whose heartbeat stalls, and turns signals from
 * the self-pipe into stops, scale changes and log reopens. Log lines are worded like
 * gunicorn's so log parsers and tests keep working. */
#include "proc/master.h"
#include "core/clock.h"
#include "core/log.h"
#include "log/access.h"
#include "net/listen.h"
#include "proc/heartbeat.h"
#include "proc/pidfile.h"
#include "proc/proctitle.h"
#include "proc/signals.h"
#include "py/py.h"
#include "workers/worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
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
} cu_master_t;

static void reap_workers(cu_master_t *m, int stopping);

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
    ctx->slot->pid = getpid();
    cu_proctitle_set("cunicorn: worker [%s]", m->proc_name);
    cu_log_info("Booting worker with pid: %d", (int)getpid());
    int rc = cu_worker_main(ctx);
    cu_log_info("Worker exiting (pid: %d)", (int)getpid());
    _exit(rc);
}

static int spawn_worker(cu_master_t *m)
{
    size_t i = 0;
    while (i < m->nslots && m->kids[i].pid)
        i++;
    cu_assert(i < m->nslots);

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

    pid_t pid = cu_py_fork();
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
    return CU_OK;
}

/* Keep num_workers running: spawn the missing, TERM the oldest extras (gunicorn kills by
 * lowest age first). */
static void manage_workers(cu_master_t *m)
{
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
    }
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
        if ((size_t)m->num_workers >= m->nslots) {
            cu_log_warn("TTIN ignored: already at the maximum of %zu workers", m->nslots);
            break;
        }
        m->num_workers++;
        cu_log_info("Number of workers changed from %d to %d", m->num_workers - 1, m->num_workers);
        manage_workers(m);
        break;
    case SIGTTOU:
        if (m->num_workers <= 1)
            break;
        m->num_workers--;
        cu_log_info("Number of workers changed from %d to %d", m->num_workers + 1, m->num_workers);
        manage_workers(m);
        break;
    case SIGUSR1:
        cu_log_reopen();
        cu_access_log_reopen();
        kill_workers(m, SIGUSR1);
        break;
    case SIGHUP: cu_log_info("HUP: reload is not implemented yet"); break;
    case SIGUSR2: cu_log_info("USR2: re-exec is not implemented yet"); break;
    /* Without --daemon gunicorn ignores WINCH too. */
    case SIGWINCH: cu_log_debug("SIGWINCH ignored. Not daemonized"); break;
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
    cu_listeners_close(m->ls, m->nls, 1);
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
        free(full);
        full = NULL;
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

int cu_master_run(cu_config_t *cfg)
{
    cu_master_t m;
    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
    m.pid = getpid();
    m.proc_name = cfg->proc_name ? cfg->proc_name : cfg->app_uri ? cfg->app_uri : "cunicorn";
    m.num_workers = cfg->workers < 0 ? 1 : cfg->workers;
    m.last_logged_count = -1;

    if (cfg->loglevel) {
        int lvl = cu_log_level_parse(cfg->loglevel);
        if (lvl > 0)
            cu_log_level = lvl;
    }
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
    if (cfg->pidfile && cu_pidfile_create(cfg->pidfile, m.pid, err, sizeof(err)) != CU_OK) {
        fprintf(stderr, "\nError: %s\n\n", err);
        return 1;
    }
    int rc = cu_signals_init();
    if (rc < 0) {
        cu_log_error("Can't install signal handlers: %s", strerror(-rc));
        goto fail_signals;
    }
    if (cu_listeners_open(cfg, &m.ls, &m.nls) != CU_OK)
        goto fail_listen;
    log_listening(&m);
    cu_log_info("Using worker: %s", cfg->worker_class_str ? cfg->worker_class_str : "sync");

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

    manage_workers(&m);
    while (m.state == CU_RUN) {
        struct pollfd p = {.fd = cu_signals_fd(), .events = POLLIN};
        (void)poll(&p, 1, poll_timeout(&m));
        int sig;
        while (m.state == CU_RUN && (sig = cu_signals_next()) > 0)
            handle_signal(&m, sig);
        if (m.state != CU_RUN)
            break;
        /* Reaping every pass as well: a CHLD byte lost to a full pipe must not leave a
         * dead worker counted as alive. */
        reap_workers(&m, 0);
        if (m.state != CU_RUN)
            break;
        murder_workers(&m);
        manage_workers(&m);
    }

    stop_workers(&m, m.state != CU_STOP_QUICK);
    code = m.exit_code;
    if (code == 0)
        cu_log_info("Shutting down: Master");
    else
        cu_log_error("Shutting down: Master");
    if (m.reason) {
        if (code == 0)
            cu_log_info("Reason: %s", m.reason);
        else
            cu_log_error("Reason: %s", m.reason);
    }
    free(m.kids);
    m.kids = NULL;
    cu_heartbeat_destroy(m.hb, m.nslots);
fail_heartbeat:
    cu_listeners_close(m.ls, m.nls, 1);
fail_listen:
fail_signals:
    if (cfg->pidfile)
        cu_pidfile_unlink(cfg->pidfile, m.pid);
    return code;
}
