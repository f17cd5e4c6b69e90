/* The uwsgi protocol driver: turns a uwsgi packet at the head of a connection's read buffer
 * into the request the engine, the environ, hooks and the access log read (c->req, the
 * peer, the scheme), as the HTTP/1 parser does for an HTTP head. The response goes back as
 * an HTTP/1.1 status line, headers and body (what nginx's uwsgi module reads), never
 * chunked: without a Content-Length it is delimited by closing the connection. */
#ifndef CU_UWSGI_DRIVER_H
#define CU_UWSGI_DRIVER_H

#include "http/conn.h"
#include "http/uwsgi.h"

/* Per-connection state (vars array, scratch for rebuilt strings, the socket's peer).
 * Allocated by the first parse on a connection, kept while the connection is pooled. */
typedef struct cu_uwsgi_conn_s cu_uwsgi_conn_t;

/* Parse the packet at the head of c->in. `allowed`: the connection's peer is in
 * uwsgi_allow_ips (or is a unix-socket peer). Returns:
 *   > 0  the packet length: c->req describes the request (head_len = packet length, the
 *        body is the next content_length bytes), c->peer holds the client from the
 *        REMOTE_ADDR/REMOTE_PORT vars, c->scheme "https" when the HTTPS var says so;
 *   -2   incomplete;
 *   -1   refused: *status and msg (gunicorn-style, for the log and the error page) say
 *        why; the caller answers and closes.
 * May rewrite bytes of the packet in c->in (var names become header names in place).
 * Not thread-safe per connection (one thread owns a connection while it parses). */
ssize_t cu_uwsgi_conn_parse(cu_conn_t *c, int allowed, int *status, char *msg, size_t msglen);

/* Free a connection's driver state (NULL is fine). */
void cu_uwsgi_conn_free(cu_uwsgi_conn_t *u);

#endif
