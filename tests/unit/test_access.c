/* Access log: every gunicorn atom rendered from a hand-built request and response. */
#include "log/access.h"
#include "t.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static cu_header_t hdrs[16];
static cu_peer_t peer;
static struct {
    cu_req_t req;
    cu_resp_head_t resp;
    const cu_resp_head_t *resp_p; /* what the record points to (NULL: no response yet) */
    uint64_t body_sent;
} conn;

static cu_str_t S(const char *s)
{
    return (cu_str_t){s, strlen(s)};
}

static void add_header(const char *name, const char *value)
{
    cu_header_t *h = &hdrs[conn.req.nheaders++];
    h->name = S(name);
    h->value = S(value);
    h->folded = strchr(value, '\n') != NULL;
}

static void setup(void)
{
    cu_resp_head_free(&conn.resp);
    memset(&conn, 0, sizeof(conn));
    memset(hdrs, 0, sizeof(hdrs));
    memset(&peer, 0, sizeof(peer));
    snprintf(peer.host, sizeof(peer.host), "10.1.2.3");
    peer.port = 5555;
    conn.req.peer = &peer;
    conn.req.method = S("GET");
    conn.req.target = S("/caf%C3%A9/x%zz?q=1&r=\"2\"");
    conn.req.path = S("/caf%C3%A9/x%zz");
    conn.req.query = S("q=1&r=\"2\"");
    conn.req.version_major = 1;
    conn.req.version_minor = 1;
    conn.req.headers = hdrs;
    add_header("Host", "example.com");
    add_header("User-Agent", "curl/8.0 \"quoted\"");
    add_header("Referer", "http://ref/");
    add_header("Authorization", "Basic asO2c8OpOnB3"); /* jösé:pw */
    add_header("X-Multi", "one");
    add_header("x-multi", "two");
    add_header("X-Latin", "caf\xe9");
    add_header("X-Fold", "a\r\n  b");
    cu_buf_init(&conn.resp.store, 0, 4096);
    cu_resp_head_status(&conn.resp, 200, "200 OK", 6);
    cu_resp_head_add(&conn.resp, "Content-Type", 12, "text/plain", 10);
    cu_resp_head_add(&conn.resp, "X-Out", 5, "first", 5);
    cu_resp_head_add(&conn.resp, "x-out", 5, "second", 6);
    cu_resp_head_add(&conn.resp, "Content-Length", 14, "1234", 4);
    conn.resp.status = 404;
    conn.resp_p = &conn.resp;
    conn.body_sent = 1234;
}

static ssize_t env_lookup(void *ctx, const char *name, size_t nlen, char *buf, size_t cap)
{
    (void)ctx;
    if (nlen == 15 && strncasecmp(name, "wsgi.url_scheme", nlen) == 0) {
        memcpy(buf, "http", 4);
        return 4;
    }
    if (nlen == 11 && strncasecmp(name, "REMOTE_PORT", nlen) == 0) {
        memcpy(buf, "5555", 4);
        return 4;
    }
    return -1;
}

static cu_access_rec_t rec(void)
{
    cu_access_rec_t r = {0};
    r.req = &conn.req;
    r.resp = conn.resp_p;
    r.body_sent = conn.body_sent;
    r.end_us = (int64_t)1795000000 * 1000000;
    r.start_us = r.end_us - 1234567;
    r.env = env_lookup;
    return r;
}

static char out[8192];

/* Render `fmt` and compare with `want`. */
static int render_is(const char *fmt, const char *want)
{
    char err[256];
    if (cu_access_log_open(NULL, fmt, err, sizeof(err)) != CU_OK) {
        fprintf(stderr, "compile failed: %s: %s\n", fmt, err);
        return 0;
    }
    cu_access_rec_t r = rec();
    size_t n = cu_access_log_render(&r, out, sizeof(out) - 1);
    out[n] = '\0';
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "format %s\n  got  [%s]\n  want [%s]\n", fmt, out, want);
        return 0;
    }
    return 1;
}

static void test_atoms(void)
{
    setup();
    CHECK(render_is("%(h)s", "10.1.2.3"));
    CHECK(render_is("%(l)s", "-"));
    CHECK(render_is("%(u)s", "jösé"));
    CHECK(render_is("%(t)s", "[18/Nov/2026:11:06:40 +0000]"));
    CHECK(render_is("%(r)s", "GET /caf%C3%A9/x%zz?q=1&r=\\\"2\\\" HTTP/1.1"));
    CHECK(render_is("%(m)s", "GET"));
    /* PATH_INFO is decoded and read as latin-1, then written as UTF-8, like gunicorn */
    CHECK(render_is("%(U)s", "/caf\xc3\x83\xc2\xa9/x%zz"));
    CHECK(render_is("%(q)s", "q=1&r=\\\"2\\\""));
    CHECK(render_is("%(H)s", "HTTP/1.1"));
    CHECK(render_is("%(s)s", "404"));
    CHECK(render_is("%(B)s %(b)s", "1234 1234"));
    CHECK(render_is("%(f)s", "http://ref/"));
    CHECK(render_is("%(a)s", "curl/8.0 \\\"quoted\\\""));
    CHECK(render_is("%(T)s %(D)s %(M)s %(L)s", "1 1234567 1234 1.234567"));
    char pid[32];
    snprintf(pid, sizeof(pid), "<%d>", (int)getpid());
    CHECK(render_is("%(p)s", pid));
    CHECK(render_is("%({host}i)s", "example.com"));
    CHECK(render_is("%({HOST}i)s", "example.com"));
    CHECK(render_is("%({x-multi}i)s", "two")); /* the last one, as gunicorn's dict */
    CHECK(render_is("%({x-latin}i)s", "caf\xc3\xa9"));
    CHECK(render_is("%({x-fold}i)s", "a b"));
    CHECK(render_is("%({missing}i)s", "-"));
    CHECK(render_is("%({content-type}o)s", "text/plain"));
    CHECK(render_is("%({X-OUT}o)s", "second"));
    CHECK(render_is("%({nope}o)s", "-"));
    CHECK(render_is("%({wsgi.url_scheme}e)s %({remote_port}e)s %({nope}e)s", "http 5555 -"));
    CHECK(render_is("%(x)s %(hh)s %(H)s %({foo})s", "- - HTTP/1.1 -"));
    CHECK(render_is("100%% %(s)s", "100% 404"));
    CHECK(render_is("[%(s)5s] [%(s)-5s] [%(m).2s] [%(s)r]", "[  404] [404  ] [GE] ['404']"));
    CHECK(render_is("no atoms", "no atoms"));
    CHECK(render_is(CU_ACCESS_DEFAULT_FORMAT,
                    "10.1.2.3 - jösé [18/Nov/2026:11:06:40 +0000] \"GET "
                    "/caf%C3%A9/x%zz?q=1&r=\\\"2\\\" HTTP/1.1\" 404 1234 \"http://ref/\" "
                    "\"curl/8.0 \\\"quoted\\\"\""));
    CHECK(!cu_access_log_needs_env());
    char err[128];
    CHECK(cu_access_log_open(NULL, "%({x}e)s", err, sizeof(err)) == CU_OK &&
          cu_access_log_needs_env());
    CHECK(!cu_access_log_enabled());
}

static void test_edge_cases(void)
{
    setup();
    /* repeated Referer headers join like the environ does */
    add_header("referer", "second");
    CHECK(render_is("%(f)s", "http://ref/,second"));

    setup();
    hdrs[3].value = S("Basic !!!"); /* not base64: '-' */
    CHECK(render_is("%(u)s", "-"));
    hdrs[3].value = S("Basic dXNlcg"); /* missing padding: Python rejects it */
    CHECK(render_is("%(u)s", "-"));
    hdrs[3].value = S("basic dXNlcg=="); /* "user", no colon */
    CHECK(render_is("%(u)s", "user"));
    hdrs[3].value = S("Bearer abc");
    CHECK(render_is("%(u)s", "-"));
    conn.req.nheaders = 0;
    CHECK(render_is("%(u)s %(f)s %(a)s", "- - -"));

    setup();
    conn.req.method = S("get");
    conn.req.method_lower = 1; /* casefold_http_method */
    conn.req.version_minor = 0;
    CHECK(render_is("%(m)s %(H)s", "GET HTTP/1.0"));
    conn.resp_p = NULL;
    CHECK(render_is("%({content-type}o)s", "-"));

    /* end before start: clamp to zero */
    cu_access_rec_t r = rec();
    r.start_us = r.end_us + 5;
    char err[128];
    CHECK(cu_access_log_open(NULL, "%(D)s", err, sizeof(err)) == CU_OK);
    size_t n = cu_access_log_render(&r, out, sizeof(out));
    CHECK(n == 1 && out[0] == '0');

    /* truncation never writes past cap */
    CHECK(cu_access_log_open(NULL, NULL, err, sizeof(err)) == CU_OK);
    char small[10];
    memset(small, 'Z', sizeof(small));
    n = cu_access_log_render(&r, small, 5);
    CHECK(n == 5 && small[5] == 'Z');

    CHECK(cu_access_log_open(NULL, "%(h)", err, sizeof(err)) == CU_ERROR);
    CHECK(cu_access_log_open(NULL, "%s", err, sizeof(err)) == CU_ERROR);
    CHECK(cu_access_log_open(NULL, "50%", err, sizeof(err)) == CU_ERROR);
    CHECK(cu_access_log_open(NULL, "%(h)q", err, sizeof(err)) == CU_ERROR);
}

static void test_timezone(void)
{
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    setup();
    conn.req.nheaders = 0;
    cu_access_rec_t r = rec();
    r.end_us += 1000000; /* a new second, so the per-thread cache refreshes */
    char err[128];
    CHECK(cu_access_log_open(NULL, "%(t)s", err, sizeof(err)) == CU_OK);
    size_t n = cu_access_log_render(&r, out, sizeof(out) - 1);
    out[n] = '\0';
    CHECK(strcmp(out, "[18/Nov/2026:16:36:41 +0530]") == 0);
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_file_and_reopen(void)
{
    char path[] = "/tmp/cu_access_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    setup();
    char err[128];
    CHECK(cu_access_log_open(path, "%(s)s %(m)s", err, sizeof(err)) == CU_OK);
    CHECK(cu_access_log_enabled());
    cu_access_rec_t r = rec();
    cu_access_log_write(&r);

    /* logrotate: move the file away, USR1 reopens the path */
    char moved[64];
    snprintf(moved, sizeof(moved), "%s.1", path);
    CHECK(rename(path, moved) == 0);
    cu_access_log_reopen();
    cu_access_log_write(&r);

    char buf[256];
    FILE *f = fopen(moved, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strcmp(buf, "404 GET\n") == 0);
    f = fopen(path, "r");
    n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strcmp(buf, "404 GET\n") == 0);
    unlink(path);
    unlink(moved);

    CHECK(cu_access_log_open("/nonexistent-dir/x.log", NULL, err, sizeof(err)) < 0);
    CHECK(cu_access_log_open(NULL, NULL, err, sizeof(err)) == CU_OK);
    CHECK(!cu_access_log_enabled());
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_atoms();
    test_edge_cases();
    test_timezone();
    test_file_and_reopen();
    return t_done("test_access");
}
