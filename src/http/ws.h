/* RFC 6455 WebSocket codec: frame headers, masking, close payloads, UTF-8 validation and
 * the handshake's Sec-WebSocket-Accept. Pure: no I/O, no allocation, no globals, no Python;
 * resumable where input may arrive in pieces (the UTF-8 validator). */
#ifndef CU_WS_H
#define CU_WS_H

#include <stddef.h>
#include <stdint.h>

enum cu_ws_opcode {
    CU_WS_CONT = 0x0,
    CU_WS_TEXT = 0x1,
    CU_WS_BINARY = 0x2,
    CU_WS_CLOSE = 0x8,
    CU_WS_PING = 0x9,
    CU_WS_PONG = 0xA,
};

/* Close codes the server sends (RFC 6455 7.4.1). */
#define CU_WS_CLOSE_NORMAL       1000
#define CU_WS_CLOSE_GOING_AWAY   1001
#define CU_WS_CLOSE_PROTOCOL     1002
#define CU_WS_CLOSE_UNSUPPORTED  1003
#define CU_WS_CLOSE_NO_STATUS    1005 /* never on the wire: "no code in the close frame" */
#define CU_WS_CLOSE_ABNORMAL     1006 /* never on the wire: the connection dropped */
#define CU_WS_CLOSE_INVALID_DATA 1007
#define CU_WS_CLOSE_POLICY       1008
#define CU_WS_CLOSE_TOO_BIG      1009
#define CU_WS_CLOSE_INTERNAL     1011

typedef struct cu_ws_frame_s {
    unsigned fin : 1;
    unsigned rsv1 : 1; /* permessage-deflate's "compressed" bit when negotiated */
    unsigned masked : 1;
    int opcode;
    uint64_t len;      /* payload length */
    uint8_t mask[4];   /* when masked */
    size_t header_len; /* 2..14 bytes */
} cu_ws_frame_t;

/* Parse the frame header at p[0..n). `require_mask`: the peer is a client (RFC 6455 5.1:
 * its frames must be masked). `allow_rsv1`: an extension (permessage-deflate) gave RSV1 a
 * meaning. `max_len`: largest payload accepted (0 = no limit). Control frames must be final
 * and at most 125 bytes; unknown opcodes, RSV bits without an extension and a 64-bit length
 * with its top bit set are errors (a length in a longer form than needed is accepted: the
 * minimal form is a rule for senders).
 * Returns the header length (> 0) with *f filled, -2 when more bytes are needed, or -1 with
 * *close_code set to the code to close with (1002 protocol error, 1009 too big). */
int cu_ws_parse_header(const uint8_t *p, size_t n, int require_mask, int allow_rsv1,
                       uint64_t max_len, cu_ws_frame_t *f, int *close_code);

/* XOR n bytes at `data` with the mask, `offset` bytes into the payload (for a payload
 * unmasked in pieces). In place. */
void cu_ws_mask(uint8_t *data, size_t n, const uint8_t mask[4], uint64_t offset);

/* Write an unmasked (server) frame header for a payload of `len` bytes into dst (at least
 * 10 bytes). Returns its length (2, 4 or 10). */
size_t cu_ws_frame_header(uint8_t *dst, int opcode, int fin, int rsv1, uint64_t len);

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF). *state starts at 0 and is carried across the fragments of one message.
 * Returns 0 while valid so far, -1 as soon as invalid. The message is complete and valid
 * when the last call returned 0 and *state is 0 again. */
int cu_ws_utf8(uint32_t *state, const uint8_t *p, size_t n);

/* A close frame's payload: empty (code 1005, "no status"), or a 2-byte code and a UTF-8
 * reason. Returns 0 with *code set, or -1 when the payload is malformed (one byte, a code
 * that may not be sent: < 1000, 1004-1006, 1015, 1016-2999, >= 5000; invalid UTF-8): the
 * answer is then a close with 1002 (1007 for the UTF-8 case: *code says which). */
int cu_ws_close_parse(const uint8_t *p, size_t n, int *code);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
 * Writes 28 characters and a NUL into out (29 bytes). */
void cu_ws_accept(const char *key, size_t klen, char out[29]);

/* SHA-1 of n bytes (RFC 3174), for the accept value. */
void cu_ws_sha1(const uint8_t *p, size_t n, uint8_t out[20]);

#endif
