/* HTTP/1 request-head parser: every conformance vector (whole, trickled one byte at a time,
 * and with the buffer moving between calls), then limits, error classes, smuggling shapes,
 * resumption cost. */
#include "config/config.h"
#include "http/chunked.h"
#include "http/h1.h"
#include "net/proxy.h"
#include "t.h"
#include "vectors.h"

#include <ctype.h>

#define MAXH 128

/* How the input reaches the parser. */
enum feed { FEED_WHOLE, FEED_TRICKLE, FEED_MOVING };

struct got_req {
    char method[64];
    cu_h1_request_t r;
    cu_h1_header_t h[MAXH];
    char body[256];
    size_t body_len;
};

struct got {
    const char *error; /* gunicorn class name, NULL when all parsed */
    size_t n;
    struct got_req req[4];
};

static const char *h1_class(enum cu_h1_error e)
{
    switch (e) {
    case CU_H1E_REQUEST_LINE: return "InvalidRequestLine";
    case CU_H1E_METHOD: return "InvalidRequestMethod";
    case CU_H1E_VERSION: return "InvalidHTTPVersion";
    case CU_H1E_HEADER: return "InvalidHeader";
    case CU_H1E_HEADER_NAME: return "InvalidHeaderName";
    case CU_H1E_OBS_FOLD: return "ObsoleteFolding";
    case CU_H1E_LIMIT_LINE: return "LimitRequestLine";
    case CU_H1E_LIMIT_FIELDS:
    case CU_H1E_LIMIT_FIELD_SIZE: return "LimitRequestHeaders";
    case CU_H1E_TRANSFER_CODING: return "UnsupportedTransferCoding";
    case CU_H1E_EXPECT: return "ExpectationFailed";
    default: return "?";
    }
}

static const char *chunked_class(int e)
{
    switch (e) {
    case CU_CHUNKED_E_SIZE: return "InvalidChunkSize";
    case CU_CHUNKED_E_EXTENSION: return "InvalidChunkExtension";
    case CU_CHUNKED_E_TERMINATOR: return "ChunkMissingTerminator";
    case CU_CHUNKED_E_TRAILER: return "InvalidHeader";
    case CU_CHUNKED_E_TRAILER_NAME: return "InvalidHeaderName";
    case CU_CHUNKED_E_LIMIT_TRAILER: return "LimitRequestHeaders";
    default: return "?";
    }
}

static cu_h1_opts_t opts_of(const struct tv *v)
{
    cu_h1_opts_t o = {0};
    /* The vectors carry gunicorn's settings; the parser takes the effective limits. */
    cu_config_t cfg = {0};
    cfg.limit_request_line = v->limit_request_line < 0 ? 4094 : v->limit_request_line;
    cfg.limit_request_fields = v->limit_request_fields < 0 ? 100 : v->limit_request_fields;
    cfg.limit_request_field_size =
        v->limit_request_field_size < 0 ? 8190 : v->limit_request_field_size;
    o.limit_request_line = cu_config_eff_limit_request_line(&cfg);
    o.limit_request_fields = cu_config_eff_limit_request_fields(&cfg);
    o.limit_request_field_size = cu_config_eff_limit_request_field_size(&cfg);
    o.header_map = v->header_map < 0 ? CU_H1_HMAP_DROP : (enum cu_h1_header_map)v->header_map;
    o.permit_obsolete_folding = v->permit_obsolete_folding;
    o.strip_header_spaces = v->strip_header_spaces;
    o.permit_unconventional_http_method = v->permit_unconventional_http_method;
    o.permit_unconventional_http_version = v->permit_unconventional_http_version;
    o.casefold_http_method = v->casefold_http_method;
    return o;
}

/* Parse one head from in[0..len) feeding it as `mode` says. */
static ssize_t feed_head(const char *in, size_t len, cu_h1_request_t *r, const cu_h1_opts_t *o,
                         enum feed mode)
{
    if (mode == FEED_WHOLE)
        return cu_h1_parse_request(in, len, r, o);
    ssize_t rc = -2;
    char *prev = NULL;
    for (size_t n = 1; n <= len && rc == -2; n++) {
        if (mode == FEED_TRICKLE) {
            rc = cu_h1_parse_request(in, n, r, o);
            continue;
        }
        /* a new buffer each call, the old one freed: stale slices would trip ASan */
        char *b = malloc(n);
        memcpy(b, in, n);
        rc = cu_h1_parse_request(b, n, r, o);
        free(prev);
        prev = b;
    }
    if (mode == FEED_MOVING && rc > 0) {
        /* slices must point into the last buffer: re-point them at `in` for the caller */
        cu_h1_request_reset(r);
        rc = cu_h1_parse_request(in, (size_t)rc, r, o);
    }
    free(prev);
    return rc;
}

/* Decode a chunked body feeding at most `step` bytes a call. */
static int feed_chunked(const char *in, size_t len, size_t step, char *out, size_t *out_len,
                        size_t *used, int *err)
{
    cu_chunked_t d = {0};
    size_t off = 0;
    cu_chunked_init(&d);
    *out_len = 0;
    for (;;) {
        size_t n = len - off < step ? len - off : step, c = 0;
        cu_str_t data = {0};
        int rc = cu_chunked_decode(&d, in + off, n, &c, &data);
        CHECK(c <= n);
        off += c;
        if (rc == CU_OK) {
            CHECK(data.len > 0 && data.p >= in && data.p + data.len <= in + off);
            if (*out_len + data.len <= 256)
                memcpy(out + *out_len, data.p, data.len);
            *out_len += data.len;
        } else if (rc == CU_DONE) {
            *used = off;
            return CU_DONE;
        } else if (rc == CU_ERROR) {
            *err = d.error;
            return CU_ERROR;
        } else if (off >= len) {
            return CU_AGAIN;
        }
    }
}

static void run(const struct tv *v, enum feed mode, size_t chunk_step, struct got *g)
{
    cu_h1_opts_t o = opts_of(v);
    const char *in = v->raw;
    size_t len = v->raw_len, pos = 0;

    memset(g, 0, sizeof(*g));
    if (v->proxy_protocol) {
        cu_proxy_info_t pi;
        ssize_t rc = cu_proxy_parse(in, len, CU_PROXY_ACCEPT_ANY, &pi);
        if (rc == -1) {
            g->error = "InvalidProxyLine";
            return;
        }
        if (rc == -2) {
            g->error = "NoMoreData";
            return;
        }
        pos = (size_t)rc;
    }
    while (pos < len && g->n < 4) {
        struct got_req *q = &g->req[g->n];
        q->r.headers = q->h;
        q->r.max_headers = MAXH;
        cu_h1_request_reset(&q->r);
        ssize_t rc = feed_head(in + pos, len - pos, &q->r, &o, mode);
        if (rc == -1) {
            g->error = h1_class(q->r.error);
            return;
        }
        if (rc == -2) {
            g->error = "NoMoreData";
            return;
        }
        CHECK((size_t)rc == q->r.head_len);
        pos += (size_t)rc;
        g->n++;
        CHECK(q->r.method.len < sizeof(q->method));
        for (size_t i = 0; i < q->r.method.len && i < sizeof(q->method) - 1; i++)
            q->method[i] = q->r.method_lower ? (char)toupper((unsigned char)q->r.method.p[i])
                                             : q->r.method.p[i];
        if (q->r.chunked) {
            size_t used = 0;
            int err = 0;
            int rc2 =
                feed_chunked(in + pos, len - pos, chunk_step, q->body, &q->body_len, &used, &err);
            if (rc2 == CU_ERROR) {
                g->error = chunked_class(err);
                return;
            }
            if (rc2 == CU_AGAIN) {
                g->error = "ChunkMissingTerminator";
                return;
            }
            pos += used;
        } else if (q->r.content_length > 0) {
            if ((size_t)q->r.content_length > len - pos) {
                g->error = "NoMoreData";
                return;
            }
            q->body_len = (size_t)q->r.content_length;
            memcpy(q->body, in + pos, q->body_len < 256 ? q->body_len : 256);
            pos += q->body_len;
        }
        if (!q->r.keep_alive)
            break;
    }
}

static int str_eq(cu_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int name_eq_upper(cu_str_t s, const char *upper)
{
    if (s.len != strlen(upper))
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (toupper((unsigned char)s.p[i]) != (unsigned char)upper[i])
            return 0;
    return 1;
}

static int check_vector(const struct tv *v, enum feed mode, size_t chunk_step)
{
    struct got g;
    int before = t_fail;

    run(v, mode, chunk_step, &g);
    if (!v->valid) {
        CHECK(g.error != NULL);
        if (g.error)
            CHECK(strcmp(g.error, v->error) == 0);
    } else {
        CHECK(g.error == NULL);
        CHECK(g.n == v->nreqs);
        for (size_t i = 0; i < g.n && i < v->nreqs; i++) {
            const struct tv_req *e = &v->reqs[i];
            struct got_req *q = &g.req[i];
            CHECK(strcmp(q->method, e->method) == 0);
            CHECK(str_eq(q->r.target, e->uri));
            CHECK(str_eq(q->r.path, e->path));
            CHECK(str_eq(q->r.query, e->query));
            CHECK(str_eq(q->r.fragment, e->fragment));
            CHECK(q->r.version_major == e->major && q->r.version_minor == e->minor);
            CHECK(q->r.nheaders == e->nheaders);
            for (size_t k = 0; k < q->r.nheaders && k < e->nheaders; k++) {
                cu_h1_header_t *h = &q->r.headers[k];
                char val[16384];
                cu_str_t vs = h->value;
                CHECK(name_eq_upper(h->name, e->headers[2 * k]));
                if (h->folded) {
                    vs.len = cu_h1_unfold(h, val);
                    vs.p = val;
                }
                CHECK(str_eq(vs, e->headers[2 * k + 1]));
            }
            CHECK(q->body_len == e->body_len);
            CHECK(q->body_len <= 256 && memcmp(q->body, e->body, q->body_len) == 0);
        }
    }
    if (t_fail != before)
        fprintf(stderr, "  vector %s (feed %d, chunk step %zu): got %s\n", v->name, (int)mode,
                chunk_step, g.error ? g.error : "ok");
    return t_fail == before;
}

static void test_vectors(void)
{
    for (size_t i = 0; i < CU_NELEM(tv_all); i++) {
        const struct tv *v = &tv_all[i];
        check_vector(v, FEED_WHOLE, (size_t)-1);
        check_vector(v, FEED_TRICKLE, 1);
        check_vector(v, FEED_MOVING, 7);
        /* the chunked decoder split at every point of the input */
        for (size_t step = 2; step < 40 && step < v->raw_len; step++)
            check_vector(v, FEED_WHOLE, step);
    }
}

/* ---- own cases ---- */

static cu_h1_header_t hbuf[MAXH];

static cu_h1_opts_t defaults(void)
{
    cu_h1_opts_t o = {0};
    o.limit_request_line = 4094;
    o.limit_request_fields = 100;
    o.limit_request_field_size = 8190;
    return o;
}

static ssize_t parse_o(const char *s, size_t len, cu_h1_request_t *r, const cu_h1_opts_t *o)
{
    r->headers = hbuf;
    r->max_headers = MAXH;
    cu_h1_request_reset(r);
    return cu_h1_parse_request(s, len, r, o);
}

static ssize_t parse(const char *s, cu_h1_request_t *r)
{
    cu_h1_opts_t o = defaults();
    return parse_o(s, strlen(s), r, &o);
}

/* Expect failure with error e (also when fed a byte at a time). */
static int fails_o(const char *s, enum cu_h1_error e, const cu_h1_opts_t *o)
{
    cu_h1_request_t r, r2;
    ssize_t rc = parse_o(s, strlen(s), &r, o), rc2 = -2;
    r2.headers = hbuf;
    r2.max_headers = MAXH;
    cu_h1_request_reset(&r2);
    for (size_t n = 1; n <= strlen(s) && rc2 == -2; n++)
        rc2 = cu_h1_parse_request(s, n, &r2, o);
    if (rc != -1 || r.error != e || rc2 != -1 || r2.error != e) {
        fprintf(stderr, "  %.60s: rc %zd error %d / trickle %zd %d, want %d\n", s, rc, r.error, rc2,
                r2.error, e);
        return 0;
    }
    return 1;
}

static int fails(const char *s, enum cu_h1_error e)
{
    cu_h1_opts_t o = defaults();
    return fails_o(s, e, &o);
}

static void test_request_line(void)
{
    cu_h1_request_t r;
    CHECK(parse("GET /a/b?x=1&y#frag HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.path, "/a/b");
    CHECK_STR(r.query, "x=1&y");
    CHECK_STR(r.fragment, "frag");
    CHECK(parse("GET /a#b?c HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.path, "/a");
    CHECK_STR(r.query, "");
    CHECK_STR(r.fragment, "b?c");
    CHECK(parse("OPTIONS * HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.path, "*");
    CHECK(parse("CONNECT example.com:443 HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.authority, "example.com:443");
    CHECK_STR(r.path, "");
    CHECK(!r.keep_alive);
    CHECK(parse("GET http://h:80 HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.scheme, "http");
    CHECK_STR(r.authority, "h:80");
    CHECK_STR(r.path, "");
    CHECK(parse("GET http://[::1]:80/x HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK_STR(r.path, "/x");
    CHECK(parse("GET /x HTTP/1.9\r\n\r\n", &r) > 0); /* gunicorn accepts 1.x */
    CHECK(r.version_minor == 9 && r.keep_alive);

    CHECK(fails("GET http://[1.2.3.4]/ HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET http://[::1/ HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET http://x]/ HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET a/b://c HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET  / HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET /\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET /a\x01 HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(parse("GET /caf\xc3\xa9?q=\xff#\x80 HTTP/1.1\r\n\r\n", &r) > 0); /* raw bytes >= 0x80 */
    CHECK_STR(r.path, "/caf\xc3\xa9");
    CHECK_STR(r.query, "q=\xff");
    CHECK_STR(r.fragment, "\x80");
    CHECK(fails("GET /\x7f HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET /\xc3\xa9\x01 HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET /\r HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("GET / HTTP/1.1\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("\nGET / HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
    CHECK(fails("get / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(fails("GE / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(fails("ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(parse("ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\n\r\n", &r) > 0);
    CHECK(fails("G#T / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(fails("G(T / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(fails(" / HTTP/1.1\r\n\r\n", CU_H1E_METHOD));
    CHECK(fails("GET / HTTP/2.0\r\n\r\n", CU_H1E_VERSION));
    CHECK(fails("GET / HTTP/1.10\r\n\r\n", CU_H1E_VERSION));
    CHECK(fails("GET / http/1.1\r\n\r\n", CU_H1E_VERSION));
    CHECK(fails("GET / HTTP/1.1 \r\n\r\n", CU_H1E_VERSION));
    CHECK(fails("GET / HTTP/1.x\r\n\r\n", CU_H1E_VERSION));

    cu_h1_opts_t o = defaults();
    o.permit_unconventional_http_version = 1;
    CHECK(parse_o("GET / HTTP/2.0\r\n\r\n", 18, &r, &o) > 0 && r.version_major == 2);
    o = defaults();
    o.permit_unconventional_http_method = 1;
    o.casefold_http_method = 1;
    CHECK(parse_o("options * HTTP/1.1\r\n\r\n", 22, &r, &o) > 0 && r.method_lower);
    CHECK(parse_o("GE / HTTP/1.1\r\n\r\n", 17, &r, &o) > 0 && !r.method_lower);
}

/* gunicorn's settings -> the parser's effective limits (config.h, the one place). */
static size_t eff_line(int v)
{
    cu_config_t c = {.limit_request_line = v};
    return cu_config_eff_limit_request_line(&c);
}

static size_t eff_field_size(int v)
{
    cu_config_t c = {.limit_request_field_size = v};
    return cu_config_eff_limit_request_field_size(&c);
}

static void test_limits(void)
{
    cu_h1_request_t r;
    cu_h1_opts_t o = defaults();
    char big[20000];

    /* request line: exactly the limit passes, one more fails, also while incomplete */
    o.limit_request_line = 20;
    CHECK(parse_o("GET /234567 HTTP/1.1\r\n\r\n", 24, &r, &o) > 0); /* 20 bytes */
    CHECK(fails_o("GET /2345678 HTTP/1.1\r\n\r\n", CU_H1E_LIMIT_LINE, &o));
    CHECK(parse_o("GET /2345678 HTTP/1.", 20, &r, &o) == -2);
    /* incomplete and over the limit: judged once past 8 KiB (gunicorn's read size) */
    CHECK(parse_o("GET /2345678 HTTP/1.1", 21, &r, &o) == -2);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    CHECK(parse_o(big, 8192, &r, &o) == -2);
    CHECK(parse_o(big, 8193, &r, &o) == -1 && r.error == CU_H1E_LIMIT_LINE);
    CHECK(parse_o("GET /234567 HTTP/1.1\r", 21, &r, &o) == -2);
    o.limit_request_line = eff_line(0); /* unlimited */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    memcpy(big + 9000, " HTTP/1.1\r\n\r\n", 13);
    CHECK(parse_o(big, 9013, &r, &o) == 9013);
    o.limit_request_line = eff_line(100000); /* clamped to 8190 */
    CHECK(parse_o(big, 9013, &r, &o) == -1 && r.error == CU_H1E_LIMIT_LINE);

    /* field size: the line with its CRLF */
    o = defaults();
    o.limit_request_field_size = 10;
    CHECK(parse_o("GET / HTTP/1.1\r\nA: 34567\r\n\r\n", 28, &r, &o) > 0); /* 8 + 2 */
    CHECK(fails_o("GET / HTTP/1.1\r\nA: 345678\r\n\r\n", CU_H1E_LIMIT_FIELD_SIZE, &o));
    CHECK(parse_o("GET / HTTP/1.1\r\nA: 34567\r", 25, &r, &o) == -2);
    CHECK(parse_o("GET / HTTP/1.1\r\nA: 345678", 25, &r, &o) == -1 &&
          r.error == CU_H1E_LIMIT_FIELD_SIZE);
    o.limit_request_field_size = eff_field_size(0); /* gunicorn: 0 means 8190 */
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'v', 8169); /* line: 3 + 8169 + 2 = 8174... */
    memcpy(big + 19 + 8169, "\r\n\r\n", 4);
    CHECK(parse_o(big, 19 + 8169 + 4, &r, &o) > 0);
    memset(big + 19, 'v', 8200);
    memcpy(big + 19 + 8200, "\r\n\r\n", 4);
    CHECK(parse_o(big, 19 + 8200 + 4, &r, &o) == -1 && r.error == CU_H1E_LIMIT_FIELD_SIZE);

    /* field count */
    o = defaults();
    o.limit_request_fields = 3;
    CHECK(parse_o("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 38, &r, &o) > 0);
    CHECK(
        fails_o("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", CU_H1E_LIMIT_FIELDS, &o));
    /* dropped fields count too */
    CHECK(fails_o("GET / HTTP/1.1\r\nA_: 1\r\nB_: 2\r\nC: 3\r\nD: 4\r\n\r\n", CU_H1E_LIMIT_FIELDS,
                  &o));
    /* a full caller array */
    o = defaults();
    r.headers = hbuf;
    r.max_headers = 1;
    cu_h1_request_reset(&r);
    CHECK(cu_h1_parse_request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 30, &r, &o) == -1 &&
          r.error == CU_H1E_LIMIT_FIELDS);
}

static void test_fields(void)
{
    cu_h1_request_t r;
    cu_h1_opts_t o = defaults();

    CHECK(parse("GET / HTTP/1.1\r\nA:\t x y \t\r\nB:\r\n\r\n", &r) > 0);
    CHECK(r.nheaders == 2);
    CHECK_STR(r.headers[0].value, "x y");
    CHECK_STR(r.headers[1].value, "");
    CHECK(parse("GET / HTTP/1.1\r\nA: \x80\xff\r\n\r\n", &r) > 0); /* obs-text */
    CHECK(fails("GET / HTTP/1.1\r\nA : b\r\n\r\n", CU_H1E_HEADER_NAME));
    CHECK(fails("GET / HTTP/1.1\r\n: b\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nAb\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nA\x01: b\r\n\r\n", CU_H1E_HEADER_NAME));
    CHECK(fails("GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", CU_H1E_HEADER) || 1); /* NUL below */
    {
        static const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
        CHECK(parse_o(nul, sizeof(nul) - 1, &r, &o) == -1 && r.error == CU_H1E_HEADER);
    }
    CHECK(fails("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nA: b\x1b\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n", CU_H1E_HEADER)); /* bare LF */
    CHECK(fails("GET / HTTP/1.1\r\nA: b\r\n\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\n A: b\r\n\r\n", CU_H1E_HEADER_NAME));
    CHECK(fails("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", CU_H1E_OBS_FOLD));
    CHECK(fails("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n", CU_H1E_HEADER));

    o.strip_header_spaces = 1;
    CHECK(parse_o("GET / HTTP/1.1\r\nA \t: b\r\n\r\n", 26, &r, &o) > 0);
    CHECK_STR(r.headers[0].name, "A");
    CHECK(fails_o("GET / HTTP/1.1\r\n : b\r\n\r\n", CU_H1E_HEADER_NAME, &o));

    /* obs-fold when permitted, including empty parts: gunicorn joins stripped parts with " " */
    o = defaults();
    o.permit_obsolete_folding = 1;
    {
        static const struct {
            const char *in, *want;
        } f[] = {
            {"GET / HTTP/1.1\r\nA: one  \r\n\t two \r\nB: x\r\n\r\n", "one two"},
            {"GET / HTTP/1.1\r\nA:\r\n */*\r\n\r\n", " */*"},
            {"GET / HTTP/1.1\r\nA: a\r\n \r\n b\r\n\r\n", "a  b"},
            {"GET / HTTP/1.1\r\nA: a\r\n  \r\n\r\n", "a "},
        };
        for (size_t i = 0; i < CU_NELEM(f); i++) {
            char out[64];
            CHECK(parse_o(f[i].in, strlen(f[i].in), &r, &o) > 0);
            CHECK(r.headers[0].folded);
            size_t n = cu_h1_unfold(&r.headers[0], out);
            CHECK(n <= r.headers[0].value.len);
            CHECK(n == strlen(f[i].want) && memcmp(out, f[i].want, n) == 0);
        }
    }
    CHECK(fails_o("GET / HTTP/1.1\r\nA: a\r\n b\x01\r\n\r\n", CU_H1E_HEADER, &o));
    CHECK(parse_o("GET / HTTP/1.1\r\nA_B: a\r\n b\r\nC: d\r\n\r\n", 36, &r, &o) > 0);
    CHECK(r.nheaders == 1 && r.has_underscore_dropped);

    /* header_map */
    o = defaults();
    CHECK(parse_o("GET / HTTP/1.1\r\nX_Y: 1\r\nZ: 2\r\n\r\n", 32, &r, &o) > 0);
    CHECK(r.nheaders == 1 && r.has_underscore_dropped);
    CHECK_STR(r.headers[0].name, "Z");
    o.header_map = CU_H1_HMAP_DANGEROUS;
    CHECK(parse_o("GET / HTTP/1.1\r\nX_Y: 1\r\nZ: 2\r\n\r\n", 32, &r, &o) > 0);
    CHECK(r.nheaders == 2 && !r.has_underscore_dropped);
    o.header_map = CU_H1_HMAP_REFUSE;
    CHECK(fails_o("GET / HTTP/1.1\r\nX_Y: 1\r\nZ: 2\r\n\r\n", CU_H1E_HEADER_NAME, &o));
    cu_str_t fw[] = {CU_STR("SCRIPT_NAME")};
    o.forwarder_headers = fw;
    o.n_forwarder_headers = 1;
    CHECK(parse_o("GET / HTTP/1.1\r\nscript_name: /app\r\n\r\n", 37, &r, &o) > 0);
    CHECK(r.nheaders == 1);
    CHECK(fails_o("GET / HTTP/1.1\r\nX_Y: 1\r\n\r\n", CU_H1E_HEADER_NAME, &o));

    /* leading empty lines */
    CHECK(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n", &r) == 22);
    CHECK_STR(r.method, "GET");
    CHECK(fails("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", CU_H1E_REQUEST_LINE));
}

static void test_framing(void)
{
    cu_h1_request_t r;

    CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 000123\r\n\r\n", &r) > 0);
    CHECK(r.content_length == 123 && !r.chunked && r.keep_alive);
    CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", &r) > 0);
    CHECK(r.content_length == INT64_MAX);
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", CU_H1E_HEADER));
    CHECK(parse("GET / HTTP/1.1\r\n\r\n", &r) > 0 && r.content_length == -1);
    CHECK(
        fails("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", CU_H1E_HEADER));

    CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &r) > 0 && r.chunked);
    CHECK(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                &r) > 0);
    CHECK(r.chunked && !r.keep_alive); /* gzip: gunicorn closes after */
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", CU_H1E_HEADER));
    CHECK(
        fails("POST / HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n", CU_H1E_TRANSFER_CODING));
    CHECK(
        fails("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", CU_H1E_TRANSFER_CODING));
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n", CU_H1E_TRANSFER_CODING));
    CHECK(fails("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", CU_H1E_HEADER));
    CHECK(fails("POST / HTTP/1.1\r\nTransfer-Encoding: \x0b"
                "chunked\r\n\r\n",
                CU_H1E_HEADER));

    /* Expect */
    CHECK(parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n", &r) > 0 && r.expect_continue);
    CHECK(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r) > 0 && !r.expect_continue);
    CHECK(fails("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", CU_H1E_EXPECT));
    CHECK(cu_h1_error_status(CU_H1E_EXPECT) == 417);

    /* persistence and upgrade */
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0 && !r.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n", &r) > 0 && r.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nConnection: keep-alive, CLOSE\r\n\r\n", &r) > 0 &&
          !r.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &r) > 0 &&
          r.upgrade && r.keep_alive);
    CHECK(parse("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &r) > 0 && !r.upgrade);

    CHECK(cu_h1_error_status(CU_H1E_LIMIT_FIELDS) == 431);
    CHECK(cu_h1_error_status(CU_H1E_LIMIT_FIELD_SIZE) == 431);
    CHECK(cu_h1_error_status(CU_H1E_TRANSFER_CODING) == 501);
    CHECK(cu_h1_error_status(CU_H1E_HEADER) == 400);
    CHECK(cu_h1_error_status(CU_H1E_LIMIT_LINE) == 414);
    CHECK(strlen(cu_h1_error_name(CU_H1E_OBS_FOLD)) > 0);
}

static void test_helpers(void)
{
    char out[64];
    size_t n = cu_h1_percent_decode(CU_STR("/a%20b%2fc%zz%4"), out);
    CHECK(n == 11 && memcmp(out, "/a b/c%zz%4", 11) == 0);
    n = cu_h1_percent_decode(CU_STR("%E9%c3%A9"), out);
    CHECK(n == 3 && (unsigned char)out[0] == 0xe9 && (unsigned char)out[2] == 0xa9);
    char inplace[] = "%41%42c";
    n = cu_h1_percent_decode((cu_str_t){inplace, 7}, inplace);
    CHECK(n == 3 && memcmp(inplace, "ABc", 3) == 0);
}

/* Trickling a big head one byte at a time must cost O(n): count bytes memchr could look at
 * by timing nothing, but by checking scan_pos only moves forward and equals len each time. */
static void test_trickle(void)
{
    static char head[16000];
    size_t len = 0;
    cu_h1_request_t r;
    cu_h1_opts_t o = defaults();
    len += (size_t)sprintf(head, "GET /%0900d HTTP/1.1\r\n", 7);
    for (int i = 0; i < 90; i++)
        len += (size_t)sprintf(head + len, "X-Header-%d: %070d\r\n", i, i);
    len += (size_t)sprintf(head + len, "\r\n");
    r.headers = hbuf;
    r.max_headers = MAXH;
    cu_h1_request_reset(&r);
    int monotonic = 1;
    ssize_t rc = -2;
    size_t n;
    for (n = 1; n <= len && rc == -2; n++) {
        rc = cu_h1_parse_request(head, n, &r, &o);
        if (rc == -2 && r.scan_pos != n)
            monotonic = 0;
    }
    CHECK(monotonic);
    CHECK(rc == (ssize_t)len && n == len + 1);
    if (rc != (ssize_t)len)
        fprintf(stderr, "  trickle: rc %zd error %d at %zu of %zu\n", rc, r.error, n, len);
    CHECK(r.nheaders == 90);
    CHECK_STR(r.headers[89].name, "X-Header-89");

    /* and it is fast: 1M requests of a typical head */
    static const char req[] = "GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: "
                              "wrk/4.0\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
    size_t ok = 0;
    for (int i = 0; i < 1000000; i++) {
        cu_h1_request_reset(&r);
        ok += cu_h1_parse_request(req, sizeof(req) - 1, &r, &o) == (ssize_t)sizeof(req) - 1;
    }
    CHECK(ok == 1000000);
}

/* Found by fuzz_h1: a line over its limit that ends in a bare LF failed as a bad request
 * line when whole but as LimitRequestLine when trickled. The limit now wins both ways. */
static void test_issue_limit_before_bare_lf(void)
{
    cu_h1_opts_t o = defaults();
    o.limit_request_line = 10;
    CHECK(fails_o("GET /123456789 HTTP/1.1\n\r\n", CU_H1E_LIMIT_LINE, &o));
    o = defaults();
    o.limit_request_field_size = 10;
    CHECK(fails_o("GET / HTTP/1.1\r\nA: 12345678\n\r\n", CU_H1E_LIMIT_FIELD_SIZE, &o));
    o.permit_obsolete_folding = 1;
    CHECK(fails_o("GET / HTTP/1.1\r\nA: 1\r\n 345\n\r\n", CU_H1E_LIMIT_FIELD_SIZE, &o));
}

/* gunicorn's texts for each failure (str() of its exception; its error page's message). */
static int says(const char *raw, const char *log, const char *page)
{
    cu_h1_request_t r;
    char a[512], b[512];
    if (parse(raw, &r) != -1)
        return 0;
    cu_h1_error_message(&r, 0, a, sizeof(a));
    cu_h1_error_message(&r, 1, b, sizeof(b));
    if (strcmp(a, log) != 0 || (page && strcmp(b, page) != 0)) {
        fprintf(stderr, "  %.40s: log [%s] page [%s]\n", raw, a, b);
        return 0;
    }
    return 1;
}

static void test_require_host(void)
{
    cu_h1_request_t r;
    cu_h1_opts_t o = defaults();
    o.require_host = 1;
    CHECK(fails_o("GET / HTTP/1.1\r\nA: b\r\n\r\n", CU_H1E_NO_HOST, &o));
    CHECK(fails_o("GET / HTTP/1.9\r\n\r\n", CU_H1E_NO_HOST, &o));
    CHECK(parse_o("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n", strlen("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n"),
                  &r, &o) > 0);
    CHECK(parse_o("GET / HTTP/1.1\r\nHost:\r\n\r\n", strlen("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &r,
                  &o) > 0); /* empty is a Host */
    CHECK(parse_o("GET / HTTP/1.0\r\n\r\n", strlen("GET / HTTP/1.0\r\n\r\n"), &r, &o) > 0);
    CHECK(cu_h1_error_status(CU_H1E_NO_HOST) == 400);
    o.require_host = 0; /* gunicorn's behaviour */
    CHECK(parse_o("GET / HTTP/1.1\r\n\r\n", strlen("GET / HTTP/1.1\r\n\r\n"), &r, &o) > 0);
}

static void test_error_messages(void)
{
    CHECK(says("G@T / HTTP/1.1\r\n\r\n", "Invalid HTTP method: 'G@T'",
               "Invalid Method 'Invalid HTTP method: 'G@T''"));
    CHECK(says("GARBAGE\r\n\r\n", "Invalid HTTP request line: 'GARBAGE'",
               "Invalid Request Line 'Invalid HTTP request line: 'GARBAGE''"));
    CHECK(says("GET / HTTP/1.1\nHost: x\r\n\r\n",
               "Invalid HTTP request line: 'bare LF as line terminator'", NULL));
    CHECK(says("GET /\x01'\"\\ HTTP/1.1\r\n\r\n",
               "Invalid HTTP request line: 'GET /\\x01\\'\"\\\\ HTTP/1.1'", NULL));
    CHECK(says("GET /a'\x7f HTTP/1.1\r\n\r\n",
               "Invalid HTTP request line: \"GET /a'\\x7f HTTP/1.1\"", NULL));
    CHECK(says("GET / HTTP/2.0\r\n\r\n", "Invalid HTTP Version: (2, 0)",
               "Invalid HTTP Version 'Invalid HTTP Version: (2, 0)'"));
    CHECK(says("GET / HTTP/1.x\r\n\r\n", "Invalid HTTP Version: 'HTTP/1.x'", NULL));
    CHECK(says("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", "Invalid HTTP header name: 'Bad Name'",
               "Invalid HTTP header name: 'Bad Name'"));
    CHECK(says("GET / HTTP/1.1\r\nX-A: a\x01\r\n\r\n", "Invalid HTTP Header: 'X-A'", NULL));
    CHECK(says("GET / HTTP/1.1\r\nnocolon\r\n\r\n", "Invalid HTTP Header: 'nocolon'", NULL));
    CHECK(says("GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n", "Invalid HTTP Header: 'HOST'", NULL));
    CHECK(says("GET / HTTP/1.1\r\nx-a: a\r\n b\r\n\r\n",
               "Obsolete line folding is unacceptable: 'X-A'", NULL));
    CHECK(
        says("GET / HTTP/1.1\r\nhost: a\r\nHost: b\r\n\r\n", "Invalid HTTP Header: 'HOST'", NULL));
    CHECK(says("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
               "Invalid HTTP Header: 'CONTENT-LENGTH'", NULL));
    CHECK(says("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
               "Invalid HTTP Header: 'TRANSFER-ENCODING'", NULL));
    CHECK(says("POST / HTTP/1.1\r\nTransfer-Encoding: bogus, chunked\r\n\r\n",
               "Unsupported transfer coding: 'bogus, chunked'", NULL));
    CHECK(says("GET / HTTP/1.1\r\nExpect: foo\r\n\r\n", "Unable to comply with expectation: 'foo'",
               NULL));

    /* latin-1 bytes: UTF-8 in the log, latin-1 on the page (gunicorn encodes it so) */
    cu_h1_request_t r;
    char a[128];
    CHECK(parse("GET / HTTP/1.1\r\nA\xe9: v\r\n\r\n", &r) == -1);
    cu_h1_error_message(&r, 0, a, sizeof(a));
    CHECK(strcmp(a, "Invalid HTTP header name: 'A\xc3\xa9'") == 0);
    cu_h1_error_message(&r, 1, a, sizeof(a));
    CHECK(strcmp(a, "Invalid HTTP header name: 'A\xe9'") == 0);
    CHECK(parse("GET / HTTP/1.1\r\nA\x85: v\r\n\r\n", &r) == -1);
    cu_h1_error_message(&r, 0, a, sizeof(a));
    CHECK(strcmp(a, "Invalid HTTP header name: 'A\\x85'") == 0);
    /* truncated to the buffer, NUL-terminated */
    cu_h1_error_message(&r, 0, a, 8);
    CHECK(strcmp(a, "Invalid") == 0);

    /* the request line limit: gunicorn's 414 and sizes */
    char line[5100];
    memcpy(line, "GET /", 5);
    memset(line + 5, 'a', 5000);
    memcpy(line + 5005, " HTTP/1.1\r\n\r\n", 14);
    line[5019] = 0;
    CHECK(parse(line, &r) == -1 && r.error == CU_H1E_LIMIT_LINE);
    CHECK(cu_h1_error_status(r.error) == 414 && !r.err_partial);
    cu_h1_error_message(&r, 0, a, sizeof(a));
    CHECK(strcmp(a, "Request Line is too large (5014 > 4094)") == 0);
    /* a partial line over the limit waits for its end up to 8 KiB (gunicorn's read size),
     * then fails with what it saw */
    cu_h1_opts_t o = defaults();
    CHECK(parse_o(line, 4200, &r, &o) == -2);
    static char huge[9100];
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'a', sizeof(huge) - 5);
    CHECK(parse_o(huge, sizeof(huge), &r, &o) == -1 && r.err_partial && r.err_size == 9100);
    cu_h1_error_message(&r, 0, a, sizeof(a));
    CHECK(strcmp(a, "Request Line is too large (9100 > 4094)") == 0);
}

int main(void)
{
    test_error_messages();
    test_require_host();
    test_issue_limit_before_bare_lf();
    test_vectors();
    test_request_line();
    test_limits();
    test_fields();
    test_framing();
    test_helpers();
    test_trickle();
    return t_done("test_h1");
}
