/* A connection over a real socketpair, as the engine sets one up, for the protocol-driver
 * tests: `conn` is the server side (plain transport), `peer_fd` the client. Each test file
 * that includes this gets its own copy of the state. */
#ifndef CU_TEST_CONN_PAIR_H
#define CU_TEST_CONN_PAIR_H

#include "http/conn.h"
#include "http/proto.h"
#include "t.h"

#include <sys/socket.h>
#include <unistd.h>

static cu_conn_t conn;
static int peer_fd;

/* Open the pair: `conn` reads with `proto`, its header slots are hdrs[nhdrs] (already in
 * settings->max_headers), its input buffer starts at in_initial and may grow to in_max. */
static void conn_pair_open(cu_conn_settings_t *settings, cu_header_t *hdrs, size_t in_initial,
                           size_t in_max, const cu_proto_t *proto)
{
    memset(&conn, 0, sizeof(conn));
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    peer_fd = sv[1];
    cu_transport_init(&conn.t, &cu_transport_plain, sv[0]);
    conn.settings = settings;
    conn.hdrs = hdrs;
    conn.scheme = "http";
    cu_buf_init(&conn.in, in_initial, in_max);
    cu_buf_init(&conn.out, 0, SIZE_MAX / 2);
    cu_buf_init(&conn.bin, 0, 1 << 20);
    cu_buf_init(&conn.resp.h.store, 0, 1 << 20);
    cu_buf_init(&conn.resp.stash, 0, 1 << 20);
    conn.proto = proto;
    conn.proto->reset(&conn);
}

static void conn_pair_close(void)
{
    conn.t.ops->close(&conn.t);
    close(peer_fd);
    cu_buf_free(&conn.in);
    cu_buf_free(&conn.out);
    cu_buf_free(&conn.bin);
    cu_resp_head_free(&conn.resp.h);
    cu_buf_free(&conn.resp.stash);
}

/* The client sends n bytes; the connection reads them into c->in (as the engine does). */
static void client_sends(const char *s, size_t n)
{
    CHECK(write(peer_fd, s, n) == (ssize_t)n);
    CHECK(cu_buf_reserve(&conn.in, n) == CU_OK);
    ssize_t got = conn.t.ops->read(&conn.t, conn.in.data + conn.in.len, conn.in.cap - conn.in.len);
    CHECK(got == (ssize_t)n);
    if (got > 0)
        conn.in.len += (size_t)got;
}

static int parse(int *status, const char **msg)
{
    *status = 0;
    *msg = NULL;
    return conn.proto->parse(&conn, status, msg);
}

/* Everything the client has received so far, in rx (NUL-terminated); its length. */
static char rx[8192];
static size_t client_reads(void)
{
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(rx) - 1 && (r = read(peer_fd, rx + n, sizeof(rx) - 1 - n)) > 0)
        n += (size_t)r;
    rx[n] = '\0';
    return n;
}

#endif
