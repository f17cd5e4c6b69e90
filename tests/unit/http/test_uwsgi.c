/* uwsgi packet parser: a packet as nginx sends it, every split point, malformed packets,
 * and the limits. */
#include "http/uwsgi.h"
#include "t.h"

/* A packet under construction: header, then vars appended with var(). */
typedef struct pkt_s {
    unsigned char b[CU_UWSGI_MAX_PACKET + 64];
    size_t len;
} pkt_t;

static void pkt_start(pkt_t *p, unsigned modifier1)
{
    p->b[0] = (unsigned char)modifier1;
    p->b[1] = p->b[2] = 0;
    p->b[3] = 0;
    p->len = 4;
}

static void pkt_raw(pkt_t *p, const void *d, size_t n)
{
    memcpy(p->b + p->len, d, n);
    p->len += n;
}

static void pkt_u16(pkt_t *p, size_t v)
{
    unsigned char le[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
    pkt_raw(p, le, 2);
}

static void varn(pkt_t *p, const char *k, size_t kl, const char *v, size_t vl)
{
    pkt_u16(p, kl);
    pkt_raw(p, k, kl);
    pkt_u16(p, vl);
    pkt_raw(p, v, vl);
}

static void var(pkt_t *p, const char *k, const char *v)
{
    varn(p, k, strlen(k), v, strlen(v));
}

/* Write datasize = everything after the header. */
static void pkt_end(pkt_t *p)
{
    size_t ds = p->len - 4;
    p->b[1] = (unsigned char)(ds & 0xff);
    p->b[2] = (unsigned char)(ds >> 8);
}

static cu_uwsgi_var_t vars[CU_UWSGI_MAX_VARS + 8];
static const cu_uwsgi_opts_t defaults = {0, 100, 8190};

static ssize_t parse_opts(const void *b, size_t len, cu_uwsgi_request_t *r, size_t max_vars,
                          const cu_uwsgi_opts_t *o)
{
    memset(r, 0, sizeof(*r));
    r->vars = vars;
    r->max_vars = max_vars;
    return cu_uwsgi_parse((const char *)b, len, r, o);
}

static ssize_t parse(const void *b, size_t len, cu_uwsgi_request_t *r)
{
    return parse_opts(b, len, r, 200, &defaults);
}

/* What nginx's uwsgi_params sends for a POST, with a body after the packet. */
static void nginx_packet(pkt_t *p)
{
    pkt_start(p, 0);
    var(p, "QUERY_STRING", "a=1&b=%20");
    var(p, "REQUEST_METHOD", "POST");
    var(p, "CONTENT_TYPE", "text/plain");
    var(p, "CONTENT_LENGTH", "5");
    var(p, "REQUEST_URI", "/p%20q?a=1&b=%20");
    var(p, "PATH_INFO", "/p q");
    var(p, "DOCUMENT_ROOT", "/usr/share/nginx/html");
    var(p, "SERVER_PROTOCOL", "HTTP/1.1");
    var(p, "REQUEST_SCHEME", "https");
    var(p, "HTTPS", "on");
    var(p, "REMOTE_ADDR", "203.0.113.7");
    var(p, "REMOTE_PORT", "51234");
    var(p, "SERVER_PORT", "443");
    var(p, "SERVER_NAME", "example.com");
    var(p, "HTTP_HOST", "example.com");
    var(p, "HTTP_USER_AGENT", "curl/8.0");
    var(p, "HTTP_CONNECTION", "close");
    pkt_end(p);
}

static void test_nginx_packet(void)
{
    pkt_t p;
    cu_uwsgi_request_t r;
    nginx_packet(&p);
    size_t plen = p.len;
    pkt_raw(&p, "hello", 5); /* the body: not the parser's */

    CHECK(parse(p.b, p.len, &r) == (ssize_t)plen);
    CHECK(r.error == CU_UWSGIE_NONE);
    CHECK(r.modifier1 == 0 && r.modifier2 == 0 && r.datasize == plen - 4);
    CHECK(r.nvars == 17 && r.nfields == 3);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.path_info, "/p q");
    CHECK_STR(r.query_string, "a=1&b=%20");
    CHECK_STR(r.request_uri, "/p%20q?a=1&b=%20");
    CHECK_STR(r.content_type, "text/plain");
    CHECK_STR(r.https, "on");
    CHECK(cu_uwsgi_https_on(r.https));
    CHECK_STR(r.remote_addr, "203.0.113.7");
    CHECK_STR(r.remote_port, "51234");
    CHECK_STR(r.connection, "close");
    CHECK(r.url_scheme.p == NULL);
    CHECK(r.content_length == 5);
    CHECK_STR(r.vars[6].key, "DOCUMENT_ROOT");
    CHECK_STR(r.vars[6].value, "/usr/share/nginx/html");
    CHECK_STR(r.vars[16].key, "HTTP_CONNECTION");
    /* slices point into the caller's buffer */
    CHECK(r.vars[0].key.p == (const char *)p.b + 6);

    /* without an array the vars are counted, not stored, and the walk finds the same */
    cu_uwsgi_request_t r2 = {.vars = NULL, .max_vars = 200};
    CHECK(cu_uwsgi_parse((const char *)p.b, p.len, &r2, &defaults) == (ssize_t)plen);
    CHECK(r2.nvars == 17 && r2.nfields == 3 && r2.content_length == 5);
    CHECK_STR(r2.remote_addr, "203.0.113.7");
    size_t off = 0, k = 0;
    cu_uwsgi_var_t v;
    int same = 1;
    while (cu_uwsgi_next_var((const char *)p.b, plen, &off, &v)) {
        if (k >= r.nvars || !cu_str_eq(v.key, r.vars[k].key) ||
            !cu_str_eq(v.value, r.vars[k].value) || v.key.p != r.vars[k].key.p)
            same = 0;
        k++;
    }
    CHECK(same && k == 17 && off == plen);

    /* every prefix is incomplete, never an error; the whole is the same packet */
    int all_incomplete = 1;
    for (size_t n = 0; n < plen; n++) {
        if (parse(p.b, n, &r) != -2 || r.error != CU_UWSGIE_NONE)
            all_incomplete = 0;
    }
    CHECK(all_incomplete);
    CHECK(parse(p.b, plen, &r) == (ssize_t)plen && r.nvars == 17);

    /* the packet copied byte by byte into a growing buffer (as a trickling peer sends
     * it): -2 until the last byte, then complete */
    static unsigned char grow[sizeof(p.b)];
    int ok = 1;
    for (size_t n = 1; n <= plen; n++) {
        memcpy(grow, p.b, n);
        ssize_t rc = parse(grow, n, &r);
        if ((n < plen && rc != -2) || (n == plen && rc != (ssize_t)plen))
            ok = 0;
    }
    CHECK(ok);
}

static void test_empty_and_minimal(void)
{
    pkt_t p;
    cu_uwsgi_request_t r;
    pkt_start(&p, 0);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == 4);
    CHECK(r.nvars == 0 && r.method.p == NULL && r.content_length == 0);
    CHECK(parse(p.b, 3, &r) == -2);

    /* modifier2 is kept, not judged */
    p.b[3] = 7;
    CHECK(parse(p.b, p.len, &r) == 4 && r.modifier2 == 7);

    /* empty key and value */
    pkt_start(&p, 0);
    var(&p, "", "");
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == 8 && r.nvars == 1 && r.vars[0].key.len == 0);

    /* "HTTP_" alone names no header field */
    pkt_start(&p, 0);
    var(&p, "HTTP_", "x");
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) > 0 && r.nfields == 0);
}

static void test_modifier(void)
{
    cu_uwsgi_request_t r;
    const char *get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    /* a plain HTTP request is refused on its first byte: 400 */
    CHECK(parse(get, 1, &r) == -1 && r.error == CU_UWSGIE_HTTP);
    CHECK(parse(get, strlen(get), &r) == -1 && r.error == CU_UWSGIE_HTTP);
    CHECK(cu_uwsgi_error_status(r.error) == 400);
    CHECK(parse("PRI * HTTP/2.0", 14, &r) == -1 && r.error == CU_UWSGIE_HTTP);

    /* any other modifier1 is UnsupportedModifier: 501 */
    unsigned char m[] = {5, 0, 0, 0};
    CHECK(parse(m, 4, &r) == -1 && r.error == CU_UWSGIE_MODIFIER && r.modifier1 == 5);
    CHECK(cu_uwsgi_error_status(r.error) == 501);
    unsigned char tls[] = {0x16, 3, 1, 0};
    CHECK(parse(tls, 4, &r) == -1 && r.error == CU_UWSGIE_MODIFIER);
    unsigned char lower[] = {'g', 0, 0, 0};
    CHECK(parse(lower, 4, &r) == -1 && r.error == CU_UWSGIE_MODIFIER);
    CHECK(parse(m, 0, &r) == -2);
}

static void test_truncated_vars(void)
{
    pkt_t p;
    cu_uwsgi_request_t r;

    /* one byte left where a key size should be */
    pkt_start(&p, 0);
    var(&p, "A", "b");
    pkt_raw(&p, "\x01", 1);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);
    CHECK(cu_uwsgi_error_status(r.error) == 400);

    /* key longer than the block */
    pkt_start(&p, 0);
    pkt_u16(&p, 10);
    pkt_raw(&p, "ABC", 3);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);

    /* key, then no value size */
    pkt_start(&p, 0);
    pkt_u16(&p, 3);
    pkt_raw(&p, "ABC", 3);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);

    /* key, then half a value size */
    pkt_start(&p, 0);
    pkt_u16(&p, 3);
    pkt_raw(&p, "ABC\x01", 4);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);

    /* value longer than the block */
    pkt_start(&p, 0);
    pkt_u16(&p, 3);
    pkt_raw(&p, "ABC", 3);
    pkt_u16(&p, 2);
    pkt_raw(&p, "x", 1);
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);

    /* a datasize larger than what follows is just incomplete: the body may follow */
    pkt_start(&p, 0);
    var(&p, "A", "b");
    pkt_end(&p);
    p.b[1] = (unsigned char)(p.b[1] + 10);
    CHECK(parse(p.b, p.len, &r) == -2);
    /* ... and a datasize that cuts a var short is malformed once complete */
    pkt_start(&p, 0);
    var(&p, "AAAA", "bbbb");
    pkt_end(&p);
    p.b[1] = (unsigned char)(p.b[1] - 2);
    CHECK(parse(p.b, p.len, &r) == -1 && r.error == CU_UWSGIE_VARS);
}

static void test_content_length(void)
{
    static const struct {
        const char *v;
        int64_t want; /* -1: CU_UWSGIE_CONTENT_LENGTH */
    } cases[] = {
        {"", 0},
        {"0", 0},
        {"5", 5},
        {"007", 7},
        {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", -1},
        {"99999999999999999999", -1},
        {"+1", -1},
        {"-1", -1},
        {" 1", -1},
        {"1 ", -1},
        {"1a", -1},
        {"0x10", -1},
    };
    for (size_t i = 0; i < CU_NELEM(cases); i++) {
        pkt_t p;
        cu_uwsgi_request_t r;
        pkt_start(&p, 0);
        var(&p, "CONTENT_LENGTH", cases[i].v);
        pkt_end(&p);
        ssize_t rc = parse(p.b, p.len, &r);
        if (cases[i].want < 0) {
            CHECK(rc == -1 && r.error == CU_UWSGIE_CONTENT_LENGTH);
        } else {
            CHECK(rc == (ssize_t)p.len && r.content_length == cases[i].want);
        }
    }
    /* the last CONTENT_LENGTH wins, as in gunicorn's dict, and so does every var */
    pkt_t p;
    cu_uwsgi_request_t r;
    pkt_start(&p, 0);
    var(&p, "CONTENT_LENGTH", "10");
    var(&p, "REQUEST_METHOD", "GET");
    var(&p, "CONTENT_LENGTH", "3");
    var(&p, "REQUEST_METHOD", "PUT");
    pkt_end(&p);
    CHECK(parse(p.b, p.len, &r) > 0 && r.content_length == 3 && r.nvars == 4);
    CHECK_STR(r.method, "PUT");
}

static void test_limits(void)
{
    pkt_t p;
    cu_uwsgi_request_t r;
    cu_uwsgi_opts_t o = defaults;

    /* datasize over the limit fails on the third byte, before the block arrives */
    pkt_start(&p, 0);
    var(&p, "REQUEST_METHOD", "GET");
    pkt_end(&p);
    o.max_datasize = p.len - 5;
    CHECK(parse_opts(p.b, 3, &r, 200, &o) == -1 && r.error == CU_UWSGIE_LIMIT_PACKET);
    CHECK(cu_uwsgi_error_status(r.error) == 431);
    o.max_datasize = p.len - 4;
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) == (ssize_t)p.len);

    /* the largest packet the format allows: one var filling 65535 bytes */
    static char big[CU_UWSGI_MAX_DATASIZE];
    memset(big, 'v', sizeof(big));
    pkt_start(&p, 0);
    varn(&p, "K", 1, big, CU_UWSGI_MAX_DATASIZE - 5);
    pkt_end(&p);
    CHECK(p.len == CU_UWSGI_MAX_PACKET);
    CHECK(parse(p.b, p.len, &r) == CU_UWSGI_MAX_PACKET && r.vars[0].value.len == 65530);

    /* total vars: the caller's array */
    pkt_start(&p, 0);
    for (int i = 0; i < 4; i++)
        var(&p, "X", "y");
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 4, &defaults) > 0 && r.nvars == 4);
    CHECK(parse_opts(p.b, p.len, &r, 3, &defaults) == -1 && r.error == CU_UWSGIE_TOO_MANY_VARS);
    CHECK(cu_uwsgi_error_status(r.error) == 400);

    /* never more than gunicorn's 1000, whatever the array */
    pkt_start(&p, 0);
    for (int i = 0; i < CU_UWSGI_MAX_VARS + 1; i++)
        var(&p, "X", "");
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, CU_UWSGI_MAX_VARS + 8, &defaults) == -1 &&
          r.error == CU_UWSGIE_TOO_MANY_VARS && r.nvars == CU_UWSGI_MAX_VARS);

    /* header fields (HTTP_*) against limit_request_fields; other vars do not count */
    o = defaults;
    o.max_fields = 2;
    pkt_start(&p, 0);
    var(&p, "HTTP_A", "1");
    var(&p, "SERVER_NAME", "x");
    var(&p, "HTTP_B", "2");
    var(&p, "CONTENT_TYPE", "x");
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) > 0 && r.nfields == 2);
    pkt_start(&p, 0);
    var(&p, "HTTP_A", "1");
    var(&p, "HTTP_B", "2");
    var(&p, "HTTP_C", "3");
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) == -1 && r.error == CU_UWSGIE_LIMIT_FIELDS);
    CHECK(cu_uwsgi_error_status(r.error) == 431);

    /* one field: "X-A: <v>\r\n" = 3 + 2 + len(v) + 2 against limit_request_field_size */
    o = defaults;
    o.max_field_size = 20;
    char v13[14] = "0123456789abc";
    pkt_start(&p, 0);
    var(&p, "HTTP_X_A", v13); /* 3 + 13 + 4 = 20 */
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) > 0);
    pkt_start(&p, 0);
    var(&p, "HTTP_X_A", "0123456789abcd"); /* 21 */
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) == -1 && r.error == CU_UWSGIE_LIMIT_FIELD_SIZE);
    /* non-header vars are bounded by the packet only */
    pkt_start(&p, 0);
    var(&p, "DOCUMENT_ROOT", "0123456789abcdefghijklmnopqrstuvwxyz");
    pkt_end(&p);
    CHECK(parse_opts(p.b, p.len, &r, 200, &o) > 0);
}

static void test_https(void)
{
    CHECK(cu_uwsgi_https_on(CU_STR("on")));
    CHECK(cu_uwsgi_https_on(CU_STR("ON")));
    CHECK(cu_uwsgi_https_on(CU_STR("1")));
    CHECK(cu_uwsgi_https_on(CU_STR("True")));
    CHECK(!cu_uwsgi_https_on(CU_STR("off")));
    CHECK(!cu_uwsgi_https_on(CU_STR("")));
    CHECK(!cu_uwsgi_https_on(CU_STR("onn")));
    cu_str_t none = {NULL, 0};
    CHECK(!cu_uwsgi_https_on(none));
}

static void test_error_table(void)
{
    CHECK(cu_uwsgi_error_status(CU_UWSGIE_NONE) == 0);
    for (int e = CU_UWSGIE_HTTP; e <= CU_UWSGIE_LIMIT_FIELD_SIZE; e++) {
        int s = cu_uwsgi_error_status((enum cu_uwsgi_error)e);
        CHECK(s == 400 || s == 431 || s == 501);
        CHECK(strlen(cu_uwsgi_error_name((enum cu_uwsgi_error)e)) > 0);
    }
}

int main(void)
{
    test_nginx_packet();
    test_empty_and_minimal();
    test_modifier();
    test_truncated_vars();
    test_content_length();
    test_limits();
    test_https();
    test_error_table();
    return t_done("test_uwsgi");
}
