/* Chunked transfer-coding decoder (RFC 9112 section 7.1), pure and resumable, zero-copy:
 * each call consumes framing bytes and returns the next run of body data as a slice of the
 * input. Trailer fields are validated (token names, no framing/routing fields) and not kept. */
#ifndef CU_CHUNKED_H
#define CU_CHUNKED_H

#include "core/cu_core.h"

/* Why the decoder failed, named after gunicorn's exceptions (all answered 400 but
 * CU_CHUNKED_E_LIMIT_TRAILER, which is LimitRequestHeaders: 431). */
enum cu_chunked_error {
    CU_CHUNKED_E_NONE = 0,
    CU_CHUNKED_E_SIZE,          /* InvalidChunkSize: not hex, overflow, bare LF, line too long */
    CU_CHUNKED_E_EXTENSION,     /* InvalidChunkExtension */
    CU_CHUNKED_E_TERMINATOR,    /* ChunkMissingTerminator: no CRLF after data or trailers */
    CU_CHUNKED_E_TRAILER,       /* InvalidHeader: bad trailer line (no ':', CTL, bare LF, fold) */
    CU_CHUNKED_E_TRAILER_NAME,  /* InvalidHeaderName: bad or forbidden trailer field name */
    CU_CHUNKED_E_LIMIT_TRAILER, /* LimitRequestHeaders: trailer section over max_trailer */
};

typedef struct cu_chunked_s {
    int state;            /* internal; 0 = start */
    int error;            /* enum cu_chunked_error, set with CU_ERROR */
    unsigned cand;        /* internal: forbidden trailer names still matching */
    uint64_t remaining;   /* data bytes left in the current chunk */
    size_t line_len;      /* bytes of the current size/extension/trailer line seen */
    size_t trailer_bytes; /* bytes of trailer section seen */
    size_t max_line;      /* cap for a chunk-size line incl. extensions (default 4096 when 0) */
    size_t max_trailer;   /* cap for the trailer section (default 8190 when 0) */
} cu_chunked_t;

void cu_chunked_init(cu_chunked_t *d);

/* Feed in[0..len). Sets *consumed to input bytes used (framing and data).
 * Returns:
 *   CU_OK    *data is a slice of `in` holding body bytes (len > 0); call again with the rest
 *   CU_AGAIN all input consumed, no data yet: need more bytes
 *   CU_DONE  last chunk and trailers complete; *consumed ends just after the final CRLF
 *   CU_ERROR malformed (bad size, overflow, bad extension, missing CRLF, bad trailer); see
 *            d->error. Every later call fails the same way.
 * Sizes: hex digits (leading zeros allowed) up to 2^62 - 1. Extensions: RFC 9112 7.1.1
 * `*(BWS ";" BWS name [BWS "=" BWS (token / quoted-string)])`. Every line ends in CRLF.
 * Trailer fields: token name, ':' right after it, no CTL in the value, no obs-fold; Host,
 * Content-Length, Transfer-Encoding, Trailer, Authorization and TE are refused.
 * At EOF, a decoder that has not returned CU_DONE means a truncated body. */
int cu_chunked_decode(cu_chunked_t *d, const char *in, size_t len, size_t *consumed,
                      cu_str_t *data);

/* Encode the chunk header for n bytes ("%zx\r\n") into out (>= 20 bytes); returns length. */
size_t cu_chunked_header(char *out, size_t n);

#endif
