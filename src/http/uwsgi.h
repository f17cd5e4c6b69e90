/* uwsgi request-packet parser (the wire format of gunicorn's --protocol uwsgi and nginx's
 * uwsgi_pass), pure: no I/O, no globals, no allocation, no Python. Returns slices into the
 * caller's buffer.
 *
 * A packet is a 4-byte header -- modifier1 (0: a WSGI request), datasize (little-endian
 * uint16: bytes of the vars block), modifier2 -- then the vars block: pairs of
 * little-endian uint16 key length, key, little-endian uint16 value length, value. The
 * request body (CONTENT_LENGTH bytes) follows the packet on the stream; it is not part of
 * what this parser consumes. */
#ifndef CU_UWSGI_H
#define CU_UWSGI_H

#include "core/cu_core.h"

#define CU_UWSGI_HEADER_LEN   4
#define CU_UWSGI_MAX_DATASIZE 65535 /* the format's cap: datasize is a uint16 */
#define CU_UWSGI_MAX_PACKET   (CU_UWSGI_HEADER_LEN + CU_UWSGI_MAX_DATASIZE)
#define CU_UWSGI_MAX_VARS     1000 /* gunicorn's MAX_UWSGI_VARS */

/* Which failure, so the caller can answer with the right status. gunicorn raises
 * InvalidUWSGIHeader (code 400), UnsupportedModifier (501) and ForbiddenUWSGIRequest (403);
 * the limits below are cunicorn's, tied to the HTTP settings. */
enum cu_uwsgi_error {
    CU_UWSGIE_NONE = 0,
    CU_UWSGIE_HTTP,             /* 400: the bytes start like an HTTP request line */
    CU_UWSGIE_MODIFIER,         /* 501 UnsupportedModifier: modifier1 is not 0 */
    CU_UWSGIE_VARS,             /* 400 InvalidUWSGIHeader: a length runs past the vars block */
    CU_UWSGIE_TOO_MANY_VARS,    /* 400 InvalidUWSGIHeader: more vars than max_vars */
    CU_UWSGIE_CONTENT_LENGTH,   /* 400: CONTENT_LENGTH is not a decimal number */
    CU_UWSGIE_LIMIT_PACKET,     /* 431: datasize over max_datasize */
    CU_UWSGIE_LIMIT_FIELDS,     /* 431: more HTTP_* vars than limit_request_fields */
    CU_UWSGIE_LIMIT_FIELD_SIZE, /* 431: one HTTP_* var over limit_request_field_size */
};

/* Status code and a short message for an error (CU_UWSGIE_NONE: 0, ""). */
int cu_uwsgi_error_status(enum cu_uwsgi_error e);
const char *cu_uwsgi_error_name(enum cu_uwsgi_error e);

/* Limits, already resolved from the settings (0 means the format's own cap):
 *   max_datasize     bytes of the vars block (<= CU_UWSGI_MAX_DATASIZE);
 *   max_fields       HTTP_* vars, the header fields (limit_request_fields);
 *   max_field_size   one HTTP_* var counted as the header line it stands for,
 *                    "Name: value\r\n" = key - 5 + value + 4 (limit_request_field_size).
 * The total number of vars is capped by the caller's array (max_vars). */
typedef struct cu_uwsgi_opts_s {
    size_t max_datasize;
    size_t max_fields;
    size_t max_field_size;
} cu_uwsgi_opts_t;

typedef struct cu_uwsgi_var_s {
    cu_str_t key;
    cu_str_t value;
} cu_uwsgi_var_t;

typedef struct cu_uwsgi_request_s {
    unsigned modifier1, modifier2;
    size_t datasize;

    /* every var in packet order, in the caller's array (NULL: counted, not stored; walk
     * them with cu_uwsgi_next_var) */
    cu_uwsgi_var_t *vars;
    size_t nvars;
    size_t max_vars; /* capacity of `vars` and cap on nvars, set by the caller (<= 1000) */
    size_t nfields;  /* vars named HTTP_* */

    /* Well-known vars; when a key repeats the last one wins (gunicorn keeps a dict).
     * p == NULL when absent. */
    cu_str_t method;        /* REQUEST_METHOD */
    cu_str_t path_info;     /* PATH_INFO (the proxy decoded it) */
    cu_str_t query_string;  /* QUERY_STRING */
    cu_str_t request_uri;   /* REQUEST_URI: the raw request-target */
    cu_str_t content_type;  /* CONTENT_TYPE */
    cu_str_t https;         /* HTTPS */
    cu_str_t url_scheme;    /* wsgi.url_scheme */
    cu_str_t remote_addr;   /* REMOTE_ADDR */
    cu_str_t remote_port;   /* REMOTE_PORT */
    cu_str_t connection;    /* HTTP_CONNECTION */
    int64_t content_length; /* CONTENT_LENGTH; 0 when absent or empty */

    enum cu_uwsgi_error error; /* set when the parser returns -1 */
} cu_uwsgi_request_t;

/* Reset `req` for a new packet, keeping the caller's var array (vars, max_vars). */
void cu_uwsgi_request_reset(cu_uwsgi_request_t *req);

/* Parse a packet at buf[0..len).
 * Returns the packet length (4 + datasize, > 0) when complete; -2 when incomplete (call
 * again with the same bytes and more); -1 when malformed (req->error says why). Nothing is
 * kept between calls but the caller's buffer: a call on a longer buffer starts over, and
 * the packet is at most CU_UWSGI_MAX_PACKET bytes. What can be judged early is: a non-zero
 * modifier1 fails on the first byte (CU_UWSGIE_HTTP when it is an upper-case letter, as
 * the method of a plain HTTP request is), a datasize over the limit on the third.
 * CONTENT_LENGTH must be empty or decimal digits (gunicorn would take int(x) and 0 on
 * error; a body length the proxy and we could read differently is refused instead). */
ssize_t cu_uwsgi_parse(const char *buf, size_t len, cu_uwsgi_request_t *req,
                       const cu_uwsgi_opts_t *opts);

/* Walk the vars of a packet cu_uwsgi_parse accepted (buf, and the length it returned):
 * *off starts at 0; each call stores the next var in *v and returns 1, then 0 at the end. */
int cu_uwsgi_next_var(const char *buf, size_t plen, size_t *off, cu_uwsgi_var_t *v);

/* Does `s` say HTTPS is on, as gunicorn reads the HTTPS var ("on", "1", "true", any case)? */
int cu_uwsgi_https_on(cu_str_t s);

#endif
