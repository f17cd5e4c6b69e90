/* Connection engine: accept, read, parse, dispatch, keep-alive, lingering close. */
#include "workers/engine.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/proto.h"
#include "net/proxy.h"
#include "net/seal.h"
#include "net/tls.h"
#include "workers/h2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum conn_state {
    ST_HANDSHAKE, /* the transport's handshake (TLS) runs before any protocol byte */
    ST_PROXY,     /* waiting for the PROXY protocol header */
    ST_HEAD,      /* reading a request head (or idle between requests) */
    ST_BODY,      /* head complete; reading the body into memory before dispatch */
    ST_APP,       /* the app owns the request */
    ST_WRITE,     /* the response is queued; the socket was full */
    ST_LINGER,    /* closing: output done, discarding input until EOF or a short timeout */
    ST_H2,        /* an HTTP/2 connection: workers/h2.c owns its events and timer */
    ST_CLOSED,
};

#define READ_CHUNK       4096
#define OUT_BACKPRESSURE (64 * 1024)
#define LINGER_MS        2000
#define LINGER_MAX       (256 * 1024)
#define QUIET_MS         200 /* no byte received for this long: nothing in flight */
/* Sealed listeners (net/seal.h): how often to look for handshakes in progress, for how
 * long at most (a lost final ACK: the SYN-ACK is sent again after 1 s), and how long a
 * --reuse-port socket of our own stays at most while no new worker's socket has appeared
 * on the port (on a reload the old workers stop before the new ones listen, and a port
 * with no listener at all refuses). */
#define SEAL_POLL_MS 5
#define SEAL_MAX_MS  2000
#define SEAL_OWN_MS  1000

static void conn_on_io(cu_loop_t *loop, cu_io_t *io, int events);
static void conn_on_timer(cu_loop_t *loop, cu_timer_t *t);
static int process_input(cu_engine_t *e, cu_conn_t *c);

/* ---- connection lifetime ---- */

static void peer_describe(cu_conn_t *c)
{
    cu_peer_t *p = &c->peer;
    const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
    p->host[0] = '\0';
    p->port = 0;
    p->is_unix = sa->sa_family == AF_UNIX;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, p->host, sizeof(p->host));
        p->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, p->host, sizeof(p->host));
        p->port = ntohs(in6->sin6_port);
    }
}

/* A connection for accepted fd, or NULL when the listener's transport refused it (the
 * fd is then closed). */
static cu_conn_t *conn_new(cu_engine_t *e, int fd, const cu_listener_t *l,
                           const struct sockaddr_storage *ss, socklen_t sl)
{
    cu_transport_t t;
    cu_transport_init(&t, &cu_transport_plain, fd);
    if (l->tf && l->tf->open(l->tf->ctx, &t, fd) != CU_OK) {
        cu_transport_init(&t, &cu_transport_plain, fd);
        t.ops->close(&t);
        return NULL;
    }
    cu_conn_t *c = e->pool;
    if (c) {
        e->pool = c->next;
    } else {
        c = cu_xcalloc(1, sizeof(*c));
        cu_buf_init(&c->in, READ_CHUNK, e->settings.head_max + e->settings.body_preread);
        cu_buf_init(&c->out, 0, SIZE_MAX / 2);
        cu_buf_init(&c->bin, 0, 1 << 20);
        cu_buf_init(&c->resp.h.store, 0, 1 << 20);
        cu_buf_init(&c->resp.stash, 0, 1 << 20);
        c->hdrs = cu_xcalloc(e->settings.max_headers, sizeof(*c->hdrs));
    }
    c->t = t;
    c->settings = &e->settings;
    c->listener = l;
    c->worker = e;
    c->scheme = l->tf && l->tf->scheme ? l->tf->scheme : "http";
    c->in.pos = c->in.len = 0;
    c->out.pos = c->out.len = 0;
    c->out_charged = 0;
    c->spill_fd = -1;
    c->spill_rd = c->spill_wr = 0;
    c->bin.pos = c->bin.len = 0;
    c->rpos = 0;
    c->keep_alive = 0;
    c->closing = 0;
    c->defer_flush = 0;
    c->nrequests = 0;
    c->state_ms = cu_mono_ms();
    memset(&c->peer, 0, sizeof(c->peer));
    memcpy(&c->peer.addr, ss, sl);
    c->peer.addrlen = sl;
    peer_describe(c);
    c->peer.trusted_forwarder =
        cu_cidr_match(e->es.forwarded_allow_ips, (const struct sockaddr *)ss);
    const cu_proto_t *proto = l->proto ? l->proto : &cu_proto_h1;
    if (c->proto != proto && c->proto && c->proto->release)
        c->proto->release(c); /* a pooled connection last served another protocol */
    c->proto = proto;
    c->proto->reset(c);
    c->state = t.ops->handshake                       ? ST_HANDSHAKE
               : e->es.proxy_protocol != CU_PROXY_OFF ? ST_PROXY
                                                      : ST_HEAD;
    cu_io_init(&c->io, fd, conn_on_io, c);
    cu_timer_init(&c->timer, conn_on_timer, c);

    c->prev = NULL;
    c->next = e->all;
    if (e->all)
        e->all->prev = c;
    e->all = c;
    e->nconns++;
    return c;
}

static void accept_resume(cu_engine_t *e);
static void conn_close(cu_engine_t *e, cu_conn_t *c);

void cu_engine_close_conn(cu_engine_t *e, cu_conn_t *c)
{
    conn_close(e, c);
}

static void conn_linger(cu_engine_t *e, cu_conn_t *c);

void cu_engine_linger_conn(cu_engine_t *e, cu_conn_t *c)
{
    if (c->state == ST_CLOSED)
        return;
    if (c->state == ST_H2) {
        cu_h2_release(e, c);
        c->state = ST_HEAD;
    }
    c->closing = 1;
    conn_linger(e, c);
}

static void conn_close(cu_engine_t *e, cu_conn_t *c)
{
    if (c->state == ST_CLOSED)
        return;
    if (c->state == ST_H2)
        cu_h2_release(e, c);
    cu_io_del(e->loop, &c->io);
    cu_timer_stop(e->loop, &c->timer);
    c->t.ops->close(&c->t);
    cu_conn_release_output(c);
    c->state = ST_CLOSED;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Pooled only after this loop iteration: events for it may still be in the batch. */
    c->next = e->dead;
    e->dead = c;
    e->nconns--;
    if (!e->accepting && !e->stopping && e->nconns < e->es.max_conns)
        accept_resume(e);
}

/* Bytes the kernel still holds for the peer (sent or not, unacknowledged), or -1. */
static int kernel_outq(cu_conn_t *c)
{
    int n = 0;
    return ioctl(c->t.fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/* Wait for the client to take our output: the timer is a no-progress limit (io_timeout),
 * judged on the kernel's queue too, since a slow reader's progress often produces no
 * write event within the period (conn_on_timer). */
static void write_timer(cu_engine_t *e, cu_conn_t *c)
{
    c->wr_mark = kernel_outq(c);
    c->state_ms = cu_mono_ms(); /* last progress (the overload policy's age) */
    cu_timer_start(e->loop, &c->timer, e->settings.io_timeout_ms);
}

/* Close after the response, reading and discarding what the client still sends so that
 * our response is not destroyed by a reset (RFC 9112 section 9.6). */
static void conn_linger(cu_engine_t *e, cu_conn_t *c)
{
    if (cu_conn_unsent(c) && cu_conn_flush_nb(c) == CU_AGAIN) {
        c->closing = 1;
        c->state = ST_WRITE;
        cu_io_set(e->loop, &c->io, c->t.want | e->oneshot);
        write_timer(e, c);
        return;
    }
    /* A transport that cannot say goodbye at once (TLS close_notify on a full socket)
     * is closed: lingering is a courtesy, not a promise. */
    if (c->t.ops->shutdown(&c->t) != CU_OK) {
        conn_close(e, c);
        return;
    }
    c->state = ST_LINGER;
    c->in.pos = c->in.len = 0;
    cu_io_set(e->loop, &c->io, CU_EV_READ | e->oneshot);
    cu_timer_start(e->loop, &c->timer, LINGER_MS);
}

static void conn_error(cu_engine_t *e, cu_conn_t *c, int status, const char *msg)
{
    cu_log_warn("Invalid request from ip=%s: %s", c->peer.host[0] ? c->peer.host : "unix", msg);
    /* The response is small: queue it and let conn_linger push it out without blocking. */
    c->defer_flush = 1;
    (void)cu_resp_error(c, status, msg);
    conn_linger(e, c);
}

/* ---- accepting ---- */

static void on_accept(cu_loop_t *loop, cu_io_t *io, int events);
static void on_seal_timer(cu_loop_t *loop, cu_timer_t *t);

static void accept_pause(cu_engine_t *e)
{
    for (size_t i = 0; i < e->ctx->nlisteners; i++)
        cu_io_del(e->loop, &e->lio[i]);
    e->accepting = 0;
}

static void accept_resume(cu_engine_t *e)
{
    for (size_t i = 0; i < e->ctx->nlisteners; i++) {
        int rc = cu_io_set(e->loop, &e->lio[i], CU_EV_READ | CU_EV_EXCLUSIVE);
        if (rc != CU_OK)
            cu_log_error("cannot watch listener %s: %s", e->ctx->listeners[i].bind, strerror(-rc));
    }
    e->accepting = 1;
}

static void on_accept_timer(cu_loop_t *loop, cu_timer_t *t)
{
    cu_engine_t *e = t->data;
    if (!e->stopping && e->nconns < e->es.max_conns)
        accept_resume(e);
}

/* The overload policy: which connection to close so that a new one gets in at the cap.
 * Lower rank goes first: lingering closes, idle keep-alive, incomplete heads (handshake,
 * PROXY header, request head), bodies still being pre-read, then responses whose reader
 * stalls; oldest first within a rank (state_ms: accepted, idle or last progress). A
 * request the app runs is never shed. */
static int shed_rank(const cu_conn_t *c)
{
    switch (c->state) {
    case ST_LINGER: return 0;
    case ST_HEAD: return c->nrequests > 0 && cu_buf_unread(&c->in) == 0 ? 1 : 2;
    case ST_HANDSHAKE:
    case ST_PROXY: return 2;
    case ST_BODY: return 3;
    case ST_WRITE: return 4;
    default: return -1; /* ST_APP, ST_CLOSED */
    }
}

static cu_conn_t *shed_victim(cu_engine_t *e)
{
    cu_conn_t *best = NULL;
    int best_rank = 99;
    for (cu_conn_t *c = e->all; c; c = c->next) {
        int r = shed_rank(c);
        if (r < 0 || r > best_rank)
            continue;
        if (r < best_rank || c->state_ms <= best->state_ms) { /* ties: e->all is newest first */
            /* Bytes the kernel holds for a waiting connection are most likely a request
             * (not read yet because every thread is busy): never shed it. */
            int unread = 0;
            if (c->state == ST_HEAD && ioctl(c->t.fd, FIONREAD, &unread) == 0 && unread > 0)
                continue;
            best = c;
            best_rank = r;
        }
    }
    return best;
}

/* Accept up to `max` connections from listener l; stop at EAGAIN. At the connection cap a
 * new connection is accepted only in exchange for one the overload policy gives up
 * (shed_victim); with none to give up, the backlog keeps the rest. */
static void accept_some(cu_engine_t *e, const cu_listener_t *l, int max)
{
    for (int i = 0; i < max && e->accepting; i++) {
        cu_conn_t *victim = NULL;
        if (e->nconns >= e->es.max_conns && !e->draining && !e->seal_deadline &&
            (e->stopping || !(victim = shed_victim(e)))) {
            /* worker_connections reached: the backlog keeps the rest, nothing is dropped. */
            accept_pause(e);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                cu_log_error("accept: %s (pausing accepts for 100 ms)", strerror(errno));
                accept_pause(e);
                cu_timer_start(e->loop, &e->accept_timer, 100);
            }
            return; /* EAGAIN: another worker took it, or the queue is empty */
        }
        if (l->family != AF_UNIX) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        } else {
            /* A unix-socket peer has no address worth reporting (REMOTE_ADDR stays empty,
             * as in gunicorn). */
            ss.ss_family = AF_UNIX;
            sl = sizeof(sa_family_t);
        }
        if (victim) {
            e->shed[shed_rank(victim)]++;
            conn_close(e, victim);
        }
        cu_conn_t *c = conn_new(e, fd, l, &ss, sl);
        if (!c)
            continue;
        cu_io_set(e->loop, &c->io, CU_EV_READ | e->oneshot);
        cu_timer_start(e->loop, &c->timer, e->settings.head_timeout_ms);
    }
}

static void on_accept(cu_loop_t *loop, cu_io_t *io, int events)
{
    cu_engine_t *e = io->data;
    accept_some(e, &e->ctx->listeners[io - e->lio], 64);
}

/* ---- PROXY protocol ---- */

static int looks_like_proxy(const char *p, size_t n)
{
    static const char v1[] = "PROXY ";
    static const char v2[] = "\r\n\r\n\0\r\nQUIT\n";
    size_t k1 = n < 6 ? n : 6, k2 = n < 12 ? n : 12;
    if (memcmp(p, v1, k1) == 0)
        return n >= 6 ? 1 : -2;
    if (memcmp(p, v2, k2) == 0)
        return n >= 12 ? 1 : -2;
    return 0;
}

/* CU_OK: continue with HTTP; CU_AGAIN: need bytes; CU_ERROR: answered and closing. */
static int handle_proxy(cu_engine_t *e, cu_conn_t *c)
{
    const char *p = cu_buf_head(&c->in);
    size_t n = cu_buf_unread(&c->in);
    int like = looks_like_proxy(p, n);
    if (like == -2)
        return CU_AGAIN;
    if (like == 0) {
        /* No PROXY header: plain HTTP from this peer, with its socket address. */
        c->state = ST_HEAD;
        return CU_OK;
    }
    if (!cu_cidr_match(e->es.proxy_allow_ips, (const struct sockaddr *)&c->peer.addr)) {
        conn_error(e, c, 403, "Proxy request from a peer that is not allowed");
        return CU_ERROR;
    }
    int accept = e->es.proxy_protocol == CU_PROXY_V1   ? CU_PROXY_ACCEPT_V1
                 : e->es.proxy_protocol == CU_PROXY_V2 ? CU_PROXY_ACCEPT_V2
                                                       : CU_PROXY_ACCEPT_ANY;
    cu_proxy_info_t info;
    ssize_t r = cu_proxy_parse(p, n, accept, &info);
    if (r == -2)
        return CU_AGAIN;
    if (r < 0) {
        conn_error(e, c, 400, "Invalid PROXY line");
        return CU_ERROR;
    }
    if (!info.local && (info.family == AF_INET || info.family == AF_INET6)) {
        memcpy(&c->peer.addr, &info.src, sizeof(info.src));
        c->peer.addrlen =
            info.family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        peer_describe(c);
    }
    cu_buf_consume(&c->in, (size_t)r);
    c->state = ST_HEAD;
    return CU_OK;
}

/* ---- requests ---- */

/* This process's resident set in KiB, or -1: one pread of /proc/self/statm (kept open). */
static int64_t rss_kb(cu_engine_t *e)
{
    if (e->statm_fd < 0)
        e->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char buf[128];
    ssize_t n = e->statm_fd >= 0 ? pread(e->statm_fd, buf, sizeof(buf) - 1, 0) : -1;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return -1;
    return (int64_t)(resident * (unsigned long long)sysconf(_SC_PAGESIZE) / 1024);
}

/* --max-worker-memory after a request. Cheap on the common path: the peak resident set
 * (getrusage, no file) bounds the current one, so /proc is read only once the peak has
 * passed the limit. Returns the current RSS in KiB when over the limit, else 0. */
static int64_t over_memory(cu_engine_t *e)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && (uint64_t)ru.ru_maxrss <= e->es.max_rss_kb)
        return 0;
    int64_t kb = rss_kb(e);
    return kb > 0 && (uint64_t)kb > e->es.max_rss_kb ? kb : 0;
}

/* A request was served: count it, and retire the worker at max_requests or over
 * max_worker_memory. */
static void count_request(cu_engine_t *e)
{
    e->nrequests++;
    if (e->report.served)
        e->report.served(e->report.arg, e->nrequests);
    if (e->es.max_requests && e->nrequests >= e->es.max_requests && !e->stopping) {
        cu_log_info("Autorestarting worker after current request.");
        if (e->report.retiring)
            e->report.retiring(e->report.arg); /* the master starts the replacement now */
        cu_engine_stop(e);
    }
    int64_t kb = e->es.max_rss_kb && !e->stopping ? over_memory(e) : 0;
    if (kb > 0) {
        cu_log_warn("Worker (pid:%d) uses %lld MB, over max_worker_memory (%llu MB): recycling",
                    (int)getpid(), (long long)(kb / 1024),
                    (unsigned long long)(e->es.max_rss_kb / 1024));
        if (e->report.retiring)
            e->report.retiring(e->report.arg);
        cu_engine_stop(e);
    }
}

void cu_engine_count_request(cu_engine_t *e)
{
    count_request(e);
}

static void after_request(cu_engine_t *e, cu_conn_t *c, int rc)
{
    /* An app that took the connection over owns it: no drain, no linger, no keep-alive,
     * only our fd is closed below (the app's dup keeps the connection open). */
    int taken = c->taken_over;
    if (!taken && rc == CU_OK && !c->closing && !c->body.done && cu_body_drain(c) != CU_OK)
        rc = CU_ERROR;
    int reusable = !taken && rc == CU_OK && cu_conn_end_request(c) == CU_OK;
    count_request(e);
    if (taken) {
        c->out.pos = c->out.len = 0;
        conn_close(e, c);
        return;
    }
    if (!reusable) {
        c->closing = 1;
        if (c->body.error || !c->body.done || rc != CU_OK)
            conn_linger(e, c);
        else if (cu_conn_unsent(c))
            conn_linger(e, c);
        else
            conn_close(e, c);
        return;
    }
    c->state = ST_HEAD;
    c->state_ms = cu_mono_ms(); /* idle keep-alive from now (the overload policy's age) */
}

static int h2c_upgrade(cu_engine_t *e, cu_conn_t *c);

static void dispatch(cu_engine_t *e, cu_conn_t *c)
{
    if (e->es.h2c_upgrade && h2c_upgrade(e, c))
        return; /* the connection speaks HTTP/2 now; this request is its stream 1 */
    cu_conn_begin_request(c);
    /* Stopping: this is the last response unless more requests are already buffered
     * behind it (bytes past this body; a chunked body may hide them: keep it open). */
    if (e->stopping && !c->request.chunked &&
        c->in.len <=
            c->rpos + (size_t)(c->request.content_length > 0 ? c->request.content_length : 0))
        c->keep_alive = 0;
    if (e->settings.keepalive_ms == 0)
        c->keep_alive = 0;
    c->request.start_us = cu_wall_us();
    c->state = ST_APP;
    cu_timer_stop(e->loop, &c->timer);
    if (e->threaded) {
        /* This thread runs the app; the others keep serving the loop meanwhile. The
         * connection's watcher is one-shot and fired, so no other thread touches it.
         * The response stays in c->out for the non-blocking flush below, so a slow
         * reader never holds an app thread. */
        c->defer_flush = 1;
        pthread_mutex_unlock(&e->mu);
    }
    int rc = e->dispatch(e, c);
    if (e->threaded)
        pthread_mutex_lock(&e->mu);
    if (rc == CU_AGAIN)
        return; /* completes later: cu_engine_request_done (never in a threaded engine) */
    after_request(e, c, rc);
}

/* Is the body (or BODY_PREREAD of it) in the buffer? Chunked bodies are scanned
 * incrementally with a scratch decoder, without copying. Returns -1 when the scan found
 * the chunked framing malformed: the request is answered here, the app never sees it. */
static int preread_complete(cu_engine_t *e, cu_conn_t *c)
{
    size_t have = cu_buf_unread(&c->in) - c->head_len;
    if (have >= e->settings.body_preread || c->in.len - c->in.pos >= c->in.max)
        return 1;
    if (!c->request.chunked)
        return (uint64_t)have >= (uint64_t)c->request.content_length;
    const char *body = cu_buf_head(&c->in) + c->head_len;
    while (c->pre_scanned < have) {
        size_t used = 0;
        cu_str_t d;
        int rc =
            cu_chunked_decode(&c->pre_dec, body + c->pre_scanned, have - c->pre_scanned, &used, &d);
        c->pre_scanned += used;
        if (rc == CU_DONE)
            return 1;
        if (rc == CU_ERROR)
            return -1;
        if (rc == CU_AGAIN)
            break;
    }
    return 0;
}

static void bad_chunked(cu_engine_t *e, cu_conn_t *c)
{
    int big = c->pre_dec.error == CU_CHUNKED_E_LIMIT_TRAILER;
    conn_error(e, c, big ? 431 : 400,
               big ? "Chunked trailer section too large" : "Invalid chunked body");
}

/* The head is parsed: read a small body first if it is not all here yet, then dispatch. */
static void start_request(cu_engine_t *e, cu_conn_t *c)
{
    int has_body = c->request.chunked || c->request.content_length > 0;
    /* A client that sent Expect: 100-continue waits for us: do not wait for it. */
    if (has_body && !c->request.expect_continue && e->settings.body_preread > 0) {
        c->pre_scanned = 0;
        cu_chunked_init(&c->pre_dec);
        int done = preread_complete(e, c);
        if (done < 0) {
            bad_chunked(e, c);
            return;
        }
        if (!done) {
            c->state = ST_BODY;
            cu_timer_start(e->loop, &c->timer, e->settings.io_timeout_ms);
            return;
        }
    }
    dispatch(e, c);
}

/* More body bytes arrived in ST_BODY. The buffer may have moved: parse the head again
 * (same bytes, same result) so the request's slices point into it. */
static void continue_request(cu_engine_t *e, cu_conn_t *c)
{
    int done = preread_complete(e, c);
    if (done < 0) {
        bad_chunked(e, c);
        return;
    }
    if (!done) {
        cu_timer_start(e->loop, &c->timer, e->settings.io_timeout_ms);
        return;
    }
    int status;
    const char *msg;
    c->proto->reset(c);
    int r = c->proto->parse(c, &status, &msg);
    cu_assert(r == CU_OK);
    c->state = ST_HEAD;
    dispatch(e, c);
}

/* Do the first bytes start an HTTP/1 request line (a method, a space, then '/', '*' or an
 * absolute URI)? 1 yes, 0 no, -1 cannot tell yet. */
static int looks_like_h1(const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n < 32 ? n : 32);
    if (!sp)
        return n < 32 ? -1 : 0;
    size_t i = (size_t)(sp - p) + 1;
    if (i == 1)
        return 0;
    if (i >= n)
        return -1;
    if (p[i] == '/' || p[i] == '*')
        return 1;
    size_t k = n - i < 4 ? n - i : 4;
    if (strncasecmp(p + i, "http", k) != 0)
        return 0;
    return k == 4 ? 1 : -1;
}

/* h2c with prior knowledge (http2_cleartext): a trusted peer (forwarded_allow_ips, or a
 * unix socket) on a plain listener whose first bytes are the HTTP/2 preface is handed to
 * workers/h2.c. Returns 1 when the connection was taken over (or refused and closing), 0
 * to go on with HTTP/1, -1 when more bytes are needed to tell. */
static int h2c_start(cu_engine_t *e, cu_conn_t *c)
{
    if (c->listener->tf || !(c->peer.trusted_forwarder || c->peer.is_unix))
        return 0;
    int sn = cu_h2_sniff(cu_buf_head(&c->in), cu_buf_unread(&c->in));
    if (sn < 0)
        return -1;
    if (sn == 0) {
        if (e->es.h2c_prior != CU_H2C_PRIOR)
            return 0;
        int h1 = looks_like_h1(cu_buf_head(&c->in), cu_buf_unread(&c->in));
        if (h1 < 0)
            return -1;
        if (!h1) {
            /* Neither the preface nor an HTTP/1 request: an invalid preface is an HTTP/2
             * connection error (RFC 9113 section 3.4), answered by closing rather than
             * with an HTTP/1 page the client cannot read. */
            conn_close(e, c);
            return 1;
        }
        /* gunicorn: a trusted peer on a prior-knowledge port must speak HTTP/2. */
        conn_error(e, c, 400, "Expected the HTTP/2 connection preface");
        return 1;
    }
    c->state = ST_H2;
    if (cu_h2_open(e, c) != CU_OK) {
        c->state = ST_HEAD;
        conn_close(e, c);
    }
    return 1;
}

static int name_is(const cu_header_t *h, const char *lower)
{
    size_t n = strlen(lower);
    return h->name.len == n && strncasecmp(h->name.p, lower, n) == 0;
}

/* Does the comma list v name `tok` (case-insensitive)? */
static int has_token(cu_str_t v, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        size_t k = j;
        while (k > i && (v.p[k - 1] == ' ' || v.p[k - 1] == '\t'))
            k--;
        if (k - i == tl && strncasecmp(v.p + i, tok, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

/* Upgrade: h2c (http2_cleartext upgrade or both), as gunicorn 27 decides it: a trusted peer
 * on a plain listener, HTTP/1.1, "Upgrade: h2c", exactly one HTTP2-Settings whose settings
 * are usable, both named in Connection, a body of at most 64 KiB (already read). Anything
 * else is served as HTTP/1. Returns 1 when the 101 is queued and workers/h2.c took over. */
static int h2c_upgrade(cu_engine_t *e, cu_conn_t *c)
{
    const cu_req_t *r = &c->request;
    if (c->listener->tf || !(c->peer.trusted_forwarder || c->peer.is_unix))
        return 0;
    if (r->version_major != 1 || r->version_minor < 1 || r->chunked)
        return 0;
    const cu_header_t *up = NULL, *conn = NULL, *set = NULL;
    int nset = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const cu_header_t *h = &r->headers[i];
        if (name_is(h, "upgrade"))
            up = h;
        else if (name_is(h, "connection"))
            conn = h;
        else if (name_is(h, "http2-settings"))
            set = h, nset++;
    }
    if (!up || up->value.len != 3 || strncasecmp(up->value.p, "h2c", 3) != 0 || nset != 1 ||
        !conn || !has_token(conn->value, "upgrade") || !has_token(conn->value, "http2-settings"))
        return 0;
    int64_t blen = r->content_length > 0 ? r->content_length : 0;
    if (blen > 65536 || cu_buf_unread(&c->in) < c->head_len + (size_t)blen)
        return 0;
    uint8_t settings[256];
    ssize_t sl = cu_h2_upgrade_settings(set->value.p, set->value.len, settings, sizeof(settings));
    if (sl < 0)
        return 0;
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             "Upgrade: h2c\r\n\r\n";
    if (cu_buf_append(&c->out, sw, sizeof(sw) - 1) != CU_OK)
        return 0;
    c->state = ST_H2;
    cu_timer_stop(e->loop, &c->timer);
    if (cu_h2_open_upgrade(e, c, settings, (size_t)sl, c->head_len + (size_t)blen) != CU_OK) {
        c->state = ST_HEAD;
        conn_close(e, c);
    }
    return 1;
}

/* Wait for the client's next bytes. Returns 1 instead when the transport already holds
 * some (TLS records decrypted ahead): no read event would come for them, read now. */
/* While a body is pre-read, earlier pipelined responses may still be unsent: they go out
 * meanwhile (the client may wait for them before it sends the rest). CU_OK, CU_AGAIN
 * (wait for room too), CU_ERROR (the client is gone). */
static int body_flush(cu_conn_t *c)
{
    if (c->state != ST_BODY || !cu_conn_unsent(c))
        return CU_OK;
    return cu_conn_flush_nb(c);
}

static int arm_read(cu_engine_t *e, cu_conn_t *c)
{
    if (cu_transport_pending(&c->t))
        return 1;
    int ev = body_flush(c) == CU_AGAIN ? CU_EV_READ | c->t.want : CU_EV_READ;
    cu_io_set(e->loop, &c->io, ev | e->oneshot);
    return 0;
}

/* Parse and serve every complete request in the buffer, then decide what to wait for.
 * Returns 1 when the caller must read again now (see arm_read), else 0. */
static int process_input(cu_engine_t *e, cu_conn_t *c)
{
    while (c->state == ST_HEAD || c->state == ST_PROXY || c->state == ST_BODY) {
        if (c->state == ST_BODY) {
            continue_request(e, c);
            if (c->state == ST_BODY)
                break;
            continue;
        }
        if (cu_buf_unread(&c->in) == 0)
            break;
        /* Backpressure: a client that is not reading its responses gets no new one started
         * (the unsent backlog is flushed on write events first). */
        if (cu_conn_unsent(c) > OUT_BACKPRESSURE)
            break;
        if (c->state == ST_PROXY) {
            int prc = handle_proxy(e, c);
            if (prc == CU_AGAIN)
                break;
            if (prc == CU_ERROR)
                return 0;
            continue;
        }
        if (e->es.h2c_prior && c->nrequests == 0) {
            int h2 = h2c_start(e, c);
            if (h2 < 0)
                break;
            if (h2 > 0)
                return 0;
        }
        int status = 400;
        const char *msg = NULL;
        int r = c->proto->parse(c, &status, &msg);
        if (r == CU_AGAIN)
            break;
        if (r != CU_OK) {
            conn_error(e, c, status, msg);
            return 0;
        }
        start_request(e, c);
    }
    if (c->state == ST_BODY)
        return arm_read(e, c);
    if (c->state != ST_HEAD && c->state != ST_PROXY)
        return 0;
    /* Push out batched responses before waiting for the client. */
    if (cu_conn_unsent(c)) {
        int frc = cu_conn_flush_nb(c);
        if (frc == CU_ERROR) {
            conn_close(e, c);
            return 0;
        }
        if (frc == CU_AGAIN) {
            c->state = ST_WRITE;
            cu_io_set(e->loop, &c->io, c->t.want | e->oneshot);
            write_timer(e, c);
            return 0;
        }
    }
    /* Stopping or not, an idle keep-alive connection is not closed here: its client may be
     * sending the next request right now. That request is answered with Connection: close
     * (dispatch), or the connection is closed when its keep-alive timer finds it quiet. */
    int now = arm_read(e, c);
    if (cu_buf_unread(&c->in) == 0 && c->nrequests > 0) {
        cu_timer_start(e->loop, &c->timer, e->settings.keepalive_ms);
    } else if (!cu_timer_active(&c->timer)) {
        /* A head must arrive whole within `timeout`, however it trickles in. */
        cu_timer_start(e->loop, &c->timer, e->settings.head_timeout_ms);
    }
    return now;
}

static void conn_on_read(cu_engine_t *e, cu_conn_t *c)
{
    for (;;) {
        if (cu_buf_reserve(&c->in, READ_CHUNK) != CU_OK && c->in.cap == c->in.len) {
            if (c->state == ST_BODY) {
                continue_request(e, c); /* the buffer is full: dispatch what we have */
                return;
            }
            conn_error(e, c, 431, "Request header fields too large");
            return;
        }
        ssize_t n = c->t.ops->read(&c->t, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n == CU_AGAIN) {
            int want = c->t.want;
            if (body_flush(c) == CU_AGAIN)
                want |= c->t.want;
            cu_io_set(e->loop, &c->io, want | e->oneshot); /* re-arm a one-shot watcher */
            return;
        }
        if (n == 0 && cu_conn_unsent(c)) {
            /* The client finished sending (a half-close) with responses still unsent:
             * they go out, then the connection closes (what it sent last is incomplete). */
            c->closing = 1;
            c->keep_alive = 0;
            conn_linger(e, c);
            return;
        }
        if (n <= 0) {
            conn_close(e, c);
            return;
        }
        if (c->nrequests > 0 && cu_buf_unread(&c->in) == 0)
            cu_timer_stop(e->loop, &c->timer); /* keep-alive idle timer -> head timer */
        c->in.len += (size_t)n;
        if (!process_input(e, c))
            return;
    }
}

/* The transport's handshake, before any protocol byte; under the head timer. */
static void conn_handshake(cu_engine_t *e, cu_conn_t *c)
{
    int rc = c->t.ops->handshake(&c->t);
    if (rc == CU_AGAIN) {
        cu_io_set(e->loop, &c->io, c->t.want | e->oneshot);
        return;
    }
    if (rc != CU_OK) {
        conn_close(e, c);
        return;
    }
    if (e->es.h2_tls && e->es.proxy_protocol == CU_PROXY_OFF && cu_tls_alpn_h2(&c->t)) {
        /* ALPN chose HTTP/2: workers/h2.c takes the connection. */
        c->state = ST_H2;
        if (cu_h2_open(e, c) != CU_OK) {
            c->state = ST_HEAD;
            conn_close(e, c);
        }
        return;
    }
    c->state = e->es.proxy_protocol != CU_PROXY_OFF ? ST_PROXY : ST_HEAD;
    conn_on_read(e, c);
}

static void conn_on_io(cu_loop_t *loop, cu_io_t *io, int events)
{
    cu_conn_t *c = io->data;
    cu_engine_t *e = c->worker;
    switch (c->state) {
    case ST_HANDSHAKE: conn_handshake(e, c); break;
    case ST_PROXY:
    case ST_HEAD:
    case ST_BODY: conn_on_read(e, c); break;
    case ST_H2: cu_h2_on_io(e, c); break;
    case ST_WRITE: {
        uint64_t before = cu_conn_unsent(c);
        int rc = cu_conn_flush_nb(c);
        if (rc == CU_AGAIN) {
            /* A reader is cut off when it makes no progress for io_timeout, not when the
             * whole response takes longer than that. */
            if (cu_conn_unsent(c) < before)
                write_timer(e, c);
            cu_io_set(loop, &c->io, c->t.want | e->oneshot);
            break;
        }
        if (rc == CU_ERROR) {
            conn_close(e, c);
            break;
        }
        cu_timer_stop(loop, &c->timer);
        if (c->closing) {
            conn_linger(e, c);
            break;
        }
        c->state = ST_HEAD;
        if (process_input(e, c))
            conn_on_read(e, c);
        break;
    }
    case ST_LINGER: {
        char tmp[16384];
        ssize_t n = c->t.ops->read(&c->t, tmp, sizeof(tmp));
        if (n > 0) {
            c->in.len += (size_t)n; /* count only */
            if (c->in.len > LINGER_MAX)
                conn_close(e, c);
            else if (cu_transport_pending(&c->t))
                conn_on_io(loop, io, events);
            else
                cu_io_set(loop, &c->io, CU_EV_READ | e->oneshot);
            break;
        }
        if (n == CU_AGAIN) {
            cu_io_set(loop, &c->io, c->t.want | e->oneshot);
            break;
        }
        conn_close(e, c);
        break;
    }
    case ST_APP:
        /* A class that completes requests later keeps watching its connection meanwhile
         * (client gone, body bytes, room to write): cu_engine_app_watch. */
        if (e->app_io)
            e->app_io(e, c, events);
        break;
    default: break; /* ST_CLOSED (stale event in this batch) */
    }
}

/* Has the kernel received bytes for c that nobody read yet, or did some arrive within the
 * last `quiet_ms`? Then closing now would race a request already on its way. */
static int conn_in_flight(cu_conn_t *c, int quiet_ms)
{
    int unread = 0;
    if (cu_transport_pending(&c->t) || (ioctl(c->t.fd, FIONREAD, &unread) == 0 && unread > 0))
        return 1;
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (c->peer.is_unix || getsockopt(c->t.fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0)
        return 0;
    return ti.tcpi_last_data_recv < (uint32_t)quiet_ms;
}

static void conn_on_timer(cu_loop_t *loop, cu_timer_t *t)
{
    cu_conn_t *c = t->data;
    cu_engine_t *e = c->worker;
    if (c->state == ST_APP || c->state == ST_CLOSED)
        return;
    if (c->state == ST_H2) {
        cu_h2_on_timer(e, c);
        return;
    }
    if (c->state == ST_HEAD && c->nrequests > 0 && cu_buf_unread(&c->in) == 0 &&
        conn_in_flight(c, QUIET_MS)) {
        /* The keep-alive period ended just as the client sent something: read it (the read
         * event is armed) under the head timer instead of resetting it. */
        cu_timer_start(loop, &c->timer, e->settings.head_timeout_ms);
        return;
    }
    if (c->state == ST_BODY) {
        conn_error(e, c, 408, "Timed out reading the request body");
        return;
    }
    if (c->state == ST_WRITE) {
        int q = kernel_outq(c);
        if (q >= 0 && c->wr_mark >= 0 && q < c->wr_mark) {
            write_timer(e, c); /* the client took bytes from the kernel: progress */
            return;
        }
        cu_log_warn("Slow reader ip=%s: no progress for %d s with %llu bytes unsent, disconnected",
                    c->peer.host[0] ? c->peer.host : "unix", e->settings.io_timeout_ms / 1000,
                    (unsigned long long)cu_conn_unsent(c));
    }
    conn_close(e, c);
}

/* ---- requests completed later (a worker class driven by an event loop) ---- */

void cu_engine_request_done(cu_engine_t *e, cu_conn_t *c, int rc)
{
    if (cu_h2_is_stream(c)) {
        cu_h2_stream_done(c, rc); /* an HTTP/2 stream: workers/h2.c ends it */
        return;
    }
    cu_assert(c->state == ST_APP);
    after_request(e, c, rc);
    if (c->state == ST_HEAD && process_input(e, c))
        conn_on_read(e, c);
}

int cu_engine_app_watch(cu_engine_t *e, cu_conn_t *c, int events)
{
    if (cu_h2_is_stream(c))
        return cu_h2_app_watch(c, events);
    if (c->state != ST_APP)
        return CU_ERROR;
    return cu_io_set(e->loop, &c->io, events) == CU_OK ? CU_OK : CU_ERROR;
}

/* ---- lifecycle ---- */

static void on_heartbeat(cu_loop_t *loop, cu_timer_t *t)
{
    cu_engine_t *e = t->data;
    if (e->report.stamp)
        e->report.stamp(e->report.arg);
    uint64_t shed = 0;
    for (int i = 0; i < 5; i++)
        shed += e->shed[i];
    if (shed > e->shed_logged) {
        cu_log_warn("worker_connections (%zu) reached: closed %llu connections to admit new ones "
                    "(so far: %llu lingering, %llu idle keep-alive, %llu incomplete heads, %llu "
                    "slow bodies, %llu stalled readers)",
                    e->es.max_conns, (unsigned long long)(shed - e->shed_logged),
                    (unsigned long long)e->shed[0], (unsigned long long)e->shed[1],
                    (unsigned long long)e->shed[2], (unsigned long long)e->shed[3],
                    (unsigned long long)e->shed[4]);
        e->shed_logged = shed;
    }
    /* Paused at the cap with nobody to shed then: connections may have become sheddable. */
    if (!e->accepting && !e->stopping)
        accept_resume(e);
    if (getppid() != e->ctx->ppid) {
        cu_log_info("Parent changed, shutting down: %d", (int)getpid());
        e->quit = 1;
    }
    cu_timer_start(loop, t, 1000);
}

int cu_engine_init(cu_engine_t *e, cu_worker_ctx_t *ctx, cu_dispatch_cb dispatch_cb)
{
    const cu_config_t *cfg = ctx->cfg;
    memset(e, 0, sizeof(*e));
    e->statm_fd = -1;
    pthread_mutex_init(&e->mu, NULL);
    e->ctx = ctx;
    e->cfg = cfg;
    e->dispatch = dispatch_cb;
    e->loop = cu_loop_create();
    if (!e->loop) {
        cu_log_error("cannot create event loop: %s", strerror(errno));
        return CU_ERROR;
    }
    cu_settings_resolve(cfg, (unsigned)getpid(), &e->settings, &e->es);
    e->settings.out_kept = &e->out_kept;
    e->lio = cu_xcalloc(ctx->nlisteners ? ctx->nlisteners : 1, sizeof(*e->lio));
    for (size_t i = 0; i < ctx->nlisteners; i++) {
        ctx->listeners[i].proto = e->es.proto; /* --protocol: the same for every listener */
        cu_io_init(&e->lio[i], ctx->listeners[i].fd, on_accept, e);
    }
    accept_resume(e);
    cu_timer_init(&e->hb_timer, on_heartbeat, e);
    cu_timer_init(&e->accept_timer, on_accept_timer, e);
    cu_timer_init(&e->seal_timer, on_seal_timer, e);
    cu_timer_start(e->loop, &e->hb_timer, 0);
    return CU_OK;
}

/* Drop this process's reference to the listening sockets: once the master and the other
 * stopping workers have too, new connections are refused at once instead of queuing where
 * nobody will accept them (and being reset). Other workers (a HUP's new ones) keep their
 * own references and go on serving. */
static void close_listeners(cu_engine_t *e)
{
    accept_pause(e);
    cu_timer_stop(e->loop, &e->seal_timer);
    e->seal_deadline = 0;
    for (size_t i = 0; i < e->ctx->nlisteners; i++) {
        if (e->ctx->listeners[i].fd >= 0) {
            close(e->ctx->listeners[i].fd);
            e->ctx->listeners[i].fd = -1;
        }
    }
}

/* The server is stopping and the master sealed the listeners (net/seal.h): no new SYN gets
 * in, so once no handshake is in progress and the queue is drained, closing resets nobody.
 * Handshakes are counted before the drain: one that completes after the count is in the
 * queue by the time the drain reads it. */
static void seal_check(cu_engine_t *e)
{
    int pending = 0;
    for (size_t i = 0; i < e->ctx->nlisteners; i++) {
        int fd = e->ctx->listeners[i].fd;
        int n = fd >= 0 ? cu_listener_handshakes(fd) : 0;
        if (n < 0) { /* the kernel cannot say: close now, as without a seal */
            pending = 0;
            break;
        }
        pending += n;
    }
    for (size_t i = 0; i < e->ctx->nlisteners && e->accepting; i++)
        if (e->ctx->listeners[i].fd >= 0)
            accept_some(e, &e->ctx->listeners[i], INT_MAX);
    int64_t now = cu_mono_ms();
    int wait_new = e->seal_min && now < e->seal_min && e->seal_own >= 0 &&
                   cu_listener_newcomer(e->seal_own, e->seal_known, e->seal_nknown) == 0;
    if ((pending == 0 && !wait_new) || now >= e->seal_deadline)
        close_listeners(e);
    else
        cu_timer_start(e->loop, &e->seal_timer, SEAL_POLL_MS);
}

static void on_seal_timer(cu_loop_t *loop, cu_timer_t *t)
{
    (void)loop;
    seal_check(t->data);
}

void cu_engine_stop(cu_engine_t *e)
{
    if (e->stopping)
        return;
    /* A --reuse-port socket of this worker's own closes with it, on a reload too: seal it
     * first, so that a SYN the kernel hashes to it is dropped (and sent again, after 1 s,
     * to a socket that stays) rather than refused, and keep it a while (SEAL_OWN_MS). */
    e->seal_min = 0;
    e->seal_own = -1;
    for (size_t i = 0; i < e->ctx->nlisteners; i++) {
        int fd = e->ctx->listeners[i].fd;
        if (!e->ctx->listeners[i].own || fd < 0 || cu_listener_seal(fd) != CU_OK)
            continue;
        e->seal_min = cu_mono_ms() + SEAL_OWN_MS;
        if (e->seal_own < 0) { /* the first one tells when a new worker listens */
            int n = cu_listener_peers(fd, e->seal_known, CU_SEAL_PEERS_MAX);
            e->seal_nknown = n < 0 ? 0 : n > CU_SEAL_PEERS_MAX ? CU_SEAL_PEERS_MAX : (size_t)n;
            e->seal_own = n < 0 ? -1 : fd;
        }
    }
    /* Clients already queued in the listen backlog connected to us: answer them rather
     * than leave them to be reset when the listener closes; past the cap too, and also
     * when accepting was paused at the cap. */
    e->draining = 1;
    e->accepting = 1; /* accept_some's guard; the watchers are removed just below */
    for (size_t i = 0; i < e->ctx->nlisteners && e->accepting; i++)
        accept_some(e, &e->ctx->listeners[i], INT_MAX);
    e->draining = 0;
    e->stopping = 1;
    cu_timer_stop(e->loop, &e->accept_timer);
    int sealed = 0;
    for (size_t i = 0; i < e->ctx->nlisteners; i++)
        sealed |= e->ctx->listeners[i].fd >= 0 && cu_listener_sealed(e->ctx->listeners[i].fd);
    if (sealed) {
        /* Keep accepting (past the cap) what is still completing its handshake. */
        e->seal_deadline = cu_mono_ms() + SEAL_MAX_MS;
        accept_resume(e);
        seal_check(e);
    } else {
        close_listeners(e);
    }
    /* HTTP/2 sessions get their GOAWAY now (workers/h2.c: streams in flight finish). Nothing
     * else is closed here. A connection in flight finishes; an idle keep-alive one
     * keeps its keep-alive timer: a client (a proxy's pooled connection) may be sending on
     * it right now, and closing it under that request loses it (a 502 for a POST behind
     * nginx). Its next request is answered with Connection: close (dispatch); a client
     * that sends nothing is closed when the timer finds the connection quiet
     * (conn_on_timer). graceful_timeout bounds the whole. */
    cu_conn_t *next;
    for (cu_conn_t *c = e->all; c; c = next) {
        next = c->next;
        if (c->state == ST_H2)
            cu_h2_stop(e, c);
    }
}

static void release_dead(cu_engine_t *e)
{
    while (e->dead) {
        cu_conn_t *c = e->dead;
        e->dead = c->next;
        c->next = e->pool;
        e->pool = c;
    }
}

static void engine_lock(void *arg)
{
    pthread_mutex_lock(&((cu_engine_t *)arg)->mu);
}

static void engine_unlock(void *arg)
{
    pthread_mutex_unlock(&((cu_engine_t *)arg)->mu);
}

void cu_engine_set_threaded(cu_engine_t *e)
{
    e->threaded = 1;
    e->oneshot = CU_EV_ONESHOT;
    cu_loop_set_lock(e->loop, engine_lock, engine_unlock, e);
}

/* One iteration: wait up to wait_ms for events, run them and the due timers, then the
 * engine's own bookkeeping. Called with the engine lock held when threaded. */
static void engine_iterate(cu_engine_t *e, int wait_ms)
{
    int rc = cu_loop_run_once(e->loop, wait_ms);
    /* Pooled, never freed while serving: a stale event another thread still holds finds a
     * valid (closed or reused) connection and does no harm. */
    release_dead(e);
    if (rc < 0) {
        cu_log_error("event loop: %s", strerror(-rc));
        e->quit = 1;
    }
    if (e->tick)
        e->tick(e);
    if (e->stopping && e->nconns == 0 && !e->seal_deadline)
        e->quit = 1;
}

int cu_engine_step(cu_engine_t *e)
{
    if (e->threaded)
        pthread_mutex_lock(&e->mu);
    if (!e->quit)
        engine_iterate(e, 0);
    int done = e->quit;
    if (done)
        cu_loop_wakeup_all(e->loop);
    if (e->threaded)
        pthread_mutex_unlock(&e->mu);
    return done ? CU_DONE : CU_OK;
}

int cu_engine_fd(const cu_engine_t *e)
{
    return cu_loop_fd(e->loop);
}

int64_t cu_engine_next_deadline(cu_engine_t *e)
{
    if (e->threaded)
        pthread_mutex_lock(&e->mu);
    int64_t d = cu_loop_next_deadline(e->loop);
    if (e->threaded)
        pthread_mutex_unlock(&e->mu);
    return d;
}

void cu_engine_run(cu_engine_t *e)
{
    if (e->threaded)
        pthread_mutex_lock(&e->mu);
    while (!e->quit)
        engine_iterate(e, e->threaded ? 250 : 1000);
    /* Every thread waiting in the loop must see it too. */
    cu_loop_wakeup_all(e->loop);
    if (e->threaded)
        pthread_mutex_unlock(&e->mu);
}

void cu_engine_destroy(cu_engine_t *e)
{
    cu_conn_t *next;
    for (cu_conn_t *c = e->all; c; c = next) {
        next = c->next;
        conn_close(e, c);
    }
    release_dead(e);
    while (e->pool) {
        cu_conn_t *c = e->pool;
        e->pool = c->next;
        cu_buf_free(&c->in);
        cu_buf_free(&c->out);
        cu_buf_free(&c->bin);
        cu_resp_head_free(&c->resp.h);
        cu_buf_free(&c->resp.stash);
        cu_free(c->hdrs);
        if (c->proto && c->proto->release)
            c->proto->release(c);
        cu_free(c);
    }
    cu_free(e->lio);
    if (e->statm_fd >= 0)
        close(e->statm_fd);
    cu_settings_free(&e->es);
    cu_loop_destroy(e->loop);
    e->loop = NULL;
    pthread_mutex_destroy(&e->mu);
}
