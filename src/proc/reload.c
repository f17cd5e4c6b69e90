/* HUP (gunicorn's Arbiter.reload): read the configuration again, swap the listeners when
 * the addresses changed, start a full set of new workers, then stop every old one. */
#include "core/log.h"
#include "proc/master_state.h"
#include "proc/pidfile.h"
#include "proc/proctitle.h"
#include "proc/sdnotify.h"
#include "py/py.h"
#include "workers/settings.h"

#include <signal.h>
#include <unistd.h>

static int strlist_eq(const cu_strlist_t *a, const cu_strlist_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

/* gunicorn's Arbiter.reload: read the configuration again (argv, GUNICORN_CMD_ARGS and the
 * config file), replace the listeners if the addresses changed, start a full set of new
 * workers, then gracefully stop every old one. A configuration that fails to load leaves
 * everything as it was. */
void cu__reload(cu_master_t *m)
{
    cu_log_info("Hang up: %s", m->master_name);
    cu_sd_notify("RELOADING=1\nSTATUS=Reloading");
    m->reloads++;

    cu_config_t *nc = cu_xcalloc(1, sizeof(*nc));
    cu_config_defaults(nc);
    int rc = cu__argv ? cu_config_parse_argv(nc, cu__argc, cu__argv) : CU_ERROR;
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
            cu__log_listening(m);
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
    m->proc_name = cu__proc_name(m, nc);
    (void)cu_py_reconfigure(nc);   /* chdir, sys.path, raw_env, server.cfg: as gunicorn */
    (void)cu__tls_apply(m, nc, 0); /* renewed certificates, changed SSL settings */

    cu_hook_arbiter_t a = cu__hook_arbiter(m);
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
    cu__set_num_workers(m, want);
    for (size_t i = 0; i < m->nslots; i++) {
        if (m->kids[i].kind && m->kids[i].kind->replace_on_reload && !m->kids[i].terminating) {
            m->kids[i].terminating = 1;
            cu__child_kill(m, i, SIGTERM);
        }
    }
    cu__children_manage(m);
    cu_sd_notify("READY=1\nSTATUS=Reloaded");
}
