/* gunicorn's dirty-arbiter wire protocol, pure: the 16-byte frame header and the TLV
 * values of the payload. No I/O, no allocation, no globals (fuzzed by fuzz_dirty). */
#ifndef CU_DIRTY_PROTO_H
#define CU_DIRTY_PROTO_H

#include "core/buf.h"

#include <stdint.h>

/* Header: magic "GD", version 1, type, payload length (u32 BE), request id (u64 BE). */
#define CU_DIRTY_HDR_SIZE 16
#define CU_DIRTY_VERSION  1
#define CU_DIRTY_MAX_MSG  (64u * 1024 * 1024) /* gunicorn's MAX_MESSAGE_SIZE */
#define CU_TLV_MAX_ITEMS  (1024u * 1024)      /* list/dict count limit, as gunicorn */
#define CU_TLV_MAX_DEPTH  64                  /* nesting cap (gunicorn recurses to 1000) */

enum cu_dirty_msg {
    CU_DIRTY_REQUEST = 0x01,
    CU_DIRTY_RESPONSE = 0x02,
    CU_DIRTY_ERROR = 0x03,
    CU_DIRTY_CHUNK = 0x04,
    CU_DIRTY_END = 0x05,
    CU_DIRTY_STASH = 0x10,
    CU_DIRTY_STATUS = 0x11,
    CU_DIRTY_MANAGE = 0x12,
};

/* Stash and manage operation codes (the "op" key). */
enum cu_stash_op {
    CU_STASH_PUT = 1,
    CU_STASH_GET,
    CU_STASH_DELETE,
    CU_STASH_KEYS,
    CU_STASH_CLEAR,
    CU_STASH_INFO,
    CU_STASH_ENSURE,
    CU_STASH_DELETE_TABLE,
    CU_STASH_TABLES,
    CU_STASH_EXISTS,
};
enum { CU_MANAGE_ADD = 1, CU_MANAGE_REMOVE = 2 };

typedef struct cu_dirty_hdr_s {
    uint8_t type;
    uint32_t len; /* payload bytes after the header */
    uint64_t id;
} cu_dirty_hdr_t;

/* Decode a header from p[0..n). Returns CU_DIRTY_HDR_SIZE, -2 when n is too short, or -1
 * for a bad magic, version, unknown type or a length over CU_DIRTY_MAX_MSG. */
int cu_dirty_hdr_decode(const uint8_t *p, size_t n, cu_dirty_hdr_t *h);
void cu_dirty_hdr_encode(uint8_t out[CU_DIRTY_HDR_SIZE], uint8_t type, uint32_t len, uint64_t id);

/* ---- TLV values ---- */
enum cu_tlv_type {
    CU_TLV_NONE = 0x00,
    CU_TLV_BOOL = 0x01,
    CU_TLV_INT = 0x05,
    CU_TLV_FLOAT = 0x06,
    CU_TLV_BYTES = 0x10,
    CU_TLV_STR = 0x11,
    CU_TLV_LIST = 0x20,
    CU_TLV_DICT = 0x21,
};

/* A view of one value inside a payload. For BYTES/STR, `p`/`len` are its bytes (STR is
 * valid UTF-8). For LIST/DICT, `p`/`len` span the encoded items and `count` is the number
 * of items (a dict has 2*count values: key, value, ...). `raw`/`raw_len` span the whole
 * encoded value, type byte included. */
typedef struct cu_tlv_s {
    uint8_t type;
    int b;
    int64_t i;
    double f;
    const uint8_t *p;
    size_t len;
    uint32_t count;
    const uint8_t *raw;
    size_t raw_len;
} cu_tlv_t;

/* Read and fully validate the value at p[0..n) (nested values, UTF-8 of strings, dict
 * keys are strings, limits). Returns the bytes it spans, or -1 when malformed/truncated. */
long cu_tlv_read(const uint8_t *p, size_t n, cu_tlv_t *v);

/* A whole payload: exactly one value with nothing after it. -1 otherwise. */
int cu_tlv_read_full(const uint8_t *p, size_t n, cu_tlv_t *v);

/* Iterate the items of a validated LIST or DICT: *off starts at 0; each call fills `v`
 * and returns 1, or 0 at the end. Cannot fail on a value cu_tlv_read accepted. */
int cu_tlv_next(const cu_tlv_t *container, size_t *off, cu_tlv_t *v);

/* In a validated DICT, the value under the string key `key` (1 found, 0 not). */
int cu_tlv_dict_get(const cu_tlv_t *dict, const char *key, cu_tlv_t *out);

/* Equal string? (v is STR and its bytes are `s`). */
int cu_tlv_str_eq(const cu_tlv_t *v, const char *s);

/* ---- encoding into a cu_buf_t (CU_OK, or CU_ERROR past the buffer's cap) ---- */
int cu_tlv_put_none(cu_buf_t *b);
int cu_tlv_put_bool(cu_buf_t *b, int v);
int cu_tlv_put_int(cu_buf_t *b, int64_t v);
int cu_tlv_put_float(cu_buf_t *b, double v);
int cu_tlv_put_bytes(cu_buf_t *b, const void *p, size_t n);
int cu_tlv_put_str(cu_buf_t *b, const char *s, size_t n); /* caller guarantees UTF-8 */
int cu_tlv_put_cstr(cu_buf_t *b, const char *s);
int cu_tlv_put_list(cu_buf_t *b, uint32_t count);         /* then `count` values */
int cu_tlv_put_dict(cu_buf_t *b, uint32_t count);         /* then `count` key, value pairs */
int cu_tlv_put_raw(cu_buf_t *b, const void *p, size_t n); /* an already-encoded value */

/* Frame helpers: reserve the header, write the payload, then close it. */
size_t cu_dirty_frame_begin(cu_buf_t *b); /* the header's offset from the unread start */
int cu_dirty_frame_end(cu_buf_t *b, size_t at, uint8_t type, uint64_t id);

/* An ERROR frame {"error": {"error_type": T, "message": M, "details": {k: v...}}} where
 * details holds `nd` string pairs (dkeys[i] -> dvals[i]) and, if int_key is not NULL, one
 * integer int_key -> int_val. */
int cu_dirty_put_error(cu_buf_t *b, uint64_t id, const char *type, const char *msg,
                       const char *const *dkeys, const char *const *dvals, size_t nd,
                       const char *int_key, int64_t int_val);

#endif
