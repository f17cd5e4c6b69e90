/* Sealing a TCP listener before the server's final close.
 *
 * Closing a listening socket resets every connection still queued on it: those whose
 * handshake completed but nobody accepted, and those whose handshake is still in progress.
 * A graceful stop drains the queue before closing, but a SYN arriving between the last
 * accept and the close is lost that way. Sealing closes that window:
 *
 *   1. the master attaches a socket filter that drops SYNs to the listener (new clients
 *      are neither queued nor reset: their SYN is retransmitted after the initial RTO of
 *      1 s and by then the socket is closed, so they are refused, which is safe to retry);
 *      segments of handshakes already in progress still pass;
 *   2. each worker, seeing the filter, keeps accepting until no handshake is in progress
 *      on the listener (the kernel's SYN_RECV entries for its address, asked through
 *      NETLINK_SOCK_DIAG) and the accept queue is empty, then closes its copy.
 *
 * The filter is classic BPF on the TCP header: for a TCP socket the kernel runs it with
 * the packet data starting at the TCP header, whose flags are byte 13. */
#include "net/seal.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_FLAGS_OFFSET 13
#define TCP_FLAG_SYN     0x02

static struct sock_filter drop_syn[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, TCP_FLAGS_OFFSET),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, TCP_FLAG_SYN, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0),           /* a SYN: dropped */
    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* anything else: kept whole */
};

static int tcp_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    return ss.ss_family == AF_INET || ss.ss_family == AF_INET6 ? ss.ss_family : -1;
}

int cu_listener_seal(int fd)
{
    if (tcp_family(fd) < 0)
        return CU_ERROR; /* unix sockets: no handshake to catch */
    struct sock_fprog prog = {.len = sizeof(drop_syn) / sizeof(drop_syn[0]), .filter = drop_syn};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0 ? CU_OK
                                                                                  : CU_ERROR;
}

int cu_listener_sealed(int fd)
{
    /* The kernel gives the attached program back (its length counted in instructions);
     * the seal is ours when it is exactly drop_syn. */
    enum { N = sizeof(drop_syn) / sizeof(drop_syn[0]) };
    struct sock_filter got[N];
    socklen_t len = N;
    if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &len) < 0)
        return 0; /* none, another program of another length, or not a socket */
    return len == N && memcmp(got, drop_syn, sizeof(got)) == 0;
}

/* One inet_diag dump of the sockets of `family` in `states` whose local address and port
 * are the listener's (a wildcard listener matches every local address): each is counted,
 * and when `inodes` is given, up to `max` of their inode numbers are stored. Returns the
 * count or -1. */
static int dump(int nl, const struct sockaddr_storage *ls, int family, unsigned states,
                uint32_t *inodes, size_t max)
{
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (unsigned char)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = states; /* SYN_RECV: the kernel adds request sockets for it */
    if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
        return -1;

    uint16_t port;
    const void *addr;
    size_t alen;
    int wildcard;
    if (family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ls;
        port = a->sin_port;
        addr = &a->sin_addr;
        alen = 4;
        wildcard = a->sin_addr.s_addr == htonl(INADDR_ANY);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ls;
        port = a->sin6_port;
        addr = &a->sin6_addr;
        alen = 16;
        wildcard = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
    }

    int count = 0;
    char buf[16384] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = recv(nl, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return count;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -1;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->id.idiag_sport != port)
                continue;
            if (wildcard || memcmp(m->id.idiag_src, addr, alen) == 0) {
                if (inodes && (size_t)count < max)
                    inodes[count] = m->idiag_inode;
                count++;
            }
        }
    }
}

/* dump() for fd's address; an IPv6 wildcard listener also takes IPv4 clients (unless
 * IPV6_V6ONLY), so the IPv4 sockets of its port count too. 0 for unix sockets. */
static int dump_for(int fd, unsigned states, uint32_t *inodes, size_t max)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    int total = dump(nl, &ss, ss.ss_family, states, inodes, max);
    if (total >= 0 && ss.ss_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET,
                                 .sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port,
                                 .sin_addr = {htonl(INADDR_ANY)}};
        struct sockaddr_storage s4;
        memset(&s4, 0, sizeof(s4));
        memcpy(&s4, &v4, sizeof(v4));
        size_t used = inodes && (size_t)total < max ? (size_t)total : max;
        int more = dump(nl, &s4, AF_INET, states, inodes ? inodes + used : NULL, max - used);
        total = more < 0 ? -1 : total + more;
    }
    close(nl);
    return total;
}

int cu_listener_handshakes(int fd)
{
    return dump_for(fd, 1u << TCP_SYN_RECV, NULL, 0);
}

int cu_listener_peers(int fd, uint32_t *inodes, size_t max)
{
    return dump_for(fd, 1u << TCP_LISTEN, inodes, max);
}

int cu_listener_newcomer(int fd, const uint32_t *known, size_t nknown)
{
    uint32_t now[CU_SEAL_PEERS_MAX];
    int n = cu_listener_peers(fd, now, CU_SEAL_PEERS_MAX);
    if (n < 0)
        return -1;
    for (int i = 0; i < n && i < CU_SEAL_PEERS_MAX; i++) {
        size_t k = 0;
        while (k < nknown && known[k] != now[i])
            k++;
        if (k == nknown)
            return 1;
    }
    return 0;
}
