/* Chunked decoder: sizes, extensions, terminators, trailers, caps, and every split point. */
#include "http/chunked.h"
#include "t.h"

struct res {
    int rc; /* CU_DONE, CU_ERROR or CU_AGAIN (input ran out) */
    int error;
    char body[4096];
    size_t body_len, used;
};

/* Decode `in` cut at `split` (then fed whole), or `step` bytes a call when step > 0. */
static struct res decode_ex(const char *in, size_t len, size_t split, size_t step, size_t max_line,
                            size_t max_trailer)
{
    struct res r = {0};
    cu_chunked_t d = {0};
    size_t off = 0;

    d.max_line = max_line;
    d.max_trailer = max_trailer;
    cu_chunked_init(&d);
    for (;;) {
        size_t end = step ? off + step : (off < split ? split : len);
        if (end > len)
            end = len;
        size_t c = 0;
        cu_str_t data = {0};
        int rc = cu_chunked_decode(&d, in + off, end - off, &c, &data);
        CHECK(c <= end - off);
        off += c;
        if (rc == CU_OK) {
            CHECK(data.len > 0 && data.p >= in && data.p + data.len <= in + off);
            if (r.body_len + data.len <= sizeof(r.body))
                memcpy(r.body + r.body_len, data.p, data.len);
            r.body_len += data.len;
            continue;
        }
        if (rc == CU_AGAIN && off < len)
            continue;
        r.rc = rc;
        r.error = d.error;
        r.used = off;
        if (rc == CU_ERROR) { /* sticky */
            CHECK(cu_chunked_decode(&d, in, len, &c, &data) == CU_ERROR && c == 0);
        }
        return r;
    }
}

static struct res decode(const char *in)
{
    return decode_ex(in, strlen(in), 0, 0, 0, 0);
}

/* Decoded the same whole, at every split point and byte by byte. */
static int ok_all_ways(const char *in, const char *body, size_t used)
{
    size_t len = strlen(in);
    int good = 1;
    for (size_t split = 0; split <= len + 1; split++) {
        struct res r =
            split <= len ? decode_ex(in, len, split, 0, 0, 0) : decode_ex(in, len, 0, 1, 0, 0);
        if (r.rc != CU_DONE || r.body_len != strlen(body) ||
            memcmp(r.body, body, r.body_len) != 0 || r.used != used) {
            fprintf(stderr, "  %s split %zu: rc %d err %d body %zu used %zu\n", in, split, r.rc,
                    r.error, r.body_len, r.used);
            good = 0;
        }
    }
    return good;
}

static int err_all_ways(const char *in, int error)
{
    size_t len = strlen(in);
    int good = 1;
    for (size_t split = 0; split <= len + 1; split++) {
        struct res r =
            split <= len ? decode_ex(in, len, split, 0, 0, 0) : decode_ex(in, len, 0, 1, 0, 0);
        if (r.rc != CU_ERROR || r.error != error) {
            fprintf(stderr, "  %s split %zu: rc %d err %d, want error %d\n", in, split, r.rc,
                    r.error, error);
            good = 0;
        }
    }
    return good;
}

int main(void)
{
    /* sizes */
    CHECK(ok_all_ways("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 26));
    CHECK(ok_all_ways("0005\r\nhello\r\n000\r\n\r\nGET", "hello", 20));
    CHECK(
        ok_all_ways("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789", 35));
    CHECK(ok_all_ways("0\r\n\r\n", "", 5));
    CHECK(err_all_ways("\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("g\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("-1\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("+1\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("0x5\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways(" 5\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways(" ;foo=bar\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("5 \r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("5\n;\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE)); /* bare LF */
    CHECK(err_all_ways("5\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("5\rhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE)); /* bare CR */
    /* overflow: 2^62 - 1 is the largest size; one hex digit more overflows */
    {
        struct res r = decode("3fffffffffffffff\r\nabc");
        CHECK(r.rc == CU_AGAIN && r.body_len == 3);
        CHECK(err_all_ways("4000000000000000\r\n", CU_CHUNKED_E_SIZE));
        CHECK(err_all_ways("ffffffffffffffffffff\r\n", CU_CHUNKED_E_SIZE));
        CHECK(err_all_ways("10000000000000000000000000000005\r\n", CU_CHUNKED_E_SIZE));
        r = decode("00000000000000000000000000000005\r\nhello\r\n0\r\n\r\n");
        CHECK(r.rc == CU_DONE && r.body_len == 5);
    }

    /* extensions */
    CHECK(ok_all_ways("5; some; parameters=stuff\r\nhello\r\n0;x\r\n\r\n", "hello", 41));
    CHECK(ok_all_ways("5 ; a = b ;c=\"q \\\" ;\"\r\nhello\r\n0\r\n\r\n", "hello", 35));
    CHECK(ok_all_ways("5;foo=\"bar baz\"\r\nhello\r\n0\r\n\r\n", "hello", 29));
    CHECK(err_all_ways("5;\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a=\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a \r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a=b \r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a=\"b\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a=b\rc\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_SIZE));
    CHECK(err_all_ways("5;a=b\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a@b\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));
    CHECK(err_all_ways("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", CU_CHUNKED_E_EXTENSION));

    /* data terminator */
    CHECK(err_all_ways("5\r\nhelloX\r\n0\r\n\r\n", CU_CHUNKED_E_TERMINATOR));
    CHECK(err_all_ways("5\r\nhello\n0\r\n\r\n", CU_CHUNKED_E_TERMINATOR));
    CHECK(err_all_ways("5\r\nhello\rX0\r\n\r\n", CU_CHUNKED_E_TERMINATOR));
    CHECK(err_all_ways("0\r\n\rX", CU_CHUNKED_E_TERMINATOR));
    {
        struct res r = decode("0\r\n"); /* missing final CRLF: truncated */
        CHECK(r.rc == CU_AGAIN);
        r = decode("5\r\nhel");
        CHECK(r.rc == CU_AGAIN && r.body_len == 3);
    }

    /* trailers */
    CHECK(ok_all_ways("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\nNEXT", "hello", 31));
    CHECK(err_all_ways("0\r\nContent-Length: 99\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nhost: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nTransfer-Encoding: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nTRAILER: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nAuthorization: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nTE: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(ok_all_ways("0\r\nTEX: x\r\nHos: y\r\nT: z\r\n\r\n", "", 27));
    CHECK(err_all_ways("0\r\nA B: x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nA : x\r\n\r\n", CU_CHUNKED_E_TRAILER_NAME));
    CHECK(err_all_ways("0\r\nAB\r\n\r\n", CU_CHUNKED_E_TRAILER));
    CHECK(err_all_ways("0\r\nA: x\x7f\r\n\r\n", CU_CHUNKED_E_TRAILER));
    CHECK(err_all_ways("0\r\nA: x\ny: z\r\n\r\n", CU_CHUNKED_E_TRAILER));
    CHECK(err_all_ways("0\r\nA: x\r\n y\r\n\r\n", CU_CHUNKED_E_TRAILER));
    CHECK(err_all_ways("0\r\n\n", CU_CHUNKED_E_TRAILER));

    /* caps */
    {
        char line[200];
        memset(line, '0', sizeof(line));
        memcpy(line + 150, "5\r\nhello\r\n0\r\n\r\n", 16);
        struct res r = decode_ex(line, 166, 0, 0, 160, 0);
        CHECK(r.rc == CU_DONE && r.body_len == 5);
        r = decode_ex(line, 166, 0, 0, 100, 0);
        CHECK(r.rc == CU_ERROR && r.error == CU_CHUNKED_E_SIZE);
        static const char tr[] = "0\r\nA: 0123456789\r\n\r\n";
        r = decode_ex(tr, sizeof(tr) - 1, 0, 0, 0, 17);
        CHECK(r.rc == CU_DONE);
        r = decode_ex(tr, sizeof(tr) - 1, 0, 0, 0, 16);
        CHECK(r.rc == CU_ERROR && r.error == CU_CHUNKED_E_LIMIT_TRAILER);
    }

    /* after CU_DONE: nothing more is consumed */
    {
        cu_chunked_t d = {0};
        size_t c;
        cu_str_t data;
        cu_chunked_init(&d);
        CHECK(cu_chunked_decode(&d, "0\r\n\r\nXX", 7, &c, &data) == CU_DONE && c == 5);
        CHECK(cu_chunked_decode(&d, "XX", 2, &c, &data) == CU_DONE && c == 0);
        CHECK(cu_chunked_decode(&d, "", 0, &c, &data) == CU_DONE);
    }

    /* encoder */
    {
        char out[20];
        CHECK(cu_chunked_header(out, 0) == 3 && memcmp(out, "0\r\n", 3) == 0);
        CHECK(cu_chunked_header(out, 0x1e) == 4 && memcmp(out, "1e\r\n", 4) == 0);
        CHECK(cu_chunked_header(out, SIZE_MAX) == 2 * sizeof(size_t) + 2);
        struct res r;
        char enc[64];
        size_t n = cu_chunked_header(enc, 11);
        memcpy(enc + n, "hello world\r\n0\r\n\r\n", 18);
        r = decode_ex(enc, n + 18, 0, 0, 0, 0);
        CHECK(r.rc == CU_DONE && r.body_len == 11);
    }
    return t_done("test_chunked");
}
