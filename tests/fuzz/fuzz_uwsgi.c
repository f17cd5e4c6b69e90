/* libFuzzer target: the uwsgi packet parser. The first byte chooses the limits. Checks:
 * every slice lies inside the packet, the counts respect the limits, every prefix of an
 * accepted packet is incomplete, every prefix of a refused one is incomplete or refused
 * the same way, and the same bytes in a larger buffer give the same verdict. */
#include "http/uwsgi.h"

#include <assert.h>

static cu_uwsgi_var_t vars[CU_UWSGI_MAX_VARS];

static ssize_t run(const char *in, size_t len, cu_uwsgi_request_t *r, size_t max_vars,
                   const cu_uwsgi_opts_t *o)
{
    memset(r, 0, sizeof(*r));
    r->vars = vars;
    r->max_vars = max_vars;
    return cu_uwsgi_parse(in, len, r, o);
}

static int inside(cu_str_t s, const char *lo, const char *hi)
{
    return s.p == NULL ? s.len == 0 : (s.p >= lo && s.p + s.len <= hi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned opt = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    cu_uwsgi_opts_t o = {
        .max_datasize = (opt & 1) ? 64 : 0,
        .max_fields = (opt & 2) ? 2 : 100,
        .max_field_size = (opt & 4) ? 16 : 8190,
    };
    size_t max_vars = (opt & 8) ? 4 : CU_UWSGI_MAX_VARS;
    cu_uwsgi_request_t r;

    ssize_t rc = run(in, len, &r, max_vars, &o);
    assert(rc == -1 || rc == -2 || (rc >= CU_UWSGI_HEADER_LEN && (size_t)rc <= len));
    assert((rc == -1) == (r.error != CU_UWSGIE_NONE));
    if (rc > 0) {
        const char *end = in + rc;
        assert((size_t)rc == CU_UWSGI_HEADER_LEN + r.datasize);
        assert(r.modifier1 == 0 && r.nvars <= max_vars && r.nfields <= o.max_fields);
        for (size_t i = 0; i < r.nvars; i++)
            assert(inside(r.vars[i].key, in, end) && inside(r.vars[i].value, in, end));
        assert(inside(r.method, in, end) && inside(r.path_info, in, end));
        assert(inside(r.request_uri, in, end) && inside(r.remote_addr, in, end));
        assert(r.content_length >= 0);
        /* the walk over the accepted packet finds exactly the stored vars */
        size_t off = 0, k = 0;
        cu_uwsgi_var_t v;
        while (cu_uwsgi_next_var(in, (size_t)rc, &off, &v)) {
            assert(k < r.nvars && v.key.p == r.vars[k].key.p && v.key.len == r.vars[k].key.len);
            assert(v.value.p == r.vars[k].value.p && v.value.len == r.vars[k].value.len);
            k++;
        }
        assert(k == r.nvars && (r.nvars == 0 || off == (size_t)rc));
    }
    enum cu_uwsgi_error e = r.error;
    size_t whole = rc > 0 ? (size_t)rc : len;
    for (size_t n = 0; n < whole && n < 512; n++) {
        ssize_t p = run(in, n, &r, max_vars, &o);
        assert(p == -2 || (p == -1 && r.error == e));
    }
    if (rc != -2 && len > 0) {
        /* trailing bytes (the body, the next packet) change nothing */
        static char big[CU_UWSGI_MAX_PACKET + 2048];
        size_t n = len < sizeof(big) - 1 ? len : sizeof(big) - 1;
        memcpy(big, in, n);
        big[n] = 'x';
        if (n == len) {
            ssize_t p = run(big, n + 1, &r, max_vars, &o);
            assert(p == rc && r.error == e);
        }
    }
    return 0;
}
