/* libFuzzer target for dirty/proto: a stream of frames as the arbiter reads them from a
 * client or a dirty worker (header, then the payload as one TLV value), every value walked
 * and every dict key looked up, and re-encoding of what was read compared byte for byte. */
#include "dirty/proto.h"

#include <stdlib.h>
#include <string.h>

static void walk(const cu_tlv_t *v, int depth)
{
    if (v->type != CU_TLV_LIST && v->type != CU_TLV_DICT)
        return;
    size_t off = 0;
    cu_tlv_t item, found;
    uint32_t n = 0;
    while (cu_tlv_next(v, &off, &item)) {
        n++;
        if (v->type == CU_TLV_DICT && n % 2 == 1 && item.len < 64) {
            char key[64];
            memcpy(key, item.p, item.len);
            key[item.len] = '\0';
            if (strlen(key) == item.len && !cu_tlv_dict_get(v, key, &found))
                abort(); /* a key that is there must be found */
        }
        walk(&item, depth + 1);
    }
    if (n != (v->type == CU_TLV_DICT ? v->count * 2 : v->count) || off != v->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        cu_dirty_hdr_t h;
        int r = cu_dirty_hdr_decode(data + off, size - off, &h);
        if (r < 0)
            break;
        off += (size_t)r;
        size_t len = h.len <= size - off ? h.len : size - off;
        cu_tlv_t v;
        if (cu_tlv_read_full(data + off, len, &v) == CU_OK) {
            if (v.raw_len != len)
                abort();
            walk(&v, 0);
            cu_buf_t b;
            cu_buf_init(&b, 64, CU_DIRTY_MAX_MSG + 64);
            size_t at = cu_dirty_frame_begin(&b);
            if (cu_tlv_put_raw(&b, v.raw, v.raw_len) != CU_OK ||
                cu_dirty_frame_end(&b, at, h.type, h.id) != CU_OK)
                abort();
            if (memcmp(cu_buf_head(&b) + CU_DIRTY_HDR_SIZE, data + off, len) != 0)
                abort();
            cu_buf_free(&b);
        }
        off += len;
    }
    return 0;
}
