/* Control socket server: gunicorn's control protocol (a 4-byte big-endian length, then a
 * JSON object) on a unix stream socket, served from the master's event loop. Requests are
 * {"id": ID, "command": "show workers", "args": [...]}; replies are
 * {"id": ID, "status": "ok", "data": {...}} or {"id": ID, "status": "error", "error": "..."}.
 * This module does framing, JSON and connections; the master runs the commands. */
#ifndef CU_CTL_H
#define CU_CTL_H

#include "core/buf.h"
#include "core/cu_core.h"
#include "event/loop.h"

typedef struct cu_ctl_s cu_ctl_t;

/* Run one command: argv holds its words (the command string split like shlex, then the
 * "args" entries). On success append the JSON object for "data" to out and return CU_OK;
 * on failure append a plain-text message (not JSON) and return CU_ERROR. */
typedef int (*cu_ctl_cb)(void *ctx, int argc, char **argv, cu_buf_t *out);

/* Create the directory (0700) if missing, replace a stale socket (one nobody accepts on;
 * a live one, another server's, is left alone and NULL returned), bind, listen, chmod to
 * `mode`, and serve it from `loop` (accept, read, dispatch whole requests to cb, write
 * replies; never blocks). Returns the server or NULL (a warning is logged; the master runs
 * on without). */
cu_ctl_t *cu_ctl_open(cu_loop_t *loop, const char *path, int mode, cu_ctl_cb cb, void *ctx);

/* Close everything. Accepts NULL. owner = 1 in the process that opened it: the watchers
 * leave the loop and the socket path is unlinked when it is still ours. owner = 0 in a
 * forked child: only this process's descriptors are closed (the loop's registrations and
 * the path belong to the master). */
void cu_ctl_close(cu_ctl_t *c, int owner);

/* Helpers for building "data": a JSON string literal of s (quoted, escaped), and printf. */
void cu_ctl_json_str(cu_buf_t *out, const char *s);
void cu_ctl_printf(cu_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
