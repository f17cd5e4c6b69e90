/* libFuzzer target: the request-head parser, whole and trickled, with options from the
 * first input byte; a complete head's slices must lie inside the input. */
#include "http/h1.h"

#include <assert.h>

static void check_slice(cu_str_t s, const char *buf, size_t len)
{
    if (s.len)
        assert(s.p >= buf && s.p + s.len <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cu_h1_header_t h[64], h2[64];
    cu_h1_request_t r, r2;
    cu_h1_opts_t o = {0};

    if (size < 1)
        return 0;
    unsigned f = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    o.limit_request_line = (f & 1) ? 64 : 4094;
    o.limit_request_fields = (f & 2) ? 4 : 100;
    o.limit_request_field_size = (f & 2) ? 32 : 8190;
    o.header_map = (enum cu_h1_header_map)((f >> 2) % 3);
    o.permit_obsolete_folding = (f >> 4) & 1;
    o.strip_header_spaces = (f >> 5) & 1;
    o.permit_unconventional_http_method = (f >> 6) & 1;
    o.casefold_http_method = (f >> 6) & 1;
    o.permit_unconventional_http_version = (f >> 7) & 1;

    r.headers = h;
    r.max_headers = 64;
    cu_h1_request_reset(&r);
    ssize_t rc = cu_h1_parse_request(buf, len, &r, &o);
    if (rc > 0) {
        assert((size_t)rc <= len && (size_t)rc == r.head_len);
        check_slice(r.method, buf, len);
        check_slice(r.target, buf, len);
        check_slice(r.path, buf, len);
        check_slice(r.query, buf, len);
        check_slice(r.fragment, buf, len);
        for (size_t i = 0; i < r.nheaders; i++) {
            char tmp[16384];
            check_slice(r.headers[i].name, buf, len);
            check_slice(r.headers[i].value, buf, len);
            if (r.headers[i].folded && r.headers[i].value.len <= sizeof(tmp))
                assert(cu_h1_unfold(&r.headers[i], tmp) <= r.headers[i].value.len);
        }
        char path[8192];
        if (r.path.len <= sizeof(path))
            assert(cu_h1_percent_decode(r.path, path) <= r.path.len);
    } else if (rc == -1) {
        assert(r.error != CU_H1E_NONE);
        assert(cu_h1_error_status(r.error) >= 400);
        /* gunicorn's texts for it, whole and into a buffer too small for them */
        char msg[64], big[4096];
        size_t m = cu_h1_error_message(&r, 0, big, sizeof(big));
        assert(m < sizeof(big) && big[m] == '\0');
        m = cu_h1_error_message(&r, 1, msg, sizeof(msg));
        assert(m < sizeof(msg) && msg[m] == '\0');
    } else {
        assert(rc == -2);
    }

    /* the same bytes one at a time: same outcome */
    r2.headers = h2;
    r2.max_headers = 64;
    cu_h1_request_reset(&r2);
    ssize_t rc2 = -2;
    for (size_t n = 1; n <= len && rc2 == -2; n++)
        rc2 = cu_h1_parse_request(buf, n, &r2, &o);
    assert(rc2 == rc || (rc == -2 && len == 0));
    if (rc == -1)
        assert(r2.error == r.error);
    if (rc > 0)
        assert(r2.nheaders == r.nheaders && r2.content_length == r.content_length &&
               r2.chunked == r.chunked && r2.keep_alive == r.keep_alive);
    return 0;
}
