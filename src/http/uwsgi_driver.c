/* The uwsgi protocol driver: a uwsgi packet becomes the connection's request, peer and
 * scheme. Contract in uwsgi_driver.h. */
#include "http/uwsgi_driver.h"
#include "net/listen.h"

#include <arpa/inet.h>

/* Vars a packet may carry beyond its header fields (nginx's uwsgi_params sends 15). */
#define CGI_VARS 128

struct cu_uwsgi_conn_s {
    cu_uwsgi_var_t *vars;
    size_t max_vars;
    cu_buf_t scratch; /* PATH_INFO re-encoded and the target rebuilt, when needed */
};

void cu_uwsgi_conn_free(cu_uwsgi_conn_t *u)
{
    if (u == NULL)
        return;
    cu_free(u->vars);
    cu_buf_free(&u->scratch);
    cu_free(u);
}

static cu_uwsgi_conn_t *state(cu_conn_t *c)
{
    if (c->uwsgi == NULL) {
        cu_uwsgi_conn_t *u = cu_xcalloc(1, sizeof(*u));
        size_t fields = c->settings->uwsgi.max_fields;
        u->max_vars = fields + CGI_VARS < CU_UWSGI_MAX_VARS ? fields + CGI_VARS : CU_UWSGI_MAX_VARS;
        u->vars = cu_xcalloc(u->max_vars, sizeof(*u->vars));
        /* a PATH_INFO of 65535 '%' re-encoded, plus '?' and the query */
        cu_buf_init(&u->scratch, 0, 4 * CU_UWSGI_MAX_PACKET);
        c->uwsgi = u;
    }
    return c->uwsgi;
}

/* The socket's peer (or the PROXY protocol's source) as text: the request's peer unless
 * the vars name the client. */
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

/* REMOTE_ADDR/REMOTE_PORT from the proxy, when REMOTE_ADDR is an IP address. */
static void peer_from_vars(cu_peer_t *p, cu_str_t addr, cu_str_t port)
{
    char text[sizeof(p->host)];
    unsigned char bin[16];
    if (addr.p == NULL || addr.len == 0 || addr.len >= sizeof(text))
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

/* The request's path is raw (percent-encoded) for everyone who reads it, but PATH_INFO
 * arrives decoded by the proxy: escape its '%' so that decoding gives it back unchanged. */
static int raw_path(cu_uwsgi_conn_t *u, cu_str_t pi, cu_str_t *out)
{
    size_t pct = 0;
    for (size_t i = 0; i < pi.len; i++)
        pct += pi.p[i] == '%';
    if (pct == 0) {
        *out = pi;
        return CU_OK;
    }
    if (cu_buf_reserve(&u->scratch, pi.len + 2 * pct) != CU_OK)
        return CU_ERROR;
    char *d = u->scratch.data + u->scratch.len;
    for (size_t i = 0; i < pi.len; i++) {
        *d++ = pi.p[i];
        if (pi.p[i] == '%') {
            *d++ = '2';
            *d++ = '5';
        }
    }
    *out = (cu_str_t){u->scratch.data + u->scratch.len, pi.len + 2 * pct};
    u->scratch.len += out->len;
    return CU_OK;
}

/* The request-target: REQUEST_URI when the proxy sent it, else path[?query] (gunicorn's
 * uri). */
static int target(cu_uwsgi_conn_t *u, const cu_uwsgi_request_t *ur, cu_str_t path, cu_str_t *out)
{
    if (ur->request_uri.p != NULL && ur->request_uri.len > 0) {
        *out = ur->request_uri;
        return CU_OK;
    }
    if (ur->query_string.len == 0) {
        *out = path;
        return CU_OK;
    }
    size_t n = path.len + 1 + ur->query_string.len;
    if (cu_buf_reserve(&u->scratch, n) != CU_OK)
        return CU_ERROR;
    /* reserve may move the buffer: a path living in it is copied from its new place */
    char *d = u->scratch.data + u->scratch.len;
    memmove(d, path.p, path.len);
    d[path.len] = '?';
    memcpy(d + path.len + 1, ur->query_string.p, ur->query_string.len);
    *out = (cu_str_t){d, n};
    u->scratch.len += n;
    return CU_OK;
}

static int is_http_var(cu_str_t k)
{
    return k.len > 5 && memcmp(k.p, "HTTP_", 5) == 0;
}

ssize_t cu_uwsgi_conn_parse(cu_conn_t *c, int allowed, int *status, char *msg, size_t msglen)
{
    cu_uwsgi_conn_t *u = state(c);
    cu_h1_request_t *r = &c->req;
    cu_uwsgi_request_t ur = {.vars = u->vars, .max_vars = u->max_vars};

    peer_from_addr(&c->peer);
    /* Scheme and forwarding come from the vars only: X-Forwarded-* headers on a uwsgi hop
     * are whatever the client sent. */
    c->peer.trusted_forwarder = 0;
    if (!allowed) {
        *status = 403;
        snprintf(msg, msglen, "uWSGI request from '%s' not allowed", c->peer.host);
        return -1;
    }
    ssize_t n = cu_uwsgi_parse(cu_buf_head(&c->in), cu_buf_unread(&c->in), &ur,
                               &c->settings->uwsgi);
    if (n == -2)
        return -2;
    if (n < 0) {
        *status = cu_uwsgi_error_status(ur.error);
        if (ur.error == CU_UWSGIE_MODIFIER)
            snprintf(msg, msglen, "%s: %u", cu_uwsgi_error_name(ur.error), ur.modifier1);
        else
            snprintf(msg, msglen, "%s", cu_uwsgi_error_name(ur.error));
        return -1;
    }

    /* The request, as gunicorn's UWSGIRequest builds it. */
    cu_h1_request_reset(r);
    u->scratch.pos = u->scratch.len = 0;
    r->method = ur.method.p ? ur.method : CU_STR("GET");
    cu_str_t pi = ur.path_info.p && ur.path_info.len ? ur.path_info : CU_STR("/");
    if (raw_path(u, pi, &r->path) != CU_OK || target(u, &ur, r->path, &r->target) != CU_OK) {
        *status = 431;
        snprintf(msg, msglen, "%s", cu_uwsgi_error_name(CU_UWSGIE_LIMIT_PACKET));
        return -1;
    }
    r->query = ur.query_string.p ? ur.query_string : CU_STR("");
    r->version_major = 1;
    r->version_minor = 1;
    r->content_length = ur.content_length;
    r->keep_alive = !cu_str_ieq_lit(ur.connection, "close");
    r->head_len = (size_t)n;

    char *base = c->in.data; /* the packet's bytes, writable: names are rewritten in place */
    for (size_t i = 0; i < ur.nvars; i++) {
        cu_str_t k = ur.vars[i].key, v = ur.vars[i].value;
        cu_str_t name;
        if (is_http_var(k)) {
            /* HTTP_ACCEPT_ENCODING -> ACCEPT-ENCODING (gunicorn's mapping; the environ maps
             * it back). Rewriting is idempotent, so a second parse of the same bytes agrees. */
            char *w = base + (k.p - base);
            for (size_t j = 5; j < k.len; j++)
                if (w[j] == '_')
                    w[j] = '-';
            name = (cu_str_t){k.p + 5, k.len - 5};
        } else if (k.len == 12 && memcmp(k.p, "CONTENT_TYPE", 12) == 0) {
            name = CU_STR("CONTENT-TYPE");
        } else if (k.len == 14 && memcmp(k.p, "CONTENT_LENGTH", 14) == 0) {
            name = CU_STR("CONTENT-LENGTH");
        } else {
            continue;
        }
        cu_assert(r->nheaders < r->max_headers); /* sized from max_fields + 2 */
        r->headers[r->nheaders].name = name;
        r->headers[r->nheaders].value = v;
        r->headers[r->nheaders].folded = 0;
        r->nheaders++;
    }

    peer_from_vars(&c->peer, ur.remote_addr, ur.remote_port);
    const char *base_scheme =
        c->listener && c->listener->tf && c->listener->tf->scheme ? c->listener->tf->scheme
                                                                  : "http";
    if (cu_uwsgi_https_on(ur.https))
        c->scheme = "https";
    else if (cu_str_ieq_lit(ur.url_scheme, "https"))
        c->scheme = "https";
    else if (cu_str_ieq_lit(ur.url_scheme, "http"))
        c->scheme = "http";
    else
        c->scheme = base_scheme;
    return n;
}
