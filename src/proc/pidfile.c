/* --pid file: stale-check, atomic write, guarded removal. */
#include "proc/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pid recorded in `path`, 0 if none or unreadable. */
static pid_t read_pid(const char *path)
{
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    long v = strtol(buf, NULL, 10);
    return v > 0 ? (pid_t)v : 0;
}

int cu_pidfile_create(const char *path, pid_t pid, char *err, size_t errlen)
{
    pid_t old = read_pid(path);
    if (old && old != getpid() && (kill(old, 0) == 0 || errno == EPERM)) {
        snprintf(err, errlen, "Already running on PID %d (or pid file '%s' is stale)", (int)old,
                 path);
        return CU_ERROR;
    }
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char *tmp = cu_xmalloc(dlen + 32);
    if (slash)
        snprintf(tmp, dlen + 32, "%.*s/.cupid.XXXXXX", (int)(dlen ? dlen : 1), dlen ? path : "/");
    else
        snprintf(tmp, dlen + 32, ".cupid.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            snprintf(err, errlen, "%.*s doesn't exist. Can't create pidfile.", (int)dlen, path);
        else
            snprintf(err, errlen, "Can't create pidfile %s: %s", path, strerror(e));
        cu_free(tmp);
        return CU_ERROR;
    }
    char line[32];
    int n = snprintf(line, sizeof(line), "%d\n", (int)pid);
    int ok = write(fd, line, (size_t)n) == n && fchmod(fd, 0644) == 0;
    close(fd);
    if (!ok || rename(tmp, path) < 0) {
        snprintf(err, errlen, "Can't write pidfile %s: %s", path, strerror(errno));
        unlink(tmp);
        cu_free(tmp);
        return CU_ERROR;
    }
    cu_free(tmp);
    return CU_OK;
}

void cu_pidfile_unlink(const char *path, pid_t pid)
{
    if (path && read_pid(path) == pid)
        (void)unlink(path);
}
