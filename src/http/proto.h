/* Protocol drivers: how a listener's bytes become requests and responses become bytes.
 * The engine (workers/engine.c) knows connections, transports, timers, dispatch,
 * keep-alive and the overload policy; everything about a wire format is behind this table.
 * HTTP/1 is h1_driver.c (cu_proto_h1); a listener picks its driver with l->proto (NULL
 * means HTTP/1). A second protocol (uwsgi) plugs in with a table of its own and nothing in
 * the engine changes.
 *
 * What a driver gets: the connection (http/conn.h) with its read buffer c->in (the bytes
 * not yet consumed start at c->in.pos), its per-connection header slots c->hdrs
 * (settings->max_headers entries), c->pdata for its own per-connection state, and the
 * worker's resolved settings c->settings. What it must produce for each request:
 * c->request (http/req.h, protocol-neutral: method, target, path, query, version, headers,
 * content_length / chunked framing of the body, keep_alive, expect_continue) and
 * c->head_len, the bytes of c->in that the head took. The engine fills in scheme, peer,
 * listener and the start time. The body that follows the head is read by http/conn.c from
 * the framing the driver described; the app writes the response through http/conn.h's
 * cu_resp_* calls, which ask the driver to serialise the head.
 *
 * Threading: a driver is called by whichever thread owns the connection (the loop, or the
 * app thread while the app runs), never by two at once. No call blocks; none touches
 * Python. Drivers are stateless tables: per-connection state lives in the connection. */
#ifndef CU_PROTO_H
#define CU_PROTO_H

#include "core/cu_core.h"

typedef struct cu_conn_s cu_conn_t;

typedef struct cu_proto_s {
    const char *name; /* "http", "uwsgi": for logs */

    /* Prepare a fresh connection, and again between requests: forget the previous request's
     * parse state (its slices may point into bytes that are about to be consumed). */
    void (*reset)(cu_conn_t *c);

    /* Parse the next request head at the start of c->in's unread bytes. Resumable: called
     * again with the same bytes plus more until it decides. Returns
     *   CU_OK     complete: c->request and c->head_len are set;
     *   CU_AGAIN  incomplete: call again when more bytes arrived (the driver answers
     *             CU_ERROR itself when the unread bytes reach c->in.max without a head);
     *   CU_ERROR  the head is refused: *status (an HTTP status, 400, 431, ...) and *msg (the
     *             reason for the log line and error page; static, or the driver's text valid
     *             until its next parse on this thread) say how to answer. The engine logs
     *             it and answers through error_page at once, then closes the connection.
     * After CU_OK the engine may call reset and then parse again on the same bytes at a new
     * address (the buffer moved while the body was being read ahead): the same request
     * must result. */
    int (*parse)(cu_conn_t *c, int *status, const char **msg);

    /* Serialise the response head into c->out: the status and fields in c->resp.h plus
     * what the server adds (Server, Date, Connection, framing). Decides the body framing
     * and sets c->resp.chunked / close_delimited (and c->closing when the connection
     * cannot be reused). final_len >= 0: the whole body is known and has that length.
     * CU_OK, or CU_ERROR when out of memory. */
    int (*emit_head)(cu_conn_t *c, int64_t final_len);

    /* Queue a complete error response (status, reason phrase, a short message; the
     * connection closes after it) in c->out. Only before any head was emitted. Returns the
     * body's length (for the access log), or CU_ERROR. */
    int (*error_page)(cu_conn_t *c, int status, const char *reason, const char *msg);

    /* Queue the interim response a client that sent Expect: 100-continue waits for, in
     * c->out. NULL when the protocol has none. CU_OK or CU_ERROR. */
    int (*continue_100)(cu_conn_t *c);

    /* Free the driver's per-connection state (c->pdata) when the connection's memory is
     * released. NULL when the driver keeps none. */
    void (*release)(cu_conn_t *c);

    /* Queue an informational response (103 Early Hints) with these fields in c->out, before
     * the final head. NULL when the protocol has none. CU_OK or CU_ERROR. */
    int (*interim)(cu_conn_t *c, int status, const char *reason, const cu_str_t *names,
                   const cu_str_t *values, size_t n);

    /* Send `fields` as trailers after the body (gunicorn.http2.send_trailers). NULL when
     * the protocol cannot. CU_OK or CU_ERROR. */
    int (*trailers)(cu_conn_t *c, const struct cu_resp_head_s *fields);
} cu_proto_t;

/* HTTP/1.0 and 1.1 (h1_driver.c). */
extern const cu_proto_t cu_proto_h1;

/* uwsgi packets from a proxy (nginx uwsgi_pass), answered in HTTP/1.1 (uwsgi_driver.c). */
extern const cu_proto_t cu_proto_uwsgi;

/* cu_proto_h1's response head writer, for drivers whose peer reads HTTP/1 heads: with
 * chunked_ok 0 a body of unknown length is close-delimited instead of chunked. */
int cu_h1_write_head(cu_conn_t *c, int64_t final_len, int chunked_ok);

#endif
