/* Listening sockets: parse gunicorn --bind addresses, create/bind/listen, inherit fds. */
#ifndef CU_LISTEN_H
#define CU_LISTEN_H

#include "core/cu_core.h"
#include "net/transport.h"
#include <sys/socket.h>
#include <sys/un.h>

typedef struct cu_listener_s cu_listener_t;

struct cu_listener_s {
    int fd;
    int family;            /* AF_INET, AF_INET6, AF_UNIX */
    char *bind;            /* as given: "127.0.0.1:8000", "unix:/tmp/x", "fd://3" */
    char *unix_path;       /* for unlink on exit; NULL otherwise (also NULL for fd://) */
    char server_name[256]; /* SERVER_NAME default: bound address text ("" for unix) */
    char server_port[8];   /* SERVER_PORT default: bound port text ("" for unix) */
    int reuse_port;        /* --reuse-port TCP: bound, NOT listening (the master's address
                              reservation); workers listen on their own sockets */
    int own;               /* --reuse-port, in a worker: this worker's own socket, which
                              nobody else accepts from (the worker seals it when it stops) */
    int borrowed;          /* --bind fd://N: the socket is its owner's, who may go on using
                              it after we stop (the master does not seal it: net/seal.h) */
    const cu_transport_factory_t *tf; /* transport of accepted connections; NULL = plain */
    const struct cu_proto_s *proto;   /* protocol driver (http/proto.h); NULL = HTTP/1 */
};

/* What creating listeners needs from the settings (workers/settings.c fills it from the
 * configuration: cu_settings_listen). */
typedef struct cu_listen_opts_s {
    char *const *bind; /* --bind values */
    size_t nbind;
    int backlog;    /* listen(2) backlog; <= 0: 2048 */
    int umask;      /* applied while binding unix sockets */
    int reuse_port; /* --reuse-port */
} cu_listen_opts_t;

/* One --bind value, parsed (gunicorn's util.parse_address). */
enum cu_bind_kind { CU_BIND_TCP, CU_BIND_UNIX, CU_BIND_FD };

typedef struct cu_bind_addr_s {
    enum cu_bind_kind kind;
    char host[256]; /* TCP: lower-cased, brackets removed; "" never (empty -> "0.0.0.0") */
    int port;       /* TCP: 0..65535; a bare host gets 8000 */
    int v6;         /* TCP: host was written in brackets or contains ':' */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* UNIX */
    int fd;                                                 /* FD */
} cu_bind_addr_t;

/* Parse `s`: "HOST", "HOST:PORT", "tcp://HOST:PORT", "[V6]", "[V6]:PORT", "unix:PATH",
 * "unix://PATH", "fd://N". Pure: no I/O, no allocation. Returns CU_OK, or CU_ERROR with a
 * gunicorn-worded reason in err ("'x' is not a valid port number."). */
int cu_bind_parse(const char *s, cu_bind_addr_t *out, char *err, size_t errlen);

/* Create every listener of opts->bind (default applied by config). Returns CU_OK and sets
 * *out (array, caller frees with cu_listeners_close) and *n, or CU_ERROR after logging
 * ("Connection in use: ('127.0.0.1', 8000)" ... "Can't connect to ..."): on EADDRINUSE and
 * other bind errors gunicorn retries 5 times, 1 s apart, and so do we.
 * Sockets are non-blocking and close-on-exec; workers inherit them through fork. */
int cu_listeners_open(const cu_listen_opts_t *opts, cu_listener_t **out, size_t *n);

/* Adopt listening sockets handed over by a previous master (GUNICORN_FD) or systemd
 * (LISTEN_FDS): bind texts become "fd://N"; unix paths are read back with getsockname.
 * A bound TCP socket that is not listening stays so under --reuse-port (the old master's
 * reservation); otherwise listen() is called on it. Returns CU_OK or CU_ERROR (logged). */
int cu_listeners_inherit(const cu_listen_opts_t *opts, const int *fds, size_t nfds,
                         cu_listener_t **out, size_t *n);

/* In a worker right after fork: the listeners it serves. Plain ones are the master's
 * sockets (same fds); each reuse_port one is replaced by a new SO_REUSEPORT socket bound to
 * the same address and listening, the master's copy closed in this process. *out has n
 * entries (free with cu_listeners_close(*out, n, 0)). Returns CU_OK or CU_ERROR (logged). */
int cu_listeners_for_worker(const cu_listen_opts_t *opts, const cu_listener_t *ls, size_t n,
                            cu_listener_t **out);

/* Delay between bind retries in ms (1000; tests lower it). */
extern int cu_listen_retry_ms;

/* Close all and free the array; unlink unix socket paths when `unlink_unix` (master exit).
 * Accepts ls == NULL. */
void cu_listeners_close(cu_listener_t *ls, size_t n, int unlink_unix);

/* "http://127.0.0.1:8000", "http://[::1]:8000" or "unix:/path" for "Listening at: ..."
 * (the address actually bound, so port 0 shows the chosen port). */
void cu_listener_describe(const cu_listener_t *l, char *out, size_t outlen);

#endif
