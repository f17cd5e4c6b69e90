/* Sealed listeners (net/seal.h) against the real kernel on loopback: after the seal a new
 * client is neither queued nor reset (its SYN is dropped, and once the listener is closed
 * its retransmitted SYN is refused); a connection queued before the seal is still
 * accepted; a handshake in progress is counted, and completes through the seal. */
#include "net/seal.h"
#include "core/clock.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(int family, struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *sl = sizeof(*a);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)ss, *sl) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)ss, sl) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int connect_nb(const struct sockaddr_storage *ss, socklen_t sl)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Wait up to ms for the connect to finish; its SO_ERROR (0 connected), or -1 if pending. */
static int connect_result(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    return err;
}

static int accept_one(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* Poll cu_listener_handshakes until it equals want, for up to ms. */
static int handshakes_become(int lfd, int want, int ms)
{
    int64_t end = cu_mono_ms() + ms;
    int n;
    while ((n = cu_listener_handshakes(lfd)) != want && cu_mono_ms() < end)
        usleep(5000);
    return n == want;
}

static void test_seal_refuses_new_keeps_queued(int family)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int l = listener(family, &ss, &sl);
    if (l < 0) {
        printf("test_seal: no %s loopback, skipped\n", family == AF_INET ? "IPv4" : "IPv6");
        return;
    }
    CHECK(!cu_listener_sealed(l));
    int queued = connect_nb(&ss, sl);
    CHECK(connect_result(queued, 5000) == 0);

    CHECK(cu_listener_seal(l) == CU_OK);
    CHECK(cu_listener_sealed(l));
    int late = connect_nb(&ss, sl);
    CHECK(late >= 0);
    /* Its SYN is dropped: it neither connects nor fails while the listener lives. */
    CHECK(connect_result(late, 300) == -1);
    int hs = cu_listener_handshakes(l);
    CHECK(hs == 0 || hs == -1); /* -1: no NETLINK_SOCK_DIAG here (checked below) */
    CHECK(accept_one(l));       /* the one queued before the seal */
    CHECK(!accept_one(l));      /* and nothing else */
    close(l);
    /* The retransmitted SYN (initial RTO 1 s) finds nothing listening: refused. */
    CHECK(connect_result(late, 10000) == ECONNREFUSED);
    /* The queued connection was accepted, so it was not reset: it reads our close. */
    char c;
    struct pollfd p = {.fd = queued, .events = POLLIN};
    CHECK(poll(&p, 1, 5000) == 1 && read(queued, &c, 1) == 0);
    close(queued);
    close(late);
}

/* A filter keeping only SYNs holds a handshake half-done (its final ACK dropped). */
static void hold_handshakes(int l)
{
    static struct sock_filter only_syn[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = {.len = 4, .filter = only_syn};
    CHECK(setsockopt(l, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0);
}

static void test_handshake_in_progress_completes(int family)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int l = listener(family, &ss, &sl);
    if (l < 0)
        return;
    if (cu_listener_handshakes(l) < 0) {
        printf("test_seal: the kernel offers no NETLINK_SOCK_DIAG here, handshakes skipped\n");
        close(l);
        return;
    }
    hold_handshakes(l);
    CHECK(!cu_listener_sealed(l)); /* another program's filter is not a seal */
    int c = connect_nb(&ss, sl);
    CHECK(connect_result(c, 5000) == 0); /* the client got the SYN-ACK */
    CHECK(handshakes_become(l, 1, 5000));
    CHECK(!accept_one(l));
    /* Sealing lets the rest of a handshake through: the server sends its SYN-ACK again,
     * the client's ACK now passes, and the connection is queued for accept. */
    CHECK(cu_listener_seal(l) == CU_OK);
    CHECK(handshakes_become(l, 0, 15000));
    CHECK(accept_one(l));
    close(c);
    close(l);
}

/* --reuse-port: a stopping worker watches for a new worker's socket on its port. */
static void test_newcomer_on_a_reuse_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t al = sizeof(a);
    int one = 1;
    int l1 = socket(AF_INET, SOCK_STREAM, 0), l2 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(setsockopt(l1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0);
    CHECK(setsockopt(l2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0);
    CHECK(bind(l1, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l1, 8) == 0);
    CHECK(getsockname(l1, (struct sockaddr *)&a, &al) == 0);
    uint32_t known[CU_SEAL_PEERS_MAX];
    int n = cu_listener_peers(l1, known, CU_SEAL_PEERS_MAX);
    if (n < 0) {
        printf("test_seal: the kernel offers no NETLINK_SOCK_DIAG here, peers skipped\n");
    } else {
        CHECK(n == 1);
        CHECK(cu_listener_newcomer(l1, known, (size_t)n) == 0);
        /* bound but not listening (the master's reservation): not a newcomer yet */
        CHECK(bind(l2, (struct sockaddr *)&a, sizeof(a)) == 0);
        CHECK(cu_listener_newcomer(l1, known, (size_t)n) == 0);
        CHECK(listen(l2, 8) == 0);
        CHECK(cu_listener_newcomer(l1, known, (size_t)n) == 1);
        CHECK(cu_listener_peers(l1, NULL, 0) == 2);
    }
    close(l1);
    close(l2);
}

static void test_not_tcp(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(cu_listener_seal(sv[0]) == CU_ERROR);
    CHECK(!cu_listener_sealed(sv[0]));
    CHECK(cu_listener_handshakes(sv[0]) == 0);
    close(sv[0]);
    close(sv[1]);
    int fd = open("/dev/null", O_RDONLY);
    CHECK(cu_listener_seal(fd) == CU_ERROR && !cu_listener_sealed(fd));
    CHECK(cu_listener_handshakes(fd) == -1);
    close(fd);
}

int main(void)
{
    test_seal_refuses_new_keeps_queued(AF_INET);
    test_seal_refuses_new_keeps_queued(AF_INET6);
    test_handshake_in_progress_completes(AF_INET);
    test_handshake_in_progress_completes(AF_INET6);
    test_newcomer_on_a_reuse_port();
    test_not_tcp();
    return t_done("test_seal");
}
