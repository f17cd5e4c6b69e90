/* uwsgi request-packet parser: header, vars block, the well-known vars and the limits.
 * Contract in uwsgi.h. */
#include "http/uwsgi.h"

int cu_uwsgi_error_status(enum cu_uwsgi_error e)
{
    switch (e) {
    case CU_UWSGIE_NONE: return 0;
    case CU_UWSGIE_MODIFIER: return 501;
    case CU_UWSGIE_LIMIT_PACKET:
    case CU_UWSGIE_LIMIT_FIELDS:
    case CU_UWSGIE_LIMIT_FIELD_SIZE: return 431;
    case CU_UWSGIE_HTTP:
    case CU_UWSGIE_VARS:
    case CU_UWSGIE_TOO_MANY_VARS:
    case CU_UWSGIE_CONTENT_LENGTH: return 400;
    }
    return 400;
}

const char *cu_uwsgi_error_name(enum cu_uwsgi_error e)
{
    switch (e) {
    case CU_UWSGIE_NONE: return "";
    case CU_UWSGIE_HTTP: return "Invalid uWSGI header: an HTTP request on a uwsgi listener";
    case CU_UWSGIE_MODIFIER: return "Unsupported uWSGI modifier1";
    case CU_UWSGIE_VARS: return "Invalid uWSGI header: truncated vars block";
    case CU_UWSGIE_TOO_MANY_VARS: return "Invalid uWSGI header: too many variables";
    case CU_UWSGIE_CONTENT_LENGTH: return "Invalid uWSGI header: bad CONTENT_LENGTH";
    case CU_UWSGIE_LIMIT_PACKET: return "uWSGI packet too large";
    case CU_UWSGIE_LIMIT_FIELDS: return "Error parsing headers: 'limit request headers fields'";
    case CU_UWSGIE_LIMIT_FIELD_SIZE:
        return "Error parsing headers: 'limit request headers fields size'";
    }
    return "Invalid uWSGI header";
}

void cu_uwsgi_request_reset(cu_uwsgi_request_t *req)
{
    cu_uwsgi_var_t *vars = req->vars;
    size_t max_vars = req->max_vars;
    memset(req, 0, sizeof(*req));
    req->vars = vars;
    req->max_vars = max_vars;
}

static ssize_t fail(cu_uwsgi_request_t *req, enum cu_uwsgi_error e)
{
    req->error = e;
    return -1;
}

static size_t le16(const unsigned char *p)
{
    return (size_t)p[0] | ((size_t)p[1] << 8);
}

static int key_is(cu_str_t k, const char *lit, size_t n)
{
    return k.len == n && memcmp(k.p, lit, n) == 0;
}
#define KEY_IS(k, lit) key_is((k), (lit), sizeof(lit) - 1)

/* "" -> 0; digits -> value; anything else (sign, space, overflow) -> -1. */
static int64_t parse_length(cu_str_t v)
{
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.p[i] - '0';
        if (d > 9 || n > (INT64_MAX - (int64_t)d) / 10)
            return -1;
        n = n * 10 + (int64_t)d;
    }
    return n;
}

/* Keep the vars the request is built from (last one wins). */
static int note_var(cu_uwsgi_request_t *req, cu_str_t k, cu_str_t v)
{
    if (k.len > 5 && memcmp(k.p, "HTTP_", 5) == 0) {
        if (KEY_IS(k, "HTTP_CONNECTION"))
            req->connection = v;
        return CU_OK;
    }
    if (KEY_IS(k, "REQUEST_METHOD"))
        req->method = v;
    else if (KEY_IS(k, "PATH_INFO"))
        req->path_info = v;
    else if (KEY_IS(k, "QUERY_STRING"))
        req->query_string = v;
    else if (KEY_IS(k, "REQUEST_URI"))
        req->request_uri = v;
    else if (KEY_IS(k, "CONTENT_TYPE"))
        req->content_type = v;
    else if (KEY_IS(k, "HTTPS"))
        req->https = v;
    else if (KEY_IS(k, "wsgi.url_scheme"))
        req->url_scheme = v;
    else if (KEY_IS(k, "REMOTE_ADDR"))
        req->remote_addr = v;
    else if (KEY_IS(k, "REMOTE_PORT"))
        req->remote_port = v;
    else if (KEY_IS(k, "CONTENT_LENGTH")) {
        int64_t n = parse_length(v);
        if (n < 0)
            return CU_ERROR;
        req->content_length = n;
    }
    return CU_OK;
}

ssize_t cu_uwsgi_parse(const char *buf, size_t len, cu_uwsgi_request_t *req,
                       const cu_uwsgi_opts_t *opts)
{
    const unsigned char *u = (const unsigned char *)buf;
    size_t max_datasize = opts->max_datasize ? opts->max_datasize : CU_UWSGI_MAX_DATASIZE;
    size_t max_vars = req->max_vars < CU_UWSGI_MAX_VARS ? req->max_vars : CU_UWSGI_MAX_VARS;

    cu_uwsgi_request_reset(req);
    if (len == 0)
        return -2;
    req->modifier1 = u[0];
    if (u[0] != 0)
        return fail(req, u[0] >= 'A' && u[0] <= 'Z' ? CU_UWSGIE_HTTP : CU_UWSGIE_MODIFIER);
    if (len < 3)
        return -2;
    req->datasize = le16(u + 1);
    if (req->datasize > max_datasize)
        return fail(req, CU_UWSGIE_LIMIT_PACKET);
    if (len < CU_UWSGI_HEADER_LEN + req->datasize)
        return -2;
    req->modifier2 = u[3];

    const char *p = buf + CU_UWSGI_HEADER_LEN, *end = p + req->datasize;
    while (p < end) {
        cu_str_t k, v;
        if (end - p < 2)
            return fail(req, CU_UWSGIE_VARS);
        k.len = le16((const unsigned char *)p);
        k.p = p + 2;
        if ((size_t)(end - k.p) < k.len + 2)
            return fail(req, CU_UWSGIE_VARS);
        v.len = le16((const unsigned char *)k.p + k.len);
        v.p = k.p + k.len + 2;
        if ((size_t)(end - v.p) < v.len)
            return fail(req, CU_UWSGIE_VARS);
        p = v.p + v.len;

        if (req->nvars >= max_vars)
            return fail(req, CU_UWSGIE_TOO_MANY_VARS);
        if (k.len > 5 && memcmp(k.p, "HTTP_", 5) == 0) {
            if (opts->max_fields && req->nfields >= opts->max_fields)
                return fail(req, CU_UWSGIE_LIMIT_FIELDS);
            if (opts->max_field_size && k.len - 5 + v.len + 4 > opts->max_field_size)
                return fail(req, CU_UWSGIE_LIMIT_FIELD_SIZE);
            req->nfields++;
        }
        if (note_var(req, k, v) != CU_OK)
            return fail(req, CU_UWSGIE_CONTENT_LENGTH);
        if (req->vars) {
            req->vars[req->nvars].key = k;
            req->vars[req->nvars].value = v;
        }
        req->nvars++;
    }
    return (ssize_t)(CU_UWSGI_HEADER_LEN + req->datasize);
}

int cu_uwsgi_next_var(const char *buf, size_t plen, size_t *off, cu_uwsgi_var_t *v)
{
    size_t o = *off < CU_UWSGI_HEADER_LEN ? CU_UWSGI_HEADER_LEN : *off;
    if (o + 4 > plen)
        return 0;
    const unsigned char *u = (const unsigned char *)buf;
    v->key = (cu_str_t){buf + o + 2, le16(u + o)};
    o += 2 + v->key.len;
    cu_assert(o + 2 <= plen); /* the packet was validated by cu_uwsgi_parse */
    v->value = (cu_str_t){buf + o + 2, le16(u + o)};
    o += 2 + v->value.len;
    cu_assert(o <= plen);
    *off = o;
    return 1;
}

int cu_uwsgi_https_on(cu_str_t s)
{
    return cu_str_ieq_lit(s, "on") || cu_str_ieq_lit(s, "1") || cu_str_ieq_lit(s, "true");
}
