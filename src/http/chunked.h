/* Chunked transfer-coding decoder (RFC 9112 section 7.1), pure and resumable, zero-copy:
 * each call consumes framing bytes and returns the next run of body data as a slice of the
 * input. Trailer fields are validated (token names, no framing/routing fields) and not kept. */
#ifndef CU_CHUNKED_H
#define CU_CHUNKED_H

#include "core/cu_core.h"

typedef struct cu_chunked_s {
    int state;             /* internal; 0 = start */
    uint64_t remaining;    /* data bytes left in the current chunk */
    size_t line_len;       /* bytes of the current size/extension/trailer line seen */
    size_t trailer_bytes;  /* bytes of trailer section seen */
    size_t max_line;       /* cap for a chunk-size line incl. extensions (default 4096 when 0) */
    size_t max_trailer;    /* cap for the trailer section (default 8190 when 0) */
} cu_chunked_t;

void cu_chunked_init(cu_chunked_t *d);

/* Feed in[0..len). Sets *consumed to input bytes used (framing and data).
 * Returns:
 *   CU_OK    *data is a slice of `in` holding body bytes (len > 0); call again with the rest
 *   CU_AGAIN all input consumed, no data yet: need more bytes
 *   CU_DONE  last chunk and trailers complete; *consumed ends just after the final CRLF
 *   CU_ERROR malformed (bad size, overflow, bad extension, missing CRLF, bad trailer) */
int cu_chunked_decode(cu_chunked_t *d, const char *in, size_t len, size_t *consumed,
                      cu_str_t *data);

/* Encode the chunk header for n bytes ("%zx\r\n") into out (>= 20 bytes); returns length. */
size_t cu_chunked_header(char *out, size_t n);

#endif
