/* The uwsgi protocol driver (http/uwsgi_driver.c) with the connection's body reader and
 * response writer, over a real socketpair: a packet becomes the neutral request (names,
 * path, target, peer and scheme from the vars), the same bytes parsed twice agree, peers
 * outside uwsgi_allow_ips and bad packets are refused with their status, responses are
 * HTTP/1.1 and never chunked. */
#include "config/config.h"
#include "conn_pair.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

static cu_conn_settings_t settings;
static cu_header_t hdrs[8];
static cu_cidrlist_t allow;

/* A connection from 10.1.2.3:5555 (the proxy), as the engine sets it up. */
static void setup(void)
{
    memset(&settings, 0, sizeof(settings));
    settings.io_timeout_ms = 2000;
    settings.max_headers = CU_NELEM(hdrs);
    settings.server_header = "cunicorn";
    settings.uwsgi.max_fields = CU_NELEM(hdrs) - 2;
    settings.uwsgi.max_field_size = 8190;
    settings.uwsgi_allow = &allow;
    settings.request_uri = 1;
    conn_pair_open(&settings, hdrs, 256, CU_UWSGI_MAX_PACKET + 1024, &cu_proto_uwsgi);
    struct sockaddr_in *in = (struct sockaddr_in *)&conn.peer.addr;
    in->sin_family = AF_INET;
    in->sin_port = htons(5555);
    inet_pton(AF_INET, "10.1.2.3", &in->sin_addr);
    conn.peer.trusted_forwarder = 1;
}

static void teardown(void)
{
    conn.proto->release(&conn);
    CHECK(conn.pdata == NULL);
    conn_pair_close();
}

/* A packet: header, then the NUL-separated "KEY\0VALUE\0..." pairs of `kv` (n pairs). */
static size_t packet(char *out, const char *const *kv, size_t n)
{
    size_t len = 4;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t l = strlen(kv[i]);
        out[len] = (char)(l & 0xff);
        out[len + 1] = (char)(l >> 8);
        memcpy(out + len + 2, kv[i], l);
        len += 2 + l;
    }
    out[0] = 0;
    out[1] = (char)((len - 4) & 0xff);
    out[2] = (char)((len - 4) >> 8);
    out[3] = 0;
    return len;
}

static int has_header(const cu_req_t *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name.len == strlen(name) &&
            memcmp(r->headers[i].name.p, name, strlen(name)) == 0)
            return r->headers[i].value.len == strlen(value) &&
                   memcmp(r->headers[i].value.p, value, strlen(value)) == 0;
    return 0;
}

static void test_request(void)
{
    static const char *const kv[] = {
        "QUERY_STRING",   "x=1",  "REQUEST_METHOD", "POST",        "CONTENT_TYPE",    "text/plain",
        "CONTENT_LENGTH", "5",    "REQUEST_URI",    "/a%2541?x=1", "PATH_INFO",       "/a%41",
        "HTTPS",          "on",   "REMOTE_ADDR",    "203.0.113.9", "REMOTE_PORT",     "40001",
        "DOCUMENT_ROOT",  "/srv", "HTTP_HOST",      "example.com", "HTTP_X_MY_FIELD", "v",
    };
    char p[1024];
    size_t n = packet(p, kv, CU_NELEM(kv) / 2);
    int status;
    const char *msg;
    setup();
    client_sends(p, 3);
    CHECK(parse(&status, &msg) == CU_AGAIN);
    client_sends(p + 3, n - 3);
    CHECK(parse(&status, &msg) == CU_OK); /* the packet is the head: the body comes later */
    client_sends("hello", 5);
    for (int round = 0; round < 2; round++) {
        /* the engine parses the same bytes again after a read-ahead: same request */
        conn.proto->reset(&conn);
        CHECK(parse(&status, &msg) == CU_OK);
        const cu_req_t *r = &conn.request;
        CHECK_STR(r->method, "POST");
        CHECK_STR(r->target, "/a%2541?x=1");
        CHECK_STR(r->path, "/a%2541"); /* PATH_INFO's '%' escaped: decoding gives "/a%41" */
        CHECK_STR(r->query, "x=1");
        CHECK(r->version_major == 1 && r->version_minor == 1 && r->keep_alive);
        CHECK(r->content_length == 5 && !r->chunked && !r->expect_continue);
        CHECK(r->nheaders == 4);
        CHECK(has_header(r, "CONTENT-TYPE", "text/plain"));
        CHECK(has_header(r, "CONTENT-LENGTH", "5"));
        CHECK(has_header(r, "HOST", "example.com"));
        CHECK(has_header(r, "X-MY-FIELD", "v"));
        CHECK(conn.head_len == n);
        CHECK(strcmp(conn.peer.host, "203.0.113.9") == 0 && conn.peer.port == 40001);
        CHECK(!conn.peer.trusted_forwarder && strcmp(conn.scheme, "https") == 0);
    }

    /* the body follows the packet; the response is HTTP/1.1 with our Content-Length */
    cu_conn_begin_request(&conn);
    CHECK(conn.request.peer == &conn.peer && strcmp(conn.request.scheme, "https") == 0);
    char body[16];
    CHECK(cu_body_read(&conn, body, sizeof(body)) == 5 && memcmp(body, "hello", 5) == 0);
    CHECK(cu_body_read(&conn, body, sizeof(body)) == 0);
    CHECK(cu_resp_begin(&conn, "200 OK", 6) == CU_OK);
    cu_resp_hold(&conn);
    CHECK(cu_resp_write(&conn, "hi", 2) == CU_OK);
    CHECK(cu_resp_finish(&conn) == CU_OK);
    CHECK(client_reads() > 0 && strncmp(rx, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(rx, "\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi") != NULL);
    CHECK(cu_conn_end_request(&conn) == CU_OK && cu_buf_unread(&conn.in) == 0);

    /* The next packet on the connection has no REMOTE_ADDR and no REQUEST_URI: the socket's
     * peer again (nothing left from the previous vars), the target rebuilt from the path
     * and the query, a streamed response close-delimited (never chunked). */
    static const char *const kv2[] = {"PATH_INFO", "/s",          "QUERY_STRING",
                                      "q=2",       "REMOTE_ADDR", "not-an-address"};
    n = packet(p, kv2, CU_NELEM(kv2) / 2);
    client_sends(p, n);
    CHECK(parse(&status, &msg) == CU_OK);
    CHECK_STR(conn.request.method, "GET");
    CHECK_STR(conn.request.target, "/s?q=2");
    CHECK(strcmp(conn.peer.host, "10.1.2.3") == 0 && conn.peer.port == 5555);
    CHECK(strcmp(conn.scheme, "http") == 0);
    cu_conn_begin_request(&conn);
    CHECK(cu_resp_begin(&conn, "200 OK", 6) == CU_OK);
    CHECK(cu_resp_write(&conn, "abc", 3) == CU_OK);
    CHECK(cu_resp_write(&conn, "de", 2) == CU_OK);
    CHECK(cu_resp_finish(&conn) == CU_OK);
    CHECK(cu_conn_flush(&conn) == CU_OK);
    client_reads();
    CHECK(strncmp(rx, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(rx, "Transfer-Encoding") == NULL && strstr(rx, "Content-Length") == NULL);
    CHECK(strstr(rx, "\r\nConnection: close\r\n") != NULL);
    CHECK(strstr(rx, "\r\n\r\nabcde") != NULL && conn.closing);
    teardown();
}

static void test_fields(void)
{
    int status;
    const char *msg;
    char p[1024];
    /* CONTENT_TYPE twice: one entry, the last (gunicorn's dict); CONNECTION close */
    static const char *const kv[] = {"CONTENT_TYPE",    "a/b",   "CONTENT_TYPE", "c/d",
                                     "HTTP_CONNECTION", "close", "HTTP_",        "x",
                                     "wsgi.url_scheme", "https"};
    setup();
    client_sends(p, packet(p, kv, CU_NELEM(kv) / 2));
    CHECK(parse(&status, &msg) == CU_OK);
    CHECK(conn.request.nheaders == 2 && has_header(&conn.request, "CONTENT-TYPE", "c/d"));
    CHECK(!conn.request.keep_alive && strcmp(conn.scheme, "https") == 0);
    CHECK_STR(conn.request.path, "/");
    CHECK_STR(conn.request.target, "/");
    teardown();

    /* HTTP_* vars past the header slots' limit: 431 */
    static const char *const many[] = {"HTTP_A", "1", "HTTP_B", "2", "HTTP_C", "3", "HTTP_D", "4",
                                       "HTTP_E", "5", "HTTP_F", "6", "HTTP_G", "7"};
    setup();
    client_sends(p, packet(p, many, CU_NELEM(many) / 2));
    CHECK(parse(&status, &msg) == CU_ERROR && status == 431 && msg != NULL);
    teardown();
}

static void test_refusals(void)
{
    int status;
    const char *msg;
    char p[256];
    static const char *const kv[] = {"PATH_INFO", "/"};
    size_t n = packet(p, kv, 1);

    /* a peer outside uwsgi_allow_ips, before its packet is even read */
    char err[128];
    CHECK(cu_cidrlist_parse(&allow, "127.0.0.0/8", err, sizeof(err)) == CU_OK);
    setup();
    client_sends(p, 1);
    CHECK(parse(&status, &msg) == CU_ERROR && status == 403 && strstr(msg, "not allowed"));
    CHECK(strcmp(conn.peer.host, "10.1.2.3") == 0); /* what the log names */
    teardown();
    /* a unix-socket peer is always allowed */
    setup();
    conn.peer.addr.ss_family = AF_UNIX;
    client_sends(p, n);
    CHECK(parse(&status, &msg) == CU_OK && conn.peer.is_unix);
    teardown();
    CHECK(cu_cidrlist_parse(&allow, "10.0.0.0/8", err, sizeof(err)) == CU_OK);

    /* plain HTTP: 400; another modifier1: 501; a var past the block: 400 */
    setup();
    client_sends("GET / HTTP/1.1\r\n\r\n", 18);
    CHECK(parse(&status, &msg) == CU_ERROR && status == 400);
    teardown();
    setup();
    client_sends("\x05\x00\x00\x00", 4);
    CHECK(parse(&status, &msg) == CU_ERROR && status == 501);
    teardown();
    setup();
    client_sends("\x00\x03\x00\x00\x05\x00A", 7);
    CHECK(parse(&status, &msg) == CU_ERROR && status == 400);
    teardown();

    /* the error page is HTTP/1.1 and closes */
    setup();
    CHECK(cu_resp_error(&conn, 403, "uWSGI request not allowed") == CU_OK);
    CHECK(conn.closing && client_reads() > 0 && strncmp(rx, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
    teardown();
}

int main(void)
{
    char err[128];
    CHECK(cu_cidrlist_parse(&allow, "10.0.0.0/8", err, sizeof(err)) == CU_OK);
    test_request();
    test_fields();
    test_refusals();
    cu_cidrlist_free(&allow);
    return t_done("test_uwsgi_driver");
}
