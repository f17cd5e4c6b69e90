/* RFC 6455 codec: the RFC's own frame examples (5.7), the handshake example (1.3), header
 * errors and their close codes, masking at any offset, close payloads, UTF-8 edge cases. */
#include "http/ws.h"
#include "t.h"

#include <stdint.h>

static int parse(const uint8_t *p, size_t n, int mask, uint64_t max, cu_ws_frame_t *f, int *code)
{
    return cu_ws_parse_header(p, n, mask, 0, max, f, code);
}

static void rfc_examples(void)
{
    cu_ws_frame_t f;
    int code = 0;
    /* A single-frame unmasked text message "Hello" */
    const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    CHECK(parse(hello, sizeof(hello), 0, 0, &f, &code) == 2);
    CHECK(f.fin && f.opcode == CU_WS_TEXT && f.len == 5 && !f.masked);
    CHECK(parse(hello, sizeof(hello), 1, 0, &f, &code) == -1 && code == CU_WS_CLOSE_PROTOCOL);
    /* A single-frame masked text message "Hello" */
    uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK(parse(masked, sizeof(masked), 1, 0, &f, &code) == 6);
    CHECK(f.masked && f.len == 5 && f.mask[0] == 0x37 && f.mask[3] == 0x3d);
    cu_ws_mask(masked + 6, 5, f.mask, 0);
    CHECK(memcmp(masked + 6, "Hello", 5) == 0);
    /* A fragmented unmasked text message: "Hel" then "lo" */
    const uint8_t frag1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    const uint8_t frag2[] = {0x80, 0x02, 0x6c, 0x6f};
    CHECK(parse(frag1, 5, 0, 0, &f, &code) == 2 && !f.fin && f.opcode == CU_WS_TEXT);
    CHECK(parse(frag2, 4, 0, 0, &f, &code) == 2 && f.fin && f.opcode == CU_WS_CONT);
    /* Unmasked ping "Hello" */
    const uint8_t ping[] = {0x89, 0x05};
    CHECK(parse(ping, 2, 0, 0, &f, &code) == 2 && f.opcode == CU_WS_PING && f.len == 5);
    /* 256 bytes binary in a single unmasked frame; 64 KiB */
    const uint8_t b256[] = {0x82, 0x7e, 0x01, 0x00};
    CHECK(parse(b256, 4, 0, 0, &f, &code) == 4 && f.len == 256);
    const uint8_t b64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    CHECK(parse(b64k, 10, 0, 0, &f, &code) == 10 && f.len == 65536);
    /* incomplete at every cut */
    for (size_t k = 0; k < 10; k++)
        CHECK(parse(b64k, k, 0, 0, &f, &code) == -2);
    for (size_t k = 0; k < 6; k++)
        CHECK(parse(masked, k, 1, 0, &f, &code) == -2);
}

static void header_errors(void)
{
    cu_ws_frame_t f;
    int code = 0;
    const uint8_t rsv2[] = {0xa1, 0x80, 1, 2, 3, 4};
    CHECK(parse(rsv2, 6, 1, 0, &f, &code) == -1 && code == CU_WS_CLOSE_PROTOCOL);
    const uint8_t rsv1[] = {0xc1, 0x80, 1, 2, 3, 4};
    CHECK(parse(rsv1, 6, 1, 0, &f, &code) == -1);
    CHECK(cu_ws_parse_header(rsv1, 6, 1, 1, 0, &f, &code) == 6 && f.rsv1); /* deflate on */
    const uint8_t op3[] = {0x83, 0x80, 1, 2, 3, 4};
    CHECK(parse(op3, 6, 1, 0, &f, &code) == -1);
    const uint8_t opb[] = {0x8b, 0x80, 1, 2, 3, 4};
    CHECK(parse(opb, 6, 1, 0, &f, &code) == -1);
    const uint8_t frag_ping[] = {0x09, 0x80, 1, 2, 3, 4};
    CHECK(parse(frag_ping, 6, 1, 0, &f, &code) == -1);
    const uint8_t big_ping[] = {0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4};
    CHECK(parse(big_ping, 8, 1, 0, &f, &code) == -1);
    const uint8_t ping125[] = {0x89, 0xfd, 1, 2, 3, 4};
    CHECK(parse(ping125, 6, 1, 0, &f, &code) == 6 && f.len == 125);
    const uint8_t msb[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK(parse(msb, 14, 1, 0, &f, &code) == -1 && code == CU_WS_CLOSE_PROTOCOL);
    const uint8_t big[] = {0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4}; /* 4096 bytes */
    CHECK(parse(big, 8, 1, 4095, &f, &code) == -1 && code == CU_WS_CLOSE_TOO_BIG);
    CHECK(parse(big, 8, 1, 4096, &f, &code) == 8 && f.len == 4096);
}

static void framing_and_masking(void)
{
    uint8_t h[10];
    cu_ws_frame_t f;
    int code;
    uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    size_t hl[] = {2, 2, 2, 4, 4, 10, 10};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = cu_ws_frame_header(h, CU_WS_BINARY, 1, 0, lens[i]);
        CHECK(n == hl[i]);
        CHECK(parse(h, n, 0, 0, &f, &code) == (int)n && f.len == lens[i] && f.fin &&
              f.opcode == CU_WS_BINARY);
    }
    CHECK(cu_ws_frame_header(h, CU_WS_TEXT, 0, 1, 3) == 2 && h[0] == 0x41);
    /* masking in pieces at every split equals masking whole */
    uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t whole[37], parts[37];
    for (int i = 0; i < 37; i++)
        whole[i] = parts[i] = (uint8_t)(i * 7);
    cu_ws_mask(whole, 37, mask, 0);
    for (size_t split = 0; split <= 37; split++) {
        uint8_t tmp[37];
        memcpy(tmp, parts, 37);
        cu_ws_mask(tmp, split, mask, 0);
        cu_ws_mask(tmp + split, 37 - split, mask, split);
        CHECK(memcmp(tmp, whole, 37) == 0);
    }
    cu_ws_mask(whole, 37, mask, 0);
    CHECK(memcmp(whole, parts, 37) == 0);
}

static int utf8_ok(const char *s, size_t n)
{
    uint32_t st = 0;
    return cu_ws_utf8(&st, (const uint8_t *)s, n) == 0 && st == 0;
}

static void utf8(void)
{
    CHECK(utf8_ok("", 0));
    CHECK(utf8_ok("hello", 5));
    CHECK(utf8_ok("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11)); /* κόσμε */
    CHECK(utf8_ok("\xf0\x9f\x98\x80", 4));                              /* U+1F600 */
    CHECK(utf8_ok("\xf4\x8f\xbf\xbf", 4));                              /* U+10FFFF */
    CHECK(utf8_ok("\xed\x9f\xbf", 3));                                  /* U+D7FF */
    CHECK(!utf8_ok("\xf4\x90\x80\x80", 4));                             /* past U+10FFFF */
    CHECK(!utf8_ok("\xed\xa0\x80", 3));                                 /* surrogate */
    CHECK(!utf8_ok("\xc0\xaf", 2));                                     /* overlong '/' */
    CHECK(!utf8_ok("\xe0\x80\xaf", 3));                                 /* overlong */
    CHECK(!utf8_ok("\xf0\x80\x80\xaf", 4));                             /* overlong */
    CHECK(!utf8_ok("\x80", 1));
    CHECK(!utf8_ok("\xff", 1));
    CHECK(!utf8_ok("\xce", 1)); /* truncated: valid so far, not complete */
    /* split inside a character across fragments */
    const char *s = "a\xf0\x9f\x98\x80z";
    for (size_t k = 0; k <= 6; k++) {
        uint32_t st = 0;
        CHECK(cu_ws_utf8(&st, (const uint8_t *)s, k) == 0);
        CHECK(cu_ws_utf8(&st, (const uint8_t *)s + k, 6 - k) == 0 && st == 0);
    }
    uint32_t st = 0;
    CHECK(cu_ws_utf8(&st, (const uint8_t *)"\xf0\x9f", 2) == 0 && st != 0);
    CHECK(cu_ws_utf8(&st, (const uint8_t *)"A", 1) == -1);
}

static void close_payloads(void)
{
    int code;
    CHECK(cu_ws_close_parse(NULL, 0, &code) == 0 && code == CU_WS_CLOSE_NO_STATUS);
    CHECK(cu_ws_close_parse((const uint8_t *)"\x03", 1, &code) == -1 && code == 1002);
    CHECK(cu_ws_close_parse((const uint8_t *)"\x03\xe8", 2, &code) == 0 && code == 1000);
    CHECK(cu_ws_close_parse((const uint8_t *)"\x03\xe8ok", 4, &code) == 0 && code == 1000);
    CHECK(cu_ws_close_parse((const uint8_t *)"\x0f\xa0", 2, &code) == 0 && code == 4000);
    int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        CHECK(cu_ws_close_parse(p, 2, &code) == -1 && code == 1002);
    }
    CHECK(cu_ws_close_parse((const uint8_t *)"\x03\xe8\xc0\xaf", 4, &code) == -1 && code == 1007);
}

static void handshake(void)
{
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    cu_ws_accept(key, strlen(key), out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0); /* RFC 6455 1.3 */
    uint8_t d[20];
    cu_ws_sha1((const uint8_t *)"abc", 3, d); /* RFC 3174 test 1 */
    CHECK(d[0] == 0xa9 && d[1] == 0x99 && d[19] == 0x9d);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56: 2 blocks */
    cu_ws_sha1((const uint8_t *)two, strlen(two), d);
    CHECK(d[0] == 0x84 && d[1] == 0x98 && d[19] == 0xf1);
}

int main(void)
{
    rfc_examples();
    header_errors();
    framing_and_masking();
    utf8();
    close_payloads();
    handshake();
    return t_done("test_ws");
}
