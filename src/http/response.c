/* Response writer: status line, headers, framing (Content-Length, chunked, close-delimited),
 * batching of small writes into one write, sendfile, gunicorn-style error pages. */
#include "core/clock.h"
#include "http/conn.h"

#include <errno.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define STASH_MAX (32 * 1024) /* body held back to send with the head in one write */
#define OUT_MAX   (64 * 1024) /* batched output before we write it */
#define BACKLOG_MAX                                                                                \
    (2 * 1024 * 1024) /* unsent output kept for a slow reader before the app waits */

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

static int write_fully_iov(cu_conn_t *c, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (cu_conn_wait(c, POLLOUT) != CU_OK)
                    return CU_ERROR;
                continue;
            }
            return CU_ERROR;
        }
        iov_advance(&iov, &n, (size_t)w);
    }
    return CU_OK;
}

static int fail(cu_conn_t *c)
{
    c->closing = 1;
    c->keep_alive = 0;
    return CU_ERROR;
}

int cu_conn_flush_nb(cu_conn_t *c)
{
    while (cu_buf_unread(&c->out)) {
        ssize_t w = write(c->fd, cu_buf_head(&c->out), cu_buf_unread(&c->out));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return CU_AGAIN;
            return CU_ERROR;
        }
        cu_buf_consume(&c->out, (size_t)w);
    }
    return CU_OK;
}

int cu_conn_flush(cu_conn_t *c)
{
    if (!cu_buf_unread(&c->out))
        return CU_OK;
    struct iovec iov = {(void *)cu_buf_head(&c->out), cu_buf_unread(&c->out)};
    int rc = write_fully_iov(c, &iov, 1);
    c->out.pos = c->out.len = 0;
    return rc == CU_OK ? CU_OK : fail(c);
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
    r->status = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    r->content_length = -1;
    r->app_date = r->app_server = 0;
    r->no_body = r->status < 200 || r->status == 204 || r->status == 304 ||
                 cu_str_ieq_lit(c->req.method, "head");
    r->head.pos = r->head.len = 0;
    /* gunicorn answers in the request's version. */
    int http10 = c->req.version_major == 1 && c->req.version_minor == 0;
    if (cu_buf_append(&r->head, http10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9) != CU_OK ||
        cu_buf_append(&r->head, status, len) != CU_OK ||
        cu_buf_append(&r->head, "\r\n", 2) != CU_OK)
        return CU_ERROR;
    r->status_line_len = r->head.len;
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
    if (cu_buf_reserve(&r->head, nlen + vlen + 4) != CU_OK)
        return CU_ERROR;
    char *p = r->head.data + r->head.len;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\r';
    *p++ = '\n';
    r->head.len = (size_t)(p - r->head.data);
    return CU_OK;
}

/* Put the final head into c->out. `final_len` >= 0 when the whole body is known (the app
 * finished before anything was sent): then Content-Length replaces chunked framing. */
static int emit_head(cu_conn_t *c, int64_t final_len)
{
    cu_resp_t *r = &c->resp;
    const cu_conn_settings_t *s = c->settings;
    int http11 = c->req.version_major == 1 && c->req.version_minor >= 1;
    int64_t clen = -1;

    if (r->no_body) {
        clen = r->content_length; /* HEAD keeps the app's length; 204/304 send what it gave */
    } else if (r->content_length >= 0) {
        clen = r->content_length;
    } else if (final_len >= 0) {
        clen = final_len;
    } else if (http11) {
        r->chunked = 1;
    } else {
        r->close_delimited = 1;
        c->closing = 1;
    }
    if (c->closing)
        c->keep_alive = 0;

    char extra[256];
    size_t n = 0;
    cu_time_update();
    if (!r->app_server)
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Server: %s\r\n", s->server_header);
    if (!r->app_date) {
        memcpy(extra + n, "Date: ", 6);
        n += 6;
        memcpy(extra + n, cu_time.http_date, cu_time.http_date_len);
        n += cu_time.http_date_len;
        memcpy(extra + n, "\r\n", 2);
        n += 2;
    }
    if (c->keep_alive) {
        memcpy(extra + n, "Connection: keep-alive\r\n", 24);
        n += 24;
    } else {
        memcpy(extra + n, "Connection: close\r\n", 19);
        n += 19;
    }
    if (r->chunked) {
        memcpy(extra + n, "Transfer-Encoding: chunked\r\n", 28);
        n += 28;
    } else if (clen >= 0 && r->content_length < 0) {
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Content-Length: %lld\r\n",
                              (long long)clen);
    }
    size_t need = r->head.len + n + 2;
    if (cu_buf_reserve(&c->out, need) != CU_OK)
        return CU_ERROR;
    char *p = c->out.data + c->out.len;
    memcpy(p, r->head.data, r->status_line_len);
    p += r->status_line_len;
    memcpy(p, extra, n);
    p += n;
    memcpy(p, r->head.data + r->status_line_len, r->head.len - r->status_line_len);
    p += r->head.len - r->status_line_len;
    *p++ = '\r';
    *p++ = '\n';
    c->out.len = (size_t)(p - c->out.data);
    r->head_sent = 1;
    r->head_emitted = 1;
    return CU_OK;
}

/* Write c->out and then iov without blocking; what the socket does not take is kept in
 * c->out for the engine to finish on write events, so a slow reader does not hold the app
 * thread. Only when more than BACKLOG_MAX would be kept does the app wait (poll) for the
 * client, up to io_timeout. */
static int write_or_keep(cu_conn_t *c, struct iovec *iov, int k)
{
    struct iovec all[4];
    int n = 0;
    if (cu_buf_unread(&c->out))
        all[n++] = (struct iovec){(void *)cu_buf_head(&c->out), cu_buf_unread(&c->out)};
    for (int i = 0; i < k; i++)
        all[n++] = iov[i];
    struct iovec *v = all;
    size_t out_len = cu_buf_unread(&c->out);
    for (;;) {
        ssize_t w = n ? writev(c->fd, v, n) : 0;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return fail(c);
        if (w > 0) {
            /* Bytes from c->out go first: account for them there. */
            size_t from_out = (size_t)w < out_len ? (size_t)w : out_len;
            cu_buf_consume(&c->out, from_out);
            out_len -= from_out;
            iov_advance(&v, &n, (size_t)w);
        }
        if (n == 0)
            return CU_OK;
        size_t left = 0;
        for (int i = 0; i < n; i++)
            left += v[i].iov_len;
        if (left <= BACKLOG_MAX) {
            /* Keep the rest; the first entry may be c->out itself (already there). */
            for (int i = out_len ? 1 : 0; i < n; i++)
                if (cu_buf_append(&c->out, v[i].iov_base, v[i].iov_len) != CU_OK)
                    return fail(c);
            return CU_OK;
        }
        if (cu_conn_wait(c, POLLOUT) != CU_OK)
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
    if (batch && cu_buf_unread(&c->out) + total <= OUT_MAX) {
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

int cu_resp_write(cu_conn_t *c, const void *p, size_t n)
{
    cu_resp_t *r = &c->resp;
    if (r->status == 0)
        return CU_ERROR;
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
    if (r->no_body || count == 0) {
        r->body_sent += (uint64_t)count;
        return CU_OK;
    }
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
        if (cu_buf_append(&c->out, chdr, hl) != CU_OK)
            return fail(c);
    }
    if (cu_conn_flush(c) != CU_OK)
        return CU_ERROR;
    r->body_sent += (uint64_t)count;
    while (count > 0) {
        size_t chunk = count > (1 << 30) ? (size_t)1 << 30 : (size_t)count;
        ssize_t w = sendfile(c->fd, fd, &offset, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (cu_conn_wait(c, POLLOUT) != CU_OK)
                    return fail(c);
                continue;
            }
            if (errno == EINVAL || errno == ENOSYS) {
                /* Not sendfile-able (pipe, special file): copy. */
                char buf[65536];
                ssize_t got = pread(
                    fd, buf, sizeof(buf) < (size_t)count ? sizeof(buf) : (size_t)count, offset);
                if (got <= 0)
                    return fail(c);
                struct iovec iov = {buf, (size_t)got};
                if (write_fully_iov(c, &iov, 1) != CU_OK)
                    return fail(c);
                offset += got;
                count -= got;
                continue;
            }
            return fail(c);
        }
        if (w == 0)
            return fail(c); /* file shrank under us: the framing is now wrong */
        count -= w;
    }
    if (r->chunked && cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
        return fail(c);
    return CU_OK;
}

int cu_resp_finish(cu_conn_t *c)
{
    cu_resp_t *r = &c->resp;
    if (r->status == 0)
        return fail(c);
    if (!r->head_emitted) {
        if (emit_head(c, (int64_t)cu_buf_unread(&r->stash)) != CU_OK)
            return fail(c);
        if (cu_buf_unread(&r->stash) &&
            send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1) != CU_OK)
            return CU_ERROR;
        r->stash.pos = r->stash.len = 0;
    }
    if (r->chunked && cu_buf_append(&c->out, "0\r\n\r\n", 5) != CU_OK)
        return fail(c);
    if (!r->no_body && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length) {
        /* The app promised more than it gave: the client cannot find the end. */
        c->closing = 1;
        c->keep_alive = 0;
    }
    if (r->close_delimited)
        c->closing = 1;
    if (c->defer_flush && !c->closing && cu_buf_unread(&c->out) < OUT_MAX)
        return CU_OK;
    /* What the socket does not take now, the engine finishes on write events. */
    return cu_conn_flush_nb(c) == CU_ERROR ? fail(c) : CU_OK;
}

static const char *reason_for(int status)
{
    switch (status) {
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
    default: return "Error";
    }
}

/* html.escape(s) as gunicorn applies it to its error page's message: & < > " ' become
 * entities, so a request path or header echoed there is text, never markup. Truncates at a
 * whole character to fit cap (> 0) with its NUL. */
static void html_escape(const char *s, char *dst, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *r = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#x27;"
                                     : NULL;
        size_t k = r ? strlen(r) : 1;
        if (n + k >= cap)
            break;
        if (r)
            memcpy(dst + n, r, k);
        else
            dst[n] = *s;
        n += k;
    }
    dst[n] = '\0';
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
    const char *reason = reason_for(status);
    char esc[4096], body[4608];
    html_escape(msg ? msg : "", esc, sizeof(esc));
    int bl = snprintf(body, sizeof(body),
                      "<html>\n  <head>\n    <title>%s</title>\n  </head>\n  <body>\n"
                      "    <h1><p>%s</p></h1>\n    %s\n  </body>\n</html>\n",
                      reason, reason, esc);
    if (bl < 0 || (size_t)bl >= sizeof(body))
        bl = (int)strlen(body);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/html\r\n"
                      "Content-Length: %d\r\n\r\n",
                      status, reason, bl);
    c->resp.status = status;
    c->resp.head_sent = 1;
    c->resp.head_emitted = 1;
    c->resp.body_sent = (uint64_t)bl;
    c->closing = 1;
    c->keep_alive = 0;
    if (cu_buf_append(&c->out, head, (size_t)hl) != CU_OK ||
        cu_buf_append(&c->out, body, (size_t)bl) != CU_OK)
        return CU_ERROR;
    return cu_conn_flush(c);
}

void cu_conn_abort(cu_conn_t *c)
{
    cu_resp_t *r = &c->resp;
    c->closing = 1;
    c->keep_alive = 0;
    /* Body the app produced but we held back goes out now; the missing end (last chunk,
     * or bytes short of Content-Length, then the close) tells the client it is cut. */
    if (r->status && !r->head_emitted && emit_head(c, -1) == CU_OK && cu_buf_unread(&r->stash))
        (void)send_body(c, cu_buf_head(&r->stash), cu_buf_unread(&r->stash), 1);
    r->stash.pos = r->stash.len = 0;
}
