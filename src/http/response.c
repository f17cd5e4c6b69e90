/* Response writer: the app's status and fields kept structured, body framing (chunked
 * and Content-Length accounting), batching of small writes into one write with the head,
 * sendfile, error responses. The protocol driver (c->proto) serialises heads and pages. */
#include "core/log.h"
#include "http/conn.h"
#include "http/proto.h"

#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define STASH_MAX (32 * 1024) /* body held back to send with the head in one write */
#define OUT_MAX   (64 * 1024) /* batched output before we write it */
#define BACKLOG_MAX                                                                                \
    (2 * 1024 * 1024) /* unsent output one connection keeps in memory, budget permitting */
#define OUT_KEEP_CAP (256 * 1024) /* an emptied output buffer larger than this is freed */
#define SPILL_MAX                                                                                  \
    ((off_t)1 << 30) /* spill file per connection; past it the app waits for the reader */

/* RFC 9110 tchar */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Skip the w bytes writev took from the front of *iov (*n entries). */
static void iov_advance(struct iovec **iov, int *n, size_t w)
{
    while (*n > 0 && w >= (*iov)->iov_len) {
        w -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + w;
        (*iov)->iov_len -= w;
    }
}

static int fail(cu_conn_t *c)
{
    c->closing = 1;
    c->keep_alive = 0;
    return CU_ERROR;
}

/* ---- unsent output: memory within the worker's budget, then a spill file ---- */

static int spill_pending(const cu_conn_t *c)
{
    return c->spill_fd >= 0 && c->spill_rd < c->spill_wr;
}

static void spill_close(cu_conn_t *c)
{
    if (c->spill_fd >= 0)
        close(c->spill_fd);
    c->spill_fd = -1;
    c->spill_rd = c->spill_wr = 0;
}

/* Bring the worker's running total up to date with what c->out holds now. */
static void charge(cu_conn_t *c)
{
    size_t now = cu_buf_unread(&c->out);
    atomic_size_t *kept = c->settings->out_kept;
    if (kept && now > c->out_charged)
        atomic_fetch_add(kept, now - c->out_charged);
    else if (kept && now < c->out_charged)
        atomic_fetch_sub(kept, c->out_charged - now);
    c->out_charged = now;
    if (now == 0 && c->out.cap > OUT_KEEP_CAP)
        cu_buf_free(&c->out); /* a burst for a slow reader leaves no resident buffer */
}

/* May n more bytes be kept in c->out? Within one connection's cap and the worker's budget. */
static int budget_allows(const cu_conn_t *c, size_t n)
{
    if (cu_buf_unread(&c->out) + n > BACKLOG_MAX)
        return 0;
    atomic_size_t *kept = c->settings->out_kept;
    return kept == NULL || atomic_load(kept) + n <= c->settings->out_budget;
}

static int spill_open(cu_conn_t *c)
{
    const char *dir = c->settings->spill_dir ? c->settings->spill_dir : "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* A filesystem without O_TMPFILE: create, then unlink at once. */
        char path[4096];
        snprintf(path, sizeof(path), "%s/cunicorn-out-XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0) {
        cu_log_warn("cannot create a spill file in %s: %s (the app waits for its reader)", dir,
                    strerror(errno));
        return CU_ERROR;
    }
    c->spill_fd = fd;
    c->spill_rd = c->spill_wr = 0;
    return CU_OK;
}

/* Append iov to the spill file. CU_OK; CU_AGAIN when the file would pass SPILL_MAX or
 * cannot be created or written (then nothing was appended: the caller waits instead). */
static int spill_append(cu_conn_t *c, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (c->spill_fd < 0 && spill_open(c) != CU_OK)
        return CU_AGAIN;
    if (c->spill_wr + (off_t)total > SPILL_MAX)
        return CU_AGAIN;
    off_t at = c->spill_wr;
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            ssize_t w = pwrite(c->spill_fd, p, left, at);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                cu_log_warn("spill file write: %s (the app waits for its reader)",
                            w < 0 ? strerror(errno) : "no space");
                return CU_AGAIN; /* spill_wr unchanged: the partial bytes are ignored */
            }
            p += w;
            left -= (size_t)w;
            at += w;
        }
    }
    c->spill_wr = at;
    return CU_OK;
}

static ssize_t send_file_part(cu_conn_t *c, int fd, off_t *off, size_t count);

/* Append to the unsent output, after whatever waits already (memory, then spill). */
static int out_append(cu_conn_t *c, const void *p, size_t n)
{
    if (spill_pending(c)) {
        struct iovec iov = {(void *)p, n};
        if (spill_append(c, &iov, 1) == CU_OK)
            return CU_OK;
        if (cu_conn_flush(c) != CU_OK)
            return CU_ERROR;
    }
    return cu_buf_append(&c->out, p, n);
}

/* A protocol driver appended its bytes (a head, an interim response, trailers, an error
 * page) to c->out, which held `before` unsent bytes until then. While older output waits
 * in the spill file, those bytes belong after it, not before (cu_conn_flush_nb writes
 * c->out first): they move to the file, or, when the file cannot take them, the older
 * output is finished first (waiting for the client as a full spill file does). */
static int keep_order(cu_conn_t *c, size_t before)
{
    size_t n = cu_buf_unread(&c->out) - before;
    if (!spill_pending(c) || n == 0)
        return CU_OK;
    char *newest = c->out.data + c->out.len - n;
    struct iovec iov = {newest, n};
    if (spill_append(c, &iov, 1) == CU_OK) {
        c->out.len -= n;
        charge(c);
        return CU_OK;
    }
    char *copy = cu_xmalloc(n);
    memcpy(copy, newest, n);
    c->out.len -= n;
    int rc = cu_conn_flush(c);
    if (rc == CU_OK && cu_buf_append(&c->out, copy, n) != CU_OK)
        rc = fail(c);
    cu_free(copy);
    charge(c);
    return rc;
}

uint64_t cu_conn_unsent(const cu_conn_t *c)
{
    return cu_buf_unread(&c->out) + (spill_pending(c) ? (uint64_t)(c->spill_wr - c->spill_rd) : 0);
}

void cu_conn_release_output(cu_conn_t *c)
{
    c->out.pos = c->out.len = 0;
    spill_close(c);
    charge(c);
}

int cu_conn_flush_nb(cu_conn_t *c)
{
    int rc = CU_OK;
    while (cu_buf_unread(&c->out)) {
        struct iovec iov = {(void *)cu_buf_head(&c->out), cu_buf_unread(&c->out)};
        ssize_t w = c->t.ops->writev(&c->t, &iov, 1);
        if (w < 0) {
            rc = (int)w; /* CU_AGAIN (c->t.want says on what) or CU_ERROR */
            break;
        }
        cu_buf_consume(&c->out, (size_t)w);
    }
    while (rc == CU_OK && spill_pending(c)) {
        ssize_t w =
            send_file_part(c, c->spill_fd, &c->spill_rd, (size_t)(c->spill_wr - c->spill_rd));
        if (w <= 0)
            rc = w < 0 ? (int)w : CU_ERROR;
    }
    if (rc == CU_OK)
        spill_close(c);
    charge(c);
    return rc;
}

int cu_conn_flush(cu_conn_t *c)
{
    int rc;
    while ((rc = cu_conn_flush_nb(c)) == CU_AGAIN)
        if (cu_conn_wait(c, c->t.want) != CU_OK)
            break;
    if (rc == CU_OK)
        return CU_OK;
    cu_conn_release_output(c);
    return fail(c);
}

int cu_resp_begin(cu_conn_t *c, const char *status, size_t len)
{
    cu_resp_t *r = &c->resp;
    if (r->head_sent)
        return CU_ERROR;
    if (len < 3 || status[0] < '1' || status[0] > '9' || status[1] < '0' || status[1] > '9' ||
        status[2] < '0' || status[2] > '9' || (len > 3 && status[3] != ' '))
        return CU_ERROR;
    for (size_t i = 0; i < len; i++)
        if (status[i] == '\r' || status[i] == '\n' || status[i] == '\0')
            return CU_ERROR;
    int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    if (cu_resp_head_status(&r->h, code, status, len) != CU_OK)
        return CU_ERROR;
    r->content_length = -1;
    r->app_date = r->app_server = 0;
    r->no_body =
        code < 200 || code == 204 || code == 304 || cu_str_ieq_lit(c->request.method, "head");
    return CU_OK;
}

static int is_hop_by_hop(const char *n, size_t len)
{
    cu_str_t s = {n, len};
    switch (len) {
    case 2: return cu_str_ieq_lit(s, "te");
    case 7: return cu_str_ieq_lit(s, "upgrade");
    case 8: return cu_str_ieq_lit(s, "trailers");
    case 10: return cu_str_ieq_lit(s, "connection") || cu_str_ieq_lit(s, "keep-alive");
    case 17: return cu_str_ieq_lit(s, "transfer-encoding");
    case 18: return cu_str_ieq_lit(s, "proxy-authenticate");
    case 19: return cu_str_ieq_lit(s, "proxy-authorization");
    default: return 0;
    }
}

int cu_resp_header(cu_conn_t *c, const char *name, size_t nlen, const char *value, size_t vlen)
{
    cu_resp_t *r = &c->resp;
    if (nlen == 0)
        return CU_ERROR;
    for (size_t i = 0; i < nlen; i++)
        if (!tchar[(unsigned char)name[i]])
            return CU_ERROR;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return CU_ERROR;
    while (vlen && (value[0] == ' ' || value[0] == '\t'))
        value++, vlen--;
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
    cu_str_t n = {name, nlen};
    if (nlen == 14 && cu_str_ieq_lit(n, "content-length")) {
        if (vlen == 0 || vlen > 18)
            return CU_ERROR;
        int64_t v = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (value[i] < '0' || value[i] > '9')
                return CU_ERROR;
            v = v * 10 + (value[i] - '0');
        }
        r->content_length = v;
    } else if (is_hop_by_hop(name, nlen)) {
        return CU_OK;
    } else if (nlen == 4 && cu_str_ieq_lit(n, "date")) {
        r->app_date = 1;
    } else if (nlen == 6 && cu_str_ieq_lit(n, "server")) {
        r->app_server = 1;
    }
    return cu_resp_head_add(&r->h, name, nlen, value, vlen);
}

/* Put the final head into c->out: the driver serialises it. */
static int emit_head(cu_conn_t *c, int64_t final_len)
{
    size_t before = cu_buf_unread(&c->out);
    if (c->proto->emit_head(c, final_len) != CU_OK)
        return CU_ERROR;
    c->resp.head_sent = 1;
    c->resp.head_emitted = 1;
    return keep_order(c, before);
}

/* Write the unsent output and then iov without blocking. What the socket does not take is
 * kept for the engine to finish on write events, so a slow reader does not hold the app
 * thread: in c->out while the connection's cap (BACKLOG_MAX) and the worker's budget
 * (settings->out_budget, all connections together) allow, else appended to the
 * connection's spill file. Only past SPILL_MAX (or without a usable file) does the app
 * wait for the client, and then a reader that makes no progress for io_timeout is
 * disconnected. */
static int write_or_keep(cu_conn_t *c, struct iovec *iov, int k)
{
    if (spill_pending(c)) {
        /* Older output waits in the file: these bytes go after it. */
        int rc = cu_conn_flush_nb(c);
        if (rc == CU_ERROR)
            return fail(c);
        if (rc == CU_AGAIN && spill_append(c, iov, k) == CU_OK)
            return CU_OK;
        if (rc == CU_AGAIN && cu_conn_flush(c) != CU_OK)
            return CU_ERROR;
    }
    struct iovec all[4];
    int n = 0;
    if (cu_buf_unread(&c->out))
        all[n++] = (struct iovec){(void *)cu_buf_head(&c->out), cu_buf_unread(&c->out)};
    for (int i = 0; i < k; i++)
        all[n++] = iov[i];
    struct iovec *v = all;
    size_t out_len = cu_buf_unread(&c->out);
    for (;;) {
        ssize_t w = n ? c->t.ops->writev(&c->t, v, n) : 0;
        if (w < 0 && w != CU_AGAIN)
            return fail(c);
        if (w > 0) {
            /* Bytes from c->out go first: account for them there. */
            size_t from_out = (size_t)w < out_len ? (size_t)w : out_len;
            cu_buf_consume(&c->out, from_out);
            out_len -= from_out;
            iov_advance(&v, &n, (size_t)w);
        }
        if (n == 0) {
            charge(c);
            return CU_OK;
        }
        /* The first entry may be c->out itself (already kept). */
        int first = out_len ? 1 : 0;
        size_t left = 0;
        for (int i = first; i < n; i++)
            left += v[i].iov_len;
        if (budget_allows(c, left)) {
            for (int i = first; i < n; i++)
                if (cu_buf_append(&c->out, v[i].iov_base, v[i].iov_len) != CU_OK)
                    return fail(c);
            charge(c);
            return CU_OK;
        }
        if (spill_append(c, v + first, n - first) == CU_OK) {
            charge(c);
            return CU_OK;
        }
        if (w > 0)
            continue; /* wait only after CU_AGAIN: then t.want says on what */
        int wrc = cu_conn_wait(c, c->t.want);
        if (wrc == CU_AGAIN)
            cu_log_warn("Slow reader ip=%s: no progress for %d s, disconnected",
                        c->peer.host[0] ? c->peer.host : "unix", c->settings->io_timeout_ms / 1000);
        if (wrc != CU_OK)
            return fail(c);
    }
}

/* Send body bytes with the response's framing; the head is already in c->out. With
 * `batch`, small output stays in c->out for cu_resp_finish (or the engine) to write. */
static int send_body(cu_conn_t *c, const void *p, size_t n, int batch)
{
    cu_resp_t *r = &c->resp;
    if (n == 0 && (batch || !cu_buf_unread(&c->out)))
        return CU_OK;
    char chdr[24];
    size_t hl = r->chunked && n ? cu_chunked_header(chdr, n) : 0;
    size_t total = hl + n + (r->chunked && n ? 2 : 0);
    if (batch && !spill_pending(c) && cu_buf_unread(&c->out) + total <= OUT_MAX) {
        if (cu_buf_reserve(&c->out, total) != CU_OK)
            return fail(c);
        char *d = c->out.data + c->out.len;
        memcpy(d, chdr, hl);
        memcpy(d + hl, p, n);
        if (r->chunked)
            memcpy(d + hl + n, "\r\n", 2);
        c->out.len += total;
        return CU_OK;
    }
    struct iovec iov[3];
    int k = 0;
    if (hl)
        iov[k++] = (struct iovec){chdr, hl};
    if (n)
        iov[k++] = (struct iovec){(void *)p, n};
    if (r->chunked && n)
        iov[k++] = (struct iovec){(void *)"\r\n", 2};
    return write_or_keep(c, iov, k);
}

/* A body for a response that has none (HEAD, 1xx, 204, 304): dropped, and said once, in
 * gunicorn's words. */
static void drop_body(cu_conn_t *c, uint64_t n)
{
    cu_resp_t *r = &c->resp;
    if (n == 0 || r->no_body_warned)
        return;
    r->no_body_warned = 1;
    cu_str_t m = c->request.method;
    cu_log_warn("WSGI app sent body bytes on a no-body response (method=%.*s status=%d); "
                "dropping per RFC 9110.",
                (int)m.len, m.p, r->h.status);
}

int cu_resp_write(cu_conn_t *c, const void *p, size_t n)
{
    cu_resp_t *r = &c->resp;
    if (r->h.status == 0)
        return CU_ERROR;
    if (r->no_body) {
        drop_body(c, n);
        return CU_OK;
    }
    if (r->content_length >= 0) {
        uint64_t left = (uint64_t)r->content_length - r->body_sent;
        if (r->body_sent >= (uint64_t)r->content_length)
            left = 0;
        if (n > left)
            n = (size_t)left;
    }
    r->body_sent += n;
    if (r->no_body || n == 0)
        return CU_OK;
    r->head_sent = 1;
    if (!r->head_emitted) {
        if (r->hold && cu_buf_unread(&r->stash) + n <= STASH_MAX)
            return cu_buf_append(&r->stash, p, n) == CU_OK ? CU_OK : fail(c);
        if (emit_head(c, -1) != CU_OK)
            return fail(c);
        if (cu_buf_unread(&r->stash)) {
            int rc = send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1);
            r->stash.pos = r->stash.len = 0;
            if (rc != CU_OK)
                return rc;
        }
    }
    return send_body(c, p, n, r->hold);
}

/* Part of a file through the transport: sendfile when it has one, else read and write. */
static ssize_t send_file_part(cu_conn_t *c, int fd, off_t *off, size_t count)
{
    if (c->t.ops->sendfile)
        return c->t.ops->sendfile(&c->t, fd, off, count);
    char buf[65536];
    ssize_t got = pread(fd, buf, count < sizeof(buf) ? count : sizeof(buf), *off);
    if (got <= 0)
        return CU_ERROR;
    struct iovec iov = {buf, (size_t)got};
    ssize_t w = c->t.ops->writev(&c->t, &iov, 1);
    if (w > 0)
        *off += w;
    return w;
}

int cu_resp_sendfile(cu_conn_t *c, int fd, off_t offset, int64_t count)
{
    cu_resp_t *r = &c->resp;
    if (count < 0) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
            return CU_ERROR;
        count = st.st_size > offset ? st.st_size - offset : 0;
    }
    if (r->content_length >= 0) {
        int64_t left = r->content_length - (int64_t)r->body_sent;
        if (left < 0)
            left = 0;
        if (count > left)
            count = left;
    }
    if (r->no_body) {
        drop_body(c, (uint64_t)count);
        return CU_OK;
    }
    if (count == 0)
        return CU_OK;
    /* Small files go through the normal path (one write with the head). */
    if (count <= 16384) {
        char buf[16384];
        ssize_t got = pread(fd, buf, (size_t)count, offset);
        if (got < 0)
            return CU_ERROR;
        return cu_resp_write(c, buf, (size_t)got);
    }
    if (!r->head_emitted) {
        if (emit_head(c, -1) != CU_OK)
            return fail(c);
        if (cu_buf_unread(&r->stash)) {
            int rc = send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1);
            r->stash.pos = r->stash.len = 0;
            if (rc != CU_OK)
                return rc;
        }
    }
    if (r->chunked) {
        char chdr[24];
        size_t hl = cu_chunked_header(chdr, (size_t)count);
        if (out_append(c, chdr, hl) != CU_OK)
            return fail(c);
    }
    if (cu_conn_flush(c) != CU_OK)
        return CU_ERROR;
    r->body_sent += (uint64_t)count;
    while (count > 0) {
        ssize_t w = send_file_part(c, fd, &offset, (size_t)count);
        if (w == CU_AGAIN) {
            if (cu_conn_wait(c, c->t.want) != CU_OK)
                return fail(c);
            continue;
        }
        if (w <= 0)
            return fail(c); /* includes a file that shrank: the framing is now wrong */
        count -= w;
    }
    if (r->chunked && out_append(c, "\r\n", 2) != CU_OK)
        return fail(c);
    return CU_OK;
}

int cu_resp_finish(cu_conn_t *c)
{
    cu_resp_t *r = &c->resp;
    if (r->h.status == 0)
        return fail(c);
    if (!r->head_emitted) {
        if (emit_head(c, (int64_t)cu_buf_unread(&r->stash)) != CU_OK)
            return fail(c);
        if (cu_buf_unread(&r->stash) &&
            send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1) != CU_OK)
            return CU_ERROR;
        r->stash.pos = r->stash.len = 0;
    }
    if (r->chunked && out_append(c, "0\r\n\r\n", 5) != CU_OK)
        return fail(c);
    if (!r->no_body && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length) {
        /* The app promised more than it gave: the client cannot find the end. */
        c->closing = 1;
        c->keep_alive = 0;
    }
    if (r->close_delimited)
        c->closing = 1;
    if (c->defer_flush && !c->closing && !spill_pending(c) && cu_buf_unread(&c->out) < OUT_MAX)
        return CU_OK;
    /* What the socket does not take now, the engine finishes on write events. */
    return cu_conn_flush_nb(c) == CU_ERROR ? fail(c) : CU_OK;
}

static const char *reason_for(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 200 ? "Informational" : "Error";
    }
}

int cu_resp_interim(cu_conn_t *c, int status, const cu_str_t *names, const cu_str_t *values,
                    size_t n)
{
    const cu_req_t *q = &c->request;
    if (c->resp.head_sent || c->resp.head_emitted || c->proto->interim == NULL ||
        q->version_major < 1 || (q->version_major == 1 && q->version_minor < 1))
        return CU_OK;
    size_t before = cu_buf_unread(&c->out);
    if (c->proto->interim(c, status, reason_for(status), names, values, n) != CU_OK ||
        keep_order(c, before) != CU_OK)
        return fail(c);
    return CU_OK;
}

int cu_resp_early_hints(cu_conn_t *c, const cu_str_t *names, const cu_str_t *values, size_t n)
{
    if (cu_resp_interim(c, 103, names, values, n) != CU_OK)
        return CU_ERROR;
    return cu_conn_flush(c);
}

int cu_resp_error(cu_conn_t *c, int status, const char *msg)
{
    /* An app that failed because its client stalled mid-body did nothing wrong. */
    if (status == 500 && c->body.timed_out) {
        status = 408;
        msg = "Timed out reading the request body";
    } else if (status == 500 && c->body.malformed) {
        status = c->body.too_large ? 431 : 400;
        msg = c->body.too_large ? "Chunked trailer section too large" : "Invalid chunked body";
    }
    cu_resp_head_reset(&c->resp.h);
    size_t before = cu_buf_unread(&c->out);
    int bl = c->proto->error_page(c, status, reason_for(status), msg);
    if (bl >= 0 && keep_order(c, before) != CU_OK)
        return CU_ERROR;
    cu_resp_head_reset(&c->resp.h);
    c->resp.h.status = status;
    c->resp.head_sent = 1;
    c->resp.head_emitted = 1;
    c->resp.body_sent = bl > 0 ? (uint64_t)bl : 0;
    c->closing = 1;
    c->keep_alive = 0;
    if (bl < 0)
        return CU_ERROR;
    /* The engine's own error pages (defer_flush) never wait for the client: a slow reader
     * with earlier responses unread would hold the loop. The engine lingers them out. */
    if (c->defer_flush)
        return cu_conn_flush_nb(c) == CU_ERROR ? fail(c) : CU_OK;
    return cu_conn_flush(c);
}

void cu_conn_abort(cu_conn_t *c)
{
    cu_resp_t *r = &c->resp;
    c->closing = 1;
    c->keep_alive = 0;
    /* Body the app produced but we held back goes out now; the missing end (last chunk,
     * or bytes short of Content-Length, then the close) tells the client it is cut. */
    if (r->h.status && !r->head_emitted && emit_head(c, -1) == CU_OK && cu_buf_unread(&r->stash))
        (void)send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1);
    r->stash.pos = r->stash.len = 0;
}

int cu_resp_trailers(cu_conn_t *c, const cu_resp_head_t *fields)
{
    size_t before = cu_buf_unread(&c->out);
    if (!c->proto->trailers || c->proto->trailers(c, fields) != CU_OK)
        return CU_ERROR;
    return keep_order(c, before);
}

int cu_resp_continue(cu_conn_t *c)
{
    size_t before = cu_buf_unread(&c->out);
    if (!c->proto->continue_100)
        return CU_OK;
    if (c->proto->continue_100(c) != CU_OK)
        return CU_ERROR;
    return keep_order(c, before);
}
