/* libFuzzer target: a whole connection through the real engine (workers/engine.c,
 * http/conn.c, http/response.c), no Python. The engine accepts from an abstract unix
 * listener; the fuzzer is the client and writes its bytes split at points it chooses,
 * running the loop after every piece. A stub dispatch reads the body and answers "200".
 *
 * Input: byte 0 = option flags, byte 1 = split mode (low 3 bits: number of explicit split
 * lengths that follow as one byte each; 0x80: trickle one byte per piece; 0x40: the
 * listener speaks uwsgi, cu_proto_uwsgi), then the bytes the client sends. After the last
 * piece the client shuts down its write side.
 *
 * Oracles (besides ASan/UBSan and cu_assert): the server's output is a well-formed
 * sequence of responses with exactly one 200 per dispatched request, at most one error
 * response and only last; a dispatched body is complete in memory (the engine's pre-read
 * promise) unless the client asked for 100-continue, and its length matches the framing;
 * the connection is closed once the client has finished and read everything. */
#include "config/config.h"
#include "core/log.h"
#include "http/proto.h"
#include "net/listen.h"
#include "net/transport.h"
#include "workers/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PIECES   8192
#define MAX_DISPATCH 4096

static cu_config_t cfg;
static cu_listener_t listener;
static cu_worker_ctx_t ctx;
static cu_engine_t eng;
static struct sockaddr_un addr;
static socklen_t addrlen;

/* The client side of the current input. */
static struct {
    int fd;
    const uint8_t *data;
    size_t len;
    size_t piece[MAX_PIECES]; /* piece lengths */
    size_t npieces;
    size_t next; /* next piece to send */
    size_t off;  /* bytes of data sent */
    int shut;
    unsigned flags;
    /* per dispatched request */
    size_t ndispatch;
    unsigned char head_req[MAX_DISPATCH];   /* HEAD: the 200 has no body */
    unsigned char expect_100[MAX_DISPATCH]; /* a 100 Continue may precede the 200 */
    unsigned char dispatch_ok[MAX_DISPATCH];
    char *rx; /* what the server sent (kept across inputs) */
    size_t rxlen, rxcap;
} cl;

static void die(const char *what)
{
    fprintf(stderr,
            "fuzz_conn: %s\nfuzz_conn: %zu requests dispatched; the server sent %zu bytes:\n", what,
            cl.ndispatch, cl.rxlen);
    /* the first and the last 2 KiB: a bad response is often far into a pipeline */
    for (size_t i = 0; i < cl.rxlen; i++) {
        if (i == 2048 && cl.rxlen > 4096) {
            fprintf(stderr, "\n[... %zu bytes ...]\n", cl.rxlen - 4096);
            i = cl.rxlen - 2048;
        }
        unsigned char ch = (unsigned char)cl.rx[i];
        if (ch == '\n' || (ch >= 32 && ch < 127))
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
    fputc('\n', stderr);
    const char *dump = getenv("FUZZ_CONN_DUMP"); /* all of it, for a closer look */
    FILE *f = dump ? fopen(dump, "wb") : NULL;
    if (f) {
        fwrite(cl.rx, 1, cl.rxlen, f);
        fclose(f);
    }
    abort();
}

static void client_drain(void)
{
    for (;;) {
        if (cl.rxcap - cl.rxlen < 65536) {
            cl.rxcap = cl.rxcap ? cl.rxcap * 2 : 262144;
            cl.rx = realloc(cl.rx, cl.rxcap);
            if (!cl.rx)
                die("out of memory");
        }
        ssize_t n = recv(cl.fd, cl.rx + cl.rxlen, cl.rxcap - cl.rxlen, MSG_DONTWAIT);
        if (n > 0) {
            cl.rxlen += (size_t)n;
            continue;
        }
        return; /* EAGAIN, EOF or reset: nothing more for now */
    }
}

static void client_send_piece(void)
{
    size_t n = cl.piece[cl.next++];
    /* The socket buffer holds far more than an input: a short write is a harness bug. */
    if (n && send(cl.fd, cl.data + cl.off, n, MSG_NOSIGNAL) != (ssize_t)n && errno != EPIPE &&
        errno != ECONNRESET)
        die("short write to the engine");
    cl.off += n;
}

static void client_finish(void)
{
    /* The rest goes in one write: many tiny writes could fill the socket's buffer while
     * the engine, which runs on this thread, is not reading. */
    size_t rest = cl.len - cl.off;
    if (rest && send(cl.fd, cl.data + cl.off, rest, MSG_NOSIGNAL) != (ssize_t)rest &&
        errno != EPIPE && errno != ECONNRESET)
        die("short write to the engine");
    cl.off = cl.len;
    cl.next = cl.npieces;
    if (!cl.shut)
        shutdown(cl.fd, SHUT_WR);
    cl.shut = 1;
}

/* The app's blocking adapter. The client runs on this thread, so a real wait (poll on the
 * socket) would deadlock whenever the server waits for the client to read (earlier
 * responses filling the socket): the client reads here instead, as a concurrent client
 * would, and the writer retries. Reads never need it (the client sent everything before
 * a body is read: client_finish). */
static int client_block(cu_conn_t *c, int events)
{
    size_t before = cl.rxlen;
    client_drain();
    int rc = cu_transport_wait(&c->t, events, 0, NULL, NULL);
    if (rc == CU_AGAIN && (events & CU_EV_WRITE) && cl.rxlen != before)
        rc = CU_OK; /* the client took some: the writer tries again */
    return rc;      /* CU_AGAIN: nothing can move, as when a real client times out */
}

/* Run the loop without waiting until it has nothing left to do. */
static void pump(void)
{
    for (int i = 0; i < 100000; i++) {
        int n = cu_loop_run_once(eng.loop, 0);
        client_drain();
        /* what engine.c's cu_engine_run does after each iteration: pool closed conns */
        while (eng.dead) {
            cu_conn_t *c = eng.dead;
            eng.dead = c->next;
            c->next = eng.pool;
            eng.pool = c;
        }
        if (n <= 0)
            return;
    }
    die("the loop never went idle");
}

/* Is the whole body of the request on c already in c->in (what dispatch may rely on)? */
static int body_buffered(cu_conn_t *c)
{
    const char *p = c->in.data + c->rpos;
    size_t have = c->in.len - c->rpos;
    if (!c->request.chunked)
        return c->request.content_length <= 0 ||
               (uint64_t)have >= (uint64_t)c->request.content_length;
    cu_chunked_t d;
    cu_chunked_init(&d);
    size_t off = 0;
    while (off <= have) {
        size_t used = 0;
        cu_str_t data;
        int rc = cu_chunked_decode(&d, p + off, have - off, &used, &data);
        off += used;
        if (rc == CU_DONE || rc == CU_ERROR)
            return 1; /* a framing error is found without more bytes */
        if (rc == CU_AGAIN)
            return 0;
    }
    return 0;
}

static int stub_dispatch(cu_engine_t *e, cu_conn_t *c)
{
    CU_UNUSED(e);
    size_t k = cl.ndispatch++;
    if (k >= MAX_DISPATCH)
        die("more requests than bytes");
    cl.head_req[k] = cu_str_ieq_lit(c->request.method, "head");
    cl.expect_100[k] = c->request.expect_continue;
    if (!body_buffered(c)) {
        if (!c->request.expect_continue)
            die("dispatched before the body was read (no 100-continue)");
        client_finish(); /* the client sends the rest while the app reads */
    }
    char buf[1024];
    uint64_t total = 0;
    int rc = CU_OK;
    if (!(cl.flags & 0x80)) { /* flag 0x80: the app ignores the body (engine drains it) */
        for (;;) {
            ssize_t n = cu_body_read(c, buf, (cl.flags & 0x40) ? 7 : sizeof(buf));
            if (n < 0) {
                rc = CU_ERROR;
                break;
            }
            if (n == 0)
                break;
            total += (uint64_t)n;
        }
        if (rc == CU_OK && !c->request.chunked && c->request.content_length >= 0 &&
            total != (uint64_t)c->request.content_length)
            die("body length differs from Content-Length");
    }
    if (rc != CU_OK) {
        /* what py/wsgi.c does when wsgi.input fails before the response started */
        (void)cu_resp_error(c, 500, NULL);
        return CU_ERROR;
    }
    /* body: the number of body bytes read, in decimal, padded to 20 digits */
    char body[32];
    int bl = snprintf(body, sizeof(body), "%020llu", (unsigned long long)total);
    cl.dispatch_ok[k] = 1;
    if (cu_resp_begin(c, "200 OK", 6) != CU_OK ||
        cu_resp_header(c, "Content-Length", 14, "20", 2) != CU_OK ||
        cu_resp_write(c, body, (size_t)bl) != CU_OK)
        return CU_ERROR;
    return cu_resp_finish(c);
}

/* ---- checking what the client received ---- */

static size_t find_crlfcrlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return i;
    return (size_t)-1;
}

static long head_content_length(const char *h, size_t n)
{
    static const char k[] = "\r\nContent-Length: ";
    for (size_t i = 0; i + sizeof(k) - 1 <= n; i++)
        if (memcmp(h + i, k, sizeof(k) - 1) == 0)
            return strtol(h + i + sizeof(k) - 1, NULL, 10);
    return -1;
}

static void check_responses(void)
{
    const char *p = cl.rx;
    size_t n = cl.rxlen, k = 0, errors = 0;
    while (n) {
        if (errors)
            die("bytes after an error response");
        if (n < 12 || (memcmp(p, "HTTP/1.1 ", 9) != 0 && memcmp(p, "HTTP/1.0 ", 9) != 0))
            die("response does not start with a status line");
        size_t he = find_crlfcrlf(p, n);
        if (he == (size_t)-1)
            die("truncated response head");
        int status = atoi(p + 9);
        if (status == 100) {
            if (k >= cl.ndispatch || !cl.expect_100[k])
                die("100 Continue nobody asked for");
            p += he + 4;
            n -= he + 4;
            continue;
        }
        long clen = head_content_length(p, he + 2);
        if (clen < 0)
            die("response without Content-Length");
        size_t blen = (size_t)clen;
        if (status == 200) {
            if (k >= cl.ndispatch || !cl.dispatch_ok[k])
                die("a 200 for a request the app did not answer");
            if (cl.head_req[k])
                blen = 0;
            k++;
        } else if (status >= 400 && status <= 599) {
            errors++;
            if (k < cl.ndispatch && !cl.dispatch_ok[k])
                k++; /* the app's own 500 */
        } else {
            die("unexpected status");
        }
        if (n - he - 4 < blen)
            die("truncated response body");
        p += he + 4 + blen;
        n -= he + 4 + blen;
    }
    if (k != cl.ndispatch)
        die("a dispatched request got no response");
}

/* ---- libFuzzer entry points ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    CU_UNUSED(argc);
    CU_UNUSED(argv);
    cu_log_level = CU_LOG_CRITICAL; /* "Invalid request" noise */
    cu_config_defaults(&cfg);
    cfg.timeout = 30;
    cfg.keepalive = 2;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    /* abstract namespace: nothing to clean up on disk */
    int pl =
        snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "cunicorn-fuzz-%d", (int)getpid());
    addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)pl);
    if (bind(fd, (struct sockaddr *)&addr, addrlen) < 0 || listen(fd, 16) < 0)
        die("bind/listen");
    listener.fd = fd;
    listener.family = AF_UNIX;
    listener.bind = "unix:@fuzz";
    ctx.cfg = &cfg;
    ctx.listeners = &listener;
    ctx.nlisteners = 1;
    ctx.ppid = getppid();
    if (cu_engine_init(&eng, &ctx, stub_dispatch) != CU_OK)
        die("engine init");
    eng.settings.block = client_block; /* the stub app blocks as sync's does */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0], mode = data[1];
    size_t nsplit = mode & 7, pos = 2;
    if (size < pos + nsplit)
        return 0;
    memset(&cl, 0, offsetof(__typeof__(cl), rx));
    cl.rxlen = 0;
    cl.flags = flags;
    const uint8_t *splits = data + pos;
    pos += nsplit;
    cl.data = data + pos;
    cl.len = size - pos;
    if ((mode & 0x80) && cl.len <= MAX_PIECES) {
        for (size_t i = 0; i < cl.len; i++)
            cl.piece[cl.npieces++] = 1;
    } else {
        size_t left = cl.len;
        for (size_t i = 0; i < nsplit && left; i++) {
            size_t l = splits[i] < left ? splits[i] : left;
            cl.piece[cl.npieces++] = l;
            left -= l;
        }
        if (left)
            cl.piece[cl.npieces++] = left;
    }

    /* Options that change parsing, per input. */
    eng.es.proxy_protocol = (flags & 1) ? CU_PROXY_AUTO : CU_PROXY_OFF;
    eng.settings.h1.permit_obsolete_folding = (flags >> 1) & 1;
    eng.settings.h1.header_map = (enum cu_h1_header_map)((flags >> 2) % 3);
    eng.settings.h1.strip_header_spaces = (flags >> 4) & 1;
    eng.settings.h1.limit_request_line = (flags & 0x20) ? 64 : 4094;
    eng.settings.keepalive_ms = (flags & 0x20) ? 0 : 2000;
    listener.proto = (mode & 0x40) ? &cu_proto_uwsgi : NULL;
    /* uwsgi: HTTP_* fields plus CONTENT_TYPE/LENGTH fit the header slots (h1's count) */
    eng.settings.uwsgi.max_fields = eng.settings.max_headers - 2;
    eng.settings.uwsgi.max_field_size = (flags & 0x20) ? 64 : 8190;

    cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cl.fd < 0 || connect(cl.fd, (struct sockaddr *)&addr, addrlen) < 0)
        die("connect");
    for (int i = 0; i < 200 && eng.nconns == 0; i++) { /* 2 s at most: well inside -timeout */
        cu_loop_run_once(eng.loop, 10);
        pump();
    }
    if (eng.nconns != 1)
        die("the engine did not accept");

    while (cl.next < cl.npieces) {
        client_send_piece();
        pump();
        if (eng.nconns == 0)
            break; /* the server closed: the rest is never read */
    }
    client_finish();
    pump();
    /* A connection whose client finished sending and reads everything must be closed:
     * there is no request in flight and nothing left to write. */
    if (eng.nconns != 0)
        die("connection still open after the client's EOF");
    client_drain();
    close(cl.fd);
    check_responses();
    return 0;
}
