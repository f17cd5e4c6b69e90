/* Transports: how a connection's bytes move between the engine and the kernel. The engine
 * and the protocol drivers above net/ call these, never read/write/poll on an fd. The plain
 * socket transport is transport.c; TLS (OpenSSL) plugs in as another ops table.
 *
 * All calls are non-blocking except cu_transport_wait. A call that cannot progress returns
 * CU_AGAIN and sets t->want to the events (CU_EV_READ / CU_EV_WRITE) that would let it
 * progress: with TLS a read may need the socket writable and a write may need it readable,
 * so the engine waits for t->want, not for what it asked. */
#ifndef CU_TRANSPORT_H
#define CU_TRANSPORT_H

#include "core/cu_core.h"

#include <sys/types.h>
#include <sys/uio.h>

typedef struct cu_transport_s cu_transport_t;

typedef struct cu_transport_ops_s {
    const char *name; /* "tcp", "tls" */

    /* Finish connection setup (a TLS handshake). NULL when there is none. CU_OK when done,
     * CU_AGAIN (t->want set), CU_ERROR when the peer failed it (the connection closes). */
    int (*handshake)(cu_transport_t *t);

    /* Up to n bytes into buf: > 0 read, 0 at EOF (a clean close from the peer),
     * CU_AGAIN, CU_ERROR (reset, protocol error). */
    ssize_t (*read)(cu_transport_t *t, void *buf, size_t n);

    /* Gathered write: bytes taken (> 0, possibly fewer than offered), CU_AGAIN, CU_ERROR. */
    ssize_t (*writev)(cu_transport_t *t, const struct iovec *iov, int iovcnt);

    /* Up to count bytes of file fd from *off, advancing *off: bytes sent, CU_AGAIN,
     * CU_ERROR. NULL when the transport cannot (the caller reads the file and writes). */
    ssize_t (*sendfile)(cu_transport_t *t, int fd, off_t *off, size_t count);

    /* Bytes the transport already holds decrypted that a read returns without the socket
     * becoming readable (SSL_pending). NULL means always 0. The engine must not wait for
     * a read event while this is non-zero. */
    size_t (*pending)(cu_transport_t *t);

    /* Say we will write no more (TLS close_notify, then shutdown(SHUT_WR)). CU_OK,
     * CU_AGAIN (t->want set), CU_ERROR. */
    int (*shutdown)(cu_transport_t *t);

    /* Free the transport's state and close the fd. Always succeeds. */
    void (*close)(cu_transport_t *t);
} cu_transport_ops_t;

/* Embedded in the connection; `impl` is the transport's own state (an SSL *). */
struct cu_transport_s {
    const cu_transport_ops_t *ops;
    int fd;
    int want; /* after CU_AGAIN: CU_EV_READ and/or CU_EV_WRITE */
    void *impl;
};

/* The plain-socket transport (TCP or unix socket). */
extern const cu_transport_ops_t cu_transport_plain;

static inline void cu_transport_init(cu_transport_t *t, const cu_transport_ops_t *ops, int fd)
{
    t->ops = ops;
    t->fd = fd;
    t->want = 0;
    t->impl = NULL;
}

/* How a listener makes the transport of a connection it accepted: plain sockets have none
 * (NULL: cu_transport_plain); a TLS listener's creates an SSL object over fd. `scheme` is
 * the request's wsgi.url_scheme / ASGI scheme ("http" or "https"). open returns CU_OK or
 * CU_ERROR (the fd is then closed by the caller). */
typedef struct cu_transport_factory_s {
    int (*open)(void *ctx, cu_transport_t *t, int fd);
    void *ctx;
    const char *scheme;
} cu_transport_factory_t;

/* Bytes held inside the transport (see ops->pending). */
static inline size_t cu_transport_pending(cu_transport_t *t)
{
    return t->ops->pending ? t->ops->pending(t) : 0;
}

/* Nothing to read: no pending bytes, none in the kernel, and no EOF (an idle keep-alive
 * connection that may be closed without losing a request). Never blocks. */
int cu_transport_idle(cu_transport_t *t);

/* Called by cu_transport_wait about once a second while it waits (the heartbeat stamp),
 * so that a long wait does not look like a stuck worker. */
typedef void (*cu_transport_stall_cb)(void *arg);

/* Block until the transport can make progress on `events` (CU_EV_READ / CU_EV_WRITE), a
 * read is pending inside the transport, or timeout_ms passes. Only for the sync/gthread
 * adapters that must block; never called from the loop. CU_OK when ready, CU_AGAIN on
 * timeout, CU_ERROR on hang-up or error. */
int cu_transport_wait(cu_transport_t *t, int events, int timeout_ms, cu_transport_stall_cb stall,
                      void *arg);

#endif
