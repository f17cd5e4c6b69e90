/* HTTP/1.x request-head parser (RFC 9112), pure: no I/O, no globals, no allocation, no
 * Python. Returns slices into the caller's buffer. Re-entrant on a growing buffer: call it
 * again with the same buffer and more bytes; it first looks for the end of the head from
 * where the previous call stopped (req->scan_pos), so a trickling client costs O(n). */
#ifndef CU_H1_H
#define CU_H1_H

#include "core/cu_core.h"
#include "http/req.h"

/* Which failure, so the caller can answer like gunicorn. */
enum cu_h1_error {
    CU_H1E_NONE = 0,
    CU_H1E_REQUEST_LINE,     /* 400 InvalidRequestLine (includes bad request-target) */
    CU_H1E_METHOD,           /* 400 InvalidRequestMethod */
    CU_H1E_VERSION,          /* 400 InvalidHTTPVersion */
    CU_H1E_HEADER,           /* 400 InvalidHeader (bad value, bad framing headers) */
    CU_H1E_HEADER_NAME,      /* 400 InvalidHeaderName (incl. '_' with header_map=refuse) */
    CU_H1E_OBS_FOLD,         /* 400 ObsoleteFolding (folding not permitted) */
    CU_H1E_LIMIT_LINE,       /* 414 LimitRequestLine */
    CU_H1E_LIMIT_FIELDS,     /* 431 LimitRequestHeaders: too many fields */
    CU_H1E_LIMIT_FIELD_SIZE, /* 431 LimitRequestHeaders: a field too large */
    CU_H1E_TRANSFER_CODING,  /* 501 UnsupportedTransferCoding */
    CU_H1E_EXPECT,           /* 417 ExpectationFailed */
    CU_H1E_NO_HOST,          /* 400: HTTP/1.1 without Host (require_host; gunicorn serves it) */
};

/* Status code and gunicorn's reason/message for an error. */
int cu_h1_error_status(enum cu_h1_error e);
const char *cu_h1_error_name(enum cu_h1_error e);

struct cu_h1_request_s;

/* gunicorn's text for a failed parse (req->error and its detail), written to dst (at most
 * cap - 1 bytes and a NUL; cap > 0). page = 0: str() of the exception gunicorn raises, the
 * <reason> of its "Invalid request from ip=...: <reason>" log line ("Invalid HTTP method:
 * 'G@T'", "Request Line is too large (5014 > 4094)"); page = 1: the message of its error
 * page ("Invalid Method 'Invalid HTTP method: 'G@T''"). Offending bytes are shown as
 * Python's repr() of their latin-1 decoding, as gunicorn shows them. Returns the length.
 * The detail slices point into the buffer of the failed parse: call before it changes. */
size_t cu_h1_error_message(const struct cu_h1_request_s *req, int page, char *dst, size_t cap);

enum cu_h1_header_map { CU_H1_HMAP_DROP, CU_H1_HMAP_REFUSE, CU_H1_HMAP_DANGEROUS };

/* Effective limits, applied as given: gunicorn's mapping from its settings (request line
 * 0 = unlimited, i.e. 1 MiB, and >= 8190 -> 8190; fields 0 or > 32768 -> 32768; field size
 * 0 -> 8190) is done once, by config.h's cu_config_eff_* (see workers/settings.c). Every
 * field line counts against limit_request_fields, dropped ones too; a field's size includes
 * its CRLF and folded lines. */
typedef struct cu_h1_opts_s {
    size_t limit_request_line;
    size_t limit_request_fields;
    size_t limit_request_field_size;
    enum cu_h1_header_map header_map;
    /* Names with '_' that are kept whatever header_map says (gunicorn's forwarder_headers,
     * upper-case, compared case-insensitively; "*" = all). Set only for a trusted peer
     * (forwarded_allow_ips); NULL/0 otherwise. */
    const cu_str_t *forwarder_headers;
    size_t n_forwarder_headers;
    unsigned permit_obsolete_folding : 1;
    unsigned strip_header_spaces : 1;
    unsigned permit_unconventional_http_method : 1;
    unsigned permit_unconventional_http_version : 1;
    unsigned
        casefold_http_method : 1; /* the method is upper-cased by the consumer: see method_lower */
    unsigned require_host : 1;    /* HTTP/1.1+ without Host -> CU_H1E_NO_HOST (RFC 9112 3.2) */
} cu_h1_opts_t;

/* Header fields are the neutral ones (http/req.h): the parser fills them in place. */
typedef cu_header_t cu_h1_header_t;

typedef struct cu_h1_request_s {
    /* request line */
    cu_str_t method;
    cu_str_t target; /* raw request-target (RAW_URI) */
    cu_str_t path;  /* path part, still percent-encoded ("" for authority form, "*" for asterisk) */
    cu_str_t query; /* after '?', without it, before '#' */
    cu_str_t fragment;  /* after '#' */
    cu_str_t scheme;    /* absolute-form only */
    cu_str_t authority; /* absolute-form host[:port] or authority-form target */
    int version_major, version_minor;
    unsigned method_lower : 1; /* method has lower-case letters and casefold is on: upper-case it */

    /* header fields, in wire order, in the caller's array (dropped ones are not stored) */
    cu_h1_header_t *headers;
    size_t nheaders;
    size_t max_headers; /* capacity of `headers`, set by the caller */

    /* framing and connection semantics, derived from the fields */
    int64_t content_length;       /* -1 when absent */
    unsigned chunked : 1;         /* Transfer-Encoding: chunked (final coding) */
    unsigned keep_alive : 1;      /* persistent after this request (version + Connection) */
    unsigned expect_continue : 1; /* Expect: 100-continue */
    unsigned upgrade : 1;         /* Connection: upgrade + Upgrade present */
    unsigned has_underscore_dropped : 1;

    /* results */
    enum cu_h1_error error; /* set when the parser returns -1 */
    /* what failed, for cu_h1_error_message: the offending bytes (request line, method,
     * version, field line, header name or value; into the buffer or a static string), and
     * for CU_H1E_LIMIT_LINE the line's length and the limit applied */
    cu_str_t err_text;
    size_t err_size, err_limit;
    unsigned err_upper : 1;   /* err_text is a header name gunicorn shows upper-cased */
    unsigned err_version : 1; /* a well-formed version out of range: shown as "(2, 0)" */
    unsigned err_partial : 1; /* CU_H1E_LIMIT_LINE before the line's end: err_size is what
                                 was seen so far */
    size_t head_len;          /* bytes of the whole head including the final CRLF */

    /* resumption state: zero before the first call on a new request (cu_h1_request_reset).
     * Head lines are validated and stored as each one completes; the slices point into the
     * buffer of the previous call, so if the caller passes a different buffer address the
     * parser starts over from byte 0 (amortised O(n) when the buffer grows geometrically).
     * Bytes already passed must not change between calls. */
    size_t scan_pos;        /* next byte to look at for '\n' */
    size_t line_start;      /* start of the line being received */
    size_t nfields;         /* field lines seen (or empty lines skipped before the request line) */
    size_t field_len;       /* bytes of the current field so far (obs-fold continuations add) */
    const char *base;       /* buffer of the previous call */
    unsigned in_fields : 1; /* request line done */
    unsigned last_dropped : 1; /* the current field was dropped: a continuation is too */
} cu_h1_request_t;

/* Reset `req` for a new request, keeping the caller's header array (headers, max_headers).
 * The caller sizes that array to limit_request_fields; a full array fails as
 * CU_H1E_LIMIT_FIELDS. */
void cu_h1_request_reset(cu_h1_request_t *req);

/* Parse a request head at buf[0..len).
 * Returns the head length (> 0) when complete; -2 when incomplete (call again with more);
 * -1 when malformed (req->error says why). Limits are enforced on incomplete input too:
 * a header field that already exceeds its limit fails with -1 without waiting for more
 * bytes, a request line once it exceeds both its limit and 8 KiB (gunicorn's read size, so
 * that the size reported for a shorter line is the whole line's). Up to 8 leading empty lines
 * (CRLF) before the request line are skipped and counted in the returned length (gunicorn skips
 * one; a 9th is an error). Every line must end in CRLF: a bare LF fails at once (request line:
 * CU_H1E_REQUEST_LINE, fields: CU_H1E_HEADER). Rules follow gunicorn 26/27 (message.py):
 * method 3..20 chars of upper-case token unless permit_unconventional_http_method, version
 * HTTP/1.<digit> unless permit_unconventional_http_version, target printable ASCII or bytes >= 0x80
 * (as nginx; gunicorn 27 refuses those) in origin form, absolute form (scheme "://", bracketed
 * hosts checked), authority form for CONNECT only, "*" for OPTIONS only; repeated Host or
 * Content-Type, repeated or non-digit Content-Length, Transfer-Encoding with Content-Length, on
 * HTTP/1.0, or not ending in chunked -> CU_H1E_HEADER; an unknown coding -> CU_H1E_TRANSFER_CODING;
 * an Expect other than 100-continue -> CU_H1E_EXPECT. keep_alive: CONNECT and gzip/deflate/compress
 * codings close; a Connection token "close" closes, "keep-alive" keeps; otherwise HTTP/1.1+ keeps
 * and HTTP/1.0 closes. */
ssize_t cu_h1_parse_request(const char *buf, size_t len, cu_h1_request_t *req,
                            const cu_h1_opts_t *opts);

/* Copy a folded header value into dst (see cu_header_value). */
static inline size_t cu_h1_unfold(const cu_h1_header_t *h, char *dst)
{
    return cu_header_value(h, dst);
}

/* Percent-decode (see cu_percent_decode). */
static inline size_t cu_h1_percent_decode(cu_str_t src, char *dst)
{
    return cu_percent_decode(src, dst);
}

/* Publish the parsed head as the protocol-neutral request (slices shared, nothing copied).
 * scheme, peer, listener and start_us are the caller's. */
void cu_h1_to_req(const cu_h1_request_t *h, cu_req_t *r);

#endif
