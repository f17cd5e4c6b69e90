/* sd_notify and socket activation, written against the documented protocol: one datagram
 * of newline-separated KEY=VALUE assignments to the unix socket in $NOTIFY_SOCKET. */
#include "proc/sdnotify.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void cu_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof(sun.sun_path) || (path[0] != '/' && path[0] != '@')) {
        cu_log_debug("NOTIFY_SOCKET '%s' is not usable", path);
        return;
    }
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, sl) < 0)
        cu_log_debug("sd_notify(%s) failed: %s", path, strerror(errno));
    close(fd);
}

int cu_sd_listen_fds(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    int n = 0;
    if (pid && fds && strtol(pid, NULL, 10) == (long)getpid()) {
        long v = strtol(fds, NULL, 10);
        n = v > 0 && v < 1024 ? (int)v : 0;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}
