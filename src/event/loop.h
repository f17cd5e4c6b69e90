/* The event loop: file descriptors, timers and a cross-thread wakeup. Knows nothing of HTTP.
 * One loop per worker process, driven by one thread, or by several that take turns under
 * the caller's lock (cu_loop_set_lock). Backends: loop_epoll.c (Linux). */
#ifndef CU_LOOP_H
#define CU_LOOP_H

#include "core/cu_core.h"

#define CU_EV_READ      0x1
#define CU_EV_WRITE     0x2
#define CU_EV_ERROR     0x4  /* reported, never requested: EPOLLERR/EPOLLHUP */
#define CU_EV_EXCLUSIVE 0x8  /* request only: EPOLLEXCLUSIVE (shared listeners) */
#define CU_EV_ONESHOT   0x10 /* request only: disarm after one event; cu_io_set re-arms */

typedef struct cu_loop_s cu_loop_t;
typedef struct cu_io_s cu_io_t;
typedef struct cu_timer_s cu_timer_t;

/* Called with the events that fired. The watcher may be removed or its owner freed inside
 * the callback; the loop does not touch `io` again after calling it. */
typedef void (*cu_io_cb)(cu_loop_t *loop, cu_io_t *io, int events);
typedef void (*cu_timer_cb)(cu_loop_t *loop, cu_timer_t *t);

/* Embedded in its owner (e.g. a connection); the owner keeps it alive while registered. */
struct cu_io_s {
    int fd;
    int events; /* what is currently registered */
    cu_io_cb cb;
    void *data;
};

/* Embedded in its owner. `heap_index` < 0 when not armed. */
struct cu_timer_s {
    int64_t deadline_ms; /* on the cu_time.mono_ms clock */
    int heap_index;
    cu_timer_cb cb;
    void *data;
};

cu_loop_t *cu_loop_create(void); /* NULL with errno on failure */
void cu_loop_destroy(cu_loop_t *loop);

void cu_io_init(cu_io_t *io, int fd, cu_io_cb cb, void *data);
/* Register, change, or remove interest. events = 0 in cu_io_set removes it. Return CU_OK or -errno.
 */
int cu_io_set(cu_loop_t *loop, cu_io_t *io, int events);
int cu_io_del(cu_loop_t *loop, cu_io_t *io);

void cu_timer_init(cu_timer_t *t, cu_timer_cb cb, void *data);
/* Arm (or re-arm) to fire once `ms` from now. */
void cu_timer_start(cu_loop_t *loop, cu_timer_t *t, int64_t ms);
void cu_timer_stop(cu_loop_t *loop, cu_timer_t *t);
static inline int cu_timer_active(const cu_timer_t *t)
{
    return t->heap_index >= 0;
}

/* Wait at most max_wait_ms (-1: until a timer or event) and dispatch once: I/O callbacks,
 * then due timers. Updates cu_time first. Returns the number of I/O events, or -errno. */
int cu_loop_run_once(cu_loop_t *loop, int max_wait_ms);

/* For a foreign event loop (asyncio, gevent) that drives this one: the fd that becomes
 * readable when an event is ready (the epoll fd), and the earliest timer deadline on the
 * cu_time.mono_ms clock (-1 when no timer is armed). Call under the loop's lock when
 * several threads drive it. */
int cu_loop_fd(const cu_loop_t *loop);
int64_t cu_loop_next_deadline(const cu_loop_t *loop);

/* Several threads may run cu_loop_run_once on one loop: `unlock` is called just before the
 * thread blocks in the kernel and `lock` right after, so callbacks and timers always run
 * under the caller's lock while waiting threads hold nothing. With ONESHOT connection
 * watchers, one event goes to one thread. */
void cu_loop_set_lock(cu_loop_t *loop, void (*lock)(void *), void (*unlock)(void *), void *arg);

/* Take at most `max` events per cu_loop_run_once (1..256; 256 by default). A loop whose
 * callbacks may suspend mid-batch (a greenlet that yields inside one) uses 1, so no event
 * waits behind a suspended callback. */
void cu_loop_set_batch(cu_loop_t *loop, int max);

/* Keep the wakeup readable from now on, so every thread waiting in this loop returns
 * (used to stop a multi-threaded loop). */
void cu_loop_wakeup_all(cu_loop_t *loop);

/* Async-signal-safe and thread-safe: make a blocked cu_loop_run_once return (eventfd). */
void cu_loop_wakeup(cu_loop_t *loop);

#endif
