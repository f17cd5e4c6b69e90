/* Control socket server: gunicorn's control protocol (a 4-byte big-endian length, then a
 * JSON object) on a unix stream socket, served from the master's poll loop. Requests are
 * {"id": ID, "command": "show workers", "args": [...]}; replies are
 * {"id": ID, "status": "ok", "data": {...}} or {"id": ID, "status": "error", "error": "..."}.
 * This module does framing, JSON and connections; the master runs the commands. */
#ifndef CU_CTL_H
#define CU_CTL_H

#include "core/buf.h"
#include "core/cu_core.h"

#include <poll.h>

typedef struct cu_ctl_s cu_ctl_t;

/* Run one command: argv holds its words (the command string split like shlex, then the
 * "args" entries). On success append the JSON object for "data" to out and return CU_OK;
 * on failure append a plain-text message (not JSON) and return CU_ERROR. */
typedef int (*cu_ctl_cb)(void *ctx, int argc, char **argv, cu_buf_t *out);

/* Create the directory (0700) if missing, replace a stale socket, bind, listen, chmod to
 * `mode`. Returns the server or NULL (a warning is logged; the master runs on without). */
cu_ctl_t *cu_ctl_open(const char *path, int mode, cu_ctl_cb cb, void *ctx);

/* Fill up to cap pollfds (listener + clients); returns how many. */
size_t cu_ctl_pollfds(const cu_ctl_t *c, struct pollfd *p, size_t cap);

/* Act on the revents of the n pollfds cu_ctl_pollfds filled: accept, read, dispatch whole
 * requests, write replies. Never blocks. */
void cu_ctl_process(cu_ctl_t *c, const struct pollfd *p, size_t n);

/* Close everything; unlink the socket path when it is still ours. Accepts NULL. In a
 * forked child pass unlink_path = 0. */
void cu_ctl_close(cu_ctl_t *c, int unlink_path);

/* Helpers for building "data": a JSON string literal of s (quoted, escaped), and printf. */
void cu_ctl_json_str(cu_buf_t *out, const char *s);
void cu_ctl_printf(cu_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
