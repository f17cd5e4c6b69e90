/* StatsD client: address parsing, gunicorn's prefix rule, one send() per metric. */
#include "log/statsd.h"
#include "core/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
    int fd;
    char prefix[256];
    char tags[512];
} D = {.fd = -1};

static int open_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(un.sun_path)) {
        snprintf(err, errlen, "statsd socket path too long");
        return CU_ERROR;
    }
    memcpy(un.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CU_ERROR;
    /* gunicorn: a failed connect leaves metrics off, silently */
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        close(fd);
        return CU_OK;
    }
    D.fd = fd;
    return CU_OK;
}

int cu_statsd_open(const char *host, const char *prefix, const char *tags, char *err, size_t errlen)
{
    /* gunicorn: "a.b..." -> "a.b.", "a.b" -> "a.b." (two characters at least) */
    size_t pl = prefix ? strlen(prefix) : 0;
    while (pl > 0 && prefix[pl - 1] == '.')
        pl--;
    if (pl >= 2)
        snprintf(D.prefix, sizeof(D.prefix), "%.*s.", (int)pl, prefix);
    else
        snprintf(D.prefix, sizeof(D.prefix), "%s", prefix ? prefix : "");
    snprintf(D.tags, sizeof(D.tags), "%s", tags ? tags : "");
    if (!host)
        return CU_OK;
    if (strncmp(host, "unix://", 7) == 0)
        return open_unix(host + 7, err, errlen);
    if (strncmp(host, "unix:", 5) == 0)
        return open_unix(host + 5, err, errlen);

    char h[256] = "localhost", port[16] = "8125";
    const char *colon;
    if (host[0] == '[') {
        const char *rb = strchr(host, ']');
        if (!rb || (size_t)(rb - host - 1) >= sizeof(h))
            goto bad;
        snprintf(h, sizeof(h), "%.*s", (int)(rb - host - 1), host + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(host, ':');
        size_t hl = colon ? (size_t)(colon - host) : strlen(host);
        if (hl >= sizeof(h))
            goto bad;
        if (hl)
            snprintf(h, sizeof(h), "%.*s", (int)hl, host);
    }
    if (colon) {
        if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            strlen(colon + 1) >= sizeof(port))
            goto bad;
        snprintf(port, sizeof(port), "%s", colon + 1);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    int rc = getaddrinfo(h, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve statsd host %s: %s", h, gai_strerror(rc));
        return CU_ERROR;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    D.fd = fd;
    return CU_OK;
bad:
    snprintf(err, errlen, "Value must be one of ('host:port', 'unix://PATH')");
    return CU_ERROR;
}

int cu_statsd_enabled(void)
{
    return D.fd >= 0;
}

/* prefix + name + ":" + value-and-type + "|#" tags, one datagram. */
static void send_metric(const char *name, const char *value)
{
    if (D.fd < 0)
        return;
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s%s:%s%s%s", D.prefix, name, value, D.tags[0] ? "|#" : "",
                     D.tags);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    /* a statsd daemon that is not listening must not disturb the server */
    (void)send(D.fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void cu_statsd_counter(const char *name, long value)
{
    char v[48];
    snprintf(v, sizeof(v), "%ld|c|@1.0", value);
    send_metric(name, v);
}

void cu_statsd_gauge(const char *name, long value)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld|g", value);
    send_metric(name, v);
}

void cu_statsd_histogram(const char *name, long value)
{
    char v[32];
    snprintf(v, sizeof(v), "%ld|h", value);
    send_metric(name, v);
}

void cu_statsd_timer(const char *name, double ms)
{
    char v[48];
    /* Python's repr of a float of whole milliseconds plus microseconds: "12.5", "3.0" */
    int n = snprintf(v, sizeof(v), "%.3f", ms);
    while (n > 2 && v[n - 1] == '0' && v[n - 2] != '.')
        v[--n] = '\0';
    snprintf(v + n, sizeof(v) - (size_t)n, "|ms");
    send_metric(name, v);
}

void cu_statsd_request(int status, int64_t duration_us)
{
    if (D.fd < 0)
        return;
    cu_statsd_timer("gunicorn.request.duration", (double)duration_us / 1000.0);
    cu_statsd_counter("gunicorn.requests", 1);
    char name[48];
    snprintf(name, sizeof(name), "gunicorn.request.status.%d", status);
    cu_statsd_counter(name, 1);
}

void cu_statsd_log_level(int level, int exception)
{
    if (D.fd < 0)
        return;
    if (exception && level >= CU_LOG_ERROR)
        cu_statsd_counter("gunicorn.log.exception", 1);
    else if (level >= CU_LOG_CRITICAL)
        cu_statsd_counter("gunicorn.log.critical", 1);
    else if (level >= CU_LOG_ERROR)
        cu_statsd_counter("gunicorn.log.error", 1);
    else if (level >= CU_LOG_WARNING)
        cu_statsd_counter("gunicorn.log.warning", 1);
}
