/* dirty/proto: header and TLV against bytes produced by gunicorn's own encoder
 * (gunicorn/dirty/protocol.py, tlv.py), round trips, and every truncation rejected. */
#include "dirty/proto.h"
#include "t.h"

#include <stdlib.h>

/* gunicorn: BinaryProtocol.encode_end(7) */
static const uint8_t end7[] = {'G', 'D', 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};

/* TLVEncoder.encode({"app_path": "m:A", "action": "go", "args": [1, None, True],
 *                    "kwargs": {"x": 1.5, "b": b"\x00\xff"}}) */
static const uint8_t req_payload[] = {
    0x21, 0, 0, 0, 4,                                            /* dict of 4 */
    0x11, 0, 0, 0, 8, 'a',  'p',  'p', '_', 'p', 'a', 't',  'h', /* "app_path" */
    0x11, 0, 0, 0, 3, 'm',  ':',  'A',                           /* "m:A" */
    0x11, 0, 0, 0, 6, 'a',  'c',  't', 'i', 'o', 'n',            /* "action" */
    0x11, 0, 0, 0, 2, 'g',  'o',                                 /* "go" */
    0x11, 0, 0, 0, 4, 'a',  'r',  'g', 's',                      /* "args" */
    0x20, 0, 0, 0, 3, 0x05, 0,    0,   0,   0,   0,   0,    0,    1,    0x00, 0x01, 1, /* [1, None,
                                                                                          True] */
    0x11, 0, 0, 0, 6, 'k',  'w',  'a', 'r', 'g', 's', /* "kwargs" */
    0x21, 0, 0, 0, 2, 0x11, 0,    0,   0,   1,   'x', 0x06, 0x3f, 0xf8, 0,    0,    0, 0,
    0,    0,                                                      /* x: 1.5 */
    0x11, 0, 0, 0, 1, 'b',  0x10, 0,   0,   0,   2,   0x00, 0xff, /* b: b"\x00\xff" */
};

static void test_header(void)
{
    cu_dirty_hdr_t h;
    CHECK(cu_dirty_hdr_decode(end7, sizeof(end7), &h) == CU_DIRTY_HDR_SIZE);
    CHECK(h.type == CU_DIRTY_END && h.len == 0 && h.id == 7);
    for (size_t n = 0; n < sizeof(end7); n++)
        CHECK(cu_dirty_hdr_decode(end7, n, &h) == -2);

    uint8_t out[16];
    cu_dirty_hdr_encode(out, CU_DIRTY_END, 0, 7);
    CHECK(memcmp(out, end7, 16) == 0);
    cu_dirty_hdr_encode(out, CU_DIRTY_STASH, 0x01020304, 0xfedcba9876543210ull);
    CHECK(cu_dirty_hdr_decode(out, 16, &h) == 16);
    CHECK(h.type == CU_DIRTY_STASH && h.len == 0x01020304 && h.id == 0xfedcba9876543210ull);

    uint8_t bad[16];
    memcpy(bad, end7, 16);
    bad[0] = 'X';
    CHECK(cu_dirty_hdr_decode(bad, 16, &h) == -1); /* magic */
    memcpy(bad, end7, 16);
    bad[2] = 2;
    CHECK(cu_dirty_hdr_decode(bad, 16, &h) == -1); /* version */
    memcpy(bad, end7, 16);
    bad[3] = 0x06;
    CHECK(cu_dirty_hdr_decode(bad, 16, &h) == -1); /* unknown type */
    cu_dirty_hdr_encode(bad, CU_DIRTY_REQUEST, CU_DIRTY_MAX_MSG + 1, 1);
    CHECK(cu_dirty_hdr_decode(bad, 16, &h) == -1); /* too large */
    cu_dirty_hdr_encode(bad, CU_DIRTY_REQUEST, CU_DIRTY_MAX_MSG, 1);
    CHECK(cu_dirty_hdr_decode(bad, 16, &h) == 16);
}

static void test_request(void)
{
    cu_tlv_t d, v, item;
    CHECK(cu_tlv_read_full(req_payload, sizeof(req_payload), &d) == CU_OK);
    CHECK(d.type == CU_TLV_DICT && d.count == 4);
    CHECK(cu_tlv_dict_get(&d, "app_path", &v) && cu_tlv_str_eq(&v, "m:A"));
    CHECK(cu_tlv_dict_get(&d, "action", &v) && cu_tlv_str_eq(&v, "go"));
    CHECK(!cu_tlv_dict_get(&d, "nope", &v));
    CHECK(cu_tlv_dict_get(&d, "args", &v) && v.type == CU_TLV_LIST && v.count == 3);
    size_t off = 0;
    CHECK(cu_tlv_next(&v, &off, &item) && item.type == CU_TLV_INT && item.i == 1);
    CHECK(cu_tlv_next(&v, &off, &item) && item.type == CU_TLV_NONE);
    CHECK(cu_tlv_next(&v, &off, &item) && item.type == CU_TLV_BOOL && item.b == 1);
    CHECK(!cu_tlv_next(&v, &off, &item));
    CHECK(cu_tlv_dict_get(&d, "kwargs", &v) && v.type == CU_TLV_DICT && v.count == 2);
    CHECK(cu_tlv_dict_get(&v, "x", &item) && item.type == CU_TLV_FLOAT && item.f == 1.5);
    CHECK(cu_tlv_dict_get(&v, "b", &item) && item.type == CU_TLV_BYTES && item.len == 2 &&
          item.p[0] == 0 && item.p[1] == 0xff);
    /* raw spans reproduce the value exactly */
    CHECK(d.raw == req_payload && d.raw_len == sizeof(req_payload));

    /* Every strict prefix is truncated; trailing bytes are refused. */
    for (size_t n = 0; n < sizeof(req_payload); n++)
        CHECK(cu_tlv_read_full(req_payload, n, &d) == -1);
    uint8_t longer[sizeof(req_payload) + 1];
    memcpy(longer, req_payload, sizeof(req_payload));
    longer[sizeof(req_payload)] = 0;
    CHECK(cu_tlv_read_full(longer, sizeof(longer), &d) == -1);
    CHECK(cu_tlv_read(longer, sizeof(longer), &d) == (long)sizeof(req_payload));
}

static void test_rejects(void)
{
    cu_tlv_t v;
    static const uint8_t unknown[] = {0x07};
    CHECK(cu_tlv_read_full(unknown, 1, &v) == -1);
    static const uint8_t intkey[] = {0x21, 0, 0, 0, 1, 0x05, 0, 0, 0, 0, 0, 0, 0, 1, 0x00};
    CHECK(cu_tlv_read_full(intkey, sizeof(intkey), &v) == -1); /* dict key must be a str */
    static const uint8_t badutf8[] = {0x11, 0, 0, 0, 2, 0xc0, 0x80};
    CHECK(cu_tlv_read_full(badutf8, sizeof(badutf8), &v) == -1); /* overlong */
    static const uint8_t surrogate[] = {0x11, 0, 0, 0, 3, 0xed, 0xa0, 0x80};
    CHECK(cu_tlv_read_full(surrogate, sizeof(surrogate), &v) == -1);
    static const uint8_t okutf8[] = {0x11, 0, 0, 0, 4, 0xf0, 0x9f, 0x98, 0x80};
    CHECK(cu_tlv_read_full(okutf8, sizeof(okutf8), &v) == CU_OK && v.len == 4);
    static const uint8_t huge_list[] = {0x20, 0x00, 0x10, 0x00, 0x01};
    CHECK(cu_tlv_read_full(huge_list, sizeof(huge_list), &v) == -1); /* > 1M items */
    static const uint8_t huge_str[] = {0x11, 0xff, 0xff, 0xff, 0xff, 'a'};
    CHECK(cu_tlv_read_full(huge_str, sizeof(huge_str), &v) == -1);

    /* Nesting past CU_TLV_MAX_DEPTH is refused instead of recursing without end. */
    uint8_t deep[5 * (CU_TLV_MAX_DEPTH + 2) + 1];
    size_t n = 0;
    for (int i = 0; i < CU_TLV_MAX_DEPTH + 2; i++) {
        deep[n++] = 0x20;
        deep[n++] = 0, deep[n++] = 0, deep[n++] = 0, deep[n++] = 1;
    }
    deep[n++] = 0x00;
    CHECK(cu_tlv_read_full(deep, n, &v) == -1);
}

static void test_encode(void)
{
    cu_buf_t b;
    cu_buf_init(&b, 64, 1 << 20);
    /* a consumed prefix: frame offsets must survive compaction */
    cu_buf_append(&b, "xxxx", 4);
    cu_buf_consume(&b, 2);
    size_t at = cu_dirty_frame_begin(&b);
    CHECK(cu_tlv_put_dict(&b, 4) == CU_OK);
    cu_tlv_put_cstr(&b, "app_path");
    cu_tlv_put_cstr(&b, "m:A");
    cu_tlv_put_cstr(&b, "action");
    cu_tlv_put_cstr(&b, "go");
    cu_tlv_put_cstr(&b, "args");
    cu_tlv_put_list(&b, 3);
    cu_tlv_put_int(&b, 1);
    cu_tlv_put_none(&b);
    cu_tlv_put_bool(&b, 1);
    cu_tlv_put_cstr(&b, "kwargs");
    cu_tlv_put_dict(&b, 2);
    cu_tlv_put_cstr(&b, "x");
    cu_tlv_put_float(&b, 1.5);
    cu_tlv_put_cstr(&b, "b");
    CHECK(cu_tlv_put_bytes(&b, "\x00\xff", 2) == CU_OK);
    CHECK(cu_dirty_frame_end(&b, at, CU_DIRTY_REQUEST, 42) == CU_OK);
    const uint8_t *f = (const uint8_t *)cu_buf_head(&b) + 2;
    cu_dirty_hdr_t h;
    CHECK(cu_dirty_hdr_decode(f, 16, &h) == 16);
    CHECK(h.type == CU_DIRTY_REQUEST && h.id == 42 && h.len == sizeof(req_payload));
    CHECK(memcmp(f + 16, req_payload, sizeof(req_payload)) == 0);
    cu_buf_free(&b);

    /* An error frame decodes to gunicorn's {"error": {error_type, message, details}}. */
    cu_buf_init(&b, 64, 1 << 20);
    const char *k[] = {"app_path"}, *val[] = {"m:A"};
    CHECK(cu_dirty_put_error(&b, 9, "DirtyNoWorkersAvailableError", "none", k, val, 1, "timeout",
                             5) == CU_OK);
    f = (const uint8_t *)cu_buf_head(&b);
    CHECK(cu_dirty_hdr_decode(f, cu_buf_unread(&b), &h) == 16 && h.type == CU_DIRTY_ERROR);
    cu_tlv_t d, e, x;
    CHECK(cu_tlv_read_full(f + 16, h.len, &d) == CU_OK);
    CHECK(cu_tlv_dict_get(&d, "error", &e));
    CHECK(cu_tlv_dict_get(&e, "error_type", &x) &&
          cu_tlv_str_eq(&x, "DirtyNoWorkersAvailableError"));
    CHECK(cu_tlv_dict_get(&e, "details", &x) && x.count == 2);
    cu_tlv_t y;
    CHECK(cu_tlv_dict_get(&x, "timeout", &y) && y.i == 5);
    cu_buf_free(&b);
}

int main(void)
{
    test_header();
    test_request();
    test_rejects();
    test_encode();
    return t_done("test_dirty_proto");
}
