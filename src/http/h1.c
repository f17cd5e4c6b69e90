/* HTTP/1.x request-head parser: line-at-a-time, resumable, slices into the caller's buffer.
 * The rules are gunicorn's (http/message.py), written for a C hot path: memchr for line
 * ends, one table lookup per byte of names, a branch-light scan of values. */
#include "http/h1.h"

#include <arpa/inet.h>

#define H1_MAX_LEADING_CRLF 8
#define H1_LINE_LOOKAHEAD   8192 /* gunicorn's read size: a partial line is judged past it */

/* Byte classes: T token char (RFC 9110 5.6.2), M token char gunicorn accepts in a method by
 * default (no a-z, no '#'), B forbidden in a field value (CTL except HTAB, DEL), R allowed in
 * a request-target (printable ASCII, RFC 3986; bytes >= 0x80 are allowed there too). */
enum { T = 1, M = 2, B = 4, R = 8 };

static const unsigned char ctab[256] = {
    B,         B,         B,         B,         B,         B,         B,         B,
    B,         0,         B,         B,         B,         B,         B,         B,
    B,         B,         B,         B,         B,         B,         B,         B,
    B,         B,         B,         B,         B,         B,         B,         B,
    0,         T | M | R, R,         T | R,     T | M | R, T | M | R, T | M | R, T | M | R,
    R,         R,         T | M | R, T | M | R, R,         T | M | R, T | M | R, R,
    T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R,
    T | M | R, T | M | R, R,         R,         R,         R,         R,         R,
    R,         T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R,
    T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R,
    T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R, T | M | R,
    T | M | R, T | M | R, T | M | R, R,         R,         R,         T | M | R, T | M | R,
    T | M | R, T | R,     T | R,     T | R,     T | R,     T | R,     T | R,     T | R,
    T | R,     T | R,     T | R,     T | R,     T | R,     T | R,     T | R,     T | R,
    T | R,     T | R,     T | R,     T | R,     T | R,     T | R,     T | R,     T | R,
    T | R,     T | R,     T | R,     R,         T | M | R, R,         T | M | R, B,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
    0,         0,         0,         0,         0,         0,         0,         0,
};

static const char *const error_names[] = {
    [CU_H1E_NONE] = "OK",
    [CU_H1E_REQUEST_LINE] = "Invalid Request Line",
    [CU_H1E_METHOD] = "Invalid Method",
    [CU_H1E_VERSION] = "Invalid HTTP Version",
    [CU_H1E_HEADER] = "Invalid HTTP Header",
    [CU_H1E_HEADER_NAME] = "Invalid HTTP header name",
    [CU_H1E_OBS_FOLD] = "Obsolete line folding is unacceptable",
    [CU_H1E_LIMIT_LINE] = "Request Line is too large",
    [CU_H1E_LIMIT_FIELDS] = "limit request headers fields",
    [CU_H1E_LIMIT_FIELD_SIZE] = "limit request headers fields size",
    [CU_H1E_TRANSFER_CODING] = "Unsupported transfer coding",
    [CU_H1E_EXPECT] = "Unable to comply with expectation",
    [CU_H1E_NO_HOST] = "HTTP/1.1 request without a Host header (RFC 9112 3.2)",
};

int cu_h1_error_status(enum cu_h1_error e)
{
    switch (e) {
    case CU_H1E_NONE: return 200;
    case CU_H1E_LIMIT_LINE: return 414;
    case CU_H1E_LIMIT_FIELDS:
    case CU_H1E_LIMIT_FIELD_SIZE: return 431;
    case CU_H1E_TRANSFER_CODING: return 501;
    case CU_H1E_EXPECT: return 417;
    default: return 400;
    }
}

const char *cu_h1_error_name(enum cu_h1_error e)
{
    if ((size_t)e >= CU_NELEM(error_names) || !error_names[e])
        return "Bad Request";
    return error_names[e];
}

void cu_h1_request_reset(cu_h1_request_t *req)
{
    cu_h1_header_t *headers = req->headers;
    size_t max_headers = req->max_headers;

    memset(req, 0, sizeof(*req));
    req->headers = headers;
    req->max_headers = max_headers;
    req->content_length = -1;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static cu_str_t slice(const char *p, const char *end)
{
    return (cu_str_t){p, (size_t)(end - p)};
}

/* Record what failed (the slice gunicorn names in its message) and return the error. */
static int why(cu_h1_request_t *req, int e, cu_str_t text, int upper)
{
    req->err_text = text;
    req->err_upper = (unsigned)upper;
    return e;
}

#define LIT(s) ((cu_str_t){s, sizeof(s) - 1})

/* Upper-case literal against a slice: exact, or ASCII case-insensitive when `fold`. */
static int method_is(cu_str_t m, const char *upper, int fold)
{
    size_t n = strlen(upper);
    if (m.len != n)
        return 0;
    if (!fold)
        return memcmp(m.p, upper, n) == 0;
    for (size_t i = 0; i < n; i++)
        if ((m.p[i] & ~0x20) != upper[i])
            return 0;
    return 1;
}

/* urlsplit's check of a bracketed host: IPvFuture "v<hex>.<x>" or an IPv6 address (a zone
 * id after '%' allowed); IPv4 in brackets is refused. */
static int bracket_host_ok(const char *p, size_t n)
{
    char tmp[64];
    unsigned char a6[16];
    size_t i;

    if (n > 0 && p[0] == 'v') {
        for (i = 1; i < n && strchr("0123456789abcdefABCDEF", p[i]) && p[i]; i++)
            ;
        return i > 1 && i + 1 < n && p[i] == '.';
    }
    const char *pct = memchr(p, '%', n);
    if (pct) {
        if (pct + 1 == p + n)
            return 0;
        n = (size_t)(pct - p);
    }
    if (n == 0 || n >= sizeof(tmp))
        return 0;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, a6) == 1;
}

/* path ['?' query] ['#' fragment], as urlsplit splits it: '#' first, then '?'. */
static void split_path(cu_h1_request_t *req, const char *p, const char *end)
{
    const char *hash = memchr(p, '#', (size_t)(end - p));
    const char *q;

    req->fragment = hash ? slice(hash + 1, end) : slice(end, end);
    if (hash)
        end = hash;
    q = memchr(p, '?', (size_t)(end - p));
    req->query = q ? slice(q + 1, end) : slice(end, end);
    req->path = slice(p, q ? q : end);
}

/* Absolute form: scheme "://" authority [path]. Returns 0 when `t` is not one. */
static int absolute_form(cu_h1_request_t *req, const char *t, const char *end, int *bad)
{
    const char *p = t;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    if (!memchr(alpha, *p, sizeof(alpha) - 1))
        return 0;
    while (p < end && (memchr(alpha, *p, sizeof(alpha) - 1) || (*p >= '0' && *p <= '9') ||
                       *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (end - p < 3 || memcmp(p, "://", 3) != 0)
        return 0;
    req->scheme = slice(t, p);
    p += 3;
    const char *a = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    req->authority = slice(a, p);
    const char *lb = memchr(a, '[', (size_t)(p - a));
    const char *rb = memchr(a, ']', (size_t)(p - a));
    if (!lb != !rb) {
        *bad = 1;
        return 1;
    }
    if (lb) {
        rb = memchr(lb, ']', (size_t)(p - lb));
        if (!rb || !bracket_host_ok(lb + 1, (size_t)(rb - lb - 1))) {
            *bad = 1;
            return 1;
        }
    }
    split_path(req, p, end);
    return 1;
}

static int parse_request_line(const char *p, size_t n, cu_h1_request_t *req, const cu_h1_opts_t *o)
{
    const char *end = p + n;
    const char *sp1 = memchr(p, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    unsigned char acc = T | M, lower = 0;
    cu_str_t line = slice(p, end);

    if (!sp2)
        return why(req, CU_H1E_REQUEST_LINE, line, 0);

    /* method */
    req->method = slice(p, sp1);
    for (const char *c = p; c < sp1; c++) {
        acc &= ctab[(unsigned char)*c];
        lower |= (unsigned char)(*c - 'a') < 26;
    }
    if (o->permit_unconventional_http_method) {
        if (req->method.len == 0 || !(acc & T))
            return why(req, CU_H1E_METHOD, req->method, 0);
    } else if (req->method.len < 3 || req->method.len > 20 || !(acc & M)) {
        return why(req, CU_H1E_METHOD, req->method, 0);
    }
    req->method_lower = o->casefold_http_method && lower;
    int fold = o->casefold_http_method;

    /* request-target */
    const char *t = sp1 + 1;
    req->target = slice(t, sp2);
    if (t == sp2)
        return why(req, CU_H1E_REQUEST_LINE, line, 0);
    /* Printable ASCII, and bytes >= 0x80: unencoded UTF-8 from clients and scanners, which
     * nginx accepts and PEP 3333 reads as latin-1 (gunicorn 27 refuses them). */
    for (const char *c = t; c < sp2; c++)
        if (!(ctab[(unsigned char)*c] & R) && (unsigned char)*c < 0x80)
            return why(req, CU_H1E_REQUEST_LINE, line, 0);
    if (*t == '/') {
        split_path(req, t, sp2);
    } else if (sp2 - t == 1 && *t == '*') {
        if (!method_is(req->method, "OPTIONS", fold))
            return why(req, CU_H1E_REQUEST_LINE, line, 0);
        req->path = req->target;
    } else {
        int bad = 0;
        if (absolute_form(req, t, sp2, &bad)) {
            if (bad)
                return why(req, CU_H1E_REQUEST_LINE, line, 0);
        } else if (method_is(req->method, "CONNECT", fold)) {
            req->authority = req->target;
            req->path = slice(sp2, sp2);
        } else {
            return why(req, CU_H1E_REQUEST_LINE, line, 0);
        }
    }

    /* version: HTTP/<digit>.<digit> */
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || (unsigned char)(v[5] - '0') > 9 ||
        v[6] != '.' || (unsigned char)(v[7] - '0') > 9)
        return why(req, CU_H1E_VERSION, slice(v, end), 0);
    req->version_major = v[5] - '0';
    req->version_minor = v[7] - '0';
    if (req->version_major != 1 && !o->permit_unconventional_http_version) {
        req->err_version = 1;
        return CU_H1E_VERSION;
    }
    return CU_H1E_NONE;
}

/* Any byte a field value may not hold (CTL but HTAB, DEL)? Written without early exit so
 * the compiler can vectorise it. */
static int value_bad(const unsigned char *p, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= ((p[i] < 0x20) & (p[i] != '\t')) | (p[i] == 0x7f);
    return bad != 0;
}

static int forwarder_allowed(cu_str_t name, const cu_h1_opts_t *o)
{
    for (size_t i = 0; i < o->n_forwarder_headers; i++) {
        cu_str_t f = o->forwarder_headers[i];
        if (f.len == 1 && f.p[0] == '*')
            return 1;
        if (f.len != name.len)
            continue;
        size_t k = 0;
        while (k < f.len) {
            unsigned char c = (unsigned char)name.p[k];
            if ((unsigned char)(c - 'a') < 26)
                c = (unsigned char)(c - 32);
            if (c != (unsigned char)f.p[k])
                break;
            k++;
        }
        if (k == f.len)
            return 1;
    }
    return 0;
}

/* One complete field line [p, p+n) (CRLF excluded). */
static int field_line(const char *p, size_t n, cu_h1_request_t *req, const cu_h1_opts_t *o,
                      size_t lim_fields, size_t lim_size)
{
    const char *end = p + n;

    if (is_ws((unsigned char)*p) && req->nfields > 0) {
        /* gunicorn names the field being continued */
        cu_str_t prev = req->nheaders ? req->headers[req->nheaders - 1].name : slice(p, p);
        if (!o->permit_obsolete_folding)
            return why(req, CU_H1E_OBS_FOLD, prev, 1);
        req->field_len += n + 2;
        if (req->field_len > lim_size)
            return CU_H1E_LIMIT_FIELD_SIZE;
        if (value_bad((const unsigned char *)p, n))
            return why(req, CU_H1E_HEADER, prev, 1);
        if (!req->last_dropped) {
            cu_h1_header_t *h = &req->headers[req->nheaders - 1];
            const char *e = end;
            while (e > p && is_ws((unsigned char)e[-1]))
                e--;
            if (e == p) /* an empty continuation still adds a space: keep its line break */
                e = end;
            h->value.len = (size_t)(e - h->value.p);
            h->folded = 1;
        }
        return CU_H1E_NONE;
    }

    if (req->nfields >= lim_fields)
        return CU_H1E_LIMIT_FIELDS;
    req->nfields++;

    const char *colon = memchr(p, ':', n);
    if (!colon || colon == p)
        return why(req, CU_H1E_HEADER, slice(p, end), 0);
    const char *ne = colon;
    if (o->strip_header_spaces)
        while (ne > p && is_ws((unsigned char)ne[-1]))
            ne--;
    unsigned char acc = T;
    int underscore = 0;
    for (const char *c = p; c < ne; c++) {
        acc &= ctab[(unsigned char)*c];
        underscore |= *c == '_';
    }
    if (ne == p || !(acc & T))
        return why(req, CU_H1E_HEADER_NAME, slice(p, ne), 0);

    const char *v = colon + 1, *ve = end;
    if (value_bad((const unsigned char *)v, (size_t)(ve - v)))
        return why(req, CU_H1E_HEADER, slice(p, ne), 1);
    while (v < ve && is_ws((unsigned char)*v))
        v++;
    while (ve > v && is_ws((unsigned char)ve[-1]))
        ve--;
    req->field_len = n + 2;
    if (req->field_len > lim_size)
        return CU_H1E_LIMIT_FIELD_SIZE;

    cu_str_t name = slice(p, ne);
    if (underscore && !forwarder_allowed(name, o)) {
        if (o->header_map == CU_H1_HMAP_REFUSE)
            return why(req, CU_H1E_HEADER_NAME, name, 1);
        if (o->header_map != CU_H1_HMAP_DANGEROUS) {
            req->has_underscore_dropped = 1;
            req->last_dropped = 1;
            return CU_H1E_NONE;
        }
    }
    if (req->nheaders >= req->max_headers)
        return CU_H1E_LIMIT_FIELDS;
    cu_h1_header_t *h = &req->headers[req->nheaders++];
    h->name = name;
    /* an empty value that obs-fold may extend starts at its line end, so the fold's space
     * survives cu_h1_unfold (gunicorn joins the stripped parts with " ") */
    h->value = slice(v, ve);
    h->folded = 0;
    req->last_dropped = 0;
    return CU_H1E_NONE;
}

/* Iterate comma-separated list elements of a value, stripped of SP/HTAB. */
static int next_elem(const char **pp, const char *end, cu_str_t *out)
{
    const char *p = *pp, *e;
    if (p > end)
        return 0;
    e = memchr(p, ',', (size_t)(end - p));
    if (!e)
        e = end;
    *pp = e + 1;
    while (p < e && is_ws((unsigned char)*p))
        p++;
    const char *q = e;
    while (q > p && is_ws((unsigned char)q[-1]))
        q--;
    *out = slice(p, q);
    return 1;
}

enum { K_OTHER, K_HOST, K_CTYPE, K_CLEN, K_TE, K_CONN, K_EXPECT, K_UPGRADE };

static int header_kind(cu_str_t n)
{
    switch (n.len) {
    case 4: return cu_str_ieq_lit(n, "host") ? K_HOST : K_OTHER;
    case 6: return cu_str_ieq_lit(n, "expect") ? K_EXPECT : K_OTHER;
    case 7: return cu_str_ieq_lit(n, "upgrade") ? K_UPGRADE : K_OTHER;
    case 10: return cu_str_ieq_lit(n, "connection") ? K_CONN : K_OTHER;
    case 12: return cu_str_ieq_lit(n, "content-type") ? K_CTYPE : K_OTHER;
    case 14: return cu_str_ieq_lit(n, "content-length") ? K_CLEN : K_OTHER;
    case 17: return cu_str_ieq_lit(n, "transfer-encoding") ? K_TE : K_OTHER;
    default: return K_OTHER;
    }
}

/* Semantics of the complete field section, in gunicorn's order: per-field policy
 * (singletons, Expect), then body framing (set_body_reader), then persistence. */
static int finish_head(cu_h1_request_t *req, const cu_h1_opts_t *o)
{
    int seen_host = 0, seen_ctype = 0, framing = 0, conn_close = 0, conn_keep = 0;
    int conn_upgrade = 0, has_upgrade = 0, must_close = 0;
    int v11 = req->version_major > 1 || (req->version_major == 1 && req->version_minor >= 1);
    const cu_str_t CL = LIT("CONTENT-LENGTH"), TE = LIT("TRANSFER-ENCODING");

    for (size_t i = 0; i < req->nheaders; i++) {
        cu_h1_header_t *h = &req->headers[i];
        switch (header_kind(h->name)) {
        case K_HOST:
            if (seen_host++)
                return why(req, CU_H1E_HEADER, h->name, 1);
            break;
        case K_CTYPE:
            if (seen_ctype++)
                return why(req, CU_H1E_HEADER, h->name, 1);
            break;
        case K_EXPECT:
            if (!cu_str_ieq_lit(h->value, "100-continue"))
                return why(req, CU_H1E_EXPECT, h->value, 0);
            if (v11) /* RFC 9110 10.1.1: ignored on HTTP/1.0 */
                req->expect_continue = 1;
            break;
        case K_CLEN:
        case K_TE: framing = 1; break;
        case K_CONN: {
            const char *p = h->value.p, *end = p + h->value.len;
            cu_str_t tok;
            while (next_elem(&p, end, &tok)) {
                conn_close |= cu_str_ieq_lit(tok, "close");
                conn_keep |= cu_str_ieq_lit(tok, "keep-alive");
                conn_upgrade |= cu_str_ieq_lit(tok, "upgrade");
            }
            break;
        }
        case K_UPGRADE: has_upgrade = 1; break;
        default: break;
        }
    }

    if (!seen_host && v11 && o->require_host)
        return CU_H1E_NO_HOST;

    if (framing) {
        const cu_str_t *cl = NULL;
        int te = 0, chunked = 0;
        for (size_t i = 0; i < req->nheaders; i++) {
            cu_h1_header_t *h = &req->headers[i];
            int k = header_kind(h->name);
            if (k == K_CLEN) {
                if (cl)
                    return why(req, CU_H1E_HEADER, CL, 0);
                cl = &h->value;
            } else if (k == K_TE) {
                const char *p = h->value.p, *end = p + h->value.len;
                cu_str_t c;
                te = 1;
                while (next_elem(&p, end, &c)) {
                    if (cu_str_ieq_lit(c, "chunked")) {
                        if (chunked) /* stacked chunking is never intended */
                            return why(req, CU_H1E_HEADER, TE, 0);
                        chunked = 1;
                    } else if (cu_str_ieq_lit(c, "identity")) {
                        if (chunked)
                            return why(req, CU_H1E_HEADER, TE, 0);
                    } else if (cu_str_ieq_lit(c, "gzip") || cu_str_ieq_lit(c, "deflate") ||
                               cu_str_ieq_lit(c, "compress")) {
                        if (chunked)
                            return why(req, CU_H1E_HEADER, TE, 0);
                        must_close = 1;
                    } else {
                        return why(req, CU_H1E_TRANSFER_CODING, h->value, 0);
                    }
                }
            }
        }
        /* RFC 9112 6.3: a request whose codings do not end in chunked has no length */
        if (te && !chunked)
            return why(req, CU_H1E_HEADER, TE, 0);
        if (chunked) {
            if (!v11) /* chunked HTTP/1.0: framing we cannot trust */
                return why(req, CU_H1E_HEADER, TE, 0);
            if (cl) /* CL+TE: which one a proxy before us used is unknown */
                return why(req, CU_H1E_HEADER, CL, 0);
            req->chunked = 1;
        } else if (cl) {
            int64_t n = 0;
            if (cl->len == 0)
                return why(req, CU_H1E_HEADER, CL, 0);
            for (size_t i = 0; i < cl->len; i++) {
                unsigned d = (unsigned char)cl->p[i] - '0';
                if (d > 9 || n > (INT64_MAX - (int64_t)d) / 10)
                    return why(req, CU_H1E_HEADER, CL, 0);
                n = n * 10 + d;
            }
            req->content_length = n;
        }
    }

    if (must_close || method_is(req->method, "CONNECT", req->method_lower) || conn_close)
        req->keep_alive = 0;
    else
        req->keep_alive = conn_keep || v11;
    req->upgrade = conn_upgrade && has_upgrade;
    return CU_H1E_NONE;
}

/* Bytes a field line of n content bytes at ls brings its field to (CRLF and, for an
 * obs-fold continuation, the field so far included). */
static size_t field_need(const char *buf, size_t ls, size_t n, const cu_h1_request_t *req,
                         const cu_h1_opts_t *o)
{
    size_t need = n + 2;
    if (is_ws((unsigned char)buf[ls]) && req->nfields > 0 && o->permit_obsolete_folding)
        need += req->field_len;
    return need;
}

static ssize_t fail(cu_h1_request_t *req, int e)
{
    req->error = (enum cu_h1_error)e;
    return -1;
}

static ssize_t fail_line_limit(cu_h1_request_t *req, size_t size, size_t limit)
{
    req->err_size = size;
    req->err_limit = limit;
    return fail(req, CU_H1E_LIMIT_LINE);
}

static const cu_str_t BARE_LF = LIT("bare LF as line terminator");

/* A field line [p, p+n) ended in a bare LF. gunicorn reads such a head up to the next CRLF
 * and so finds an LF in that field's value: it names the field, or the bare LF when the
 * line has no name. */
static int bare_lf_field(cu_h1_request_t *req, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (colon && colon > p && !is_ws((unsigned char)*p))
        return why(req, CU_H1E_HEADER, slice(p, colon), 1);
    return why(req, CU_H1E_HEADER, BARE_LF, 0);
}

ssize_t cu_h1_parse_request(const char *buf, size_t len, cu_h1_request_t *req,
                            const cu_h1_opts_t *opts)
{
    size_t lim_line = opts->limit_request_line;
    size_t lim_fields = opts->limit_request_fields;
    size_t lim_size = opts->limit_request_field_size;
    int e;

    if (req->base != buf) {
        if (req->scan_pos > 0)
            cu_h1_request_reset(req); /* slices point into the old buffer: start over */
        req->base = buf;
    }
    if (req->error != CU_H1E_NONE)
        return -1;

    size_t pos = req->scan_pos, ls = req->line_start;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            break;
        size_t i = (size_t)(nl - buf);
        pos = i + 1;
        int cr = i > ls && buf[i - 1] == '\r';
        size_t n = i - ls - (size_t)cr;

        /* The limits first, as the check on an incomplete line below does: the verdict
         * must not depend on how the bytes were split between calls. */
        if (!req->in_fields) {
            if (n > lim_line)
                return fail_line_limit(req, n, lim_line);
            if (!cr)
                return fail(req, why(req, CU_H1E_REQUEST_LINE, BARE_LF, 0));
            if (n == 0) { /* empty line before the request line */
                if (++req->nfields > H1_MAX_LEADING_CRLF)
                    return fail(req, why(req, CU_H1E_REQUEST_LINE, slice(nl, nl), 0));
                ls = pos;
                continue;
            }
            e = parse_request_line(buf + ls, n, req, opts);
            if (e)
                return fail(req, e);
            req->in_fields = 1;
            req->nfields = 0;
            ls = pos;
            continue;
        }
        if (n > 0 && field_need(buf, ls, n, req, opts) > lim_size)
            return fail(req, CU_H1E_LIMIT_FIELD_SIZE);
        if (!cr)
            return fail(req, bare_lf_field(req, buf + ls, n));
        if (n == 0) {
            e = finish_head(req, opts);
            if (e)
                return fail(req, e);
            req->scan_pos = pos;
            req->line_start = pos;
            req->head_len = pos;
            return (ssize_t)pos;
        }
        e = field_line(buf + ls, n, req, opts, lim_fields, lim_size);
        if (e)
            return fail(req, e);
        ls = pos;
    }

    /* Incomplete: what the partial line already proves about the limits. */
    size_t part = len - ls;
    if (part > 0 && buf[len - 1] == '\r')
        part--;
    if (!req->in_fields) {
        /* gunicorn judges a request line once it read up to 8 KiB, so it reports the size
         * of a whole line of that length: wait for the line's end up to there (the verdict
         * is the same, only the size in the message gets exact). */
        if (part > lim_line && part > H1_LINE_LOOKAHEAD) {
            req->err_partial = 1;
            return fail_line_limit(req, part, lim_line);
        }
    } else if (part > 0 && field_need(buf, ls, part, req, opts) > lim_size) {
        return fail(req, CU_H1E_LIMIT_FIELD_SIZE);
    }
    req->scan_pos = len;
    req->line_start = ls;
    return -2;
}

void cu_h1_to_req(const cu_h1_request_t *h, cu_req_t *r)
{
    r->method = h->method;
    r->method_lower = h->method_lower;
    r->target = h->target;
    r->path = h->path;
    r->query = h->query;
    r->fragment = h->fragment;
    r->version_major = h->version_major;
    r->version_minor = h->version_minor;
    r->headers = h->headers;
    r->nheaders = h->nheaders;
    r->content_length = h->content_length;
    r->chunked = h->chunked;
    r->keep_alive = h->keep_alive;
    r->expect_continue = h->expect_continue;
}

/* ---- gunicorn's error texts ---- */

typedef struct {
    char *p;
    size_t n, cap; /* cap excludes the NUL */
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    size_t k = n < o->cap - o->n ? n : o->cap - o->n;
    memcpy(o->p + o->n, s, k);
    o->n += k;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Python's repr() of the latin-1 decoding of s (upper-cased ASCII when `upper`): quoted with
 * ' unless s holds ' and no ", non-printable characters escaped, the rest in UTF-8 (in
 * latin-1 when `latin1`, as gunicorn encodes its error page). */
static void put_repr(out_t *o, cu_str_t s, int upper, int latin1)
{
    static const char hex[] = "0123456789abcdef";
    char q = memchr(s.p, '\'', s.len) && !memchr(s.p, '"', s.len) ? '"' : '\'';

    put(o, &q, 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char e[4];
        if (upper && (unsigned char)(c - 'a') < 26)
            c = (unsigned char)(c - 32);
        if (c == '\\' || c == (unsigned char)q) {
            e[0] = '\\';
            e[1] = (char)c;
            put(o, e, 2);
        } else if (c == '\t' || c == '\n' || c == '\r') {
            e[0] = '\\';
            e[1] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
            put(o, e, 2);
        } else if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad) {
            e[0] = '\\';
            e[1] = 'x';
            e[2] = hex[c >> 4];
            e[3] = hex[c & 15];
            put(o, e, 4);
        } else if (c >= 0x80 && !latin1) {
            e[0] = (char)(0xc0 | c >> 6);
            e[1] = (char)(0x80 | (c & 0x3f));
            put(o, e, 2);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
    put(o, &q, 1);
}

size_t cu_h1_error_message(const cu_h1_request_t *req, int page, char *dst, size_t cap)
{
    out_t o = {dst, 0, cap - 1};
    const char *pre = "";
    int quoted = 0; /* the page wraps str(exc) in quotes */

    if (page) {
        switch (req->error) {
        case CU_H1E_REQUEST_LINE: pre = "Invalid Request Line '"; break;
        case CU_H1E_METHOD: pre = "Invalid Method '"; break;
        case CU_H1E_VERSION: pre = "Invalid HTTP Version '"; break;
        case CU_H1E_LIMIT_FIELDS:
        case CU_H1E_LIMIT_FIELD_SIZE: pre = "Error parsing headers: '"; break;
        default: break;
        }
        quoted = pre[0] != '\0';
    }
    puts_(&o, pre);
    switch (req->error) {
    case CU_H1E_REQUEST_LINE: puts_(&o, "Invalid HTTP request line: "); break;
    case CU_H1E_METHOD: puts_(&o, "Invalid HTTP method: "); break;
    case CU_H1E_VERSION: puts_(&o, "Invalid HTTP Version: "); break;
    case CU_H1E_HEADER: puts_(&o, "Invalid HTTP Header: "); break;
    case CU_H1E_HEADER_NAME: puts_(&o, "Invalid HTTP header name: "); break;
    case CU_H1E_OBS_FOLD: puts_(&o, "Obsolete line folding is unacceptable: "); break;
    case CU_H1E_TRANSFER_CODING: puts_(&o, "Unsupported transfer coding: "); break;
    case CU_H1E_EXPECT: puts_(&o, "Unable to comply with expectation: "); break;
    default: puts_(&o, cu_h1_error_name(req->error)); break;
    }
    if (req->error == CU_H1E_LIMIT_LINE) {
        char num[64];
        int k = snprintf(num, sizeof(num), " (%zu > %zu)", req->err_size, req->err_limit);
        put(&o, num, (size_t)k);
    } else if (req->error == CU_H1E_VERSION && req->err_version) {
        char num[32];
        int k = snprintf(num, sizeof(num), "(%d, %d)", req->version_major, req->version_minor);
        put(&o, num, (size_t)k);
    } else if (req->error != CU_H1E_LIMIT_FIELDS && req->error != CU_H1E_LIMIT_FIELD_SIZE &&
               req->error != CU_H1E_NO_HOST && req->error != CU_H1E_NONE) {
        put_repr(&o, req->err_text, req->err_upper, page);
    }
    if (quoted)
        put(&o, "'", 1);
    dst[o.n] = '\0';
    return o.n;
}
