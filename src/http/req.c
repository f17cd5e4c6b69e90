/* Helpers of the protocol-neutral request and response (req.h). */
#include "http/req.h"

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

size_t cu_header_value(const cu_header_t *h, char *dst)
{
    const char *p = h->value.p, *end = p + h->value.len;
    size_t n = 0, seg = 0; /* seg: where the current line's text starts in dst */

    while (p < end) {
        if (*p == '\r') {
            while (n > seg && is_ws((unsigned char)dst[n - 1]))
                n--;
            dst[n++] = ' ';
            p++;
            if (p < end && *p == '\n')
                p++;
            while (p < end && is_ws((unsigned char)*p))
                p++;
            seg = n;
            continue;
        }
        dst[n++] = *p++;
    }
    return n;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t cu_percent_decode(cu_str_t src, char *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < src.len; i++) {
        int hi, lo;
        if (src.p[i] == '%' && i + 2 < src.len && (hi = hexval((unsigned char)src.p[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)src.p[i + 2])) >= 0) {
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[n++] = src.p[i];
        }
    }
    return n;
}

void cu_resp_head_reset(cu_resp_head_t *h)
{
    h->status = 0;
    h->tlen = 0;
    h->nfields = 0;
    h->store.pos = h->store.len = 0;
}

int cu_resp_head_status(cu_resp_head_t *h, int status, const char *text, size_t tlen)
{
    cu_resp_head_reset(h);
    if (cu_buf_append(&h->store, text, tlen) != CU_OK)
        return CU_ERROR;
    h->status = status;
    h->tlen = (uint32_t)tlen;
    return CU_OK;
}

int cu_resp_head_add(cu_resp_head_t *h, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    if (h->nfields == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        h->fields = cu_xrealloc(h->fields, cap * sizeof(*h->fields));
        h->cap = cap;
    }
    uint32_t at = (uint32_t)h->store.len;
    if (cu_buf_append(&h->store, name, nlen) != CU_OK ||
        cu_buf_append(&h->store, value, vlen) != CU_OK)
        return CU_ERROR;
    h->fields[h->nfields++] =
        (cu_resp_field_t){at, (uint32_t)nlen, at + (uint32_t)nlen, (uint32_t)vlen};
    return CU_OK;
}

void cu_resp_head_free(cu_resp_head_t *h)
{
    cu_free(h->fields);
    h->fields = NULL;
    h->nfields = h->cap = 0;
    cu_buf_free(&h->store);
}
