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

/* gunicorn's texts for the last refused head on this thread: the reason for the
 * "Invalid request from ip=...: <reason>" warning (h1_parse's *msg), then the message of
 * its error page. The engine logs *msg and asks for the page on the same thread at once
 * (proto.h), so a thread-local pair is all the storage the detail needs. */
static _Thread_local char parse_why[4096], parse_page[4096];

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
    cu_h1_error_message(&c->req, 0, parse_why, sizeof(parse_why));
    cu_h1_error_message(&c->req, 1, parse_page, sizeof(parse_page));
    *msg = parse_why;
    return CU_ERROR;
}

/* The response head: status line in the request's version, Server/Date unless the app set
 * them, Connection, and the framing: the app's Content-Length, else ours when the whole
 * body is known (final_len >= 0: the app finished before anything was sent), else chunked
 * on HTTP/1.1 (when chunked_ok) and close-delimited otherwise. */
int cu_h1_write_head(cu_conn_t *c, int64_t final_len, int chunked_ok)
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
    } else if (http11 && chunked_ok) {
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

static int h1_emit_head(cu_conn_t *c, int64_t final_len)
{
    return cu_h1_write_head(c, final_len, 1);
}

/* html.escape(s) as gunicorn applies it to its error page's message: & < > " ' become
 * entities, so a request path or header echoed there is text, never markup. Truncates at a
 * whole character to fit cap (> 0) with its NUL. */
static void html_escape(const char *s, char *dst, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *r = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#x27;"
                                     : NULL;
        size_t k = r ? strlen(r) : 1;
        if (n + k >= cap)
            break;
        if (r)
            memcpy(dst + n, r, k);
        else
            dst[n] = *s;
        n += k;
    }
    dst[n] = '\0';
}

/* gunicorn's error page. A refused head's page carries gunicorn's wording for it, which
 * differs from the log line's (h1_parse). */
static int h1_error_page(cu_conn_t *c, int status, const char *reason, const char *msg)
{
    char esc[4096], body[4608];
    html_escape(msg == parse_why ? parse_page : msg ? msg : "", esc, sizeof(esc));
    int bl = snprintf(body, sizeof(body),
                      "<html>\n  <head>\n    <title>%s</title>\n  </head>\n  <body>\n"
                      "    <h1><p>%s</p></h1>\n    %s\n  </body>\n</html>\n",
                      reason, reason, esc);
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

static int h1_interim(cu_conn_t *c, int status, const char *reason, const cu_str_t *names,
                      const cu_str_t *values, size_t n)
{
    char line[64];
    int l = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason);
    if (cu_buf_append(&c->out, line, (size_t)l) != CU_OK)
        return CU_ERROR;
    for (size_t i = 0; i < n; i++)
        if (cu_buf_append(&c->out, names[i].p, names[i].len) != CU_OK ||
            cu_buf_append(&c->out, ": ", 2) != CU_OK ||
            cu_buf_append(&c->out, values[i].p, values[i].len) != CU_OK ||
            cu_buf_append(&c->out, "\r\n", 2) != CU_OK)
            return CU_ERROR;
    return cu_buf_append(&c->out, "\r\n", 2);
}

const cu_proto_t cu_proto_h1 = {
    .name = "http",
    .reset = h1_reset,
    .parse = h1_parse,
    .emit_head = h1_emit_head,
    .error_page = h1_error_page,
    .continue_100 = h1_continue_100,
    .interim = h1_interim,
};
