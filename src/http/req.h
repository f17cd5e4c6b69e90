/* The protocol-neutral request and response: what a protocol driver (HTTP/1, uwsgi, ...)
 * produces from the wire and what everything above it reads (the WSGI environ, hooks, the
 * access log). Nothing here is re-parsed from head bytes: requests are slices into the
 * driver's buffer, valid until the request ends; response headers stay structured until the
 * driver serialises them. Pure data plus a few helpers in req.c: no I/O, no Python. */
#ifndef CU_REQ_H
#define CU_REQ_H

#include "core/buf.h"
#include "core/cu_core.h"

#include <netinet/in.h>
#include <sys/socket.h>

typedef struct cu_listener_s cu_listener_t;

/* One request header field as the client sent it. */
typedef struct cu_header_s {
    cu_str_t name;       /* case as sent, no surrounding whitespace */
    cu_str_t value;      /* leading/trailing whitespace trimmed; see `folded` */
    unsigned folded : 1; /* HTTP/1 obs-fold line breaks inside: read it with cu_header_value */
} cu_header_t;

/* Copy h's value into dst (value.len bytes), each folded line break and the whitespace
 * around it becoming one space. Returns the bytes written. */
size_t cu_header_value(const cu_header_t *h, char *dst);

/* Percent-decode src into dst (dst may equal src.p; holds src.len bytes). Invalid escapes
 * are copied as they are. Returns bytes written. */
size_t cu_percent_decode(cu_str_t src, char *dst);

/* Where a request came from. */
typedef struct cu_peer_s {
    struct sockaddr_storage addr; /* client (after the PROXY protocol, if any) */
    socklen_t addrlen;
    char host[64]; /* REMOTE_ADDR text ("" for unix sockets) */
    int port;      /* REMOTE_PORT, 0 for unix */
    int is_unix;
    int trusted_forwarder; /* the socket peer is in forwarded_allow_ips */
} cu_peer_t;

/* A request, as any protocol delivers it. */
typedef struct cu_req_s {
    cu_str_t method;           /* as sent */
    unsigned method_lower : 1; /* casefold_http_method: consumers upper-case it */
    cu_str_t target;           /* raw request-target (RAW_URI / REQUEST_URI) */
    cu_str_t path;             /* still percent-encoded */
    cu_str_t query;            /* after '?', without it */
    cu_str_t fragment;         /* after '#' */
    int version_major, version_minor;
    const cu_header_t *headers; /* in wire order */
    size_t nheaders;
    int64_t content_length;        /* -1 when the body's length is not known in advance */
    unsigned chunked : 1;          /* the body is chunked on the wire (HTTP/1) */
    unsigned body_to_eof : 1;      /* content_length < 0: the body ends where the transport's
                                    * reads end (HTTP/2 END_STREAM) */
    unsigned keep_alive : 1;       /* the client may send another request after this one */
    unsigned expect_continue : 1;  /* the client waits for "100 Continue" before the body */
    const char *scheme;            /* "http" / "https" (the listener's transport) */
    const cu_peer_t *peer;         /* the connection's */
    const cu_listener_t *listener; /* SERVER_NAME / SERVER_PORT defaults */
    int64_t start_us;              /* wall clock when the head was complete */
    int priority_weight;           /* HTTP/2 stream priority (RFC 7540 5.3): 1..256, 16 */
    int priority_depends_on;       /* HTTP/2: the stream this one depends on, 0 */
} cu_req_t;

/* One response header field: offsets into the response's `store` (which may move). */
typedef struct cu_resp_field_s {
    uint32_t name, nlen, value, vlen;
} cu_resp_field_t;

/* The response fields a driver serialises and the access log / hooks read. Filled by
 * cu_resp_begin / cu_resp_header (http/conn.h); reset per request. */
typedef struct cu_resp_head_s {
    int status;              /* 0 until a status was set */
    uint32_t tlen;           /* the status as the app gave it ("200 OK"): store[0..tlen) */
    cu_resp_field_t *fields; /* the app's fields in order (hop-by-hop ones dropped) */
    size_t nfields, cap;
    cu_buf_t store; /* bytes of reason, names and values */
} cu_resp_head_t;

static inline cu_str_t cu_resp_field_name(const cu_resp_head_t *h, size_t i)
{
    return (cu_str_t){h->store.data + h->fields[i].name, h->fields[i].nlen};
}
static inline cu_str_t cu_resp_field_value(const cu_resp_head_t *h, size_t i)
{
    return (cu_str_t){h->store.data + h->fields[i].value, h->fields[i].vlen};
}
static inline cu_str_t cu_resp_status_text(const cu_resp_head_t *h)
{
    return (cu_str_t){h->store.data, h->tlen};
}

/* Forget the previous response's status and fields, keeping the memory. */
void cu_resp_head_reset(cu_resp_head_t *h);
/* Set the status (code, and the text as given: "200 OK"), dropping any fields set before
 * (a second start_response with exc_info). CU_OK, CU_ERROR when out of room. */
int cu_resp_head_status(cu_resp_head_t *h, int status, const char *text, size_t tlen);
/* Append a field (already validated). CU_OK, CU_ERROR when out of room. */
int cu_resp_head_add(cu_resp_head_t *h, const char *name, size_t nlen, const char *value,
                     size_t vlen);
void cu_resp_head_free(cu_resp_head_t *h);

#endif
