/* RFC 6455 frame codec (see ws.h): header parsing and writing, masking, close payloads,
 * incremental UTF-8 validation, SHA-1 and base64 for the handshake's accept value. */
#include "http/ws.h"

#include <string.h>

int cu_ws_parse_header(const uint8_t *p, size_t n, int require_mask, int allow_rsv1,
                       uint64_t max_len, cu_ws_frame_t *f, int *close_code)
{
    if (n < 2)
        return -2;
    f->fin = p[0] >> 7;
    f->rsv1 = (p[0] >> 6) & 1;
    f->opcode = p[0] & 0x0f;
    f->masked = p[1] >> 7;
    *close_code = CU_WS_CLOSE_PROTOCOL;
    if ((p[0] & 0x30) || (f->rsv1 && !allow_rsv1))
        return -1; /* RSV2/RSV3 never, RSV1 only with an extension that defines it */
    int control = f->opcode >= 0x8;
    switch (f->opcode) {
    case CU_WS_CONT:
    case CU_WS_TEXT:
    case CU_WS_BINARY:
    case CU_WS_CLOSE:
    case CU_WS_PING:
    case CU_WS_PONG: break;
    default: return -1; /* reserved opcodes */
    }
    if (control && (!f->fin || f->rsv1))
        return -1; /* control frames are never fragmented nor compressed */
    if (f->rsv1 && f->opcode == CU_WS_CONT)
        return -1; /* the compressed bit is on a message's first frame only */
    if (require_mask && !f->masked)
        return -1;
    size_t need = 2;
    uint64_t len = p[1] & 0x7f;
    if (len == 126) {
        need = 4;
        if (n < need)
            return -2;
        len = (uint64_t)p[2] << 8 | p[3];
    } else if (len == 127) {
        need = 10;
        if (n < need)
            return -2;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63)
            return -1; /* the most significant bit MUST be 0 */
    }
    if (control && len > 125)
        return -1;
    if (f->masked) {
        if (n < need + 4)
            return -2;
        memcpy(f->mask, p + need, 4);
        need += 4;
    }
    if (max_len && len > max_len) {
        *close_code = CU_WS_CLOSE_TOO_BIG;
        return -1;
    }
    f->len = len;
    f->header_len = need;
    return (int)need;
}

void cu_ws_mask(uint8_t *data, size_t n, const uint8_t mask[4], uint64_t offset)
{
    size_t i = 0;
    unsigned k = (unsigned)(offset & 3);
    /* Byte-wise until the mask is aligned with the payload, then eight bytes at a time. */
    while (i < n && k != 0) {
        data[i++] ^= mask[k];
        k = (k + 1) & 3;
    }
    uint8_t m8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    uint64_t w8;
    memcpy(&w8, m8, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, data + i, 8);
        v ^= w8;
        memcpy(data + i, &v, 8);
    }
    for (k = 0; i < n; i++, k++)
        data[i] ^= mask[k & 3];
}

size_t cu_ws_frame_header(uint8_t *dst, int opcode, int fin, int rsv1, uint64_t len)
{
    dst[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (len < 126) {
        dst[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        dst[1] = 126;
        dst[2] = (uint8_t)(len >> 8);
        dst[3] = (uint8_t)len;
        return 4;
    }
    dst[1] = 127;
    for (int i = 0; i < 8; i++)
        dst[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

/* state: continuation bytes still needed (bits 16..), and the range the next one must be
 * in (bits 8..15 low, 0..7 high): the first continuation of E0, ED, F0 and F4 is narrower,
 * which rules out overlongs, surrogates and code points past U+10FFFF. */
int cu_ws_utf8(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t need = *state >> 16, lo = (*state >> 8) & 0xff, hi = *state & 0xff;
    for (size_t i = 0; i < n; i++) {
        uint32_t b = p[i];
        if (need) {
            if (b < lo || b > hi)
                return -1;
            need--;
            lo = 0x80;
            hi = 0xbf;
            continue;
        }
        if (b < 0x80)
            continue;
        lo = 0x80;
        hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b == 0xe0) {
            need = 2;
            lo = 0xa0;
        } else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
            need = 2;
        } else if (b == 0xed) {
            need = 2;
            hi = 0x9f;
        } else if (b == 0xf0) {
            need = 3;
            lo = 0x90;
        } else if (b >= 0xf1 && b <= 0xf3) {
            need = 3;
        } else if (b == 0xf4) {
            need = 3;
            hi = 0x8f;
        } else {
            return -1;
        }
    }
    *state = need ? (need << 16 | lo << 8 | hi) : 0;
    return 0;
}

int cu_ws_close_parse(const uint8_t *p, size_t n, int *code)
{
    if (n == 0) {
        *code = CU_WS_CLOSE_NO_STATUS;
        return 0;
    }
    *code = CU_WS_CLOSE_PROTOCOL;
    if (n == 1)
        return -1;
    int c = p[0] << 8 | p[1];
    int allowed = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    if (!allowed)
        return -1;
    uint32_t st = 0;
    if (cu_ws_utf8(&st, p + 2, n - 2) != 0 || st != 0) {
        *code = CU_WS_CLOSE_INVALID_DATA;
        return -1;
    }
    *code = c;
    return 0;
}

/* ---- SHA-1 (RFC 3174) and base64 (RFC 4648), only for the accept value ---- */

static uint32_t rol(uint32_t x, int k)
{
    return x << k | x >> (32 - k);
}

static void sha1_block(uint32_t h[5], const uint8_t blk[64])
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 |
               (uint32_t)blk[4 * t + 2] << 8 | blk[4 * t + 3];
    for (int t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t tmp = rol(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void cu_ws_sha1(const uint8_t *p, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha1_block(h, p + i);
    uint8_t last[128] = {0};
    size_t rest = n - i;
    memcpy(last, p + i, rest);
    last[rest] = 0x80;
    size_t total = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++)
        last[total - 1 - k] = (uint8_t)(bits >> (8 * k));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int k = 0; k < 5; k++) {
        out[4 * k] = (uint8_t)(h[k] >> 24);
        out[4 * k + 1] = (uint8_t)(h[k] >> 16);
        out[4 * k + 2] = (uint8_t)(h[k] >> 8);
        out[4 * k + 3] = (uint8_t)h[k];
    }
}

void cu_ws_accept(const char *key, size_t klen, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t buf[128 + sizeof(guid)];
    if (klen > 128)
        klen = 128; /* a real key is 24 characters; longer ones cannot match anyway */
    memcpy(buf, key, klen);
    memcpy(buf + klen, guid, sizeof(guid) - 1);
    uint8_t d[21] = {0};
    cu_ws_sha1(buf, klen + sizeof(guid) - 1, d);
    size_t o = 0;
    for (int i = 0; i < 21; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    out[27] = '='; /* 20 bytes: the last group has two bytes, one pad character */
    out[28] = '\0';
}
