/* gunicorn's dirty wire protocol: frame headers and TLV values (see proto.h). */
#include "dirty/proto.h"

#include <string.h>

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static int known_type(uint8_t t)
{
    return (t >= CU_DIRTY_REQUEST && t <= CU_DIRTY_END) ||
           (t >= CU_DIRTY_STASH && t <= CU_DIRTY_MANAGE);
}

int cu_dirty_hdr_decode(const uint8_t *p, size_t n, cu_dirty_hdr_t *h)
{
    if (n < CU_DIRTY_HDR_SIZE)
        return -2;
    if (p[0] != 'G' || p[1] != 'D' || p[2] != CU_DIRTY_VERSION || !known_type(p[3]))
        return -1;
    h->type = p[3];
    h->len = get32(p + 4);
    h->id = get64(p + 8);
    if (h->len > CU_DIRTY_MAX_MSG)
        return -1;
    return CU_DIRTY_HDR_SIZE;
}

void cu_dirty_hdr_encode(uint8_t out[CU_DIRTY_HDR_SIZE], uint8_t type, uint32_t len, uint64_t id)
{
    out[0] = 'G';
    out[1] = 'D';
    out[2] = CU_DIRTY_VERSION;
    out[3] = type;
    put32(out + 4, len);
    put64(out + 8, id);
}

/* Strict UTF-8 as Python's decoder: no overlongs, no surrogates, nothing past U+10FFFF. */
static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static long read_value(const uint8_t *p, size_t n, cu_tlv_t *v, int depth)
{
    if (n < 1 || depth > CU_TLV_MAX_DEPTH)
        return -1;
    memset(v, 0, sizeof(*v));
    v->type = p[0];
    v->raw = p;
    size_t used = 1;
    switch (p[0]) {
    case CU_TLV_NONE: break;
    case CU_TLV_BOOL:
        if (n < 2)
            return -1;
        v->b = p[1] != 0;
        used = 2;
        break;
    case CU_TLV_INT:
    case CU_TLV_FLOAT: {
        if (n < 9)
            return -1;
        uint64_t u = get64(p + 1);
        if (p[0] == CU_TLV_INT)
            v->i = (int64_t)u;
        else
            memcpy(&v->f, &u, sizeof(v->f));
        used = 9;
        break;
    }
    case CU_TLV_BYTES:
    case CU_TLV_STR: {
        if (n < 5)
            return -1;
        uint32_t len = get32(p + 1);
        if (len > CU_DIRTY_MAX_MSG || len > n - 5)
            return -1;
        v->p = p + 5;
        v->len = len;
        if (p[0] == CU_TLV_STR && !utf8_ok(v->p, len))
            return -1;
        used = 5 + (size_t)len;
        break;
    }
    case CU_TLV_LIST:
    case CU_TLV_DICT: {
        if (n < 5)
            return -1;
        uint32_t count = get32(p + 1);
        if (count > CU_TLV_MAX_ITEMS)
            return -1;
        size_t off = 5;
        uint32_t items = p[0] == CU_TLV_DICT ? count * 2 : count;
        for (uint32_t k = 0; k < items; k++) {
            cu_tlv_t item;
            long r = read_value(p + off, n - off, &item, depth + 1);
            if (r < 0)
                return -1;
            if (p[0] == CU_TLV_DICT && k % 2 == 0 && item.type != CU_TLV_STR)
                return -1;
            off += (size_t)r;
        }
        /* read_value overwrote nothing of v: items used their own struct */
        v->count = count;
        v->p = p + 5;
        v->len = off - 5;
        used = off;
        break;
    }
    default: return -1;
    }
    v->raw_len = used;
    return (long)used;
}

long cu_tlv_read(const uint8_t *p, size_t n, cu_tlv_t *v)
{
    return read_value(p, n, v, 0);
}

int cu_tlv_read_full(const uint8_t *p, size_t n, cu_tlv_t *v)
{
    long r = read_value(p, n, v, 0);
    return r >= 0 && (size_t)r == n ? CU_OK : -1;
}

int cu_tlv_next(const cu_tlv_t *c, size_t *off, cu_tlv_t *v)
{
    if (*off >= c->len)
        return 0;
    long r = read_value(c->p + *off, c->len - *off, v, 0);
    if (r < 0)
        return 0;
    *off += (size_t)r;
    return 1;
}

int cu_tlv_str_eq(const cu_tlv_t *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == CU_TLV_STR && v->len == n && memcmp(v->p, s, n) == 0;
}

int cu_tlv_dict_get(const cu_tlv_t *d, const char *key, cu_tlv_t *out)
{
    if (d->type != CU_TLV_DICT)
        return 0;
    size_t off = 0;
    cu_tlv_t k, v;
    int found = 0;
    /* The last duplicate wins, as in the Python dict the decoder builds. */
    while (cu_tlv_next(d, &off, &k) && cu_tlv_next(d, &off, &v)) {
        if (cu_tlv_str_eq(&k, key)) {
            *out = v;
            found = 1;
        }
    }
    return found;
}

/* ---- encoding ---- */

static int put_tag32(cu_buf_t *b, uint8_t type, uint32_t n)
{
    uint8_t h[5] = {type};
    put32(h + 1, n);
    return cu_buf_append(b, h, sizeof(h));
}

int cu_tlv_put_none(cu_buf_t *b)
{
    uint8_t t = CU_TLV_NONE;
    return cu_buf_append(b, &t, 1);
}

int cu_tlv_put_bool(cu_buf_t *b, int v)
{
    uint8_t h[2] = {CU_TLV_BOOL, v ? 1 : 0};
    return cu_buf_append(b, h, 2);
}

int cu_tlv_put_int(cu_buf_t *b, int64_t v)
{
    uint8_t h[9] = {CU_TLV_INT};
    put64(h + 1, (uint64_t)v);
    return cu_buf_append(b, h, 9);
}

int cu_tlv_put_float(cu_buf_t *b, double v)
{
    uint8_t h[9] = {CU_TLV_FLOAT};
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    put64(h + 1, u);
    return cu_buf_append(b, h, 9);
}

static int put_blob(cu_buf_t *b, uint8_t type, const void *p, size_t n)
{
    if (n > CU_DIRTY_MAX_MSG || put_tag32(b, type, (uint32_t)n) != CU_OK)
        return CU_ERROR;
    return n ? cu_buf_append(b, p, n) : CU_OK;
}

int cu_tlv_put_bytes(cu_buf_t *b, const void *p, size_t n)
{
    return put_blob(b, CU_TLV_BYTES, p, n);
}

int cu_tlv_put_str(cu_buf_t *b, const char *s, size_t n)
{
    return put_blob(b, CU_TLV_STR, s, n);
}

int cu_tlv_put_cstr(cu_buf_t *b, const char *s)
{
    return put_blob(b, CU_TLV_STR, s, strlen(s));
}

int cu_tlv_put_list(cu_buf_t *b, uint32_t count)
{
    return put_tag32(b, CU_TLV_LIST, count);
}

int cu_tlv_put_dict(cu_buf_t *b, uint32_t count)
{
    return put_tag32(b, CU_TLV_DICT, count);
}

int cu_tlv_put_raw(cu_buf_t *b, const void *p, size_t n)
{
    return n ? cu_buf_append(b, p, n) : CU_OK;
}

size_t cu_dirty_frame_begin(cu_buf_t *b)
{
    static const uint8_t zero[CU_DIRTY_HDR_SIZE];
    size_t at = b->len - b->pos; /* from pos: appending may compact the buffer */
    if (cu_buf_append(b, zero, sizeof(zero)) != CU_OK)
        return (size_t)-1;
    return at;
}

int cu_dirty_frame_end(cu_buf_t *b, size_t at, uint8_t type, uint64_t id)
{
    if (at == (size_t)-1 || b->pos + at + CU_DIRTY_HDR_SIZE > b->len)
        return CU_ERROR;
    size_t len = b->len - b->pos - at - CU_DIRTY_HDR_SIZE;
    if (len > CU_DIRTY_MAX_MSG)
        return CU_ERROR;
    cu_dirty_hdr_encode((uint8_t *)b->data + b->pos + at, type, (uint32_t)len, id);
    return CU_OK;
}

int cu_dirty_put_error(cu_buf_t *b, uint64_t id, const char *type, const char *msg,
                       const char *const *dkeys, const char *const *dvals, size_t nd,
                       const char *int_key, int64_t int_val)
{
    size_t at = cu_dirty_frame_begin(b);
    int bad = at == (size_t)-1;
    bad = bad || cu_tlv_put_dict(b, 1) || cu_tlv_put_cstr(b, "error");
    bad = bad || cu_tlv_put_dict(b, 3) || cu_tlv_put_cstr(b, "error_type") ||
          cu_tlv_put_cstr(b, type) || cu_tlv_put_cstr(b, "message") || cu_tlv_put_cstr(b, msg);
    bad = bad || cu_tlv_put_cstr(b, "details") ||
          cu_tlv_put_dict(b, (uint32_t)(nd + (int_key != NULL)));
    for (size_t i = 0; !bad && i < nd; i++)
        bad = cu_tlv_put_cstr(b, dkeys[i]) || cu_tlv_put_cstr(b, dvals[i]);
    if (!bad && int_key)
        bad = cu_tlv_put_cstr(b, int_key) || cu_tlv_put_int(b, int_val);
    return bad ? CU_ERROR : cu_dirty_frame_end(b, at, CU_DIRTY_ERROR, id);
}
