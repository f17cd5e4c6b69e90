/* An HTTP/1 connection and the request/response exchange on it: the API the app layer
 * (py/) uses to read a request body and write a response. Implemented in conn.c (body
 * reading, 100-continue, waits) and response.c (status line, headers, framing, writev,
 * sendfile); the engine (workers/engine.c) owns the connection's state machine.
 *
 * Threading: while a request's app runs, exactly one thread owns the connection (its
 * one-shot watcher has fired; nobody else touches it) until the app returns. The blocking
 * calls below (body reads, response writes) wait with poll() on the socket and must be
 * called WITHOUT the GIL held. None of them touch Python. */
#ifndef CU_CONN_H
#define CU_CONN_H

#include "core/buf.h"
#include "core/cu_core.h"
#include "event/loop.h"
#include "http/chunked.h"
#include "http/h1.h"
#include "http/uwsgi.h"
#include "net/transport.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef struct cu_conn_s cu_conn_t;
typedef struct cu_listener_s cu_listener_t;

/* Per-worker settings every connection of the worker shares (read-only while serving),
 * resolved once from the configuration by cu_settings_resolve (workers/settings.h): the
 * hot path reads these, never cu_config_t. */
typedef struct cu_conn_settings_s {
    cu_h1_opts_t h1;         /* effective limits (gunicorn's rules already applied) */
    cu_h1_opts_t h1_trusted; /* h1 plus forwarder_headers: peers in forwarded_allow_ips */
    int io_timeout_ms;       /* body read / response write stall limit */
    int head_timeout_ms;     /* a request head (or a handshake) must arrive within this */
    int keepalive_ms;        /* idle time between requests; 0 = keep-alive off */
    size_t head_max;         /* cap of the read buffer while reading a head */
    size_t max_headers;      /* header slots per connection (effective field limit + 1) */
    /* How a request's thread waits for its client when the app reads or writes faster
     * than the client: the worker class's blocking adapter (workers/blocking.c for sync
     * and gthread). NULL: this worker class never blocks; the waiting calls then fail. */
    int (*block)(cu_conn_t *c, int events);
    const char *server_header; /* "cunicorn" */
    /* Unsent response bytes all connections of the worker may keep in memory (their `out`
     * buffers); past it output goes to a spill file (response.c). out_kept is the worker's
     * running total (the engine owns it; NULL = no budget). spill_dir: where spill files
     * are created (unlinked at once). */
    size_t out_budget;
    atomic_size_t *out_kept;
    const char *spill_dir;
    size_t body_preread;   /* bodies up to this size are read by the loop before dispatch */
    cu_uwsgi_opts_t uwsgi; /* uwsgi packet limits (--protocol uwsgi) */
    const struct cu_cidrlist_s *uwsgi_allow; /* uwsgi_allow_ips (the config's list) */
    unsigned request_uri : 1; /* the environ carries REQUEST_URI (uwsgi, as uWSGI does) */
} cu_conn_settings_t;

/* Response being produced for the current request: the neutral head (status and fields,
 * structured until emitted) and the HTTP/1 writer's framing state. */
typedef struct cu_resp_s {
    cu_resp_head_t h;             /* h.status is 0 until cu_resp_begin */
    int64_t content_length;       /* from the app's Content-Length, -1 if none */
    unsigned chunked : 1;         /* we add chunked framing */
    unsigned close_delimited : 1; /* HTTP/1.0 without length: close after */
    unsigned head_sent : 1;       /* committed: the head is queued or a body byte was produced,
                                   * so start_response may no longer change it (PEP 3333) */
    unsigned head_emitted : 1;    /* the head bytes are in c->out or on the wire */
    unsigned hold : 1;            /* body is complete in the app's hands: batch it (cu_resp_hold) */
    unsigned no_body : 1;         /* HEAD, 1xx, 204, 304 */
    unsigned no_body_warned : 1;  /* the app's body for a no_body response was reported */
    uint64_t body_sent;           /* body bytes sent, or queued to be (B/b atoms; 0 when
                                     no_body: the app's bytes are dropped, as in gunicorn) */
    cu_buf_t stash;               /* body written before the head went out (small responses) */
    unsigned app_date : 1;        /* app set Date: do not add ours */
    unsigned app_server : 1;      /* app set Server */
} cu_resp_t;

/* Per-request body reader state. */
typedef struct cu_body_s {
    int64_t remaining; /* Content-Length bytes left; -1 when chunked */
    cu_chunked_t chunked;
    const char *pend; /* decoded chunk data not yet handed to the app */
    size_t pend_len;
    size_t pend_used;              /* raw bytes to consume once pend is used up */
    int pend_bin;                  /* pend lies in bin (1) or in (0) */
    unsigned done : 1;             /* all body bytes were delivered */
    unsigned continue_pending : 1; /* 100 Continue owed before the first read */
    unsigned error : 1;            /* framing error or timeout: the connection must close */
    unsigned timed_out : 1;        /* the client stalled mid-body: answer 408, not 500 */
    unsigned malformed : 1;        /* bad chunked framing: answer 400 (431: trailers too large) */
    unsigned too_large : 1;
} cu_body_t;

struct cu_conn_s {
    cu_transport_t t; /* every byte in and out goes through t.ops */
    const cu_conn_settings_t *settings;
    cu_io_t io;
    cu_timer_t timer;
    const cu_listener_t *listener;
    cu_peer_t peer;
    const char *scheme; /* "http", or the listener transport's ("https") */
    /* The TLS facts of the connection carrying this request when t is not that connection's
     * own transport (an HTTP/2 stream: its session owns them); NULL otherwise. */
    struct cu_tls_facts_s *tls_facts;

    cu_buf_t in;                    /* read buffer: head of the current request + anything after */
    const struct cu_proto_s *proto; /* the listener's protocol driver (http/proto.h) */
    void *pdata;                    /* a driver's own per-connection state */
    cu_h1_request_t req;            /* the HTTP/1 driver's parser state */
    cu_req_t request;     /* the current request, protocol-neutral: what py/ and logs read */
    size_t head_len;      /* bytes of `in` the current request's head took */
    cu_h1_header_t *hdrs; /* array of limit_request_fields + 1 entries */
    cu_body_t body;
    cu_resp_t resp;
    cu_buf_t out;             /* response bytes not yet written (batched small writes) */
    size_t out_charged;       /* bytes of `out` counted in settings->out_kept */
    int spill_fd;             /* unlinked file with output past the memory budget, or -1 */
    off_t spill_rd, spill_wr; /* its bytes [rd, wr) are unsent; they follow `out` */
    cu_buf_t bin;             /* body bytes read from the socket past `in` (and what follows) */
    size_t rpos;              /* index in in.data of the next unread body byte */
    unsigned defer_flush : 1; /* more pipelined requests are buffered: batch responses */

    int state;               /* the engine's connection state (workers/engine.c) */
    unsigned keep_alive : 1; /* may serve another request after this one */
    unsigned closing : 1;    /* close after the current response */
    unsigned taken_over : 1; /* the app took the connection over (environ['gunicorn.socket']):
                                nothing more is read or written on it; the engine only
                                closes its own fd once the app returned */
    uint64_t nrequests;      /* requests served on this connection */
    void *worker;            /* owning worker */
    void *app_data;          /* a worker class's object for the request it owns (asgi) */
    cu_conn_t *next;         /* engine: all-connections list / pool */
    cu_conn_t *prev;
    cu_chunked_t pre_dec; /* engine: scanning a chunked body being pre-read */
    size_t pre_scanned;   /* bytes of body the pre-read scan has covered */
    int wr_mark;          /* engine: kernel send queue when the write timer started */
    int64_t state_ms;     /* engine: accepted, went idle, or last write progress (mono ms) */
};

/* ---- request body (blocking; without the GIL) ---- */

/* Read up to n decoded body bytes into dst. Sends "100 Continue" first if owed.
 * Returns bytes read (> 0), 0 at the end of the body, -1 on error (client gone, read
 * timeout, malformed chunking: body.error is set and the connection will be closed). */
ssize_t cu_body_read(cu_conn_t *c, char *dst, size_t n);

/* Discard what the app did not read so the next pipelined request can be parsed.
 * Returns CU_OK, or CU_ERROR when the rest is too large/slow and the connection should
 * just close. */
int cu_body_drain(cu_conn_t *c);

/* ---- response ---- */

/* Start a response: status is the full status string from the app ("200 OK"). Returns
 * CU_ERROR if the status is malformed. May be called again before any body byte was
 * written (exc_info case) and then replaces the previous status and headers. */
int cu_resp_begin(cu_conn_t *c, const char *status, size_t len);

/* Add one header. Rejects (CU_ERROR) names that are not tokens and values with CR, LF or
 * NUL, and a Content-Length that is not a number. Hop-by-hop headers (Connection,
 * Keep-Alive, Transfer-Encoding, TE, Trailers, Upgrade, Proxy-Authenticate,
 * Proxy-Authorization) are dropped, as gunicorn does: framing is the server's job.
 * Server, Date and Connection are added by the writer (Server/Date unless the app set them). */
int cu_resp_header(cu_conn_t *c, const char *name, size_t nlen, const char *value, size_t vlen);

/* Write body bytes (the head goes first, in the same writev, the first time) and block
 * until the socket took them, so a streaming app's output reaches the client as it is
 * produced. After cu_resp_hold() small writes are instead kept and sent with the head by
 * cu_resp_finish, in one write and with a Content-Length. Returns CU_OK or CU_ERROR
 * (client gone or send timeout: the connection will be closed). Bytes past a declared
 * Content-Length are not sent. HEAD, 1xx, 204, 304: dropped and not counted, with
 * gunicorn's warning the first time the app gives bytes. */
int cu_resp_write(cu_conn_t *c, const void *p, size_t n);

/* A held body up to this size, with defer_flush set, is only copied into buffers: writing
 * it and finishing cannot block. */
#define CU_RESP_BUFFERED_MAX (16 * 1024)

/* Declare that every body byte is already in the app's hands (a list or tuple result):
 * writes until cu_resp_finish may be batched with the head. */
static inline void cu_resp_hold(cu_conn_t *c)
{
    c->resp.hold = 1;
}

/* Send count bytes of fd from offset (count < 0: to EOF) with sendfile(2), falling back to
 * read+write. Same return contract as cu_resp_write. */
int cu_resp_sendfile(cu_conn_t *c, int fd, off_t offset, int64_t count);

/* Finish the response: sends the head if no body was written, the final chunk if chunked,
 * and flushes. Returns CU_OK, or CU_ERROR if the connection must be closed. */
int cu_resp_finish(cu_conn_t *c);

/* wsgi.early_hints: a 103 Early Hints response with these fields (validated by the
 * caller), sent now, blocking. Nothing is sent, as in gunicorn, once the final head is
 * committed, to an HTTP/1.0 client, or on a protocol without interim responses. CU_OK, or
 * CU_ERROR when the client is gone. */
int cu_resp_early_hints(cu_conn_t *c, const cu_str_t *names, const cu_str_t *values, size_t n);
/* The same for any informational status (ASGI's http.response.informational), queued
 * after the output still unsent but not flushed: the caller flushes. */
int cu_resp_interim(cu_conn_t *c, int status, const cu_str_t *names, const cu_str_t *values,
                    size_t n);

/* Send a complete error response (gunicorn's HTML body) and mark the connection to close.
 * Only valid when no response head was sent yet. `msg` may be NULL. */
int cu_resp_error(cu_conn_t *c, int status, const char *msg);

/* gunicorn.http2.send_trailers: trailers to send after the body. CU_ERROR when the
 * protocol has no trailers (HTTP/1) or they cannot be queued. */
int cu_resp_trailers(cu_conn_t *c, const cu_resp_head_t *fields);
/* Queue "100 Continue" (when the protocol has one) after any output still unsent. */
int cu_resp_continue(cu_conn_t *c);

/* Give up on the connection (app error after the response was committed): what the app
 * produced is still sent, then the connection closes, so the client sees a truncated
 * response, as with gunicorn. */
void cu_conn_abort(cu_conn_t *c);

/* ---- used by the engine (workers/) ---- */

/* Prepare body reading and the response for the request just parsed into c->req. */
void cu_conn_begin_request(cu_conn_t *c);
/* After the response: leave c->in holding exactly the bytes after this request (the next
 * pipelined request, if any) and reset per-request state. CU_OK, or CU_ERROR if the
 * connection cannot be reused. */
int cu_conn_end_request(cu_conn_t *c);
/* Try to write the unsent output (c->out, then the spill file) without blocking. CU_OK when
 * all is sent, CU_AGAIN when the socket is full, CU_ERROR when the peer is gone. */
int cu_conn_flush_nb(cu_conn_t *c);
/* Write the unsent output completely, waiting up to io_timeout between progress. CU_OK or
 * CU_ERROR. */
int cu_conn_flush(cu_conn_t *c);
/* Unsent output bytes (memory and spill file): 0 when there is nothing to send. */
uint64_t cu_conn_unsent(const cu_conn_t *c);
/* The connection is closing or being reused: drop unsent output, close the spill file,
 * give the budget back, and free a large output buffer. */
void cu_conn_release_output(cu_conn_t *c);
/* Wait until the transport can progress on `events` (CU_EV_READ/CU_EV_WRITE; after a
 * CU_AGAIN pass c->t.want) through the worker class's blocking adapter (settings->block).
 * CU_OK; CU_AGAIN when io_timeout passed; CU_ERROR on hang-up, error, or when the class
 * has no blocking adapter. */
int cu_conn_wait(cu_conn_t *c, int events);

#endif
