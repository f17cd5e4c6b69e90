/* The master's state, shared by the files that make up the arbiter under src/proc/:
 * master.c (startup, loop, signals, stop), child.c (spawn/reap/timeouts) with the kinds
 * (kind_web.c), reload.c (HUP), upgrade.c (USR2/WINCH), memlimit.c, control.c (control
 * socket commands) and daemon.c (daemonize, user/group). Nothing outside proc/ includes it. */
#ifndef CU_MASTER_STATE_H
#define CU_MASTER_STATE_H

#include "config/config.h"
#include "ctl/ctl.h"
#include "event/loop.h"
#include "net/listen.h"
#include "proc/child.h"
#include "proc/heartbeat.h"
#include "py/hooks.h"

#include <limits.h>
#include <time.h>

#define CU_KILL_AFTER_ABORT_MS 1000 /* SIGKILL a timed-out worker this long after SIGABRT */
#define CU_CRASH_WINDOW_MS     1000 /* a worker failing younger than this is crash-looping */

enum cu_master_state { CU_RUN, CU_STOP_GRACEFUL, CU_STOP_QUICK };

struct cu_master_s {
    cu_config_t *cfg;
    pid_t pid;
    const char *proc_name;
    cu_listener_t *ls;
    size_t nls;
    cu_heartbeat_slot_t *hb;
    cu_child_t *kids;
    size_t nslots;
    int num_workers; /* web workers wanted (gunicorn's num_workers) */
    int age;
    int last_logged_count;
    int crash_streak; /* consecutive children that failed within CU_CRASH_WINDOW_MS */
    int64_t spawn_not_before_ms;
    int64_t stop_deadline_ms; /* while stopping: SIGKILL what is left at this time */
    enum cu_master_state state;
    int exit_code;
    const char *reason; /* "Reason: ..." on halt, static text */

    cu_loop_t *loop;
    cu_io_t sig_io;  /* the signal self-pipe */
    cu_timer_t tick; /* the supervision pass: reap, promote, timeouts, memory, pool */

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
    struct cu_tls_s *tls;
    cu_transport_factory_t tls_factory;
};

/* The command line and the directory the master started in (master.c). */
extern int cu__argc;
extern char **cu__argv;
extern char cu__start_cwd[PATH_MAX];

/* master.c */
cu_hook_arbiter_t cu__hook_arbiter(const cu_master_t *m);
void cu__set_num_workers(cu_master_t *m, int n); /* runs nworkers_changed when it changes */
void cu__halt(cu_master_t *m, const char *reason, int code);
void cu__log_listening(const cu_master_t *m);
const char *cu__proc_name(cu_master_t *m, const cu_config_t *cfg);
/* TLS (certfile or keyfile set): build the server context for cfg, through the ssl_context
 * hook when one is set, and make every listener use it. At startup (starting = 1) a failure
 * is CU_ERROR with the reason logged (naming the setting); on HUP the previous context stays. */
int cu__tls_apply(cu_master_t *m, const cu_config_t *cfg, int starting);

/* reload.c: HUP. */
void cu__reload(cu_master_t *m);

/* upgrade.c: USR2 (fork + exec a new master), WINCH, the upgrade's end. */
void cu__reexec(cu_master_t *m);
void cu__winch(cu_master_t *m);
void cu__reexec_died(cu_master_t *m, int status);
void cu__maybe_promote(cu_master_t *m);

/* memlimit.c */
long cu__rss_kb(pid_t pid, long page_kb); /* -1 when unknown */
void cu__check_memory(cu_master_t *m);

/* control.c: open the control socket on the master's loop (or not, when disabled). */
void cu__control_open(cu_master_t *m);

/* daemon.c */
int cu__daemonize(int inherit_stdio);    /* fork, setsid, fork; stdio per -R */
int cu__resolve_ids(cu_master_t *m);     /* --user/--group; prints the error, CU_ERROR */
int cu__drop_privileges(cu_master_t *m); /* in a child: groups, gid, uid (gunicorn's order) */

#endif
