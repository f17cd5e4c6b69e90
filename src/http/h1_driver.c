/* The HTTP/1 protocol driver (http/proto.h): request heads parsed by h1.c into the
 * neutral request, response heads and error pages serialised as HTTP/1.x. */
#include "core/clock.h"
#include "http/conn.h"
#include "http/proto.h"

static void h1_reset(cu_conn_t *c)
{
    if (c->req.headers != c->hdrs) {
        memset(&c->req, 0, sizeof(c->req));
        c->req.headers = c->hdrs;
        c->req.max_headers = c->settings->max_headers;
    }
    cu_h1_request_reset(&c->req);
}

static int h1_parse(cu_conn_t *c, int *status, const char **msg)
{
    /* A trusted forwarder may send forwarder_headers whose names contain '_' (SCRIPT_NAME,
     * PATH_INFO), as in gunicorn. */
    const cu_h1_opts_t *o = c->peer.trusted_forwarder ? &c->settings->h1_trusted : &c->settings->h1;
    ssize_t r = cu_h1_parse_request(cu_buf_head(&c->in), cu_buf_unread(&c->in), &c->req, o);
    if (r > 0) {
        cu_h1_to_req(&c->req, &c->request);
        c->head_len = (size_t)r;
        return CU_OK;
    }
    if (r == -2) {
        if (c->in.len - c->in.pos < c->in.max)
            return CU_AGAIN;
        *status = 431;
        *msg = "Request header fields too large";
        return CU_ERROR;
    }
    *status = cu_h1_error_status(c->req.error);
    *msg = cu_h1_error_name(c->req.error);
    return CU_ERROR;
}

/* The response head: status line in the request's version, Server/Date unless the app set
 * them, Connection, and the framing: the app's Content-Length, else ours when the whole
 * body is known (final_len >= 0: the app finished before anything was sent), else chunked
 * on HTTP/1.1 and close-delimited on HTTP/1.0. */
static int h1_emit_head(cu_conn_t *c, int64_t final_len)
{
    cu_resp_t *r = &c->resp;
    const cu_conn_settings_t *s = c->settings;
    int http11 = c->request.version_major == 1 && c->request.version_minor >= 1;
    int64_t clen = -1;

    if (r->no_body) {
        clen = r->content_length; /* HEAD keeps the app's length; 204/304 send what it gave */
    } else if (r->content_length >= 0) {
        clen = r->content_length;
    } else if (final_len >= 0) {
        clen = final_len;
    } else if (http11) {
        r->chunked = 1;
    } else {
        r->close_delimited = 1;
        c->closing = 1;
    }
    if (c->closing)
        c->keep_alive = 0;

    char extra[256];
    size_t n = 0;
    cu_time_update();
    if (!r->app_server)
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Server: %s\r\n", s->server_header);
    if (!r->app_date) {
        memcpy(extra + n, "Date: ", 6);
        n += 6;
        memcpy(extra + n, cu_time.http_date, cu_time.http_date_len);
        n += cu_time.http_date_len;
        memcpy(extra + n, "\r\n", 2);
        n += 2;
    }
    if (c->keep_alive) {
        memcpy(extra + n, "Connection: keep-alive\r\n", 24);
        n += 24;
    } else {
        memcpy(extra + n, "Connection: close\r\n", 19);
        n += 19;
    }
    if (r->chunked) {
        memcpy(extra + n, "Transfer-Encoding: chunked\r\n", 28);
        n += 28;
    } else if (clen >= 0 && r->content_length < 0) {
        n += (size_t)snprintf(extra + n, sizeof(extra) - n, "Content-Length: %lld\r\n",
                              (long long)clen);
    }
    /* gunicorn answers in the request's version. */
    int http10 = c->request.version_major == 1 && c->request.version_minor == 0;
    const cu_resp_head_t *h = &r->h;
    size_t need = 9 + h->tlen + 2 + n + 2;
    for (size_t i = 0; i < h->nfields; i++)
        need += h->fields[i].nlen + h->fields[i].vlen + 4;
    if (cu_buf_reserve(&c->out, need) != CU_OK)
        return CU_ERROR;
    char *p = c->out.data + c->out.len;
    memcpy(p, http10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
    p += 9;
    memcpy(p, h->store.data, h->tlen);
    p += h->tlen;
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, extra, n);
    p += n;
    for (size_t i = 0; i < h->nfields; i++) {
        const cu_resp_field_t *f = &h->fields[i];
        memcpy(p, h->store.data + f->name, f->nlen);
        p += f->nlen;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h->store.data + f->value, f->vlen);
        p += f->vlen;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    c->out.len = (size_t)(p - c->out.data);
    return CU_OK;
}

/* gunicorn's error page. */
static int h1_error_page(cu_conn_t *c, int status, const char *reason, const char *msg)
{
    char body[1024];
    int bl = snprintf(body, sizeof(body),
                      "<html>\n  <head>\n    <title>%s</title>\n  </head>\n  <body>\n"
                      "    <h1><p>%s</p></h1>\n    %s\n  </body>\n</html>\n",
                      reason, reason, msg ? msg : "");
    if (bl < 0 || (size_t)bl >= sizeof(body))
        bl = (int)strlen(body);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/html\r\n"
                      "Content-Length: %d\r\n\r\n",
                      status, reason, bl);
    if (cu_buf_append(&c->out, head, (size_t)hl) != CU_OK ||
        cu_buf_append(&c->out, body, (size_t)bl) != CU_OK)
        return CU_ERROR;
    return bl;
}

static int h1_continue_100(cu_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return cu_buf_append(&c->out, cont, sizeof(cont) - 1);
}

static int h1_early_hints(cu_conn_t *c, const cu_resp_head_t *f)
{
    static const char line[] = "HTTP/1.1 103 Early Hints\r\n";
    if (cu_buf_append(&c->out, line, sizeof(line) - 1) != CU_OK)
        return CU_ERROR;
    for (size_t i = 0; i < f->nfields; i++) {
        cu_str_t n = cu_resp_field_name(f, i), v = cu_resp_field_value(f, i);
        if (cu_buf_append(&c->out, n.p, n.len) != CU_OK ||
            cu_buf_append(&c->out, ": ", 2) != CU_OK ||
            cu_buf_append(&c->out, v.p, v.len) != CU_OK ||
            cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
            return CU_ERROR;
    }
    return cu_buf_append(&c->out, "\r\n", 2);
}

const cu_proto_t cu_proto_h1 = {
    .name = "http",
    .reset = h1_reset,
    .parse = h1_parse,
    .emit_head = h1_emit_head,
    .error_page = h1_error_page,
    .continue_100 = h1_continue_100,
    .early_hints = h1_early_hints,
};
