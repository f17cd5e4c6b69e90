/* Listening sockets: parse gunicorn --bind addresses, create/bind/listen, inherit fds. */
#ifndef CU_LISTEN_H
#define CU_LISTEN_H

#include "config/config.h"
#include "core/cu_core.h"
#include <sys/socket.h>

struct cu_listener_s {
    int fd;
    int family;                      /* AF_INET, AF_INET6, AF_UNIX */
    char *bind;                      /* as given: "127.0.0.1:8000", "unix:/tmp/x", "fd://3" */
    char *unix_path;                 /* for unlink on exit; NULL otherwise */
    char server_name[256];           /* SERVER_NAME default: host part ("" for unix) */
    char server_port[8];             /* SERVER_PORT default: port text ("" for unix) */
};

/* Create every listener of cfg->bind (default applied by config). Returns CU_OK and sets
 * *out (array) and *n, or CU_ERROR after logging "Connection in use: ..."-style messages
 * (gunicorn retries 5 times, 1 s apart, on EADDRINUSE; so do we). */
int cu_listeners_open(const cu_config_t *cfg, cu_listener_t **out, size_t *n);

/* Close all; unlink unix socket paths when `unlink_unix` (master exit). */
void cu_listeners_close(cu_listener_t *ls, size_t n, int unlink_unix);

/* "http://127.0.0.1:8000" or "unix:/path" for "Listening at: ..." */
void cu_listener_describe(const cu_listener_t *l, char *out, size_t outlen);

#endif
