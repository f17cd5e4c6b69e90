/* HTTP/2 connections (libnghttp2): one connection carries many requests (streams) whose
 * responses complete later while the loop keeps reading. The engine hands a connection to
 * this module once it is known to speak HTTP/2 (h2c prior knowledge: the preface sniffed on
 * the first bytes); from then on the connection's events, timer and stop come here.
 *
 * Each stream becomes a cu_conn_t of its own (the "stream connection") that the app layer
 * serves exactly as an HTTP/1 request: its request is the neutral cu_req_t (version 2.0,
 * :authority as Host), its transport reads the stream's DATA and queues response bytes as
 * DATA frames, its protocol driver turns the response head into a HEADERS frame, and its
 * blocking adapter waits for the stream (a condition variable on gthread, pumping the
 * connection on sync). Streams are handed to the worker class one by one through a per-
 * connection ready queue watched by the loop (an eventfd): on gthread the reading thread
 * runs them inline and hands the rest to free threads once one is slow (streams of a
 * connection run in parallel when that matters), on sync they run in order, on
 * asgi each becomes a task of the worker's asyncio loop (in parallel too: dispatch returns
 * CU_AGAIN and the stream's events reach the app through e->app_io, below).
 *
 * Threading: nghttp2 and every field below are touched only under the engine lock (gthread)
 * or by the one worker thread (sync). */
#ifndef CU_H2_H
#define CU_H2_H

#include "workers/engine.h"

/* The HTTP/2 connection preface (RFC 9113 section 3.4). */
#define CU_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CU_H2_PREFACE_LEN 24

/* Do the n bytes at p start with the preface? 1 yes, 0 no, -1 a prefix of it (need more). */
int cu_h2_sniff(const char *p, size_t n);

/* Take over connection c (its unread bytes in c->in start with the preface). Returns CU_OK,
 * or CU_ERROR (out of memory: the caller closes c). */
int cu_h2_open(cu_engine_t *e, cu_conn_t *c);

/* Upgrade: h2c (RFC 7540 section 3.2, as gunicorn does it). cu_h2_upgrade_settings
 * decodes and checks an HTTP2-Settings header value (base64url) into out: its length, or
 * -1 when the client's settings are unusable (then do not upgrade). cu_h2_open_upgrade
 * takes over c after the engine queued the 101 in c->out: the request just parsed (c->request,
 * its body complete in c->in after the head) becomes stream 1; `used` bytes of c->in (head
 * and body) are consumed and the rest fed to the session. CU_OK or CU_ERROR. */
ssize_t cu_h2_upgrade_settings(const char *b64, size_t n, uint8_t *out, size_t cap);
int cu_h2_open_upgrade(cu_engine_t *e, cu_conn_t *c, const uint8_t *settings, size_t slen,
                       size_t used);

/* A worker class whose dispatch returns CU_AGAIN (asgi) serves a stream as it serves an
 * HTTP/1 request: cu_engine_app_watch and cu_engine_request_done route here when the
 * connection is a stream (cu_h2_is_stream, the one test for that). cu_h2_app_watch records
 * the events (CU_EV_READ, CU_EV_WRITE) the app waits for; they reach e->app_io from the
 * loop when true: READ for request bytes or the body's end (END_STREAM: the stream's read
 * returns 0, a half-close, not a disconnect), WRITE when the stream's queue has room, and
 * with CU_EV_ERROR when the client reset the stream or the connection went.
 * cu_h2_stream_done ends the stream with what dispatch would have returned. Not for a
 * threaded engine. */
int cu_h2_is_stream(const cu_conn_t *c);
int cu_h2_app_watch(cu_conn_t *sc, int events);
void cu_h2_stream_done(cu_conn_t *sc, int rc);

/* The connection's socket event / timer fired (under the engine lock). */
void cu_h2_on_io(cu_engine_t *e, cu_conn_t *c);
void cu_h2_on_timer(cu_engine_t *e, cu_conn_t *c);

/* Graceful stop: GOAWAY naming the last stream; streams in flight finish, then close. */
void cu_h2_stop(cu_engine_t *e, cu_conn_t *c);

/* The engine closes c (quick exit): drop the session. Streams still in the app keep it
 * alive until they return. */
void cu_h2_release(cu_engine_t *e, cu_conn_t *c);

#endif
