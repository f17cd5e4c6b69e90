/* permessage-deflate (see ws_deflate.h): offer parsing and zlib raw-deflate streams. */
#include "http/ws_deflate.h"
#include "core/cu_core.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

static int ieq(const char *a, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(a, lit, n) == 0;
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
}

/* One offer "permessage-deflate; p1; p2=v": 1 when acceptable. */
static int offer_ok(const char *p, const char *end)
{
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *ne = semi ? semi : end;
    const char *a = p;
    trim(&a, &ne);
    if (!ieq(a, (size_t)(ne - a), "permessage-deflate"))
        return 0;
    while (semi) {
        p = semi + 1;
        semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        const char *k = p;
        trim(&k, &ke);
        size_t kl = (size_t)(ke - k);
        if (ieq(k, kl, "client_max_window_bits") || ieq(k, kl, "client_no_context_takeover") ||
            ieq(k, kl, "server_no_context_takeover"))
            continue; /* the client's window is its business; ours is reset anyway */
        return 0;     /* server_max_window_bits (zlib's raw window cannot be 8) or unknown */
    }
    return 1;
}

int cu_ws_deflate_negotiate(const char *offers, size_t len, char *resp, size_t cap)
{
    const char *p = offers, *end = offers + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *oe = comma ? comma : end;
        if (offer_ok(p, oe)) {
            static const char r[] = "permessage-deflate; server_no_context_takeover";
            if (cap < sizeof(r))
                return 0;
            memcpy(resp, r, sizeof(r));
            return 1;
        }
        p = comma ? comma + 1 : end;
    }
    return 0;
}

int cu_ws_inflate(cu_ws_deflate_t *d, const uint8_t *p, size_t n, cu_buf_t *out, size_t max)
{
    z_stream *z = d->inflater;
    if (z == NULL) {
        z = calloc(1, sizeof(*z));
        if (z == NULL || inflateInit2(z, -15) != Z_OK) {
            free(z);
            return CU_ERROR;
        }
        d->inflater = z;
    }
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff}; /* RFC 7692 7.2.2 */
    size_t start = cu_buf_unread(out);
    for (int part = 0; part < 2; part++) {
        z->next_in = (Bytef *)(part ? tail : p);
        z->avail_in = (uInt)(part ? sizeof(tail) : n);
        while (z->avail_in > 0) {
            if (cu_buf_unread(out) - start > max)
                return CU_DONE; /* checked as it grows: a small bomb never gets big */
            if (cu_buf_reserve(out, 16384) != CU_OK)
                return CU_DONE;
            z->next_out = (Bytef *)out->data + out->len;
            z->avail_out = (uInt)(out->cap - out->len);
            size_t before = z->avail_out;
            int rc = inflate(z, Z_SYNC_FLUSH);
            out->len += before - z->avail_out;
            if (rc == Z_STREAM_END) {
                inflateReset(z); /* a final block: the next message starts a new stream */
                break;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return CU_ERROR;
            if (rc == Z_BUF_ERROR && z->avail_out > 0)
                return CU_ERROR; /* no progress with room to write: truncated or corrupt */
        }
    }
    return cu_buf_unread(out) - start > max ? CU_DONE : CU_OK;
}

int cu_ws_deflate(cu_ws_deflate_t *d, const uint8_t *p, size_t n, cu_buf_t *out)
{
    z_stream *z = d->deflater;
    if (z == NULL) {
        z = calloc(1, sizeof(*z));
        if (z == NULL || deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                                      Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            return CU_ERROR;
        }
        d->deflater = z;
    } else {
        deflateReset(z); /* server_no_context_takeover */
    }
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        if (cu_buf_reserve(out, deflateBound(z, (uLong)n) + 16) != CU_OK)
            return CU_ERROR;
        z->next_out = (Bytef *)out->data + out->len;
        z->avail_out = (uInt)(out->cap - out->len);
        size_t before = z->avail_out;
        int rc = deflate(z, Z_SYNC_FLUSH);
        out->len += before - z->avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return CU_ERROR;
        if (z->avail_in == 0 && z->avail_out > 0)
            break;
    }
    /* The sync flush ends with 00 00 ff ff: the receiver adds it back (RFC 7692 7.2.1). */
    if (cu_buf_unread(out) >= 4 && memcmp(out->data + out->len - 4, "\x00\x00\xff\xff", 4) == 0)
        out->len -= 4;
    return CU_OK;
}

void cu_ws_deflate_free(cu_ws_deflate_t *d)
{
    if (d->inflater) {
        inflateEnd(d->inflater);
        free(d->inflater);
        d->inflater = NULL;
    }
    if (d->deflater) {
        deflateEnd(d->deflater);
        free(d->deflater);
        d->deflater = NULL;
    }
}
