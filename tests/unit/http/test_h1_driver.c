/* The HTTP/1 protocol driver (http/h1_driver.c) with the connection's body reader and
 * response writer, over a real socketpair: heads parsed into the neutral request (also
 * when they trickle in), refusals with their status, bodies, 100-continue, a held small
 * response going out in one write with its head, chunked streaming, error pages. */
#include "conn_pair.h"

#include <stdlib.h>
#include <unistd.h>

static cu_conn_settings_t settings;
static cu_header_t hdrs[8];

/* The sync adapter's wait, without its heartbeat. */
static int block(cu_conn_t *c, int events)
{
    return cu_transport_wait(&c->t, events, c->settings->io_timeout_ms, NULL, NULL);
}

static void setup(size_t in_max)
{
    memset(&settings, 0, sizeof(settings));
    settings.h1.limit_request_line = 4094;
    settings.h1.limit_request_fields = 7;
    settings.h1.limit_request_field_size = 8190;
    settings.h1_trusted = settings.h1;
    settings.io_timeout_ms = 2000;
    settings.max_headers = CU_NELEM(hdrs);
    settings.server_header = "cunicorn";
    settings.block = block;
    conn_pair_open(&settings, hdrs, in_max < 256 ? in_max : 256, in_max, &cu_proto_h1);
    conn.peer.is_unix = 1;
}

static void teardown(void)
{
    conn_pair_close();
}

/* The client sends s (a string). */
static void client_sends_str(const char *s)
{
    client_sends(s, strlen(s));
}

static void test_parse(void)
{
    setup(4096);
    int status;
    const char *msg;
    client_sends_str("POST /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nContent-");
    CHECK(parse(&status, &msg) == CU_AGAIN);
    client_sends_str("Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
    CHECK(parse(&status, &msg) == CU_OK);
    const cu_req_t *r = &conn.request;
    CHECK_STR(r->method, "POST");
    CHECK_STR(r->target, "/a%20b?x=1");
    CHECK_STR(r->path, "/a%20b");
    CHECK_STR(r->query, "x=1");
    CHECK(r->version_major == 1 && r->version_minor == 1 && r->keep_alive);
    CHECK(r->nheaders == 3 && r->content_length == 5 && !r->chunked && r->expect_continue);
    CHECK_STR(r->headers[0].name, "Host");
    CHECK(conn.head_len == conn.in.len - 5);

    /* The body: 100 Continue goes out before the first read, then the buffered bytes. */
    cu_conn_begin_request(&conn);
    CHECK(conn.request.peer == &conn.peer && strcmp(conn.request.scheme, "http") == 0);
    char body[16];
    CHECK(cu_body_read(&conn, body, sizeof(body)) == 5 && memcmp(body, "hello", 5) == 0);
    CHECK(cu_body_read(&conn, body, sizeof(body)) == 0);
    CHECK(client_reads() == 25 && strcmp(rx, "HTTP/1.1 100 Continue\r\n\r\n") == 0);

    /* A small held response: head and body in one write, with our Content-Length. */
    CHECK(cu_resp_begin(&conn, "201 Created", 11) == CU_OK);
    CHECK(cu_resp_header(&conn, "X-A", 3, " b ", 3) == CU_OK);
    CHECK(cu_resp_header(&conn, "Connection", 10, "close", 5) == CU_OK); /* hop-by-hop */
    CHECK(cu_resp_header(&conn, "Bad Name", 8, "v", 1) == CU_ERROR);
    cu_resp_hold(&conn);
    CHECK(cu_resp_write(&conn, "hi", 2) == CU_OK);
    CHECK(client_reads() == 0); /* held */
    CHECK(conn.resp.h.status == 201 && conn.resp.h.nfields == 1);
    cu_str_t v = cu_resp_field_value(&conn.resp.h, 0);
    CHECK(v.len == 1 && v.p[0] == 'b');
    CHECK(cu_resp_finish(&conn) == CU_OK);
    size_t n = client_reads();
    CHECK(n > 0 && strncmp(rx, "HTTP/1.1 201 Created\r\nServer: cunicorn\r\nDate: ", 46) == 0);
    CHECK(strstr(rx, "\r\nConnection: keep-alive\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi") !=
          NULL);
    CHECK(cu_conn_end_request(&conn) == CU_OK && cu_buf_unread(&conn.in) == 0);
    teardown();
}

static void test_refusals(void)
{
    int status;
    const char *msg;
    setup(4096);
    client_sends_str("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n");
    CHECK(parse(&status, &msg) == CU_ERROR && status == 400 && msg != NULL);
    teardown();

    setup(4096);
    client_sends_str("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\n"
                     "H: 8\r\n\r\n"); /* 8 fields, the limit is 7 */
    CHECK(parse(&status, &msg) == CU_ERROR && status == 431);
    teardown();

    /* The read buffer is full and no head ended: 431 from the driver, not a wait. */
    setup(64);
    const char *big = "GET /0123456789012345678901234567890123456789 HTTP/1.1\r\nX: 123456789";
    CHECK(write(peer_fd, big, strlen(big)) == (ssize_t)strlen(big));
    CHECK(cu_buf_reserve(&conn.in, 64) == CU_OK);
    ssize_t got = conn.t.ops->read(&conn.t, conn.in.data, 64);
    conn.in.len = got > 0 ? (size_t)got : 0;
    CHECK(conn.in.len == 64 && parse(&status, &msg) == CU_ERROR && status == 431);
    teardown();

    /* An error page: closes, counts its body for the access log. */
    setup(4096);
    CHECK(cu_resp_error(&conn, 400, "Invalid request") == CU_OK);
    CHECK(conn.closing && conn.resp.h.status == 400 && conn.resp.body_sent > 0);
    CHECK(client_reads() > 0 && strncmp(rx, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(rx, "Invalid request") != NULL && strstr(rx, "Connection: close") != NULL);
    teardown();
}

static void test_chunked_stream(void)
{
    int status;
    const char *msg;
    setup(4096);
    client_sends_str("GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
    CHECK(parse(&status, &msg) == CU_OK);
    cu_conn_begin_request(&conn);
    CHECK(cu_resp_begin(&conn, "200", 3) == CU_OK);
    CHECK(cu_resp_write(&conn, "abc", 3) == CU_OK);
    CHECK(cu_resp_write(&conn, "de", 2) == CU_OK);
    CHECK(cu_resp_finish(&conn) == CU_OK);
    CHECK(cu_buf_unread(&conn.out) > 0 || client_reads() > 0); /* batched: next is buffered */
    CHECK(cu_conn_flush(&conn) == CU_OK);
    client_reads();
    CHECK(strncmp(rx, "HTTP/1.1 200\r\n", 14) == 0);
    CHECK(strstr(rx, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(rx, "\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") != NULL);
    /* The pipelined request is next, parsed from the same buffer. */
    CHECK(cu_conn_end_request(&conn) == CU_OK);
    CHECK(parse(&status, &msg) == CU_OK);
    CHECK_STR(conn.request.path, "/next");
    teardown();
}

int main(void)
{
    test_parse();
    test_refusals();
    test_chunked_stream();
    return t_done("test_h1_driver");
}
