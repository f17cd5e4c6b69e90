/* net/transport.c: the plain-socket transport over a socketpair (read, writev, sendfile
 * from a file and the fallback for a pipe, shutdown, close, want after CU_AGAIN) and the
 * blocking wait (ready, timeout with stall calls, hang-up, pending bytes). */
#include "event/loop.h"
#include "net/transport.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int stalls;
static void on_stall(void *arg)
{
    (*(int *)arg)++;
}

/* A transport whose only state is a count of bytes it pretends to hold decrypted. */
static size_t fake_pending(cu_transport_t *t)
{
    return (size_t)(uintptr_t)t->impl;
}

static void pair(int sv[2])
{
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

static void test_read_write(void)
{
    int sv[2];
    pair(sv);
    cu_transport_t t;
    cu_transport_init(&t, &cu_transport_plain, sv[0]);
    CHECK(strcmp(t.ops->name, "tcp") == 0 && t.ops->handshake == NULL);
    char buf[64];
    CHECK(t.ops->read(&t, buf, sizeof(buf)) == CU_AGAIN && t.want == CU_EV_READ);
    CHECK(write(sv[1], "hello", 5) == 5);
    CHECK(t.ops->read(&t, buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0);

    struct iovec iov[2] = {{"ab", 2}, {"cde", 3}};
    CHECK(t.ops->writev(&t, iov, 2) == 5);
    CHECK(read(sv[1], buf, sizeof(buf)) == 5 && memcmp(buf, "abcde", 5) == 0);

    /* Fill the socket: a write that cannot progress says it waits for writability. */
    static char big[1 << 16];
    ssize_t w;
    size_t total = 0;
    struct iovec b = {big, sizeof(big)};
    while ((w = t.ops->writev(&t, &b, 1)) > 0)
        total += (size_t)w;
    CHECK(w == CU_AGAIN && t.want == CU_EV_WRITE && total > 0);
    /* Not writable within 50 ms: CU_AGAIN, the stall callback ran after the poll slice. */
    stalls = 0;
    CHECK(cu_transport_wait(&t, CU_EV_WRITE, 50, on_stall, &stalls) == CU_AGAIN);
    CHECK(stalls == 1);

    /* EOF after the peer shuts down; shutdown makes our peer see EOF. */
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    CHECK(t.ops->read(&t, buf, sizeof(buf)) == 0);
    CHECK(t.ops->shutdown(&t) == CU_OK);
    while (read(sv[1], big, sizeof(big)) > 0) {
    }
    CHECK(read(sv[1], buf, 1) == 0);
    t.ops->close(&t);
    CHECK(t.fd == -1);
    close(sv[1]);
}

static void test_wait(void)
{
    int sv[2];
    pair(sv);
    cu_transport_t t;
    cu_transport_init(&t, &cu_transport_plain, sv[0]);
    int n = 0;
    CHECK(cu_transport_wait(&t, CU_EV_WRITE, 1000, on_stall, &n) == CU_OK);
    CHECK(cu_transport_wait(&t, CU_EV_READ, 20, on_stall, &n) == CU_AGAIN);
    CHECK(cu_transport_idle(&t));
    CHECK(write(sv[1], "x", 1) == 1);
    CHECK(!cu_transport_idle(&t));
    CHECK(cu_transport_wait(&t, CU_EV_READ, 1000, NULL, NULL) == CU_OK);

    /* Bytes held inside the transport: ready without the socket, never idle. */
    char c;
    CHECK(read(sv[0], &c, 1) == 1);
    cu_transport_ops_t ops = cu_transport_plain;
    ops.pending = fake_pending;
    cu_transport_t f;
    cu_transport_init(&f, &ops, sv[0]);
    f.impl = (void *)(uintptr_t)3;
    CHECK(cu_transport_pending(&f) == 3 && cu_transport_pending(&t) == 0);
    CHECK(cu_transport_wait(&f, CU_EV_READ, 10, NULL, NULL) == CU_OK);
    CHECK(!cu_transport_idle(&f));

    /* The peer is gone: a read wait is ready (read says EOF), never a timeout. */
    close(sv[1]);
    CHECK(cu_transport_wait(&t, CU_EV_READ, 1000, NULL, NULL) == CU_OK);
    CHECK(t.ops->read(&t, &c, 1) == 0);
    t.ops->close(&t);
}

static void test_sendfile(void)
{
    char path[] = "/tmp/cu-transport-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    char data[10000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));

    int sv[2];
    pair(sv);
    cu_transport_t t;
    cu_transport_init(&t, &cu_transport_plain, sv[0]);
    off_t off = 100;
    ssize_t w = t.ops->sendfile(&t, fd, &off, 500);
    CHECK(w == 500 && off == 600);
    char got[1000];
    CHECK(read(sv[1], got, sizeof(got)) == 500 && memcmp(got, data + 100, 500) == 0);
    /* Past the end of the file: the file shrank, the framing would be wrong. */
    off = sizeof(data);
    CHECK(t.ops->sendfile(&t, fd, &off, 10) == CU_ERROR);

    /* A file sendfile(2) may refuse with EINVAL (procfs): the bytes arrive either way. */
    int pf = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (pf >= 0) {
        off = 0;
        w = t.ops->sendfile(&t, pf, &off, 16);
        CHECK(w > 0 && off == w);
        ssize_t r = read(sv[1], got, sizeof(got));
        CHECK(r == w && got[0] >= '0' && got[0] <= '9'); /* starts with our pid */
        close(pf);
    }
    t.ops->close(&t);
    close(sv[1]);
    close(fd);
}

int main(void)
{
    test_read_write();
    test_wait();
    test_sendfile();
    return t_done("test_transport");
}
