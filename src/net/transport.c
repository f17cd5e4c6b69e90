/* The plain-socket transport (TCP, unix sockets) and the blocking wait that the sync and
 * gthread adapters use: the only place above the loop where a connection's fd is read,
 * written, polled, shut down or closed. */
#include "net/transport.h"
#include "event/loop.h"

#include <errno.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define COPY_CHUNK (64 * 1024) /* sendfile fallback: bytes per read+write */

static ssize_t plain_read(cu_transport_t *t, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = read(t->fd, buf, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            t->want = CU_EV_READ;
            return CU_AGAIN;
        }
        return CU_ERROR;
    }
}

static ssize_t plain_writev(cu_transport_t *t, const struct iovec *iov, int iovcnt)
{
    for (;;) {
        ssize_t w = iovcnt == 1 ? write(t->fd, iov[0].iov_base, iov[0].iov_len)
                                : writev(t->fd, iov, iovcnt);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            t->want = CU_EV_WRITE;
            return CU_AGAIN;
        }
        return CU_ERROR;
    }
}

/* A file sendfile(2) refuses (a pipe, a special file): one chunk read and written. */
static ssize_t copy_chunk(cu_transport_t *t, int fd, off_t *off, size_t count)
{
    char buf[COPY_CHUNK];
    ssize_t got = pread(fd, buf, count < sizeof(buf) ? count : sizeof(buf), *off);
    if (got <= 0)
        return CU_ERROR; /* a file that shrank leaves the framing wrong: give up */
    struct iovec iov = {buf, (size_t)got};
    ssize_t w = plain_writev(t, &iov, 1);
    if (w > 0)
        *off += w;
    return w;
}

static ssize_t plain_sendfile(cu_transport_t *t, int fd, off_t *off, size_t count)
{
    if (count > ((size_t)1 << 30))
        count = (size_t)1 << 30;
    for (;;) {
        ssize_t w = sendfile(t->fd, fd, off, count);
        if (w > 0)
            return w;
        if (w == 0)
            return CU_ERROR; /* the file shrank under us */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            t->want = CU_EV_WRITE;
            return CU_AGAIN;
        }
        if (errno == EINVAL || errno == ENOSYS)
            return copy_chunk(t, fd, off, count);
        return CU_ERROR;
    }
}

static int plain_shutdown(cu_transport_t *t)
{
    return shutdown(t->fd, SHUT_WR) == 0 ? CU_OK : CU_ERROR;
}

static void plain_close(cu_transport_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

const cu_transport_ops_t cu_transport_plain = {
    .name = "tcp",
    .handshake = NULL,
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .pending = NULL,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

int cu_transport_wait(cu_transport_t *t, int events, int timeout_ms, cu_transport_stall_cb stall,
                      void *arg)
{
    if ((events & CU_EV_READ) && cu_transport_pending(t))
        return CU_OK;
    short want =
        (short)(((events & CU_EV_READ) ? POLLIN : 0) | ((events & CU_EV_WRITE) ? POLLOUT : 0));
    int left = timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = t->fd, .events = want};
        int slice = left > 1000 ? 1000 : left;
        int r = poll(&p, 1, slice);
        if (r > 0)
            return (p.revents & want) ? CU_OK : CU_ERROR; /* POLLERR/HUP without what we wanted */
        if (r < 0 && errno != EINTR)
            return CU_ERROR;
        /* A slow client must not look like a stuck worker to the master. */
        if (stall)
            stall(arg);
        if (r == 0) {
            left -= slice;
            if (left <= 0)
                return CU_AGAIN;
        }
    }
}

int cu_transport_idle(cu_transport_t *t)
{
    if (cu_transport_pending(t))
        return 0;
    char b;
    ssize_t n = recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
