/* libFuzzer target: the chunked decoder fed whole and at a split point from the first
 * byte; both must agree on the outcome and the body. */
#include "http/chunked.h"

#include <assert.h>

static int run(const char *in, size_t len, size_t split, char *body, size_t *blen)
{
    cu_chunked_t d = {0};
    size_t off = 0;
    cu_chunked_init(&d);
    *blen = 0;
    for (;;) {
        size_t end = off < split ? split : len;
        size_t c = 0;
        cu_str_t data = {0};
        int rc = cu_chunked_decode(&d, in + off, end - off, &c, &data);
        assert(c <= end - off);
        off += c;
        if (rc == CU_OK) {
            assert(data.len > 0 && data.p >= in && data.p + data.len <= in + off);
            if (*blen + data.len <= 65536)
                memcpy(body + *blen, data.p, data.len);
            *blen += data.len;
            continue;
        }
        if (rc == CU_AGAIN && off < len)
            continue;
        return rc == CU_ERROR ? 1000 + d.error : rc;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char b1[65536], b2[65536];
    size_t l1, l2;
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, split = len ? data[0] % (len + 1) : 0;
    int r1 = run(in, len, 0, b1, &l1);
    int r2 = run(in, len, split, b2, &l2);
    assert(r1 == r2 && l1 == l2);
    assert(l1 > 65536 || memcmp(b1, b2, l1) == 0);
    return 0;
}
