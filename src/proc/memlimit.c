/* --max-worker-memory: a worker whose RSS passes the limit is replaced, then stopped
 * gracefully. RSS comes from /proc/<pid>/statm (also for `show workers`). */
#include "core/log.h"
#include "proc/master_state.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

long cu__rss_kb(pid_t pid, long page_kb)
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
void cu__check_memory(cu_master_t *m)
{
    if (m->cfg->max_worker_memory <= 0)
        return;
    long limit = (long)m->cfg->max_worker_memory * 1024;
    int recycled = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        cu_child_t *k = &m->kids[i];
        if (k->kind != &cu_kind_web || k->terminating)
            continue;
        long kb = cu__rss_kb(k->pid, m->page_kb);
        if (kb < 0 || kb <= limit)
            continue;
        cu_log_warn("Worker (pid:%d) uses %ld MB, over max_worker_memory (%d MB): recycling",
                    (int)k->pid, kb / 1024, m->cfg->max_worker_memory);
        k->terminating = 1;
        recycled = 1;
    }
    if (!recycled)
        return;
    cu__children_manage(m); /* the replacements */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->kids[i].kind && m->kids[i].terminating && !m->kids[i].aborted_ms)
            cu__child_kill(m, i, SIGTERM);
}
