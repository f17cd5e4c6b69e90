/* Syslog client: address parsing (gunicorn's syslog_addr forms), facility names and
 * SysLogHandler's wire format, written from C so logging never needs the GIL. */
#include "log/syslog.h"
#include "core/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
    int fd;
    int facility;
    int stream; /* a stream socket: a failed send reconnects once */
    char prefix[256];
    struct sockaddr_storage sa;
    socklen_t salen;
    int family, socktype;
} S = {.fd = -1};

static const struct {
    const char *name;
    int code;
} facilities[] = {
    {"auth", 4},    {"authpriv", 10}, {"cron", 9},    {"daemon", 3},  {"ftp", 11},
    {"kern", 0},    {"lpr", 6},       {"mail", 2},    {"news", 7},    {"security", 4},
    {"syslog", 5},  {"user", 1},      {"uucp", 8},    {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19},   {"local4", 20}, {"local5", 21}, {"local6", 22},
    {"local7", 23},
};

/* SysLogHandler.mapPriority for the level names. */
static int severity(int level)
{
    switch (level) {
    case CU_LOG_DEBUG: return 7;
    case CU_LOG_INFO: return 6;
    case CU_LOG_WARNING: return 4;
    case CU_LOG_ERROR: return 3;
    default: return 2;
    }
}

static int connect_sock(void)
{
    int fd = socket(S.family, S.socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&S.sa, S.salen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* "host[:port]" or "[v6]:port" after the scheme. */
static int resolve_inet(const char *hp, int socktype, char *err, size_t errlen)
{
    char host[256] = "localhost", port[16] = "514";
    const char *colon;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (!rb || (size_t)(rb - hp - 1) >= sizeof(host))
            goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(rb - hp - 1), hp + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strchr(hp, ':');
        size_t hl = colon ? (size_t)(colon - hp) : strlen(hp);
        if (hl >= sizeof(host))
            goto bad;
        if (hl > 0)
            snprintf(host, sizeof(host), "%.*s", (int)hl, hp);
    }
    if (colon) {
        const char *p = colon + 1;
        if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) >= sizeof(port)) {
            snprintf(err, errlen, "'%s' is not a valid port number.", p);
            return CU_ERROR;
        }
        snprintf(port, sizeof(port), "%s", p);
    }
    struct addrinfo hints = {.ai_socktype = socktype}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve syslog host %s: %s", host, gai_strerror(rc));
        return CU_ERROR;
    }
    memcpy(&S.sa, res->ai_addr, res->ai_addrlen);
    S.salen = res->ai_addrlen;
    S.family = res->ai_family;
    freeaddrinfo(res);
    return CU_OK;
bad:
    snprintf(err, errlen, "invalid syslog address");
    return CU_ERROR;
}

int cu_syslog_open(const char *addr, const char *facility, const char *prefix, char *err,
                   size_t errlen)
{
    const char *fac = facility && *facility ? facility : "user";
    S.facility = -1;
    for (size_t i = 0; i < CU_NELEM(facilities); i++)
        if (strcasecmp(fac, facilities[i].name) == 0)
            S.facility = facilities[i].code;
    if (S.facility < 0) {
        snprintf(err, errlen, "unknown facility name");
        return CU_ERROR;
    }
    snprintf(S.prefix, sizeof(S.prefix), "%s", prefix ? prefix : "");
    if (!addr)
        addr = "udp://localhost:514";
    int want_dgram = -1; /* unix: -1 = try datagram, then stream (as SysLogHandler does) */
    if (strncmp(addr, "unix://", 7) == 0) {
        const char *path = addr + 7;
        const char *hash = strchr(path, '#');
        size_t pl = hash ? (size_t)(hash - path) : strlen(path);
        if (hash)
            want_dgram = strcmp(hash + 1, "dgram") == 0 ? 1 : -1;
        struct sockaddr_un *un = (struct sockaddr_un *)&S.sa;
        if (pl >= sizeof(un->sun_path)) {
            snprintf(err, errlen, "syslog socket path too long");
            return CU_ERROR;
        }
        memset(un, 0, sizeof(*un));
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, pl);
        S.salen = (socklen_t)sizeof(*un);
        S.family = AF_UNIX;
        S.socktype = SOCK_DGRAM;
    } else if (strncmp(addr, "udp://", 6) == 0) {
        S.socktype = SOCK_DGRAM;
        if (resolve_inet(addr + 6, SOCK_DGRAM, err, errlen) != CU_OK)
            return CU_ERROR;
    } else if (strncmp(addr, "tcp://", 6) == 0) {
        S.socktype = SOCK_STREAM;
        if (resolve_inet(addr + 6, SOCK_STREAM, err, errlen) != CU_OK)
            return CU_ERROR;
    } else {
        snprintf(err, errlen, "invalid syslog address");
        return CU_ERROR;
    }
    int fd = connect_sock();
    if (fd < 0 && S.family == AF_UNIX && want_dgram < 0) {
        S.socktype = SOCK_STREAM;
        fd = connect_sock();
    }
    if (fd < 0 && S.socktype == SOCK_STREAM) {
        snprintf(err, errlen, "cannot connect to syslog at %s: %s", addr, strerror(-fd));
        return CU_ERROR;
    }
    /* A datagram peer that is not there yet is not fatal: messages are dropped. */
    S.stream = S.socktype == SOCK_STREAM;
    S.fd = fd >= 0 ? fd : socket(S.family, S.socktype | SOCK_CLOEXEC, 0);
    return CU_OK;
}

int cu_syslog_enabled(void)
{
    return S.fd >= 0;
}

void cu_syslog_send(int level, const char *channel, const char *msg, size_t len)
{
    if (S.fd < 0)
        return;
    char buf[8192];
    int n = snprintf(buf, sizeof(buf), "<%d>gunicorn.%s.%s: [%d] ",
                     S.facility * 8 + severity(level), S.prefix, channel, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    size_t room = sizeof(buf) - (size_t)n - 1;
    if (len > room)
        len = room;
    while (len > 0 && msg[len - 1] == '\n')
        len--;
    memcpy(buf + n, msg, len);
    size_t total = (size_t)n + len;
    buf[total++] = '\0';
    ssize_t w;
    if (S.salen && !S.stream)
        w = sendto(S.fd, buf, total, MSG_NOSIGNAL, (struct sockaddr *)&S.sa, S.salen);
    else
        w = send(S.fd, buf, total, MSG_NOSIGNAL);
    if (w < 0 && S.stream) {
        /* the daemon went away: one reconnect (the new fd replaces the old in place) */
        int fd = connect_sock();
        if (fd >= 0) {
            dup2(fd, S.fd);
            close(fd);
            (void)send(S.fd, buf, total, MSG_NOSIGNAL);
        }
    }
}
