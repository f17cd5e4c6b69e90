/* The uwsgi protocol driver (http/proto.h: cu_proto_uwsgi): a uwsgi packet (http/uwsgi.c)
 * becomes the neutral request, with the client and the scheme the proxy's vars give; the
 * response goes back as an HTTP/1.1 head and body, which is what nginx's uwsgi module
 * reads, never chunked (a body of unknown length is delimited by closing). */
#include "config/config.h"
#include "http/conn.h"
#include "http/proto.h"
#include "http/uwsgi.h"
#include "net/listen.h"

#include <arpa/inet.h>

/* Per-connection state (c->pdata), allocated by the first request that needs it: a
 * PATH_INFO re-encoded and a target rebuilt live here until the request ends. */
typedef struct uwsgi_conn_s {
    cu_buf_t scratch;
} uwsgi_conn_t;

static void uwsgi_release(cu_conn_t *c)
{
    uwsgi_conn_t *u = c->pdata;
    if (u != NULL) {
        cu_buf_free(&u->scratch);
        cu_free(u);
        c->pdata = NULL;
    }
}

static cu_buf_t *scratch(cu_conn_t *c)
{
    if (c->pdata == NULL) {
        uwsgi_conn_t *u = cu_xcalloc(1, sizeof(*u));
        /* a PATH_INFO of 65535 '%' re-encoded, plus '?' and the query */
        cu_buf_init(&u->scratch, 0, 4 * CU_UWSGI_MAX_PACKET);
        c->pdata = u;
    }
    return &((uwsgi_conn_t *)c->pdata)->scratch;
}

static void uwsgi_reset(cu_conn_t *c)
{
    if (c->pdata != NULL) {
        cu_buf_t *b = &((uwsgi_conn_t *)c->pdata)->scratch;
        b->pos = b->len = 0;
    }
}

/* The socket's peer (or the PROXY protocol's source) as text: the request's peer unless
 * the vars name the client. Runs before every packet, so that one packet's vars never
 * leak into the next one's peer on a kept-alive connection. */
static void peer_from_addr(cu_peer_t *p)
{
    const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
    p->host[0] = '\0';
    p->port = 0;
    p->is_unix = sa->sa_family == AF_UNIX;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, p->host, sizeof(p->host));
        p->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, p->host, sizeof(p->host));
        p->port = ntohs(in6->sin6_port);
    }
}

/* REMOTE_ADDR/REMOTE_PORT from the proxy, when REMOTE_ADDR is an IP address (anything else
 * leaves the socket's peer). */
static void peer_from_vars(cu_peer_t *p, cu_str_t addr, cu_str_t port)
{
    char text[sizeof(p->host)];
    unsigned char bin[16];
    if (addr.len == 0 || addr.len >= sizeof(text))
        return;
    memcpy(text, addr.p, addr.len);
    text[addr.len] = '\0';
    if (inet_pton(AF_INET, text, bin) != 1 && inet_pton(AF_INET6, text, bin) != 1)
        return;
    memcpy(p->host, text, addr.len + 1);
    p->is_unix = 0;
    p->port = 0;
    unsigned v = 0;
    for (size_t i = 0; i < port.len && i < 6; i++) {
        unsigned d = (unsigned char)port.p[i] - '0';
        if (d > 9)
            return;
        v = v * 10 + d;
    }
    if (port.len > 0 && port.len < 6 && v <= 65535)
        p->port = (int)v;
}

/* The neutral request's path is raw (percent-encoded) for everyone who reads it, but
 * PATH_INFO arrives decoded by the proxy (which routed on it): escape its '%' so that
 * decoding gives it back unchanged, never decoded a second time. */
static int raw_path(cu_conn_t *c, cu_str_t pi, cu_str_t *out)
{
    size_t pct = 0;
    for (size_t i = 0; i < pi.len; i++)
        pct += pi.p[i] == '%';
    if (pct == 0) {
        *out = pi;
        return CU_OK;
    }
    cu_buf_t *b = scratch(c);
    if (cu_buf_reserve(b, pi.len + 2 * pct) != CU_OK)
        return CU_ERROR;
    char *d = b->data + b->len;
    for (size_t i = 0; i < pi.len; i++) {
        *d++ = pi.p[i];
        if (pi.p[i] == '%') {
            *d++ = '2';
            *d++ = '5';
        }
    }
    *out = (cu_str_t){b->data + b->len, pi.len + 2 * pct};
    b->len += out->len;
    return CU_OK;
}

/* The request-target: REQUEST_URI when the proxy sent it, else path[?query] (gunicorn's
 * uri). */
static int target(cu_conn_t *c, const cu_uwsgi_request_t *ur, cu_str_t *out)
{
    cu_req_t *r = &c->request;
    if (ur->request_uri.len > 0) {
        *out = ur->request_uri;
        return CU_OK;
    }
    if (ur->query_string.len == 0) {
        *out = r->path;
        return CU_OK;
    }
    cu_buf_t *b = scratch(c);
    size_t plen = r->path.len, n = plen + 1 + ur->query_string.len;
    /* the path may live in this buffer, which reserve may move: keep its offset */
    int in_scratch = b->data != NULL && r->path.p >= b->data && r->path.p < b->data + b->len;
    size_t poff = in_scratch ? (size_t)(r->path.p - b->data) : 0;
    if (cu_buf_reserve(b, n) != CU_OK)
        return CU_ERROR;
    if (in_scratch)
        r->path.p = b->data + poff;
    char *d = b->data + b->len;
    memcpy(d, r->path.p, plen);
    d[plen] = '?';
    memcpy(d + plen + 1, ur->query_string.p, ur->query_string.len);
    *out = (cu_str_t){d, n};
    b->len += n;
    return CU_OK;
}

static int uwsgi_parse(cu_conn_t *c, int *status, const char **msg)
{
    const cu_conn_settings_t *s = c->settings;
    cu_req_t *r = &c->request;
    cu_uwsgi_request_t ur = {.vars = NULL, .max_vars = CU_UWSGI_MAX_VARS};

    peer_from_addr(&c->peer);
    /* Scheme and forwarding come from the vars only: X-Forwarded-* fields on a uwsgi hop
     * are whatever the client sent nginx. */
    c->peer.trusted_forwarder = 0;
    if (s->uwsgi_allow != NULL &&
        !cu_cidr_match(s->uwsgi_allow, (const struct sockaddr *)&c->peer.addr)) {
        *status = 403;
        *msg = "uWSGI request not allowed (uwsgi_allow_ips)";
        return CU_ERROR;
    }
    const char *buf = cu_buf_head(&c->in);
    ssize_t n = cu_uwsgi_parse(buf, cu_buf_unread(&c->in), &ur, &s->uwsgi);
    if (n == -2)
        return CU_AGAIN; /* a packet is at most 64 KiB: head_max holds one */
    if (n < 0) {
        *status = cu_uwsgi_error_status(ur.error);
        *msg = cu_uwsgi_error_name(ur.error);
        return CU_ERROR;
    }

    /* The request, as gunicorn's UWSGIRequest builds it. */
    uwsgi_reset(c);
    memset(r, 0, sizeof(*r));
    r->method = ur.method.p ? ur.method : CU_STR("GET");
    r->query = ur.query_string.p ? ur.query_string : CU_STR("");
    r->version_major = 1;
    r->version_minor = 1;
    r->content_length = ur.content_length;
    r->keep_alive = !cu_str_ieq_lit(ur.connection, "close");
    if (raw_path(c, ur.path_info.len ? ur.path_info : CU_STR("/"), &r->path) != CU_OK ||
        target(c, &ur, &r->target) != CU_OK) {
        *status = 431;
        *msg = "uWSGI packet too large";
        return CU_ERROR;
    }

    /* Header fields: HTTP_* vars as gunicorn names them (HTTP_ACCEPT_ENCODING ->
     * ACCEPT-ENCODING; the environ maps them back), CONTENT_TYPE and CONTENT_LENGTH. The
     * names are rewritten in place in the read buffer: idempotent, so that parsing the same
     * bytes again (the engine does after a read-ahead) gives the same request. */
    char *w = c->in.data + c->in.pos;
    size_t off = 0, nh = 0, ct = SIZE_MAX, cl = SIZE_MAX;
    cu_uwsgi_var_t v;
    while (cu_uwsgi_next_var(buf, (size_t)n, &off, &v)) {
        cu_str_t name;
        size_t *slot = NULL; /* CONTENT_*: one entry each, the last one wins (a dict) */
        if (v.key.len > 5 && memcmp(v.key.p, "HTTP_", 5) == 0) {
            char *k = w + (v.key.p - buf);
            for (size_t j = 5; j < v.key.len; j++)
                if (k[j] == '_')
                    k[j] = '-';
            name = (cu_str_t){v.key.p + 5, v.key.len - 5};
        } else if (v.key.len == 12 && memcmp(v.key.p, "CONTENT_TYPE", 12) == 0) {
            name = CU_STR("CONTENT-TYPE");
            slot = &ct;
        } else if (v.key.len == 14 && memcmp(v.key.p, "CONTENT_LENGTH", 14) == 0) {
            name = CU_STR("CONTENT-LENGTH");
            slot = &cl;
        } else {
            continue;
        }
        size_t i = slot && *slot != SIZE_MAX ? *slot : nh++;
        if (slot)
            *slot = i;
        cu_assert(i < s->max_headers); /* the parser capped HTTP_* at max_fields; + 2 */
        c->hdrs[i].name = name;
        c->hdrs[i].value = v.value;
        c->hdrs[i].folded = 0;
    }
    r->headers = c->hdrs;
    r->nheaders = nh;
    c->head_len = (size_t)n;

    peer_from_vars(&c->peer, ur.remote_addr, ur.remote_port);
    if (cu_uwsgi_https_on(ur.https) || cu_str_ieq_lit(ur.url_scheme, "https"))
        c->scheme = "https";
    else if (cu_str_ieq_lit(ur.url_scheme, "http"))
        c->scheme = "http";
    else
        c->scheme = c->listener && c->listener->tf && c->listener->tf->scheme
                        ? c->listener->tf->scheme
                        : "http";
    return CU_OK;
}

/* HTTP/1.1 head as cu_proto_h1 writes it, but a body of unknown length is close-delimited:
 * nginx would hand chunk markers to the client as body bytes. */
static int uwsgi_emit_head(cu_conn_t *c, int64_t final_len)
{
    return cu_h1_write_head(c, final_len, 0);
}

static int uwsgi_error_page(cu_conn_t *c, int status, const char *reason, const char *msg)
{
    return cu_proto_h1.error_page(c, status, reason, msg);
}

const cu_proto_t cu_proto_uwsgi = {
    .name = "uwsgi",
    .reset = uwsgi_reset,
    .parse = uwsgi_parse,
    .emit_head = uwsgi_emit_head,
    .error_page = uwsgi_error_page,
    .continue_100 = NULL, /* the proxy handled Expect: 100-continue */
    .release = uwsgi_release,
};
