/* The arbiter (gunicorn's Arbiter): starts up (ids, error log, Python, pidfile, listeners),
 * then runs on the event/ loop: the signal self-pipe and the control socket are watchers,
 * and a timer drives the supervision pass (reap, promotion, heartbeat timeouts, memory
 * limit, pool size). Signals only write to the self-pipe; they are acted on here. Stop
 * closes the listeners and waits for the children. Children and their kinds: child.h;
 * HUP: reload.c; USR2/WINCH: upgrade.c; control commands: control.c. Log lines are worded
 * like gunicorn's so log parsers and tests keep working. */
#include "proc/master.h"
#include "core/clock.h"
#include "core/log.h"
#include "dirty/dirty.h"
#include "log/access.h"
#include "proc/master_state.h"
#include "proc/pidfile.h"
#include "proc/proctitle.h"
#include "proc/sdnotify.h"
#include "proc/signals.h"
#include "net/seal.h"
#include "net/tls.h"
#include "py/py.h"
#include "py/tls.h"
#include "workers/settings.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CU_MIN_SLOTS     64
#define CU_QUICK_STOP_MS 2000 /* grace left to workers after a quick shutdown */
#define CU_SUPERVISE_MS  1000 /* the supervision pass runs at least this often */
#define CU_STOP_POLL_MS  100

int cu__argc;
char **cu__argv;
char cu__start_cwd[PATH_MAX];

void cu_master_set_argv(int argc, char **argv)
{
    cu__argc = argc;
    cu__argv = argv;
    if (!getcwd(cu__start_cwd, sizeof(cu__start_cwd)))
        cu__start_cwd[0] = '\0';
}

cu_hook_arbiter_t cu__hook_arbiter(const cu_master_t *m)
{
    cu_hook_arbiter_t a = {.pid = m->pid, .num_workers = m->num_workers, .proc_name = m->proc_name};
    return a;
}

void cu__set_num_workers(cu_master_t *m, int n)
{
    int old = m->num_workers;
    m->num_workers = n;
    if (old != n) {
        cu_hook_arbiter_t a = cu__hook_arbiter(m);
        cu_py_hook_nworkers_changed(&a, n, old);
    }
}

void cu__halt(cu_master_t *m, const char *reason, int code)
{
    m->state = CU_STOP_GRACEFUL;
    m->reason = reason;
    m->exit_code = code;
}

const char *cu__proc_name(cu_master_t *m, const cu_config_t *cfg)
{
    const char *base = cfg->proc_name ? cfg->proc_name : cfg->app_uri ? cfg->app_uri : "cunicorn";
    if (!m->master_pid)
        return base;
    snprintf(m->proc_name_buf, sizeof(m->proc_name_buf), "%s.2", base);
    return m->proc_name_buf;
}

int cu__tls_apply(cu_master_t *m, const cu_config_t *cfg, int starting)
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

void cu__log_listening(const cu_master_t *m)
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

/* ---- the running master ---- */

static void handle_signal(cu_master_t *m, int sig)
{
    if (sig == SIGCHLD)
        cu_log_debug("Handling signal: %s", cu_signal_name(sig));
    else
        cu_log_info("Handling signal: %s", cu_signal_name(sig));

    switch (sig) {
    case SIGCHLD: cu__children_reap(m, 0); break;
    /* gunicorn's: TERM is the graceful stop; INT and QUIT are the quick one (workers get
     * QUIT and run worker_int). */
    case SIGTERM: m->state = CU_STOP_GRACEFUL; break;
    case SIGINT:
    case SIGQUIT: m->state = CU_STOP_QUICK; break;
    case SIGTTIN:
        if ((size_t)m->num_workers * 2 >= m->nslots) {
            cu_log_warn("TTIN ignored: already at the maximum of %zu workers", m->nslots / 2);
            break;
        }
        cu_log_info("Number of workers changed from %d to %d", m->num_workers, m->num_workers + 1);
        cu__set_num_workers(m, m->num_workers + 1);
        cu__children_manage(m);
        break;
    case SIGTTOU:
        if (m->num_workers <= 1)
            break;
        cu_log_info("Number of workers changed from %d to %d", m->num_workers, m->num_workers - 1);
        cu__set_num_workers(m, m->num_workers - 1);
        cu__children_manage(m);
        break;
    case SIGUSR1:
        cu_log_reopen();
        cu_access_log_reopen();
        cu__children_kill(m, NULL, SIGUSR1);
        break;
    case SIGHUP:
        cu__reload(m);
        cu__children_kill(m, &cu_kind_dirty_arbiter, SIGHUP); /* it reloads its workers */
        break;
    case SIGUSR2: cu__reexec(m); break;
    case SIGWINCH: cu__winch(m); break;
    default: cu_log_info("Ignoring unknown signal: %d", sig); break;
    }
}

/* While stopping only INT and QUIT matter: they turn a graceful stop into a quick one. */
static void handle_signal_stopping(cu_master_t *m, int sig)
{
    if ((sig != SIGINT && sig != SIGQUIT) || m->state == CU_STOP_QUICK)
        return;
    cu_log_info("Quick shutdown requested");
    m->state = CU_STOP_QUICK;
    cu__children_kill(m, NULL, SIGQUIT);
    int64_t soon = cu_mono_ms() + CU_QUICK_STOP_MS;
    if (soon < m->stop_deadline_ms)
        m->stop_deadline_ms = soon;
}

static void on_signal_pipe(cu_loop_t *loop, cu_io_t *io, int events)
{
    cu_master_t *m = io->data;
    int sig;
    if (m->state == CU_RUN) {
        /* Once a signal stops the master, the rest stay in the pipe for the stop loop,
         * which reads them as signals that came during the stop. */
        while (m->state == CU_RUN && (sig = cu_signals_next()) > 0)
            handle_signal(m, sig);
    } else {
        while ((sig = cu_signals_next()) > 0)
            handle_signal_stopping(m, sig);
    }
    /* Whatever a signal changed, the supervision pass runs right after. */
    if (m->state == CU_RUN)
        cu_timer_start(loop, &m->tick, 0);
}

/* The supervision pass. Reaping here as well: a CHLD byte lost to a full pipe must not
 * leave a dead worker counted as alive. */
static void on_tick(cu_loop_t *loop, cu_timer_t *t)
{
    cu_master_t *m = t->data;
    if (m->state != CU_RUN)
        return;
    cu__children_reap(m, 0);
    if (m->state != CU_RUN)
        return;
    cu__maybe_promote(m);
    cu__children_murder(m);
    cu__check_memory(m);
    cu__children_manage(m);
    int64_t next = cu__children_next_due(m, CU_SUPERVISE_MS);
    cu_timer_start(loop, t, next < 10 ? 10 : next);
}

/* gunicorn's Arbiter.stop: close the listeners, signal the workers (TERM graceful, QUIT
 * quick), wait up to graceful_timeout while reaping, then SIGKILL whatever is left.
 * An INT or QUIT during a graceful stop turns it into a quick one. */
static void stop_children(cu_master_t *m)
{
    /* Unix socket files stay when another master (upgrade) or systemd still uses them. */
    int last = !m->reexec_pid && !m->master_pid && !m->systemd;
    /* The sockets close with the last worker: seal them first, so no connection can
     * arrive after a worker's final accept and be reset (net/seal.h). Not when they live
     * on in another master, in systemd or with whoever handed us an fd://: the seal
     * would stay with them. */
    for (size_t i = 0; last && i < m->nls; i++)
        if (m->ls[i].fd >= 0 && !m->ls[i].reuse_port && !m->ls[i].borrowed)
            (void)cu_listener_seal(m->ls[i].fd);
    cu_listeners_close(m->ls, m->nls, last);
    m->ls = NULL;
    m->nls = 0;
    cu_timer_stop(m->loop, &m->tick);

    int grace = m->cfg->graceful_timeout;
    if (cu__child_count(m, &cu_kind_dirty_arbiter, 1) && m->cfg->dirty_graceful_timeout + 1 > grace)
        grace = m->cfg->dirty_graceful_timeout + 1; /* the arbiter waits for its own workers */
    m->stop_deadline_ms = cu_mono_ms() + (int64_t)grace * 1000;
    cu__children_kill(m, NULL, m->state == CU_STOP_QUICK ? SIGQUIT : SIGTERM);
    cu__children_reap(m, 1);
    while (cu__child_count(m, NULL, 1) > 0 && cu_mono_ms() < m->stop_deadline_ms) {
        (void)cu_loop_run_once(m->loop, CU_STOP_POLL_MS);
        cu__children_reap(m, 1);
    }
    if (cu__child_count(m, NULL, 1) == 0)
        return;
    cu__children_kill(m, NULL, SIGKILL);
    /* SIGKILL is not instant; reap for a moment so no zombie outlives the master's logs. */
    for (int i = 0; i < 100 && cu__child_count(m, NULL, 1) > 0; i++) {
        usleep(10 * 1000);
        cu__children_reap(m, 1);
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
    if (cfg->daemon && !m.master_pid && cu__daemonize(cfg->enable_stdio_inheritance) != CU_OK) {
        fprintf(stderr, "\nError: can't daemonize: %s\n\n", strerror(errno));
        return 1;
    }
    m.pid = getpid();
    m.proc_name = cu__proc_name(&m, cfg);
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
    if (cu__resolve_ids(&m) != CU_OK)
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
    cu_hook_arbiter_t ha = cu__hook_arbiter(&m);
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
    if (cu__tls_apply(&m, cfg, 1) != CU_OK)
        goto fail_heartbeat;
    if (m.set_uid || m.set_gid) {
        /* gunicorn hands unix sockets to the workers' user. */
        for (size_t i = 0; i < m.nls; i++)
            if (m.ls[i].unix_path && chown(m.ls[i].unix_path, m.set_uid ? m.uid : (uid_t)-1,
                                           m.set_gid ? m.gid : (gid_t)-1) < 0)
                cu_log_warn("chown(%s): %s", m.ls[i].unix_path, strerror(errno));
    }
    cu_log_debug("Arbiter booted");
    cu__log_listening(&m);
    cu_log_info("Using worker: %s", cu_config_worker_class_str(cfg));
    if (cfg->http_parser && strcmp(cfg->http_parser, "auto") != 0)
        cu_log_info("http_parser = '%s': requests are parsed by cunicorn's C parser",
                    cfg->http_parser);
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
    if (cu_dirty_master_init(cfg) != CU_OK)
        goto fail_ready;
    cu_proctitle_set("cunicorn: master [%s]", m.proc_name);

    ha = cu__hook_arbiter(&m);
    if (cu_py_hook_when_ready(&ha) != CU_OK)
        goto fail_ready;

    m.loop = cu_loop_create();
    if (!m.loop) {
        cu_log_error("Can't create the event loop: %s", strerror(errno));
        goto fail_loop;
    }
    cu_io_init(&m.sig_io, cu_signals_fd(), on_signal_pipe, &m);
    if ((rc = cu_io_set(m.loop, &m.sig_io, CU_EV_READ)) != CU_OK) {
        cu_log_error("Can't watch the signal pipe: %s", strerror(-rc));
        goto fail_watch;
    }
    cu_timer_init(&m.tick, on_tick, &m);

    cu__children_manage(&m);
    cu__control_open(&m);
    cu_timer_start(m.loop, &m.tick, cu__children_next_due(&m, CU_SUPERVISE_MS));
    while (m.state == CU_RUN)
        (void)cu_loop_run_once(m.loop, -1);

    cu_sd_notify("STOPPING=1");
    cu_ctl_close(m.ctl, 1);
    m.ctl = NULL;
    stop_children(&m);
    (void)cu_io_del(m.loop, &m.sig_io);
    code = m.exit_code;
fail_watch:
    cu_loop_destroy(m.loop);
fail_loop:
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
    ha = cu__hook_arbiter(&m);
    cu_py_hook_on_exit(&ha);
    cu_free(m.kids);
    cu_heartbeat_destroy(m.hb, m.nslots);
    cu_dirty_master_cleanup();
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
