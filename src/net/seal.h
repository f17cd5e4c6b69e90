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

/* The listening sockets on fd's port (SO_REUSEPORT: every worker's, fd's own included):
 * their count, or -1; up to `max` inode numbers stored in `inodes`. */
#define CU_SEAL_PEERS_MAX 64
int cu_listener_peers(int fd, uint32_t *inodes, size_t max);

/* 1 when a listening socket on fd's port is not among `known` (cu_listener_peers taken
 * earlier): a new worker's --reuse-port socket. 0 when none, -1 when the kernel cannot
 * say. */
int cu_listener_newcomer(int fd, const uint32_t *known, size_t nknown);

#endif
