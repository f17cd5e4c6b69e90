/* PROXY protocol v1 (text) and v2 (binary) header parser. Pure: no I/O, no allocation. */
#ifndef CU_PROXY_H
#define CU_PROXY_H

#include "core/cu_core.h"
#include <netinet/in.h>
#include <sys/socket.h>

enum cu_proxy_accept { CU_PROXY_ACCEPT_V1 = 1, CU_PROXY_ACCEPT_V2 = 2, CU_PROXY_ACCEPT_ANY = 3 };

typedef struct cu_proxy_info_s {
    int version; /* 1 or 2 */
    int local;   /* v2 LOCAL command or v1 "UNKNOWN": keep the real peer */
    int family;  /* AF_INET, AF_INET6, or AF_UNSPEC */
    struct sockaddr_storage src;
    struct sockaddr_storage dst;
} cu_proxy_info_t;

/* Parse a PROXY header at buf[0..len). `accept` says which versions are allowed.
 * Returns bytes consumed (> 0), -2 incomplete, -1 malformed or a version not accepted,
 * 0 when the input starts with neither signature (gunicorn then parses it as HTTP: a
 * connection without a PROXY header is served as is). It decides as early as the bytes
 * allow: "GET " is 0 at once, a strict prefix of a signature is -2.
 * v1: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", at most 107 bytes; addresses as
 * inet_pton reads them, ports decimal without sign or leading zero, <= 65535; UNKNOWN
 * (anything up to CRLF) sets local.
 * v2: 12-byte signature, version 2, LOCAL (local set) or PROXY, transport STREAM, AF_INET
 * (>= 12 address bytes), AF_INET6 (>= 36) or AF_UNSPEC (local set); TLVs skipped. */
ssize_t cu_proxy_parse(const char *buf, size_t len, int accept, cu_proxy_info_t *out);

#endif
