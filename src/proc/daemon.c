/* Process identity: --daemon and --enable-stdio-inheritance (gunicorn's util.daemonize),
 * --user/--group resolved in the master and applied in each child. */
#include "core/log.h"
#include "proc/master_state.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int cu__daemonize(int inherit_stdio)
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
    if (fd < 0)
        return CU_OK;
    /* stdin always goes; stdout and stderr too unless inherited, and even then a terminal
     * goes (the daemon must not keep a controlling tty's device open): so that
     * `cunicorn -D -R ... > out.log 2>&1` logs to out.log, as gunicorn's util.daemonize. */
    for (int i = 0; i < 3; i++)
        if (fd != i && (!inherit_stdio || i == 0 || isatty(i)))
            dup2(fd, i);
    if (fd > 2)
        close(fd);
    return CU_OK;
}

int cu__resolve_ids(cu_master_t *m)
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

/* gunicorn's set_owner_process: groups first, while still allowed to. */
int cu__drop_privileges(cu_master_t *m)
{
    if (m->set_gid) {
        int bad = 0;
        if (m->cfg->initgroups && m->username)
            bad = initgroups(m->username, m->gid) < 0;
        if (!bad && m->gid != getgid())
            bad = setgid(m->gid) < 0;
        if (bad) {
            cu_log_error("Can't change the group to %u: %s", (unsigned)m->gid, strerror(errno));
            return CU_ERROR;
        }
    }
    if (m->set_uid && m->uid != getuid()) {
        if (m->cfg->initgroups && m->username && !m->set_gid)
            (void)initgroups(m->username, getgid());
        if (setuid(m->uid) < 0) {
            cu_log_error("Can't change the user to %u: %s", (unsigned)m->uid, strerror(errno));
            return CU_ERROR;
        }
    }
    return CU_OK;
}
