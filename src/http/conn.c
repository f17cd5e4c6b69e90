/* Request bodies on a connection: Content-Length and chunked, read from what the head read
 * left in the buffer, then from the transport; 100-continue; waits through the worker
 * class's blocking adapter (settings->block). */
#include "http/conn.h"
#include "core/clock.h"
#include "http/proto.h"

#include <errno.h>

#define BODY_BUF_SIZE (64 * 1024)
#define DRAIN_MAX     (4 * 1024 * 1024)

int cu_conn_wait(cu_conn_t *c, int events)
{
    return c->settings->block ? c->settings->block(c, events) : CU_ERROR;
}

void cu_conn_begin_request(cu_conn_t *c)
{
    cu_req_t *r = &c->request;
    r->scheme = c->scheme;
    r->peer = &c->peer;
    r->listener = c->listener;
    c->rpos = c->in.pos + c->head_len;
    c->body.done = 0;
    c->body.error = 0;
    c->body.timed_out = 0;
    c->body.malformed = 0;
    c->body.too_large = 0;
    c->body.continue_pending = 0;
    c->body.pend_len = 0;
    if (r->chunked) {
        c->body.remaining = -1;
        cu_chunked_init(&c->body.chunked);
    } else if (r->content_length > 0) {
        c->body.remaining = r->content_length;
    } else if (r->body_to_eof) {
        c->body.remaining = INT64_MAX;
    } else {
        c->body.remaining = 0;
        c->body.done = 1;
    }
    if (!c->body.done && r->expect_continue)
        c->body.continue_pending = 1;
    c->keep_alive = r->keep_alive && !c->closing;
    cu_resp_head_reset(&c->resp.h);
    c->resp.content_length = -1;
    c->resp.chunked = c->resp.close_delimited = c->resp.head_sent = c->resp.head_emitted =
        c->resp.hold = 0;
    c->resp.no_body = c->resp.no_body_warned = 0;
    c->taken_over = 0;
    c->resp.app_date = c->resp.app_server = 0;
    c->resp.body_sent = 0;
    c->resp.stash.pos = c->resp.stash.len = 0;
    /* Batch responses when the next request is already here and this one has no body. */
    c->defer_flush = c->body.done && c->in.len > c->rpos;
}

/* Raw bytes available for the body without touching the socket: first what the head read
 * left in `in`, then `bin`. Returns a slice and the buffer it came from. */
static cu_str_t buffered(cu_conn_t *c, int *from_bin)
{
    if (c->rpos < c->in.len) {
        *from_bin = 0;
        return (cu_str_t){c->in.data + c->rpos, c->in.len - c->rpos};
    }
    *from_bin = 1;
    return (cu_str_t){cu_buf_head(&c->bin), cu_buf_unread(&c->bin)};
}

static void consume(cu_conn_t *c, int from_bin, size_t n)
{
    if (from_bin)
        cu_buf_consume(&c->bin, n);
    else
        c->rpos += n;
}

/* Read more raw bytes from the socket into bin. CU_OK, or CU_ERROR (EOF, error, timeout). */
static int fill_bin(cu_conn_t *c, size_t max)
{
    if (cu_buf_reserve(&c->bin, 4096) != CU_OK)
        return CU_ERROR;
    size_t room = c->bin.cap - c->bin.len;
    if (max && room > max)
        room = max;
    for (;;) {
        ssize_t n = c->t.ops->read(&c->t, c->bin.data + c->bin.len, room);
        if (n > 0) {
            c->bin.len += (size_t)n;
            return CU_OK;
        }
        if (n != CU_AGAIN)
            return CU_ERROR;
        int w = cu_conn_wait(c, c->t.want);
        if (w == CU_AGAIN)
            c->body.timed_out = 1;
        if (w != CU_OK)
            return CU_ERROR;
    }
}

static int send_continue(cu_conn_t *c)
{
    c->body.continue_pending = 0;
    if (cu_resp_continue(c) != CU_OK)
        return CU_ERROR;
    return cu_conn_flush(c);
}

static ssize_t body_fail(cu_conn_t *c)
{
    c->body.error = 1;
    c->closing = 1;
    c->keep_alive = 0;
    return -1;
}

/* Copy up to n body bytes into dst. */
static ssize_t body_read(cu_conn_t *c, char *dst, size_t n)
{
    if (c->body.error)
        return -1;
    if (c->body.done || n == 0)
        return 0;
    if (c->body.continue_pending && send_continue(c) != CU_OK)
        return body_fail(c);
    for (;;) {
        int from_bin;
        cu_str_t avail = buffered(c, &from_bin);
        if (c->body.remaining >= 0) {
            size_t want = n;
            if ((uint64_t)want > (uint64_t)c->body.remaining)
                want = (size_t)c->body.remaining;
            if (avail.len == 0 && (want >= 4096 || c->request.body_to_eof)) {
                /* Large reads go straight from the socket into the caller's memory. */
                ssize_t r = c->t.ops->read(&c->t, dst, want);
                if (r > 0) {
                    c->body.remaining -= r;
                    if (c->body.remaining == 0)
                        c->body.done = 1;
                    return r;
                }
                if (r == 0 && c->request.body_to_eof) {
                    c->body.done = 1;
                    return 0;
                }
                if (r != CU_AGAIN)
                    return body_fail(c);
                int w = cu_conn_wait(c, c->t.want);
                if (w == CU_AGAIN)
                    c->body.timed_out = 1;
                if (w != CU_OK)
                    return body_fail(c);
                continue;
            }
            if (avail.len == 0) {
                size_t lim =
                    (size_t)(c->body.remaining < BODY_BUF_SIZE ? c->body.remaining : BODY_BUF_SIZE);
                if (fill_bin(c, lim) != CU_OK)
                    return body_fail(c);
                continue;
            }
            if (want > avail.len)
                want = avail.len;
            memcpy(dst, avail.p, want);
            consume(c, from_bin, want);
            c->body.remaining -= (int64_t)want;
            if (c->body.remaining == 0)
                c->body.done = 1;
            return (ssize_t)want;
        }
        /* chunked: decoded data left over from the last call is served first; its raw
         * bytes stay unconsumed (so nothing moves them) until it is used up. */
        if (c->body.pend_len) {
            size_t take = c->body.pend_len < n ? c->body.pend_len : n;
            memcpy(dst, c->body.pend, take);
            c->body.pend += take;
            c->body.pend_len -= take;
            if (c->body.pend_len == 0)
                consume(c, c->body.pend_bin, c->body.pend_used);
            return (ssize_t)take;
        }
        size_t used = 0;
        cu_str_t data = {NULL, 0};
        int rc = avail.len ? cu_chunked_decode(&c->body.chunked, avail.p, avail.len, &used, &data)
                           : CU_AGAIN;
        if (rc == CU_ERROR) {
            c->body.malformed = 1;
            c->body.too_large = c->body.chunked.error == CU_CHUNKED_E_LIMIT_TRAILER;
            return body_fail(c);
        }
        if (rc == CU_DONE) {
            consume(c, from_bin, used);
            c->body.done = 1;
            return 0;
        }
        if (rc == CU_OK) {
            c->body.pend = data.p;
            c->body.pend_len = data.len;
            c->body.pend_used = used;
            c->body.pend_bin = from_bin;
            continue;
        }
        consume(c, from_bin, used);
        /* The rest of a chunk header may already be in bin (the asgi worker's loop reads
         * ahead): decode that before asking the socket. */
        if (!from_bin && cu_buf_unread(&c->bin))
            continue;
        if (fill_bin(c, BODY_BUF_SIZE) != CU_OK)
            return body_fail(c);
    }
}

ssize_t cu_body_read(cu_conn_t *c, char *dst, size_t n)
{
    return body_read(c, dst, n);
}

int cu_body_drain(cu_conn_t *c)
{
    if (c->body.done)
        return CU_OK;
    if (c->body.error)
        return CU_ERROR;
    /* The client waits for 100 Continue that we never sent: it may not send the body. */
    if (c->body.continue_pending) {
        c->closing = 1;
        return CU_ERROR;
    }
    char tmp[16384];
    size_t total = 0;
    while (!c->body.done) {
        ssize_t r = body_read(c, tmp, sizeof(tmp));
        if (r < 0)
            return CU_ERROR;
        total += (size_t)r;
        if (total > DRAIN_MAX) {
            c->closing = 1;
            return CU_ERROR;
        }
    }
    return CU_OK;
}

int cu_conn_end_request(cu_conn_t *c)
{
    c->nrequests++;
    if (c->closing || !c->keep_alive || !c->body.done)
        return CU_ERROR;
    /* Drop this request's head and body from `in`; keep what follows, then append what
     * body reads pulled into bin past the body (the next pipelined request). */
    cu_buf_consume(&c->in, c->rpos - c->in.pos);
    if (cu_buf_unread(&c->bin)) {
        if (cu_buf_append(&c->in, cu_buf_head(&c->bin), cu_buf_unread(&c->bin)) != CU_OK)
            return CU_ERROR;
        c->bin.pos = c->bin.len = 0;
    }
    c->rpos = c->in.pos;
    c->proto->reset(c);
    return CU_OK;
}
