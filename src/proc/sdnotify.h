/* systemd integration without libsystemd: sd_notify over the NOTIFY_SOCKET datagram socket
 * and socket activation (LISTEN_FDS / LISTEN_PID). */
#ifndef CU_SDNOTIFY_H
#define CU_SDNOTIFY_H

#include "core/cu_core.h"

#define CU_SD_LISTEN_FDS_START 3

/* Send `state` ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET (a path, or "@name" for the
 * abstract namespace). A no-op when the variable is unset; failures are logged at debug
 * level only, as systemd does not require an answer. */
void cu_sd_notify(const char *state);

/* Number of sockets systemd passed (fds 3..3+n-1) when LISTEN_PID names this process, else
 * 0. Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so children do not see them. */
int cu_sd_listen_fds(void);

#endif
