/* Master signal plumbing: handlers write the signal number to a self-pipe (nothing else),
 * the master loop reads them back in arrival order. */
#ifndef CU_SIGNALS_H
#define CU_SIGNALS_H

#include "core/cu_core.h"

/* Create the self-pipe (O_NONBLOCK, O_CLOEXEC) and install handlers for HUP QUIT INT TERM
 * TTIN TTOU USR1 USR2 WINCH CHLD; ignore SIGPIPE. Returns CU_OK or -errno. */
int cu_signals_init(void);

/* The pipe's read end, for poll(). -1 before init. */
int cu_signals_fd(void);

/* Read the next queued signal number without blocking: > 0, or 0 when none is pending. */
int cu_signals_next(void);

/* In a freshly forked child: handlers back to SIG_DFL, mask emptied, self-pipe closed.
 * SIGPIPE stays ignored (inherited, as in gunicorn whose Python runtime ignores it). */
void cu_signals_child_reset(void);

/* "term", "ttin", ... (gunicorn's lower-case names, for "Handling signal: %s"). */
const char *cu_signal_name(int sig);

/* "SIGKILL", "SIGTERM", ... or NULL when unknown (for "was sent %s!"). */
const char *cu_signal_abbrev(int sig);

#endif
