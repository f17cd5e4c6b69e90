/* Listening sockets: --bind parsing (pure), TCP/unix/fd:// listener creation with gunicorn's
 * retry-on-EADDRINUSE loop, and the "Listening at:" description. */
#include "net/listen.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

int cu_listen_retry_ms = 1000;

#define CU_BIND_ATTEMPTS 5
#define CU_DEFAULT_PORT  8000

static int parse_port(const char *p, size_t len, int *port)
{
    if (len == 0 || len > 5)
        return CU_ERROR;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return CU_ERROR;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return CU_ERROR;
    *port = v;
    return CU_OK;
}

static int bad_port(const char *p, size_t len, char *err, size_t errlen)
{
    snprintf(err, errlen, "'%.*s' is not a valid port number.", (int)len, p);
    return CU_ERROR;
}

int cu_bind_parse(const char *s, cu_bind_addr_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(s, "unix:", 5) == 0) {
        const char *path = s + 5;
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        size_t len = strlen(path);
        if (len == 0 || len >= sizeof(out->path)) {
            snprintf(err, errlen, "'%s' is not a valid unix socket path.", path);
            return CU_ERROR;
        }
        out->kind = CU_BIND_UNIX;
        memcpy(out->path, path, len + 1);
        return CU_OK;
    }
    if (strncmp(s, "fd://", 5) == 0) {
        const char *p = s + 5;
        char *end;
        errno = 0;
        long fd = strtol(p, &end, 10);
        if (!isdigit((unsigned char)*p) || *end != '\0' || errno || fd > 65535) {
            snprintf(err, errlen, "'%s' is not a valid file descriptor.", p);
            return CU_ERROR;
        }
        out->kind = CU_BIND_FD;
        out->fd = (int)fd;
        return CU_OK;
    }
    if (strncmp(s, "tcp://", 6) == 0)
        s += 6;

    out->kind = CU_BIND_TCP;
    const char *host = s, *port = NULL;
    size_t hlen = strlen(s), plen = 0;
    const char *rb = strchr(s, ']');
    if (s[0] == '[' && rb) {
        /* "[v6]" or "[v6]:port"; anything else after ']' is not a port. */
        host = s + 1;
        hlen = (size_t)(rb - host);
        out->v6 = 1;
        if (rb[1] == ':') {
            port = rb + 2;
            plen = strlen(port);
        } else if (rb[1] != '\0') {
            return bad_port(rb + 1, strlen(rb + 1), err, errlen);
        }
    } else {
        const char *colon = strchr(s, ':');
        if (colon) {
            /* gunicorn splits on ':' and keeps the first two fields: "a:b:c" -> ("a", "b"). */
            hlen = (size_t)(colon - s);
            port = colon + 1;
            const char *next = strchr(port, ':');
            plen = next ? (size_t)(next - port) : strlen(port);
        }
    }
    out->port = CU_DEFAULT_PORT;
    if (port && parse_port(port, plen, &out->port) != CU_OK)
        return bad_port(port, plen, err, errlen);
    if (hlen == 0) {
        if (out->v6) {
            snprintf(err, errlen, "'%s' is not a valid address.", s);
            return CU_ERROR;
        }
        host = "0.0.0.0";
        hlen = 7;
    }
    if (hlen >= sizeof(out->host)) {
        snprintf(err, errlen, "'%.*s...' is too long a host name.", 32, host);
        return CU_ERROR;
    }
    for (size_t i = 0; i < hlen; i++)
        out->host[i] = (char)tolower((unsigned char)host[i]);
    out->host[hlen] = '\0';
    if (memchr(out->host, ':', hlen))
        out->v6 = 1;
    return CU_OK;
}

/* Python's str() of the address gunicorn logs: "('127.0.0.1', 8000)" or the unix path. */
static void addr_text(const cu_bind_addr_t *a, char *out, size_t outlen)
{
    switch (a->kind) {
    case CU_BIND_TCP: snprintf(out, outlen, "('%s', %d)", a->host, a->port); break;
    case CU_BIND_UNIX: snprintf(out, outlen, "%s", a->path); break;
    case CU_BIND_FD: snprintf(out, outlen, "%d", a->fd); break;
    }
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -errno;
    return CU_OK;
}

/* Fill server_name/server_port from what the socket is actually bound to. */
static void fill_names(cu_listener_t *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    l->server_name[0] = '\0';
    l->server_port[0] = '\0';
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    l->family = ss.ss_family;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, l->server_name, sizeof(l->server_name));
        snprintf(l->server_port, sizeof(l->server_port), "%u", ntohs(sin->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, l->server_name, sizeof(l->server_name));
        snprintf(l->server_port, sizeof(l->server_port), "%u", ntohs(sin6->sin6_port));
    }
}

/* Resolve a TCP bind address like Python's socket.bind((host, port)): literal addresses
 * as such, names through getaddrinfo in the socket's family, first answer wins.
 * Returns 0 or an EAI_* code. */
static int resolve_tcp(const cu_bind_addr_t *a, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = a->v6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%d", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0)
        return rc;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* One attempt at a TCP listener. Returns fd or -errno; *gai gets a resolver error. */
static int open_tcp(const cu_listen_opts_t *cfg, const cu_bind_addr_t *a, int *gai)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    *gai = resolve_tcp(a, &ss, &sl);
    if (*gai != 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, err;
    /* No IPV6_V6ONLY: gunicorn leaves the system default, so "[::]:8000" is dual-stack on
     * Linux, and users who bind it rely on IPv4 clients reaching it. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (cfg->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 &&
        errno != ENOPROTOOPT && errno != EINVAL)
        goto fail;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        goto fail;
    /* --reuse-port: the master only reserves the address; each worker listens on its own
     * socket (cu_listeners_for_worker). A listening socket nobody accepts on would get its
     * share of the connections. */
    if (!cfg->reuse_port && listen(fd, cfg->backlog > 0 ? cfg->backlog : 2048) < 0)
        goto fail;
    return fd;
fail:
    err = errno;
    close(fd);
    return -err;
}

/* One attempt at a unix listener: a stale socket file is removed, any other file is an
 * error (-ENOTSOCK). --umask applies around bind, as in gunicorn. */
static int open_unix(const cu_listen_opts_t *cfg, const cu_bind_addr_t *a)
{
    struct stat st;
    if (lstat(a->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -ENOTSOCK;
        if (unlink(a->path) < 0 && errno != ENOENT)
            return -errno;
    } else if (errno != ENOENT) {
        return -errno;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
    mode_t old = umask((mode_t)cfg->umask);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    int err = errno;
    umask(old);
    if (rc < 0 || listen(fd, cfg->backlog > 0 ? cfg->backlog : 2048) < 0) {
        if (rc == 0)
            err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* fd://N: adopt an already bound stream socket, and listen on it if nobody has yet. */
static int adopt_fd(const cu_listen_opts_t *cfg, const cu_bind_addr_t *a)
{
    int type = 0, acc = 0;
    socklen_t tl = sizeof(type), al = sizeof(acc);
    if (getsockopt(a->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
        return -errno;
    if (type != SOCK_STREAM)
        return -ENOTSOCK;
    if (getsockopt(a->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0)
        acc = 0;
    if (!acc && listen(a->fd, cfg->backlog > 0 ? cfg->backlog : 2048) < 0)
        return -errno;
    int rc = set_flags(a->fd);
    if (rc < 0)
        return rc;
    return a->fd;
}

static int open_one(const cu_listen_opts_t *cfg, const char *spec, cu_listener_t *l)
{
    cu_bind_addr_t a;
    char err[300], text[300];
    if (cu_bind_parse(spec, &a, err, sizeof(err)) != CU_OK) {
        cu_log_error("%s", err);
        return CU_ERROR;
    }
    addr_text(&a, text, sizeof(text));
    if (a.kind == CU_BIND_FD) {
        int fd = adopt_fd(cfg, &a);
        if (fd < 0) {
            cu_log_error("fd://%d is not a usable listening socket: %s", a.fd, strerror(-fd));
            return CU_ERROR;
        }
        l->fd = fd;
        l->borrowed = 1;
    } else {
        int fd = -1;
        for (int i = 0; i < CU_BIND_ATTEMPTS; i++) {
            int gai = 0;
            fd = a.kind == CU_BIND_TCP ? open_tcp(cfg, &a, &gai) : open_unix(cfg, &a);
            if (fd >= 0)
                break;
            if (a.kind == CU_BIND_UNIX && fd == -ENOTSOCK) {
                cu_log_error("'%s' is not a socket", a.path);
                return CU_ERROR;
            }
            if (fd == -EADDRINUSE)
                cu_log_error("Connection in use: %s", text);
            if (fd == -EADDRNOTAVAIL)
                cu_log_error("Invalid address: %s", text);
            if (gai)
                cu_log_error("connection to %s failed: [Errno %d] %s", text, gai,
                             gai_strerror(gai));
            else
                cu_log_error("connection to %s failed: [Errno %d] %s", text, -fd, strerror(-fd));
            if (i + 1 < CU_BIND_ATTEMPTS) {
                cu_log_debug("Retrying in 1 second.");
                usleep((useconds_t)cu_listen_retry_ms * 1000);
            }
        }
        if (fd < 0) {
            cu_log_error("Can't connect to %s", text);
            return CU_ERROR;
        }
        l->fd = fd;
        if (a.kind == CU_BIND_UNIX)
            l->unix_path = cu_xstrdup(a.path);
        else
            l->reuse_port = cfg->reuse_port;
    }
    l->bind = cu_xstrdup(spec);
    fill_names(l);
    return CU_OK;
}

int cu_listeners_open(const cu_listen_opts_t *cfg, cu_listener_t **out, size_t *n)
{
    size_t count = cfg->nbind;
    cu_listener_t *ls = cu_xcalloc(count ? count : 1, sizeof(*ls));
    for (size_t i = 0; i < count; i++) {
        ls[i].fd = -1;
        if (open_one(cfg, cfg->bind[i], &ls[i]) != CU_OK) {
            /* Sockets bound so far are ours: close them, unlink what we created. */
            cu_listeners_close(ls, i, 1);
            return CU_ERROR;
        }
    }
    *out = ls;
    *n = count;
    return CU_OK;
}

int cu_listeners_inherit(const cu_listen_opts_t *cfg, const int *fds, size_t nfds,
                         cu_listener_t **out, size_t *n)
{
    cu_listener_t *ls = cu_xcalloc(nfds ? nfds : 1, sizeof(*ls));
    for (size_t i = 0; i < nfds; i++) {
        cu_listener_t *l = &ls[i];
        int type = 0, acc = 0;
        socklen_t tl = sizeof(type), al = sizeof(acc);
        if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
            cu_log_error("Inherited fd %d is not a stream socket", fds[i]);
            cu_free(ls);
            return CU_ERROR;
        }
        if (getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0)
            acc = 0;
        l->fd = fds[i];
        fill_names(l);
        if (!acc && l->family != AF_UNIX && cfg->reuse_port)
            l->reuse_port = 1;
        else if (!acc)
            (void)listen(l->fd, cfg->backlog > 0 ? cfg->backlog : 2048);
        (void)set_flags(l->fd);
        char b[32];
        snprintf(b, sizeof(b), "fd://%d", fds[i]);
        l->bind = cu_xstrdup(b);
        if (l->family == AF_UNIX) {
            struct sockaddr_un sun;
            socklen_t sl = sizeof(sun);
            memset(&sun, 0, sizeof(sun));
            if (getsockname(l->fd, (struct sockaddr *)&sun, &sl) == 0 && sun.sun_path[0])
                l->unix_path = cu_xstrdup(sun.sun_path);
        }
    }
    *out = ls;
    *n = nfds;
    return CU_OK;
}

int cu_listeners_for_worker(const cu_listen_opts_t *cfg, const cu_listener_t *ls, size_t n,
                            cu_listener_t **out)
{
    cu_listener_t *w = cu_xcalloc(n ? n : 1, sizeof(*w));
    for (size_t i = 0; i < n; i++) {
        w[i] = ls[i];
        w[i].bind = ls[i].bind ? cu_xstrdup(ls[i].bind) : NULL;
        w[i].unix_path = NULL; /* the master unlinks, never a worker */
        if (!ls[i].reuse_port)
            continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int one = 1, fd = -1;
        if (getsockname(ls[i].fd, (struct sockaddr *)&ss, &sl) < 0 ||
            (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
            listen(fd, cfg->backlog > 0 ? cfg->backlog : 2048) < 0) {
            cu_log_error("Can't open a reuse-port listener for %s: %s", ls[i].bind,
                         strerror(errno));
            if (fd >= 0)
                close(fd);
            w[i].fd = -1;
            cu_listeners_close(w, i + 1, 0);
            return CU_ERROR;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        close(ls[i].fd); /* this process's copy of the master's reservation */
        w[i].fd = fd;
        w[i].reuse_port = 0;
        w[i].own = 1;
    }
    *out = w;
    return CU_OK;
}

void cu_listeners_close(cu_listener_t *ls, size_t n, int unlink_unix)
{
    if (!ls)
        return;
    for (size_t i = 0; i < n; i++) {
        if (ls[i].fd >= 0)
            close(ls[i].fd);
        if (unlink_unix && ls[i].unix_path)
            (void)unlink(ls[i].unix_path);
        cu_free(ls[i].bind);
        cu_free(ls[i].unix_path);
    }
    cu_free(ls);
}

void cu_listener_describe(const cu_listener_t *l, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    const char *scheme = l->tf && l->tf->scheme ? l->tf->scheme : "http"; /* https: TLS */
    memset(&ss, 0, sizeof(ss));
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, outlen, "%s", l->bind ? l->bind : "?");
        return;
    }
    switch (ss.ss_family) {
    case AF_INET: {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s://%s:%u", scheme, host, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "%s://[%s]:%u", scheme, host, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX: {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        const char *path = l->unix_path ? l->unix_path : sun->sun_path;
        snprintf(out, outlen, "unix:%s", path);
        break;
    }
    default: snprintf(out, outlen, "%s", l->bind ? l->bind : "?"); break;
    }
}
