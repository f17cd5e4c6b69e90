/* Capped byte buffers. */
#include "buf.h"

void cu_buf_init(cu_buf_t *b, size_t initial, size_t max)
{
    b->data = initial ? cu_xmalloc(initial) : NULL;
    b->pos = b->len = 0;
    b->cap = initial;
    b->max = max < initial ? initial : max;
}

void cu_buf_free(cu_buf_t *b)
{
    cu_free(b->data);
    b->pos = b->len = b->cap = 0;
}

int cu_buf_reserve(cu_buf_t *b, size_t want)
{
    if (b->cap - b->len >= want)
        return CU_OK;
    if (b->pos > 0) {
        memmove(b->data, b->data + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;
        if (b->cap - b->len >= want)
            return CU_OK;
    }
    if (b->len + want > b->max)
        return CU_ERROR;
    size_t ncap = b->cap ? b->cap : 1024;
    while (ncap < b->len + want)
        ncap *= 2;
    if (ncap > b->max)
        ncap = b->max;
    b->data = cu_xrealloc(b->data, ncap);
    b->cap = ncap;
    return CU_OK;
}

int cu_buf_append(cu_buf_t *b, const void *p, size_t n)
{
    if (cu_buf_reserve(b, n) != CU_OK)
        return CU_ERROR;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return CU_OK;
}
