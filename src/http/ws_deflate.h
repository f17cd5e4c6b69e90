/* permessage-deflate (RFC 7692) for WebSocket messages, over zlib: the offer negotiation
 * and whole-message compression and decompression. The server always uses
 * server_no_context_takeover (its deflater starts afresh for each message: no window kept
 * per idle connection); the client's context is kept (one inflater per connection). */
#ifndef CU_WS_DEFLATE_H
#define CU_WS_DEFLATE_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cu_ws_deflate_s {
    void *inflater; /* z_stream, created on first use */
    void *deflater;
} cu_ws_deflate_t;

/* Read a Sec-WebSocket-Extensions value (the client's offers, in preference order) and pick
 * the first permessage-deflate offer the server can honour (none with server_max_window_bits
 * or unknown parameters). Returns 1 and writes the response value (NUL-terminated) into
 * resp, or 0 when no offer is accepted. */
int cu_ws_deflate_negotiate(const char *offers, size_t len, char *resp, size_t cap);

/* Decompress one message (its frames' payloads joined) appending to out; at most `max`
 * bytes of output. CU_OK; CU_ERROR for corrupt data (close 1007); CU_DONE when the output
 * would pass `max` (close 1009). */
int cu_ws_inflate(cu_ws_deflate_t *d, const uint8_t *p, size_t n, cu_buf_t *out, size_t max);

/* Compress one message appending to out (RSV1 goes on its frame). CU_OK or CU_ERROR. */
int cu_ws_deflate(cu_ws_deflate_t *d, const uint8_t *p, size_t n, cu_buf_t *out);

void cu_ws_deflate_free(cu_ws_deflate_t *d);

#endif
