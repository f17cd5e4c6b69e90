/* The connection engine stepped from outside, as a foreign event loop (asyncio, gevent)
 * drives it: watch cu_engine_fd, honour cu_engine_next_deadline, call cu_engine_step.
 * A client on a unix socket sends two keep-alive requests; a stub worker class answers;
 * a graceful stop ends with CU_DONE. No Python: workers/engine.c and libcu only. */
#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "t.h"
#include "workers/engine.h"

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int dispatched;

static int stub_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    dispatched++;
    char body[64];
    int n = snprintf(body, sizeof(body), "%.*s %s", (int)c->request.path.len, c->request.path.p,
                     c->request.scheme);
    if (cu_resp_begin(c, "200 OK", 6) != CU_OK)
        return CU_ERROR;
    cu_resp_hold(c);
    if (cu_resp_write(c, body, (size_t)n) != CU_OK)
        return CU_ERROR;
    return cu_resp_finish(c);
}

/* What a foreign loop does: wait on the engine's fd until the next deadline (bounded), then
 * step. Returns the step's result. */
static int drive_once(cu_engine_t *e)
{
    struct pollfd p = {.fd = cu_engine_fd(e), .events = POLLIN};
    int64_t d = cu_engine_next_deadline(e);
    int wait = 50;
    if (d >= 0 && d - cu_mono_ms() < wait)
        wait = d > cu_mono_ms() ? (int)(d - cu_mono_ms()) : 0;
    (void)poll(&p, 1, wait);
    return cu_engine_step(e);
}

/* Step until the client has `want` bytes containing `until` (bounded by a count). */
static size_t read_reply(cu_engine_t *e, int fd, char *buf, size_t cap, const char *until)
{
    size_t n = 0;
    for (int i = 0; i < 400; i++) {
        drive_once(e);
        ssize_t r = recv(fd, buf + n, cap - 1 - n, MSG_DONTWAIT);
        if (r > 0)
            n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, until))
            break;
    }
    return n;
}

/* ---- a toy transport standing in for TLS: a handshake (the client says "H", we answer
 * "K"), bytes XOR 0x5a on the wire, and reads that hand out at most 16 bytes while keeping
 * the rest decoded inside (what SSL_pending reports) ---- */

typedef struct toy_s {
    int shaken;
    char in[4096];
    size_t pos, len;
} toy_t;

static int toy_handshake(cu_transport_t *t)
{
    toy_t *s = t->impl;
    char h;
    ssize_t n = recv(t->fd, &h, 1, 0);
    if (n < 0) {
        t->want = CU_EV_READ;
        return CU_AGAIN;
    }
    if (n == 0 || h != 'H' || send(t->fd, "K", 1, MSG_NOSIGNAL) != 1)
        return CU_ERROR;
    s->shaken = 1;
    return CU_OK;
}

static ssize_t toy_read(cu_transport_t *t, void *buf, size_t n)
{
    toy_t *s = t->impl;
    if (s->pos == s->len) {
        ssize_t r = recv(t->fd, s->in, sizeof(s->in), 0);
        if (r < 0) {
            t->want = CU_EV_READ;
            return CU_AGAIN;
        }
        if (r == 0)
            return 0;
        for (ssize_t i = 0; i < r; i++)
            s->in[i] ^= 0x5a;
        s->pos = 0;
        s->len = (size_t)r;
    }
    size_t k = s->len - s->pos;
    if (k > 16)
        k = 16;
    if (k > n)
        k = n;
    memcpy(buf, s->in + s->pos, k);
    s->pos += k;
    return (ssize_t)k;
}

static ssize_t toy_writev(cu_transport_t *t, const struct iovec *iov, int iovcnt)
{
    char out[8192];
    size_t n = 0;
    for (int i = 0; i < iovcnt && n < sizeof(out); i++)
        for (size_t j = 0; j < iov[i].iov_len && n < sizeof(out); j++)
            out[n++] = (char)(((const char *)iov[i].iov_base)[j] ^ 0x5a);
    ssize_t w = send(t->fd, out, n, MSG_NOSIGNAL);
    if (w < 0) {
        t->want = CU_EV_WRITE;
        return CU_AGAIN;
    }
    return w;
}

static size_t toy_pending(cu_transport_t *t)
{
    toy_t *s = t->impl;
    return s->len - s->pos;
}

static int toy_shutdown(cu_transport_t *t)
{
    return shutdown(t->fd, SHUT_WR) == 0 ? CU_OK : CU_ERROR;
}

static void toy_close(cu_transport_t *t)
{
    cu_free(t->impl);
    t->impl = NULL;
    close(t->fd);
    t->fd = -1;
}

static const cu_transport_ops_t toy_ops = {
    "toy", toy_handshake, toy_read, toy_writev, NULL, toy_pending, toy_shutdown, toy_close,
};

static int toy_open(void *ctx, cu_transport_t *t, int fd)
{
    t->ops = &toy_ops;
    t->impl = cu_xcalloc(1, sizeof(toy_t));
    return CU_OK;
}

static const cu_transport_factory_t toy_factory = {toy_open, NULL, "https"};

static void xor
    (char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
            p[i] ^= 0x5a;
    }

    int main(void)
{
    cu_log_level = CU_LOG_CRITICAL;
    cu_config_t cfg;
    cu_config_defaults(&cfg);

    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int pl =
        snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "cu-test-engine-%d", (int)getpid());
    socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)pl);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, al) == 0 && listen(lfd, 8) == 0);
    cu_listener_t l = {.fd = lfd, .family = AF_UNIX, .bind = "unix:@test"};
    cu_worker_ctx_t ctx = {.cfg = &cfg, .listeners = &l, .nlisteners = 1, .ppid = getppid()};

    cu_engine_t e;
    CHECK(cu_engine_init(&e, &ctx, stub_dispatch) == CU_OK);
    CHECK(cu_engine_fd(&e) >= 0);
    /* Nothing ready: a step returns at once (it never waits) and nothing happened. */
    CHECK(cu_engine_step(&e) == CU_OK && e.nconns == 0);
    /* The heartbeat timer is armed: a foreign loop knows when to come back. */
    CHECK(cu_engine_next_deadline(&e) >= 0);

    int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(cfd, (struct sockaddr *)&addr, al) == 0);
    const char req[] = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(cfd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
    char buf[4096];
    read_reply(&e, cfd, buf, sizeof(buf), "/two");
    CHECK(dispatched == 2 && e.nconns == 1 && e.nrequests == 2);
    char *one = strstr(buf, "\r\n\r\n/one"), *two = strstr(buf, "\r\n\r\n/two");
    CHECK(one != NULL && two != NULL && one < two); /* in order */

    /* Graceful stop: the idle keep-alive connection is not closed under its client (it may
     * be sending right now); its next request is answered with Connection: close, then the
     * connection closes and the engine says it is done. */
    cu_engine_stop(&e);
    for (int i = 0; i < 5; i++)
        CHECK(drive_once(&e) == CU_OK && e.nconns == 1);
    const char req3[] = "GET /three HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(cfd, req3, sizeof(req3) - 1) == (ssize_t)sizeof(req3) - 1);
    memset(buf, 0, sizeof(buf));
    read_reply(&e, cfd, buf, sizeof(buf), "/three");
    CHECK(strstr(buf, "/three") != NULL && strstr(buf, "Connection: close\r\n") != NULL);
    int rc = CU_OK;
    for (int i = 0; i < 400 && rc == CU_OK; i++)
        rc = drive_once(&e);
    CHECK(rc == CU_DONE && e.nconns == 0);
    CHECK(recv(cfd, buf, sizeof(buf), 0) == 0); /* the client sees the close */
    close(cfd);
    cu_engine_destroy(&e);

    /* Through a transport with a handshake and bytes pending inside it: the engine
     * shakes hands before any HTTP byte, reads what the transport holds without waiting
     * for epoll (the socket is drained after the first read), and the request's scheme is
     * the factory's. */
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    addr.sun_path[1] = 'T';
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&addr, al) == 0 && listen(lfd, 8) == 0);
    l.fd = lfd;
    l.tf = &toy_factory;
    dispatched = 0;
    CHECK(cu_engine_init(&e, &ctx, stub_dispatch) == CU_OK);
    cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(cfd, (struct sockaddr *)&addr, al) == 0);
    char wire[sizeof(req)];
    memcpy(wire, req, sizeof(req) - 1);
    xor(wire, sizeof(req) - 1);
    CHECK(write(cfd, "H", 1) == 1 && write(cfd, wire, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1);
    size_t n = 0;
    memset(buf, 0, sizeof(buf));
    for (int i = 0; i < 400 && !strstr(buf + 1, "/two https"); i++) {
        drive_once(&e);
        ssize_t r = recv(cfd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
        if (r > 0) {
            xor(buf + n + (n == 0), (size_t)r - (n == 0)); /* the handshake's "K" is clear */
            n += (size_t)r;
        }
    }
    CHECK(buf[0] == 'K' && dispatched == 2);
    CHECK(strstr(buf + 1, "\r\n\r\n/one https") != NULL && strstr(buf + 1, "/two https") != NULL);
    close(cfd);
    for (int i = 0; i < 400 && e.nconns > 0; i++)
        drive_once(&e);
    CHECK(e.nconns == 0);
    cu_engine_destroy(&e);
    cu_config_free(&cfg);
    return t_done("test_engine");
}
