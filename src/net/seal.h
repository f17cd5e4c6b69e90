/* Sealing a TCP listener before the server's final close (see seal.c). */
#ifndef CU_SEAL_H
#define CU_SEAL_H

#include "core/cu_core.h"

/* The master, on a server stop, before closing its copy: new SYNs to `fd` are dropped,
 * handshakes in progress complete. CU_OK, or CU_ERROR (not TCP, or the kernel refused). */
int cu_listener_seal(int fd);

/* 1 when `fd` was sealed (by the master: the server is stopping), else 0. */
int cu_listener_sealed(int fd);

/* Handshakes in progress on `fd` (SYN received, final ACK not yet), or -1 when the kernel
 * cannot say (no NETLINK_SOCK_DIAG). 0 for unix sockets. */
int cu_listener_handshakes(int fd);

#endif
