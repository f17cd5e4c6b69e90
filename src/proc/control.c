/* The control socket's commands (gunicorn's `show`, `worker`, `reload`, `reopen`,
 * `shutdown`, `help`), run by the master on its loop; ctl/ does the framing. */
#include "core/clock.h"
#include "core/log.h"
#include "dirty/dirty.h"
#include "dirty/proto.h"
#include "proc/master_state.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

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
            if (m->kids[i].kind == &cu_kind_web && m->kids[i].age > last &&
                (best == m->nslots || m->kids[i].age < m->kids[best].age))
                best = i;
        if (best == m->nslots)
            break;
        const cu_child_t *k = &m->kids[best];
        const cu_heartbeat_slot_t *h = &m->hb[best];
        last = k->age;
        long kb = cu__rss_kb(k->pid, m->page_kb);
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

static pid_t dirty_pid(const cu_master_t *m)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].kind == &cu_kind_dirty_arbiter && !m->kids[i].terminating)
            return m->kids[i].pid;
    return 0;
}

static int ctl_show(cu_master_t *m, const char *what, cu_buf_t *o)
{
    if (strcmp(what, "workers") == 0) {
        cu_ctl_printf(o, "{\"workers\": ");
        json_workers(m, o, 0);
        cu_ctl_printf(o, ", \"count\": %zu}", cu__child_count(m, &cu_kind_web, 1));
    } else if (strcmp(what, "all") == 0) {
        cu_ctl_printf(o,
                      "{\"arbiter\": {\"pid\": %d, \"type\": \"arbiter\", \"role\": \"master\"}, "
                      "\"web_workers\": ",
                      (int)m->pid);
        json_workers(m, o, 1);
        cu_ctl_printf(o, ", \"web_worker_count\": %zu, \"dirty_arbiter\": ",
                      cu__child_count(m, &cu_kind_web, 1));
        pid_t dp = dirty_pid(m);
        if (dp)
            cu_ctl_printf(o,
                          "{\"pid\": %d, \"type\": \"dirty_arbiter\", \"role\": \"dirty master\"}",
                          (int)dp);
        else
            cu_ctl_printf(o, "null");
        cu_ctl_printf(o, ", \"dirty_workers\": ");
        size_t dn = cu_dirty_ctl_workers(o, dp);
        cu_ctl_printf(o, ", \"dirty_worker_count\": %zu}", dn);
    } else if (strcmp(what, "stats") == 0) {
        uint64_t requests = 0;
        for (size_t i = 0; i < m->nslots; i++)
            if (m->kids[i].kind)
                requests += m->hb[i].requests;
        cu_ctl_printf(o,
                      "{\"uptime\": %.2f, \"pid\": %d, \"workers_current\": %zu, "
                      "\"workers_target\": %d, \"workers_spawned\": %llu, "
                      "\"workers_killed\": %llu, \"reloads\": %llu, \"dirty_arbiter_pid\": ",
                      (double)(time(NULL) - m->started), (int)m->pid,
                      cu__child_count(m, &cu_kind_web, 1), m->num_workers,
                      (unsigned long long)m->spawned, (unsigned long long)m->killed,
                      (unsigned long long)m->reloads);
        pid_t dp = dirty_pid(m);
        if (dp)
            cu_ctl_printf(o, "%d", (int)dp);
        else
            cu_ctl_printf(o, "null");
        cu_ctl_printf(o, ", \"requests_live_workers\": %llu}", (unsigned long long)requests);
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
        cu_dirty_ctl_show(o, dirty_pid(m));
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
        cu__set_num_workers(m, total);
        cu__children_manage(m);
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
        size_t i = pid > 0 ? cu__child_find(m, (pid_t)pid) : m->nslots;
        if (i == m->nslots) {
            cu_ctl_printf(o, "{\"success\": false, \"error\": \"Worker %d not found\"}", pid);
            return CU_OK;
        }
        /* Replaced at once: the pool does not shrink while this one finishes. */
        m->kids[i].terminating = 1;
        cu__child_kill(m, i, SIGTERM);
        m->killed++;
        cu__children_manage(m);
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
        /* gunicorn's `dirty add|remove [N]`: a MANAGE message to the arbiter */
        int add = argc >= 2 && strcmp(argv[1], "add") == 0;
        if (argc < 2 || (!add && strcmp(argv[1], "remove") != 0)) {
            cu_ctl_printf(o, "Invalid argument: Missing dirty action (add|remove)");
            return CU_ERROR;
        }
        int count = argc >= 3 ? atoi(argv[2]) : 1;
        cu_dirty_ctl_manage(o, dirty_pid(m), add ? CU_MANAGE_ADD : CU_MANAGE_REMOVE, count);
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

void cu__control_open(cu_master_t *m)
{
    const cu_config_t *c = m->cfg;
    if (c->control_socket_disable)
        return;
    char path[2 * PATH_MAX + 32];
    if (c->control_socket && c->control_socket[0] == '/') {
        snprintf(path, sizeof(path), "%s", c->control_socket);
    } else if (c->control_socket) {
        snprintf(path, sizeof(path), "%s/%s", cu__start_cwd, c->control_socket);
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
    m->ctl = cu_ctl_open(m->loop, path, c->control_socket_mode, ctl_command, m);
}
