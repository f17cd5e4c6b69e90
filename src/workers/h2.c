/* HTTP/2 connections over libnghttp2 (see h2.h): the session on the loop, streams as
 * stream connections served by the worker class, flow control with back-pressure both
 * ways, GOAWAY on graceful stop. */
#include "workers/h2.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/proto.h"
#include "net/tls.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define H2_READ_CHUNK        16384
#define H2_OUT_HIGH          (256 * 1024) /* stop pulling frames from nghttp2 past this much unsent */
#define H2_STREAM_OUT        (64 * 1024) /* response bytes a stream may queue before its app waits */
#define H2_CONN_WINDOW       (1 << 20)   /* connection-level receive window */
#define H2_RST_BURST         1000        /* peer RST_STREAMs allowed at once, then H2_RST_RATE/s */
#define H2_RST_RATE          33
#define H2_MAX_CONTINUATIONS 8    /* CONTINUATION frames in one header block */
#define H2_MAX_SETTINGS      32   /* entries in one SETTINGS frame */
#define H2_MAX_OUTBOUND_ACK  1000 /* ACKs (SETTINGS, PING) queued for a peer not reading */
#define H2_MAX_EMPTY_DATA    1000 /* DATA frames without payload or END_STREAM */
#define H2_GOAWAY_DELAY_MS   200  /* graceful stop: shutdown notice -> final GOAWAY */
#define H2_REFUSE_BURST      1000 /* refusals past the stream limit; each stream served earns one */
#define H2_REFUSE_SLACK      100  /* refused streams open at once (RST_STREAM not sent yet) */

typedef struct h2_sess_s h2_sess_t;

enum { APP_WAITING, APP_RUNNING, APP_DONE };

typedef struct h2_stream_s {
    cu_conn_t sc; /* the stream as the app layer sees it (first: sc.t.impl points here) */
    h2_sess_t *h;
    int32_t id;
    cu_buf_t hstore;         /* request header names and values */
    cu_header_t *hdrs;       /* slices into hstore, fixed up once the head is complete */
    uint32_t *hoff;          /* offsets: name, nlen, value, vlen per header */
    size_t nh, hcap;         /* regular headers */
    size_t hbytes;           /* header list size as RFC 9113 counts it */
    size_t tbytes;           /* the same for the request's trailers */
    uint32_t pseudo[4][2];   /* :method :path :scheme :authority (offset, len+1; 0 = absent) */
    int64_t clen;            /* content-length header, -1 none */
    int weight, depends_on;  /* priority from the HEADERS frame (0 weight: none sent) */
    cu_buf_t inb;            /* DATA received, not yet read by the app */
    cu_buf_t outb;           /* response body not yet taken by nghttp2 */
    int64_t out_len;         /* the response body's length when known (-1): END_STREAM with it */
    cu_resp_head_t trailers; /* gunicorn.http2.send_trailers: sent after the body */
    nghttp2_nv *trailer_nv;  /* trailers as nghttp2 pairs (names lower-cased in trailer_low) */
    char *trailer_low;
    size_t ntrailers;
    unsigned eof_sent : 1; /* the body's end went to nghttp2 */
    uint64_t out_sent;     /* body bytes handed to nghttp2 */
    pthread_cond_t cv;
    int app;                   /* APP_* */
    unsigned in_eof : 1;       /* END_STREAM received */
    unsigned out_eof : 1;      /* the app finished: no more body */
    unsigned submitted : 1;    /* response HEADERS submitted */
    unsigned closed : 1;       /* nghttp2 closed the stream */
    unsigned bad : 1;          /* refused while headers arrived (answered with RST_STREAM) */
    unsigned queued : 1;       /* in the ready queue */
    unsigned upgraded : 1;     /* stream 1 of an Upgrade: h2c (its body came over HTTP/1.1) */
    unsigned later : 1;        /* dispatch returned CU_AGAIN: cu_h2_stream_done ends the app */
    unsigned eof_read : 1;     /* the app's read saw the body's end (END_STREAM) */
    unsigned cut : 1;          /* the app failed after its response began: reset, not ended */
    unsigned batched : 1;      /* gthread: run by the session's inline runner (its write waits) */
    int watch;                 /* later: the events its app waits for (cu_h2_app_watch) */
    struct h2_stream_s *enext; /* app_events: streams with events due */
    struct h2_stream_s *next;  /* ready queue */
    struct h2_stream_s *anext, *aprev; /* all streams of the session */
} h2_stream_t;

struct h2_sess_s {
    cu_engine_t *e;
    cu_conn_t *c; /* NULL once the engine closed it */
    nghttp2_session *ng;
    cu_tls_facts_t *tls; /* the handshake's facts, copied at open (TLS only): read-only after,
                            so streams read them on any thread, even once c is gone */
    cu_conn_settings_t settings; /* the engine's, with this module's blocking adapter */
    int efd;                     /* ready-queue eventfd */
    cu_io_t rio;
    h2_stream_t *rhead, *rtail;
    h2_stream_t *all;   /* every stream not yet freed */
    h2_stream_t *spool; /* freed streams kept for reuse, with their buffers (H2_STREAM_POOL) */
    size_t nspool;
    size_t in_app;         /* streams dispatched and not returned */
    size_t nopen;          /* streams nghttp2 has open */
    size_t empty_data;     /* empty DATA frames received */
    uint32_t refuse_left;  /* streams past the limit we may still refuse (H2_REFUSE_BURST) */
    int tmode;             /* c->timer: 0 none, 1 write stall, 2 idle, 3 final GOAWAY due */
    uint64_t sent, tsent;  /* bytes moved either way; at the last timer check */
    unsigned dead : 1;     /* the connection failed or is closing: no more reads */
    unsigned stopping : 1; /* final GOAWAY sent: finish what is open, then close */
    unsigned notice : 1;   /* graceful stop began: the shutdown notice GOAWAY went out */
    unsigned closing_conn : 1;
    unsigned rarmed : 1;     /* the ready watcher is armed (gthread) or pending */
    unsigned batch : 1;      /* sync: running queued streams inline; one write at the end */
    unsigned kicked : 1;     /* asgi: stream events are due (the ready eventfd is armed) */
    unsigned send_due : 1;   /* asgi: frames the apps queued wait for sess_send (app_flush) */
    unsigned inline_run : 1; /* gthread: a thread is running the queue inline (sess_run_inline) */
    unsigned handed_off : 1; /* ... and the handoff timer gave the rest to other threads */
    cu_timer_t handoff;      /* gthread: fires when the inline runner takes too long */
    h2_sess_t *next_free;    /* sess_pool */
};

static void sess_send(h2_sess_t *h);
static void sess_free(h2_sess_t *h);
static void final_goaway(h2_sess_t *h);

/* Sessions no longer in use, kept for reuse (under the engine lock). */
static h2_sess_t *sess_pool;
static void sess_arm(h2_sess_t *h);
static void sess_maybe_close(h2_sess_t *h);

static void lock(h2_sess_t *h)
{
    if (h->e->threaded)
        pthread_mutex_lock(&h->e->mu);
}

static void unlock(h2_sess_t *h)
{
    if (h->e->threaded)
        pthread_mutex_unlock(&h->e->mu);
}

int cu_h2_sniff(const char *p, size_t n)
{
    size_t k = n < CU_H2_PREFACE_LEN ? n : CU_H2_PREFACE_LEN;
    if (memcmp(p, CU_H2_PREFACE, k) != 0)
        return 0;
    return n >= CU_H2_PREFACE_LEN ? 1 : -1;
}

/* ---- streams ---- */

#define H2_STREAM_POOL 32          /* freed streams a session keeps for its next ones */
#define H2_KEEP_BUF    (64 * 1024) /* a kept stream's buffer larger than this is released */

static void stream_destroy(h2_stream_t *s)
{
    cu_buf_free(&s->hstore);
    cu_buf_free(&s->inb);
    cu_buf_free(&s->outb);
    cu_buf_free(&s->sc.in);
    cu_buf_free(&s->sc.out);
    cu_buf_free(&s->sc.bin);
    cu_resp_head_free(&s->sc.resp.h);
    cu_buf_free(&s->sc.resp.stash);
    cu_free(s->hdrs);
    cu_free(s->hoff);
    cu_resp_head_free(&s->trailers);
    cu_free(s->trailer_nv);
    cu_free(s->trailer_low);
    pthread_cond_destroy(&s->cv);
    cu_free(s);
}

/* Empty b for reuse: its memory stays unless it grew past H2_KEEP_BUF. */
static void buf_recycle(cu_buf_t *b)
{
    if (b->cap > H2_KEEP_BUF) {
        cu_free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->pos = b->len = 0;
}

/* Unlink s from its session and keep it for the session's next stream (a stream's buffers
 * and connection struct are a dozen allocations: most of the C side's malloc/free under
 * h2load), or destroy it when the pool is full. Under the lock, no app thread holds s. */
static void stream_free(h2_stream_t *s)
{
    h2_sess_t *h = s->h;
    if (s->aprev)
        s->aprev->anext = s->anext;
    else
        h->all = s->anext;
    if (s->anext)
        s->anext->aprev = s->aprev;
    if (h->nspool >= H2_STREAM_POOL || !h->e) {
        stream_destroy(s);
        return;
    }
    cu_free(s->trailer_nv);
    cu_free(s->trailer_low);
    s->trailer_nv = NULL;
    s->trailer_low = NULL;
    s->next = h->spool;
    h->spool = s;
    h->nspool++;
}

/* A stream is freed once nghttp2 closed it and no app thread holds it. */
static void stream_release(h2_stream_t *s)
{
    if (s->closed && s->app != APP_RUNNING && !s->queued)
        stream_free(s);
}

static const cu_transport_ops_t stream_ops;
static const cu_proto_t stream_proto;

/* A stream for id: a kept one with its buffers emptied, or a new one. */
static h2_stream_t *stream_alloc(h2_sess_t *h)
{
    h2_stream_t *s = h->spool;
    if (!s) {
        s = cu_xcalloc(1, sizeof(*s));
        cu_buf_init(&s->hstore, 0, 1 << 20);
        cu_buf_init(&s->inb, 0, SIZE_MAX / 2);
        cu_buf_init(&s->outb, 0, SIZE_MAX / 2);
        cu_buf_init(&s->trailers.store, 0, 1 << 16);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
        cu_conn_t *sc = &s->sc;
        cu_buf_init(&sc->in, 0, 1 << 20);
        cu_buf_init(&sc->out, 0, SIZE_MAX / 2);
        cu_buf_init(&sc->bin, 0, 1 << 20);
        cu_buf_init(&sc->resp.h.store, 0, 1 << 20);
        cu_buf_init(&sc->resp.stash, 0, 1 << 20);
        return s;
    }
    h->spool = s->next;
    h->nspool--;
    /* Everything back to zero but the memory worth keeping. */
    cu_buf_t hstore = s->hstore, inb = s->inb, outb = s->outb, in = s->sc.in, out = s->sc.out,
             bin = s->sc.bin, stash = s->sc.resp.stash;
    cu_resp_head_t rh = s->sc.resp.h, tr = s->trailers;
    cu_header_t *hdrs = s->hdrs;
    uint32_t *hoff = s->hoff;
    size_t hcap = s->hcap;
    pthread_cond_t cv = s->cv;
    memset(s, 0, sizeof(*s));
    cu_buf_t *bufs[] = {&hstore, &inb, &outb, &in, &out, &bin, &stash, &rh.store, &tr.store};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_recycle(bufs[i]);
    cu_resp_head_reset(&rh);
    cu_resp_head_reset(&tr);
    s->hstore = hstore;
    s->inb = inb;
    s->outb = outb;
    s->sc.in = in;
    s->sc.out = out;
    s->sc.bin = bin;
    s->sc.resp.stash = stash;
    s->sc.resp.h = rh;
    s->trailers = tr;
    s->hdrs = hdrs;
    s->hoff = hoff;
    s->hcap = hcap;
    s->cv = cv;
    return s;
}

static h2_stream_t *stream_new(h2_sess_t *h, int32_t id)
{
    h2_stream_t *s = stream_alloc(h);
    s->h = h;
    s->id = id;
    s->out_len = -1;
    s->anext = h->all;
    if (h->all)
        h->all->aprev = s;
    h->all = s;
    h->nopen++;
    s->clen = -1;

    cu_conn_t *sc = &s->sc;
    cu_transport_init(&sc->t, &stream_ops, -1);
    sc->t.impl = s;
    sc->settings = &h->settings;
    sc->listener = h->c->listener;
    sc->peer = h->c->peer;
    sc->scheme = h->c->scheme;
    sc->tls_facts = h->tls;
    sc->proto = &stream_proto;
    sc->worker = h->e;
    sc->spill_fd = -1; /* never used: the unsent-output budget is off for streams */
    sc->state = -1;
    return s;
}

static cu_str_t pseudo(const h2_stream_t *s, int i)
{
    if (!s->pseudo[i][1])
        return (cu_str_t){NULL, 0};
    return (cu_str_t){s->hstore.data + s->pseudo[i][0], s->pseudo[i][1] - 1};
}

/* The head is complete: fill the stream connection's neutral request. */
static void stream_build_request(h2_stream_t *s)
{
    cu_req_t *r = &s->sc.request;
    memset(r, 0, sizeof(*r));
    r->method = pseudo(s, 0);
    r->target = pseudo(s, 1);
    const char *p = r->target.p;
    size_t n = r->target.len;
    const char *hash = memchr(p, '#', n);
    size_t end = hash ? (size_t)(hash - p) : n;
    if (hash)
        r->fragment = (cu_str_t){hash + 1, n - end - 1};
    const char *q = memchr(p, '?', end);
    r->path = (cu_str_t){p, q ? (size_t)(q - p) : end};
    if (q)
        r->query = (cu_str_t){q + 1, end - (size_t)(q - p) - 1};
    r->version_major = 2;
    r->version_minor = 0;
    for (size_t i = 0; i < s->nh; i++) {
        s->hdrs[i].name = (cu_str_t){s->hstore.data + s->hoff[4 * i], s->hoff[4 * i + 1]};
        s->hdrs[i].value = (cu_str_t){s->hstore.data + s->hoff[4 * i + 2], s->hoff[4 * i + 3]};
        s->hdrs[i].folded = 0;
    }
    r->headers = s->hdrs;
    r->nheaders = s->nh;
    r->content_length = s->in_eof ? 0 : s->clen;
    r->body_to_eof = !s->in_eof && s->clen < 0;
    r->keep_alive = 1;
    r->priority_weight = s->weight ? s->weight : 16;
    r->priority_depends_on = s->depends_on;
}

/* ---- the ready queue: streams waiting for the worker class ---- */

/* Make the ready watcher fire (another thread takes the next stream). */
static void ready_arm(h2_sess_t *h)
{
    if (h->rarmed)
        return;
    h->rarmed = 1;
    uint64_t one = 1;
    ssize_t w = write(h->efd, &one, sizeof(one));
    (void)w;
    cu_io_set(h->e->loop, &h->rio, CU_EV_READ | h->e->oneshot);
}

/* Queue a stream for the worker class. On gthread a free thread takes it through the ready
 * watcher; on sync the connection's own callback runs it (sess_run_ready). */
static void ready_push(h2_sess_t *h, h2_stream_t *s)
{
    s->queued = 1;
    s->next = NULL;
    if (h->rtail)
        h->rtail->next = s;
    else
        h->rhead = s;
    h->rtail = s;
    /* gthread: the thread that read the frames runs them (sess_run_inline); other threads
     * get them only once it is busy for long (the handoff timer) or has handed off. */
    if (h->e->threaded && h->handed_off)
        ready_arm(h);
}

static h2_stream_t *ready_pop(h2_sess_t *h)
{
    h2_stream_t *s = h->rhead;
    if (s) {
        h->rhead = s->next;
        if (!h->rhead)
            h->rtail = NULL;
        s->queued = 0;
    }
    if (!h->rhead && h->rarmed && h->e->threaded) {
        uint64_t v;
        ssize_t r = read(h->efd, &v, sizeof(v));
        (void)r;
    }
    return s;
}

/* Not threaded: the ready eventfd fired (or its work is being done now): drain and disarm. */
static void ready_fired(h2_sess_t *h)
{
    uint64_t v;
    ssize_t r = read(h->efd, &v, sizeof(v));
    (void)r;
    cu_io_set(h->e->loop, &h->rio, 0);
    h->rarmed = 0;
    h->kicked = 0;
}

/* ---- asgi: a stream's app runs as a task and waits for its stream's events ----
 *
 * dispatch returns CU_AGAIN (the stream stays APP_RUNNING, `later`); the class asks for
 * events with cu_engine_app_watch (cu_h2_app_watch) and hears them through e->app_io, and
 * ends the stream with cu_engine_request_done (cu_h2_stream_done). Events are level-
 * triggered as epoll's are, and always delivered from the loop (app_events, from the
 * connection's event or the ready eventfd), never from inside nghttp2 or the app's own
 * calls: where the state changes (DATA, END_STREAM, RST_STREAM, room in outb, the
 * connection gone) the stream is only marked by arming the eventfd (app_kick). */

/* The events stream s's app waits for that are true now: READ when request bytes or the
 * body's end wait for its read, WRITE when outb fell below half its bound, READ|WRITE|ERROR
 * (as watched) when the stream was reset or the connection went. */
static int app_ready(const h2_stream_t *s)
{
    if (!s->later || s->app != APP_RUNNING || !s->watch)
        return 0;
    if (s->closed || s->h->dead)
        return s->watch | CU_EV_ERROR;
    int ev = 0;
    if ((s->watch & CU_EV_READ) && (cu_buf_unread(&s->inb) || (s->in_eof && !s->eof_read)))
        ev |= CU_EV_READ;
    if ((s->watch & CU_EV_WRITE) && cu_buf_unread(&s->outb) < H2_STREAM_OUT / 2)
        ev |= CU_EV_WRITE;
    return ev;
}

/* Have app_events run soon (from the loop). */
static void app_kick(h2_sess_t *h)
{
    if (h->kicked || !h->e)
        return;
    h->kicked = 1;
    uint64_t one = 1;
    ssize_t w = write(h->efd, &one, sizeof(one));
    (void)w;
    cu_io_set(h->e->loop, &h->rio, CU_EV_READ);
}

/* asgi: what apps queue (a response's HEADERS and a body in hand, a stream's end) leaves
 * once per loop pass, so that the responses of streams finishing together go out in one
 * write instead of one each. */
static void defer_send(h2_sess_t *h)
{
    h->send_due = 1;
    app_kick(h);
}

static void app_flush(h2_sess_t *h)
{
    if (!h->send_due || !h->c)
        return;
    h->send_due = 0;
    sess_send(h);
    sess_maybe_close(h);
}

/* Something changed for s: wake its thread (gthread) or mark its app's events (asgi). */
static void stream_wake(h2_stream_t *s)
{
    pthread_cond_broadcast(&s->cv);
    if (app_ready(s))
        app_kick(s->h);
}

/* Deliver the due events to the apps (the loop's thread, nothing of nghttp2 on the stack).
 * An app may end its stream (and the last one the session) from app_io: the list is taken
 * first, and neither h nor a stream is touched after its own call. */
static void app_events(h2_sess_t *h)
{
    cu_engine_t *e = h->e;
    if (!e->app_io || e->threaded)
        return;
    h2_stream_t *due = NULL;
    for (h2_stream_t *s = h->all; s; s = s->anext) {
        if (app_ready(s)) {
            s->enext = due;
            due = s;
        }
    }
    while (due) {
        h2_stream_t *s = due;
        due = s->enext;
        int ev = app_ready(s); /* still running: only its own app_io ends a stream */
        if (ev)
            e->app_io(e, &s->sc, ev);
    }
}

int cu_h2_is_stream(const cu_conn_t *c)
{
    return c->t.ops == &stream_ops;
}

int cu_h2_app_watch(cu_conn_t *sc, int events)
{
    h2_stream_t *s = sc->t.impl;
    if (s->app != APP_RUNNING || !s->later)
        return CU_ERROR;
    s->watch = events;
    if (app_ready(s))
        app_kick(s->h);
    return CU_OK;
}

/* The app is done with s (under the lock): end the response. `defer`: a task ended it
 * (asgi): the frames go out with the others of this loop pass (app_flush). */
static void stream_finish(h2_sess_t *h, h2_stream_t *s, int rc, int defer)
{
    s->app = APP_DONE;
    h->in_app--;
    cu_conn_t *sc = &s->sc;
    /* What the response writer kept for the engine to flush goes out as DATA. */
    if (cu_buf_unread(&sc->out)) {
        (void)cu_buf_append(&s->outb, cu_buf_head(&sc->out), cu_buf_unread(&sc->out));
        sc->out.pos = sc->out.len = 0;
    }
    s->out_eof = 1;
    int truncated = s->cut || (rc != CU_OK && sc->resp.content_length >= 0 &&
                               sc->resp.body_sent < (uint64_t)sc->resp.content_length);
    if (!s->closed && h->ng && !h->dead) {
        if (!s->submitted || truncated)
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        else
            nghttp2_session_resume_data(h->ng, s->id);
        /* Body bytes the app did not read are given back to the peer's window. */
        if (cu_buf_unread(&s->inb)) {
            nghttp2_session_consume(h->ng, s->id, cu_buf_unread(&s->inb));
            s->inb.pos = s->inb.len = 0;
        }
    }
    cu_engine_t *e = h->e;
    int batched = s->batched;
    stream_release(s);
    if (!h->c) {
        if (!h->in_app)
            sess_free(h); /* the engine closed the connection meanwhile */
    } else if (defer) {
        defer_send(h);
    } else if (!h->batch && !batched) {
        sess_send(h);
        sess_maybe_close(h);
    }
    /* Last, and h is not touched after it: at max_requests this stops the engine, which
     * sends GOAWAY on every HTTP/2 connection and may close this one. */
    cu_engine_count_request(e);
}

/* Run stream s's app on this thread (under the lock; released around the app when
 * threaded), then end its response. */
static void run_stream(h2_sess_t *h, h2_stream_t *s)
{
    cu_engine_t *e = h->e;
    if (s->closed || h->dead) {
        stream_release(s);
        sess_maybe_close(h);
        return;
    }
    s->app = APP_RUNNING;
    h->in_app++;
    cu_conn_begin_request(&s->sc);
    s->sc.request.start_us = cu_wall_us();
    if (e->threaded)
        pthread_mutex_unlock(&e->mu);
    int rc = e->dispatch(e, &s->sc);
    if (rc == CU_AGAIN) {
        /* asgi: the app goes on as a task; cu_h2_stream_done ends the stream. */
        s->later = 1;
        if (app_ready(s))
            app_kick(h);
        return;
    }
    /* What the stream's transport did not take yet (http/response.c keeps it for the
     * engine, which does not drive streams): send it here, waiting on the stream. */
    if (rc == CU_OK && cu_conn_unsent(&s->sc) && cu_conn_flush(&s->sc) != CU_OK)
        rc = CU_ERROR;
    if (e->threaded)
        pthread_mutex_lock(&e->mu);
    stream_finish(h, s, rc, 0);
}

void cu_h2_stream_done(cu_conn_t *sc, int rc)
{
    h2_stream_t *s = sc->t.impl;
    cu_assert(s->app == APP_RUNNING && s->later);
    s->later = 0;
    s->watch = 0;
    /* A failure once the response began (the app raised mid-body): the client must see the
     * stream reset, not a short body ending normally. A complete error page set out_eof. */
    if (rc != CU_OK && s->submitted && !s->out_eof)
        s->cut = 1;
    stream_finish(s->h, s, rc, 1);
}

#define H2_INLINE_MAX 64 /* streams run per connection callback before yielding */
#define H2_HANDOFF_MS 10 /* gthread: an inline runner busy this long hands off the rest */

/* gthread: the thread that read the frames runs the queued streams one after another and
 * sends their responses in one write, as sync does: handing each stream to another thread
 * costs a wakeup, a thread switch and a write per stream (a third of sync's speed under
 * h2load). Streams still run in parallel when it matters: if the runner is still busy
 * when the handoff timer fires (an app that sleeps or waits on I/O), whichever thread
 * fires it sends what finished so far and gives the queue to free threads (ready
 * watcher), and so does every stream queued after that. The timer fires when a thread
 * next wakes: on a busy worker at once, on an idle one within the loop's longest wait.
 * The session is held (in_app) while the runner uses it. */
static void handoff(h2_sess_t *h)
{
    h->handed_off = 1;
    if (!h->c)
        return;
    sess_send(h);
    if (h->rhead)
        ready_arm(h);
}

static void on_handoff(cu_loop_t *loop, cu_timer_t *t)
{
    h2_sess_t *h = t->data;
    if (h->e && h->inline_run && !h->handed_off)
        handoff(h);
}

static void sess_run_inline(h2_sess_t *h)
{
    if (h->inline_run) {
        if (h->handed_off && h->rhead)
            ready_arm(h); /* the runner is busy: these go to free threads */
        return;
    }
    if (!h->rhead)
        return;
    cu_engine_t *e = h->e;
    h->inline_run = 1;
    h->handed_off = 0;
    h->in_app++; /* hold the session: a closed connection must not free it under us */
    cu_timer_start(e->loop, &h->handoff, H2_HANDOFF_MS);
    for (int n = 0; h->rhead && h->c && !h->handed_off; n++) {
        if (n == H2_INLINE_MAX) {
            handoff(h); /* other connections had no turn on this thread for long */
            break;
        }
        h2_stream_t *s = ready_pop(h);
        s->batched = 1;
        run_stream(h, s);
    }
    cu_timer_stop(e->loop, &h->handoff);
    h->inline_run = 0;
    h->handed_off = 0;
    h->in_app--;
    if (!h->c) {
        if (!h->in_app)
            sess_free(h);
        return;
    }
    if (h->rhead)
        ready_arm(h);
    sess_send(h);
    sess_maybe_close(h);
}

/* Run the queued streams: gthread inline with a handoff (sess_run_inline); sync in order,
 * here, batching their output into one write; past H2_INLINE_MAX the ready watcher brings
 * us back after other connections had a turn. */
static void sess_run_ready(h2_sess_t *h)
{
    if (h->e->threaded) {
        sess_run_inline(h);
        return;
    }
    if (h->batch)
        return;
    h->batch = 1;
    for (int n = 0; h->rhead && h->c && n < H2_INLINE_MAX; n++)
        run_stream(h, ready_pop(h));
    h->batch = 0;
    if (!h->c)
        return; /* closed meanwhile */
    if (h->rhead)
        ready_arm(h);
    sess_send(h);
    sess_maybe_close(h);
}

static void on_ready(cu_loop_t *loop, cu_io_t *io, int events)
{
    h2_sess_t *h = io->data;
    cu_engine_t *e = h->e;
    if (!e)
        return; /* a stale event for a session freed meanwhile */
    if (!e->threaded) {
        /* Queued streams, then the events of streams already running (asgi; also after
         * the connection closed, while their apps finish). */
        ready_fired(h);
        int live = h->c != NULL; /* then only sess_run_ready may end the session */
        if (live && h->rhead)
            sess_run_ready(h);
        if (h->e)
            app_events(h);
        if (live && h->e)
            app_flush(h);
        return;
    }
    if (!h->c || !h->rhead)
        return;    /* a stale event for a session closed (or already served) meanwhile */
    h->rarmed = 1; /* the eventfd stays readable while streams are queued */
    h2_stream_t *s = ready_pop(h);
    if (h->rhead)
        cu_io_set(loop, &h->rio, CU_EV_READ | e->oneshot); /* the next one, to another thread */
    else
        h->rarmed = 0;
    if (s)
        run_stream(h, s);
}

/* ---- nghttp2 callbacks (under the lock) ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    h2_sess_t *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* A stream past http2_max_concurrent_streams is refused on its own (RFC 9113 section
     * 5.1.2: RST_STREAM REFUSED_STREAM; nghttp2 itself would end the connection, see
     * sess_open); the others go on. A peer that keeps doing it is cut off. */
    if (h->nopen >= h->e->es.h2_max_streams) {
        if (!h->refuse_left) {
            nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
            return 0;
        }
        h->refuse_left--;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0; /* no stream data: its header block is decoded and dropped */
    }
    h2_stream_t *s = stream_new(h, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
    return 0;
}

/* Record a header whose name (nlen bytes) and value (vlen) are at off in hstore. */
static void push_header(h2_stream_t *s, size_t off, size_t nlen, size_t vlen)
{
    if (s->nh == s->hcap) {
        s->hcap = s->hcap ? s->hcap * 2 : 16;
        s->hdrs = cu_xrealloc(s->hdrs, s->hcap * sizeof(*s->hdrs));
        s->hoff = cu_xrealloc(s->hoff, s->hcap * 4 * sizeof(*s->hoff));
    }
    uint32_t *o = s->hoff + 4 * s->nh++;
    o[0] = (uint32_t)off;
    o[1] = (uint32_t)nlen;
    o[2] = (uint32_t)(off + nlen);
    o[3] = (uint32_t)vlen;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    h2_sess_t *h = ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || s->bad)
        return 0;
    uint32_t lim = h->e->es.h2_max_header_list;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* Request trailers (after the body, with END_STREAM): accepted and dropped, never
         * mixed into the head (gunicorn 27 gives WSGI apps none), within the head's limit. */
        s->tbytes += nlen + vlen + 32;
        if (lim && s->tbytes > lim) {
            s->bad = 1;
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        return 0;
    }
    s->hbytes += nlen + vlen + 32;
    if ((lim && s->hbytes > lim) || s->nh + 1 >= h->settings.max_headers + 1) {
        s->bad = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    size_t off = s->hstore.len;
    if (cu_buf_append(&s->hstore, name, nlen) != CU_OK ||
        cu_buf_append(&s->hstore, value, vlen) != CU_OK) {
        s->bad = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    if (nlen && name[0] == ':') {
        static const char *const ps[] = {":method", ":path", ":scheme", ":authority"};
        for (int i = 0; i < 4; i++) {
            if (strlen(ps[i]) == nlen && memcmp(ps[i], name, nlen) == 0) {
                s->pseudo[i][0] = (uint32_t)(off + nlen);
                s->pseudo[i][1] = (uint32_t)vlen + 1;
            }
        }
        return 0;
    }
    /* :authority takes the place of Host (RFC 9113 section 8.3.1): added at the end. */
    if (nlen == 4 && memcmp(name, "host", 4) == 0)
        return 0;
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        int64_t v = 0;
        for (size_t i = 0; i < vlen && v < ((int64_t)1 << 50); i++)
            v = v * 10 + (value[i] - '0');
        s->clen = v;
    }
    push_header(s, off, nlen, vlen);
    return 0;
}

/* Append a header the server derives (host from :authority, version). */
static void stream_add_header(h2_stream_t *s, const char *name, const char *value, size_t vlen)
{
    size_t nlen = strlen(name), off = s->hstore.len;
    if (cu_buf_append(&s->hstore, name, nlen) != CU_OK ||
        cu_buf_append(&s->hstore, value, vlen) != CU_OK)
        return;
    push_header(s, off, nlen, vlen);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    h2_sess_t *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    /* Empty DATA frames cost the server work and carry nothing (CVE-2019-9518). */
    if (f->hd.type == NGHTTP2_DATA && f->hd.length <= f->data.padlen &&
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) && ++h->empty_data > H2_MAX_EMPTY_DATA) {
        nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
        return 0;
    }
    h2_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s)
        return 0;
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->bad) { /* bad: reset, the body fails */
        s->in_eof = 1;
        stream_wake(s);
    }
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_PRIORITY)) {
        s->weight = f->headers.pri_spec.weight;
        s->depends_on = f->headers.pri_spec.stream_id;
    }
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST && !s->bad) {
        if (h->stopping) {
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
        cu_str_t a = pseudo(s, 3);
        if (a.len)
            stream_add_header(s, "host", a.p, a.len);
        stream_add_header(s, "version", "2", 1); /* gunicorn's HTTP_VERSION = "2" */
        stream_build_request(s);
        ready_push(h, s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    h2_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s || s->app == APP_DONE || s->bad) {
        nghttp2_session_consume(ng, id, len); /* nobody will read it */
        return 0;
    }
    if (cu_buf_append(&s->inb, data, len) != CU_OK)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    stream_wake(s);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    h2_sess_t *h = ud;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    s->closed = 1;
    h->nopen--;
    if (s->submitted && code == NGHTTP2_NO_ERROR && h->refuse_left < H2_REFUSE_BURST)
        h->refuse_left++; /* served: the peer earns back a refusal */
    /* Unread request bytes go back to the connection window. */
    if (cu_buf_unread(&s->inb)) {
        nghttp2_session_consume_connection(ng, cu_buf_unread(&s->inb));
        s->inb.pos = s->inb.len = 0;
    }
    stream_wake(s);
    stream_release(s);
    return 0;
}

/* Response body for nghttp2, from the stream's queue. */
static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    h2_stream_t *s = src->ptr;
    size_t n = cu_buf_unread(&s->outb);
    if (n > len)
        n = len;
    if (n) {
        memcpy(buf, cu_buf_head(&s->outb), n);
        cu_buf_consume(&s->outb, n);
        stream_wake(s);
    }
    s->out_sent += n;
    /* The end: the app finished, or its whole body (a list it returned, so no trailers can
     * follow) has the declared length. */
    if (!cu_buf_unread(&s->outb) && (s->out_eof || (s->sc.resp.hold && s->out_len >= 0 &&
                                                    s->out_sent >= (uint64_t)s->out_len))) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        s->eof_sent = 1;
        if (s->trailer_nv) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(ng, id, s->trailer_nv, s->ntrailers) != 0)
                *flags &= ~(uint32_t)NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

/* ---- the connection side ---- */

/* Pull frames from nghttp2 into c->out and write what the socket takes. */
static void sess_send(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    if (!c || h->dead)
        return;
    /* Until the socket is full or nghttp2 has nothing more: a socket that took everything
     * gives no write event to come back on. */
    for (;;) {
        while (cu_buf_unread(&c->out) < H2_OUT_HIGH) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h->ng, &data);
            if (n < 0) {
                h->dead = 1;
                break;
            }
            if (n == 0)
                break;
            if (cu_buf_append(&c->out, data, (size_t)n) != CU_OK) {
                h->dead = 1;
                break;
            }
        }
        if (h->dead || !cu_buf_unread(&c->out))
            break;
        size_t before = cu_buf_unread(&c->out);
        int frc = cu_conn_flush_nb(c);
        h->sent += before - cu_buf_unread(&c->out);
        if (frc == CU_ERROR)
            h->dead = 1;
        if (frc != CU_OK)
            break;
    }
    sess_arm(h);
}

/* Wake every stream waiting in its app: the connection is gone. */
static void wake_all(h2_sess_t *h)
{
    for (h2_stream_t *s = h->all; s; s = s->anext)
        stream_wake(s);
}

static void sess_arm(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    if (!c)
        return;
    if (h->dead) {
        cu_io_set(h->e->loop, &c->io, 0);
        return;
    }
    int ev = 0;
    if (cu_buf_unread(&c->out) < 4 * H2_OUT_HIGH)
        ev |= CU_EV_READ;
    if (cu_buf_unread(&c->out))
        ev |= c->t.want ? c->t.want : CU_EV_WRITE;
    cu_io_set(h->e->loop, &c->io, ev | h->e->oneshot);
    /* One timer: while output waits for the peer, the write stall limit (io timeout,
     * renewed on progress); when nothing is open, the idle limit (keepalive). */
    int idle = !h->in_app && !h->rhead && !h->nopen;
    /* Waiting on the peer: output it does not read, or open streams and no app running
     * (its flow-control window or the rest of a request body). */
    int waiting = cu_buf_unread(&c->out) || (h->nopen && !h->in_app && !h->rhead);
    int mode = waiting ? 1 : idle ? 2 : 0;
    if (h->tmode == 3 && cu_timer_active(&c->timer))
        return; /* the final GOAWAY is due first */
    if (mode != h->tmode || !cu_timer_active(&c->timer)) {
        cu_timer_stop(h->e->loop, &c->timer);
        h->tmode = mode;
        h->tsent = h->sent;
        if (mode == 1)
            cu_timer_start(h->e->loop, &c->timer, c->settings->io_timeout_ms);
        else if (mode == 2)
            cu_timer_start(h->e->loop, &c->timer,
                           c->settings->keepalive_ms > 0 ? c->settings->keepalive_ms
                                                         : c->settings->head_timeout_ms);
    }
}

/* Close the connection once nothing is left to do on it. */
static void sess_maybe_close(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    if (!c)
        return;
    int idle = !h->in_app && !h->rhead;
    int done = h->dead || (!nghttp2_session_want_read(h->ng) &&
                           !nghttp2_session_want_write(h->ng) && !cu_buf_unread(&c->out));
    if (h->stopping && idle && !h->nopen && !nghttp2_session_want_write(h->ng) &&
        !cu_buf_unread(&c->out))
        done = 1;
    if (done && idle)
        cu_engine_linger_conn(h->e, c); /* calls cu_h2_release */
}

/* Feed n bytes to nghttp2. */
static void sess_recv(h2_sess_t *h, const char *p, size_t n)
{
    h->sent += n; /* progress, for the stall timer */
    ssize_t r = nghttp2_session_mem_recv(h->ng, (const uint8_t *)p, n);
    if (r < 0) {
        cu_log_debug("HTTP/2 session error: %s", nghttp2_strerror((int)r));
        /* nghttp2 queued a GOAWAY for protocol errors: try to send it. */
        sess_send(h);
        h->dead = 1;
    }
}

/* Read what the socket has. Returns CU_OK, CU_AGAIN (nothing now), CU_ERROR (gone). */
static int sess_read_once(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    char buf[H2_READ_CHUNK];
    ssize_t n = c->t.ops->read(&c->t, buf, sizeof(buf));
    if (n == CU_AGAIN)
        return CU_AGAIN;
    if (n <= 0) {
        h->dead = 1;
        return CU_ERROR;
    }
    sess_recv(h, buf, (size_t)n);
    return h->dead ? CU_ERROR : CU_OK;
}

static void sess_io(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    size_t before = cu_buf_unread(&c->out);
    if (before && cu_conn_flush_nb(c) == CU_ERROR)
        h->dead = 1;
    h->sent += before - cu_buf_unread(&c->out);
    /* Until the transport has nothing more (TLS may hold decrypted bytes no event will
     * announce), unless the peer is not reading what we send. */
    while (!h->dead && cu_buf_unread(&c->out) < 4 * H2_OUT_HIGH) {
        if (sess_read_once(h) != CU_OK)
            break;
        sess_send(h);
    }
    sess_send(h);
    if (h->dead)
        wake_all(h);
    sess_maybe_close(h);
    if (h->c)
        sess_run_ready(h);
}

void cu_h2_on_io(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = c->pdata;
    sess_io(h);
    /* What the frames just read mean for running apps (asgi), now rather than after
     * another trip through the loop; a queue still armed keeps the eventfd for itself. */
    if (h->e && h->kicked && !h->rarmed && !e->threaded) {
        int live = h->c != NULL; /* then no app ends the session (app_flush may close it) */
        ready_fired(h);
        app_events(h);
        if (live)
            app_flush(h);
    }
}

void cu_h2_on_timer(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = c->pdata;
    if (h->tmode == 3) {
        h->tmode = 0;
        final_goaway(h);
        if (h->c)
            sess_arm(h);
        return;
    }
    if (h->tmode == 1) {
        if (h->sent != h->tsent) {
            h->tsent = h->sent; /* the peer is reading, slowly: give it another period */
            cu_timer_start(e->loop, &c->timer, c->settings->io_timeout_ms);
            return;
        }
        /* A peer that stopped reading (or stopped opening its window, or sending the
         * body it announced): drop the connection; apps waiting on it fail. */
        cu_log_debug("HTTP/2 peer stalled for the io timeout; closing");
        h->dead = 1;
        wake_all(h);
        sess_maybe_close(h);
        return;
    }
    if (h->tmode != 2 || h->in_app || h->rhead || h->nopen)
        return;
    /* Idle: say goodbye and close. */
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    sess_send(h);
    h->dead = 1;
    sess_maybe_close(h);
}

/* The final GOAWAY: the last stream we will serve; later ones are refused. */
static void final_goaway(h2_sess_t *h)
{
    h->stopping = 1;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    sess_send(h);
    sess_maybe_close(h);
}

void cu_h2_stop(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = c->pdata;
    if (h->stopping || h->notice)
        return;
    /* Two steps, as RFC 9113 section 6.8 advises: a GOAWAY naming the highest possible
     * stream (stop opening streams), then after about a round trip the final one naming
     * the last stream we got; streams the client opened meanwhile are still served. */
    h->notice = 1;
    if (h->send_due) {
        /* Responses tasks finished (asgi, app_flush pending) leave before the GOAWAY:
         * nghttp2 would put the GOAWAY first. */
        h->send_due = 0;
        sess_send(h);
    }
    nghttp2_submit_shutdown_notice(h->ng);
    h->tmode = 3;
    cu_timer_stop(e->loop, &c->timer);
    cu_timer_start(e->loop, &c->timer, H2_GOAWAY_DELAY_MS);
    sess_send(h);
}

static void sess_free(h2_sess_t *h)
{
    /* Streams nghttp2 still holds are freed through on_stream_close by session_del. */
    if (h->ng)
        nghttp2_session_del(h->ng);
    h->ng = NULL;
    h->rhead = h->rtail = NULL;
    while (h->all) {
        h2_stream_t *s = h->all;
        cu_assert(s->app != APP_RUNNING);
        stream_free(s);
    }
    while (h->spool) {
        h2_stream_t *s = h->spool;
        h->spool = s->next;
        stream_destroy(s);
    }
    h->nspool = 0;
    if (h->e) {
        cu_io_del(h->e->loop, &h->rio);
        cu_timer_stop(h->e->loop, &h->handoff);
    }
    close(h->efd);
    h->efd = -1;
    cu_tls_facts_free(h->tls);
    h->tls = NULL;
    /* Pooled, never freed while serving (as the engine does with connections): another
     * thread may still hold an event for h->rio from this iteration. */
    h->e = NULL;
    h->next_free = sess_pool;
    sess_pool = h;
}

void cu_h2_release(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = c->pdata;
    if (!h)
        return;
    c->pdata = NULL;
    h->c = NULL;
    h->dead = 1;
    /* Apps still running as tasks (asgi) hear through the ready eventfd that the
     * connection went (app_events); it goes with the session. */
    if (!h->in_app || !e->app_io || e->threaded)
        cu_io_del(e->loop, &h->rio);
    wake_all(h);
    if (!h->in_app)
        sess_free(h);
}

/* Take the server's SETTINGS frame (nghttp2's first) into c->out, advertising max_streams
 * as SETTINGS_MAX_CONCURRENT_STREAMS whatever nghttp2 was told (see sess_open). */
static void send_settings(h2_sess_t *h, uint32_t max_streams)
{
    const uint8_t *data;
    uint8_t f[9 + 6 * 8];
    ssize_t n = nghttp2_session_mem_send(h->ng, &data);
    cu_assert(n >= 9 && (size_t)n <= sizeof(f) && data[3] == NGHTTP2_SETTINGS &&
              !(data[4] & NGHTTP2_FLAG_ACK));
    memcpy(f, data, (size_t)n);
    for (ssize_t i = 9; i + 6 <= n; i += 6) {
        if (f[i] == 0 && f[i + 1] == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
            f[i + 2] = (uint8_t)(max_streams >> 24);
            f[i + 3] = (uint8_t)(max_streams >> 16);
            f[i + 4] = (uint8_t)(max_streams >> 8);
            f[i + 5] = (uint8_t)max_streams;
        }
    }
    if (cu_buf_append(&h->c->out, f, (size_t)n) != CU_OK)
        h->dead = 1;
}

/* A session for c, SETTINGS queued; NULL when out of resources. */
static h2_sess_t *sess_open(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = sess_pool;
    if (h) {
        sess_pool = h->next_free;
        memset(h, 0, sizeof(*h));
    } else {
        h = cu_xcalloc(1, sizeof(*h));
    }
    h->e = e;
    h->c = c;
    h->settings = e->settings;
    h->settings.block = NULL; /* set below */
    /* A stream's response bytes are bounded here (per stream and per connection, by flow
     * control), not by the engine's unsent-output budget: no spill files for streams. */
    h->settings.out_kept = NULL;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        h->next_free = sess_pool;
        sess_pool = h;
        return NULL;
    }
    h->tls = cu_tls_facts_new(&c->t); /* NULL on h2c */
    extern int cu_h2_stream_block(cu_conn_t * sc, int events);
    h->settings.block = cu_h2_stream_block;
    cu_io_init(&h->rio, h->efd, on_ready, h);
    cu_timer_init(&h->handoff, on_handoff, h);

    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* Flood limits (nghttp2's defaults, stated here as the contract): RST_STREAM from the
     * peer (rapid reset, CVE-2023-44487), CONTINUATION frames per header block
     * (CVE-2024-27316 / CVE-2024-28182), SETTINGS entries per frame and unacknowledged
     * SETTINGS/PING ACKs queued for a peer that does not read. */
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_RST_BURST, H2_RST_RATE);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    if (e->es.h2_max_header_list)
        nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
    int rc = nghttp2_session_server_new2(&h->ng, cb, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        close(h->efd);
        cu_tls_facts_free(h->tls);
        h->tls = NULL;
        h->next_free = sess_pool;
        sess_pool = h;
        return NULL;
    }
    /* nghttp2 treats a stream past the limit it sent as a connection error (GOAWAY). To refuse
     * just that stream (on_begin_headers), nghttp2 gets a higher limit (refused streams stay
     * open in it until their RST_STREAM goes out, and it keeps up to its limit of closed and
     * idle streams for priorities: hence a small slack) and the peer is told the configured
     * one: send_settings rewrites the value in the frame. */
    uint32_t lim = e->es.h2_max_streams;
    uint32_t internal = lim > UINT32_MAX - H2_REFUSE_SLACK ? UINT32_MAX : lim + H2_REFUSE_SLACK;
    h->refuse_left = H2_REFUSE_BURST;
    nghttp2_settings_entry iv[4];
    size_t niv = 0;
    iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, internal};
    iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, e->es.h2_window};
    iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE, e->es.h2_max_frame};
    if (e->es.h2_max_header_list)
        iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                             e->es.h2_max_header_list};
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, niv);
    send_settings(h, lim);
    int32_t cw = e->es.h2_window > H2_CONN_WINDOW ? (int32_t)e->es.h2_window : H2_CONN_WINDOW;
    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, cw);
    c->pdata = h;
    cu_timer_stop(e->loop, &c->timer);
    return h;
}

/* Feed what the engine read already (the preface and maybe more frames), then send. */
static void sess_start(h2_sess_t *h)
{
    cu_conn_t *c = h->c;
    size_t n = cu_buf_unread(&c->in);
    const char *p = cu_buf_head(&c->in);
    c->in.pos = c->in.len = 0;
    if (n)
        sess_recv(h, p, n);
    sess_send(h);
    sess_run_ready(h);
}

int cu_h2_open(cu_engine_t *e, cu_conn_t *c)
{
    h2_sess_t *h = sess_open(e, c);
    if (!h)
        return CU_ERROR;
    sess_start(h);
    return CU_OK;
}

/* base64url without padding (RFC 7540 section 3.2.1) into out; bytes or -1. */
static ssize_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                : ch == '='              ? -2
                                         : -1;
        if (v == -2)
            break;
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k == cap)
                return -1;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)k;
}

ssize_t cu_h2_upgrade_settings(const char *b64, size_t n, uint8_t *out, size_t cap)
{
    ssize_t k = b64url_decode(b64, n, out, cap);
    if (k < 0 || k % 6)
        return -1;
    for (ssize_t i = 0; i < k; i += 6) {
        uint32_t code = (uint32_t)out[i] << 8 | out[i + 1];
        uint32_t v = (uint32_t)out[i + 2] << 24 | (uint32_t)out[i + 3] << 16 |
                     (uint32_t)out[i + 4] << 8 | out[i + 5];
        if ((code == 2 && v > 1) || (code == 4 && v > 0x7fffffffu) ||
            (code == 5 && (v < 16384 || v > 16777215)))
            return -1;
    }
    return k;
}

int cu_h2_open_upgrade(cu_engine_t *e, cu_conn_t *c, const uint8_t *settings, size_t slen,
                       size_t used)
{
    h2_sess_t *h = sess_open(e, c);
    if (!h)
        return CU_ERROR;
    const cu_req_t *r = &c->request;
    int head = r->method.len == 4 && memcmp(r->method.p, "HEAD", 4) == 0;
    if (nghttp2_session_upgrade2(h->ng, settings, slen, head, NULL) != 0) {
        c->pdata = NULL;
        sess_free(h);
        return CU_ERROR;
    }
    /* Stream 1 is the HTTP/1.1 request that asked for the upgrade, its body complete. */
    h2_stream_t *s = stream_new(h, 1);
    nghttp2_session_set_stream_user_data(h->ng, 1, s);
    size_t off = s->hstore.len;
    (void)cu_buf_append(&s->hstore, r->method.p, r->method.len);
    s->pseudo[0][0] = (uint32_t)off;
    s->pseudo[0][1] = (uint32_t)r->method.len + 1;
    off = s->hstore.len;
    (void)cu_buf_append(&s->hstore, r->target.p, r->target.len);
    s->pseudo[1][0] = (uint32_t)off;
    s->pseudo[1][1] = (uint32_t)r->target.len + 1;
    for (size_t i = 0; i < r->nheaders; i++) {
        const cu_header_t *hd = &r->headers[i];
        char name[256];
        size_t nl = hd->name.len < sizeof(name) - 1 ? hd->name.len : sizeof(name) - 1;
        memcpy(name, hd->name.p, nl);
        name[nl] = '\0';
        if (hd->folded) {
            char *v = cu_xmalloc(hd->value.len + 1);
            size_t vl = cu_header_value(hd, v);
            stream_add_header(s, name, v, vl);
            cu_free(v);
        } else {
            stream_add_header(s, name, hd->value.p, hd->value.len);
        }
    }
    stream_add_header(s, "version", "2", 1);
    int64_t blen = r->content_length > 0 ? r->content_length : 0;
    if (blen)
        (void)cu_buf_append(&s->inb, cu_buf_head(&c->in) + c->head_len, (size_t)blen);
    s->upgraded = 1;
    s->in_eof = 1;
    stream_build_request(s);
    s->sc.request.content_length = blen;
    s->sc.request.body_to_eof = 0;
    cu_buf_consume(&c->in, used);
    ready_push(h, s);
    sess_start(h);
    return CU_OK;
}

/* ---- the stream connection: transport, driver, blocking adapter ---- */

static ssize_t stream_read(cu_transport_t *t, void *buf, size_t n)
{
    h2_stream_t *s = t->impl;
    h2_sess_t *h = s->h;
    ssize_t rc;
    lock(h);
    size_t have = cu_buf_unread(&s->inb);
    if (have) {
        if (have > n)
            have = n;
        memcpy(buf, cu_buf_head(&s->inb), have);
        cu_buf_consume(&s->inb, have);
        if (h->ng && !s->closed && !s->upgraded) {
            nghttp2_session_consume(h->ng, s->id, have);
            sess_send(h);
        }
        rc = (ssize_t)have;
    } else if (s->in_eof) {
        s->eof_read = 1;
        rc = 0;
    } else if (s->closed || h->dead) {
        rc = CU_ERROR;
    } else {
        t->want = CU_EV_READ;
        rc = CU_AGAIN;
    }
    unlock(h);
    return rc;
}

static ssize_t stream_writev(cu_transport_t *t, const struct iovec *iov, int iovcnt)
{
    h2_stream_t *s = t->impl;
    h2_sess_t *h = s->h;
    ssize_t rc = 0;
    lock(h);
    if (s->closed || h->dead || !h->ng) {
        rc = CU_ERROR;
    } else {
        size_t room =
            cu_buf_unread(&s->outb) < H2_STREAM_OUT ? H2_STREAM_OUT - cu_buf_unread(&s->outb) : 0;
        for (int i = 0; i < iovcnt && room; i++) {
            size_t k = iov[i].iov_len < room ? iov[i].iov_len : room;
            if (cu_buf_append(&s->outb, iov[i].iov_base, k) != CU_OK)
                break;
            rc += (ssize_t)k;
            room -= k;
        }
        if (rc == 0) {
            t->want = CU_EV_WRITE;
            rc = CU_AGAIN;
        } else if (s->submitted) {
            nghttp2_session_resume_data(h->ng, s->id);
            if (s->later && s->sc.resp.hold)
                defer_send(h); /* a whole body in hand goes with the loop pass (asgi) */
            else if (!((h->batch || s->batched) && s->sc.resp.hold)) /* ... or the batch */
                sess_send(h);
        }
    }
    unlock(h);
    return rc;
}

static int stream_shutdown(cu_transport_t *t)
{
    return CU_OK;
}

static void stream_close(cu_transport_t *t) {}

static const cu_transport_ops_t stream_ops = {
    .name = "h2",
    .read = stream_read,
    .writev = stream_writev,
    .shutdown = stream_shutdown,
    .close = stream_close,
};

/* Can the stream's app go on? */
static int stream_ready(h2_stream_t *s, int events)
{
    if (s->closed || s->h->dead)
        return 1;
    if ((events & CU_EV_READ) && (cu_buf_unread(&s->inb) || s->in_eof))
        return 1;
    if ((events & CU_EV_WRITE) && cu_buf_unread(&s->outb) < H2_STREAM_OUT)
        return 1;
    return 0;
}

/* sync: nobody else drives the connection while the app waits: pump it here. */
static int pump(h2_sess_t *h, h2_stream_t *s, int events, int64_t deadline)
{
    sess_send(h); /* what a batch deferred */
    while (!stream_ready(s, events)) {
        cu_conn_t *c = h->c;
        int64_t left = deadline - cu_mono_ms();
        if (left <= 0)
            return CU_AGAIN;
        struct pollfd pfd = {c->t.fd, POLLIN | (cu_buf_unread(&c->out) ? POLLOUT : 0), 0};
        int pr = cu_transport_pending(&c->t) ? 1 : poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (cu_transport_pending(&c->t))
            pfd.revents = POLLIN;
        if (h->e->report.stamp)
            h->e->report.stamp(h->e->report.arg);
        if (pr < 0 && errno != EINTR)
            return CU_ERROR;
        if (pr > 0) {
            size_t before = cu_buf_unread(&c->out);
            if (before && cu_conn_flush_nb(c) == CU_ERROR)
                h->dead = 1;
            h->sent += before - cu_buf_unread(&c->out);
            if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
                (void)sess_read_once(h);
            sess_send(h);
        }
    }
    return CU_OK;
}

int cu_h2_stream_block(cu_conn_t *sc, int events)
{
    h2_stream_t *s = sc->t.impl;
    h2_sess_t *h = s->h;
    int64_t deadline = cu_mono_ms() + sc->settings->io_timeout_ms;
    int rc = CU_OK;
    if (!h->e->threaded) {
        rc = pump(h, s, events, deadline);
    } else {
        lock(h);
        /* An inline runner's stream (sess_run_inline) holds its output back for one write
         * with the others: once it must wait, holding back saves nothing (and its peer may
         * be waiting for that output, or for the window our reads opened). */
        if (s->batched && h->c && !stream_ready(s, events))
            sess_send(h);
        while (!stream_ready(s, events)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->cv, &h->e->mu, &ts);
            if (h->e->report.stamp)
                h->e->report.stamp(h->e->report.arg);
            if (cu_mono_ms() >= deadline && !stream_ready(s, events)) {
                rc = CU_AGAIN;
                break;
            }
        }
        unlock(h);
    }
    if (rc == CU_OK && (s->closed || h->dead) && !(events & CU_EV_READ && s->in_eof))
        rc = CU_ERROR;
    return rc;
}

static void lower_into(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
}

#define NV(n, nl, v, vl)                                                                           \
    (nghttp2_nv)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), nl, vl, NGHTTP2_NV_FLAG_NONE                               \
    }

/* Submit the response HEADERS (under the lock). `body`: a DATA stream follows. */
static int submit_head(h2_stream_t *s, const cu_resp_head_t *hd, int64_t clen, int body)
{
    h2_sess_t *h = s->h;
    cu_conn_t *sc = &s->sc;
    if (s->closed || !h->ng || h->dead)
        return CU_ERROR;
    size_t n = 3 + hd->nfields;
    nghttp2_nv *nv = cu_xmalloc(n * sizeof(*nv));
    size_t lsz = 0;
    for (size_t i = 0; i < hd->nfields; i++)
        lsz += hd->fields[i].nlen;
    char *low = cu_xmalloc(lsz + 1);
    char status[8], clbuf[24];
    snprintf(status, sizeof(status), "%03d", hd->status % 1000);
    size_t k = 0, lo = 0;
    nv[k++] = NV(":status", 7, status, 3);
    int have_cl = 0;
    for (size_t i = 0; i < hd->nfields; i++) {
        cu_str_t nm = cu_resp_field_name(hd, i), v = cu_resp_field_value(hd, i);
        lower_into(low + lo, nm.p, nm.len);
        if (nm.len == 14 && memcmp(low + lo, "content-length", 14) == 0)
            have_cl = 1;
        nv[k++] = NV(low + lo, nm.len, v.p, v.len);
        lo += nm.len;
    }
    cu_time_update();
    if (!sc->resp.app_server)
        nv[k++] = NV("server", 6, sc->settings->server_header, strlen(sc->settings->server_header));
    if (!sc->resp.app_date)
        nv[k++] = NV("date", 4, cu_time.http_date, cu_time.http_date_len);
    nghttp2_nv *all = nv;
    if (!have_cl && clen >= 0) {
        all = cu_xrealloc(nv, (k + 1) * sizeof(*nv));
        int cl = snprintf(clbuf, sizeof(clbuf), "%lld", (long long)clen);
        all[k++] = NV("content-length", 14, clbuf, (size_t)cl);
    }
    if (body)
        s->out_len = have_cl ? sc->resp.content_length : clen;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = data_read};
    int rv = nghttp2_submit_response(h->ng, s->id, all, k, body ? &dp : NULL);
    cu_free(all);
    cu_free(low);
    if (rv != 0)
        return CU_ERROR;
    s->submitted = 1;
    if (s->later && sc->resp.hold)
        defer_send(h);
    else if (!((h->batch || s->batched) && sc->resp.hold))
        sess_send(h);
    return CU_OK;
}

static void stream_reset(cu_conn_t *sc) {}

static int stream_parse(cu_conn_t *sc, int *status, const char **msg)
{
    return CU_OK; /* the request was built from HEADERS */
}

static int stream_emit_head(cu_conn_t *sc, int64_t final_len)
{
    h2_stream_t *s = sc->t.impl;
    cu_resp_t *r = &sc->resp;
    r->chunked = 0;
    r->close_delimited = 0;
    int64_t clen = r->no_body ? -1 : r->content_length >= 0 ? -1 : final_len;
    int body = !(r->no_body || final_len == 0);
    lock(s->h);
    int rc = submit_head(s, &r->h, clen, body);
    unlock(s->h);
    return rc;
}

static int stream_error_page(cu_conn_t *sc, int status, const char *reason, const char *msg)
{
    h2_stream_t *s = sc->t.impl;
    char body[1024];
    int bl = snprintf(body, sizeof(body),
                      "<html>\n  <head>\n    <title>%s</title>\n  </head>\n  <body>\n"
                      "    <h1><p>%s</p></h1>\n    %s\n  </body>\n</html>\n",
                      reason, reason, msg ? msg : "");
    if (bl < 0 || (size_t)bl >= sizeof(body))
        bl = (int)strlen(body);
    cu_resp_head_t hd;
    memset(&hd, 0, sizeof(hd));
    cu_buf_init(&hd.store, 0, 4096);
    char st[64];
    int sl = snprintf(st, sizeof(st), "%d %s", status, reason);
    int rc = CU_ERROR;
    lock(s->h);
    if (!s->submitted && cu_resp_head_status(&hd, status, st, (size_t)sl) == CU_OK &&
        cu_resp_head_add(&hd, "content-type", 12, "text/html", 9) == CU_OK &&
        cu_buf_append(&s->outb, body, (size_t)bl) == CU_OK) {
        s->out_eof = 1;
        rc = submit_head(s, &hd, bl, 1);
    }
    unlock(s->h);
    cu_resp_head_free(&hd);
    return rc == CU_OK ? bl : CU_ERROR;
}

/* nghttp2 name/value pairs for fields (names lower-cased into *low); caller frees both. */
static nghttp2_nv *fields_nv(const cu_resp_head_t *f, const char *status, char **low, size_t *n)
{
    size_t lsz = 1, k = 0, lo = 0;
    for (size_t i = 0; i < f->nfields; i++)
        lsz += f->fields[i].nlen;
    nghttp2_nv *nv = cu_xmalloc((f->nfields + 1) * sizeof(*nv));
    *low = cu_xmalloc(lsz);
    if (status)
        nv[k++] = NV(":status", 7, status, 3);
    for (size_t i = 0; i < f->nfields; i++) {
        cu_str_t nm = cu_resp_field_name(f, i), v = cu_resp_field_value(f, i);
        lower_into(*low + lo, nm.p, nm.len);
        nv[k++] = NV(*low + lo, nm.len, v.p, v.len);
        lo += nm.len;
    }
    *n = k;
    return nv;
}

/* An informational response (103 Early Hints): a HEADERS frame without END_STREAM before
 * the final one. */
static int stream_interim(cu_conn_t *sc, int status, const char *reason, const cu_str_t *names,
                          const cu_str_t *values, size_t n)
{
    h2_stream_t *s = sc->t.impl;
    h2_sess_t *h = s->h;
    int rc = CU_ERROR;
    /* HTTP/2 has no reason phrase; an informational status has three digits */
    (void)reason;
    char st[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10)};
    size_t lsz = 1, lo = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        lsz += names[i].len;
    nghttp2_nv *nv = cu_xmalloc((n + 1) * sizeof(*nv));
    char *low = cu_xmalloc(lsz);
    nv[k++] = NV(":status", 7, st, 3);
    for (size_t i = 0; i < n; i++) {
        lower_into(low + lo, names[i].p, names[i].len);
        nv[k++] = NV(low + lo, names[i].len, values[i].p, values[i].len);
        lo += names[i].len;
    }
    lock(h);
    if (!s->closed && !h->dead && h->ng && !s->submitted &&
        nghttp2_submit_headers(h->ng, NGHTTP2_FLAG_NONE, s->id, NULL, nv, k, NULL) == 0) {
        sess_send(h);
        rc = CU_OK;
    }
    unlock(h);
    cu_free(nv);
    cu_free(low);
    return rc;
}

static int stream_trailers(cu_conn_t *sc, const cu_resp_head_t *f)
{
    h2_stream_t *s = sc->t.impl;
    h2_sess_t *h = s->h;
    lock(h);
    int rc = s->eof_sent ? CU_ERROR : CU_OK; /* the stream already ended */
    cu_free(s->trailer_nv);
    cu_free(s->trailer_low);
    s->trailer_nv = NULL;
    s->trailer_low = NULL;
    s->ntrailers = 0;
    cu_resp_head_reset(&s->trailers);
    for (size_t i = 0; i < f->nfields && rc == CU_OK; i++) {
        cu_str_t nm = cu_resp_field_name(f, i), v = cu_resp_field_value(f, i);
        rc = cu_resp_head_add(&s->trailers, nm.p, nm.len, v.p, v.len);
    }
    if (rc == CU_OK && s->trailers.nfields)
        s->trailer_nv = fields_nv(&s->trailers, NULL, &s->trailer_low, &s->ntrailers);
    unlock(h);
    return rc;
}

static const cu_proto_t stream_proto = {
    .name = "http2",
    .reset = stream_reset,
    .parse = stream_parse,
    .emit_head = stream_emit_head,
    .error_page = stream_error_page,
    .continue_100 = NULL,
    .interim = stream_interim,
    .trailers = stream_trailers,
};
