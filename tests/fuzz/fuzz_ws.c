/* libFuzzer target: the WebSocket codec over a stream of client frames. Every prefix of a
 * header is "incomplete" (never an error or a different header); payloads are unmasked in
 * two pieces and must equal unmasking whole; text is validated incrementally and must agree
 * with validating it whole; close payloads parse to a code a server may answer with. */
#include "http/ws.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    uint8_t *buf = malloc(size + 1);
    uint8_t *buf2 = malloc(size + 1);
    while (off < size) {
        cu_ws_frame_t f;
        int code = 0;
        int hl = cu_ws_parse_header(data + off, size - off, 1, data[0] & 1, 1 << 16, &f, &code);
        if (hl == -2)
            break;
        if (hl == -1) {
            assert(code == CU_WS_CLOSE_PROTOCOL || code == CU_WS_CLOSE_TOO_BIG);
            break;
        }
        assert(hl >= 6 && hl <= 14 && (size_t)hl == f.header_len && f.masked);
        for (int k = 0; k < hl; k++) {
            cu_ws_frame_t g;
            int c2;
            assert(cu_ws_parse_header(data + off, (size_t)k, 1, data[0] & 1, 1 << 16, &g, &c2) ==
                   -2);
        }
        off += (size_t)hl;
        size_t n = f.len < size - off ? (size_t)f.len : size - off;
        memcpy(buf, data + off, n);
        memcpy(buf2, data + off, n);
        cu_ws_mask(buf, n, f.mask, 0);
        size_t split = n ? data[off] % (n + 1) : 0;
        cu_ws_mask(buf2, split, f.mask, 0);
        cu_ws_mask(buf2 + split, n - split, f.mask, split);
        assert(memcmp(buf, buf2, n) == 0);
        uint32_t st1 = 0, st2 = 0;
        int whole = cu_ws_utf8(&st1, buf, n);
        int a = cu_ws_utf8(&st2, buf, split);
        int b = a == 0 ? cu_ws_utf8(&st2, buf + split, n - split) : -1;
        assert((whole == 0) == (b == 0));
        if (whole == 0)
            assert(st1 == st2);
        if (f.opcode == CU_WS_CLOSE) {
            int cc = 0;
            if (cu_ws_close_parse(buf, n, &cc) == 0)
                assert(cc == CU_WS_CLOSE_NO_STATUS || (cc >= 1000 && cc < 5000));
            else
                assert(cc == CU_WS_CLOSE_PROTOCOL || cc == CU_WS_CLOSE_INVALID_DATA);
        }
        off += n;
    }
    uint8_t hdr[10];
    size_t h = cu_ws_frame_header(hdr, CU_WS_BINARY, 1, 0, size);
    cu_ws_frame_t f;
    int code;
    assert(cu_ws_parse_header(hdr, h, 0, 0, 0, &f, &code) == (int)h && f.len == size);
    free(buf);
    free(buf2);
    return 0;
}
