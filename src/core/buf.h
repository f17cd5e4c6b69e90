/* Byte buffers with a hard cap: every buffer the network fills is bounded by a setting. */
#ifndef CU_BUF_H
#define CU_BUF_H

#include "cu_core.h"

/* Bytes [pos, len) are unread data; [len, cap) is free space. */
typedef struct cu_buf_s {
    char *data;
    size_t pos;
    size_t len;
    size_t cap;
    size_t max; /* hard cap on cap; growing past it fails */
} cu_buf_t;

void cu_buf_init(cu_buf_t *b, size_t initial, size_t max);
void cu_buf_free(cu_buf_t *b);

/* Make room for at least `want` free bytes after len, compacting consumed bytes first.
 * Returns CU_OK, or CU_ERROR when that would exceed b->max (nothing changed). */
int cu_buf_reserve(cu_buf_t *b, size_t want);

/* Append n bytes; CU_ERROR past the cap. */
int cu_buf_append(cu_buf_t *b, const void *p, size_t n);

static inline size_t cu_buf_unread(const cu_buf_t *b)
{
    return b->len - b->pos;
}
/* A never-allocated buffer has no head: NULL + 0 is undefined in C, so do not compute it. */
static inline const char *cu_buf_head(const cu_buf_t *b)
{
    return b->data ? b->data + b->pos : b->data;
}
static inline void cu_buf_consume(cu_buf_t *b, size_t n)
{
    b->pos += n;
    if (b->pos == b->len)
        b->pos = b->len = 0;
}

#endif
