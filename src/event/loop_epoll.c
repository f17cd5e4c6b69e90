/* epoll backend of the event loop, with a binary min-heap of timers and an eventfd wakeup. */
#include "loop.h"
#include "core/clock.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct cu_loop_s {
    int epfd;
    cu_io_t wake_io;
    cu_timer_t **heap;
    int nheap;
    int heap_cap;
    void (*lock)(void *);
    void (*unlock)(void *);
    void *lock_arg;
    int wake_sticky; /* wakeup stays readable: every waiting thread returns */
    int batch;       /* most events taken per run_once */
};

static void on_wakeup(cu_loop_t *loop, cu_io_t *io, int events)
{
    CU_UNUSED(events);
    uint64_t v;
    while (!loop->wake_sticky && read(io->fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

cu_loop_t *cu_loop_create(void)
{
    cu_loop_t *loop = cu_xcalloc(1, sizeof(*loop));
    loop->batch = MAX_EVENTS;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        goto fail_epoll;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        goto fail_eventfd;
    cu_io_init(&loop->wake_io, efd, on_wakeup, NULL);
    if (cu_io_set(loop, &loop->wake_io, CU_EV_READ) != CU_OK)
        goto fail_register;
    cu_time_update();
    return loop;

fail_register:
    close(efd);
fail_eventfd:
    close(loop->epfd);
fail_epoll:
    cu_free(loop);
    return NULL;
}

void cu_loop_destroy(cu_loop_t *loop)
{
    if (!loop)
        return;
    close(loop->wake_io.fd);
    close(loop->epfd);
    cu_free(loop->heap);
    cu_free(loop);
}

void cu_io_init(cu_io_t *io, int fd, cu_io_cb cb, void *data)
{
    io->fd = fd;
    io->events = 0;
    io->cb = cb;
    io->data = data;
}

int cu_io_set(cu_loop_t *loop, cu_io_t *io, int events)
{
    events &= CU_EV_READ | CU_EV_WRITE | CU_EV_EXCLUSIVE | CU_EV_ONESHOT;
    /* A one-shot watcher is disarmed by its event: setting it again re-arms it. */
    if (events == io->events && !(events & CU_EV_ONESHOT))
        return CU_OK;
    if (events == 0)
        return cu_io_del(loop, io);
    struct epoll_event ev = {0};
    ev.data.ptr = io;
    /* EPOLLEXCLUSIVE allows only IN/OUT/ET/WAKEUP beside it; listeners need no RDHUP. */
    if (events & CU_EV_READ)
        ev.events |= (events & CU_EV_EXCLUSIVE) ? EPOLLIN : EPOLLIN | EPOLLRDHUP;
    if (events & CU_EV_WRITE)
        ev.events |= EPOLLOUT;
    if (events & CU_EV_EXCLUSIVE)
        ev.events |= EPOLLEXCLUSIVE;
    if (events & CU_EV_ONESHOT)
        ev.events |= EPOLLONESHOT;
    int op = io->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    /* EPOLLEXCLUSIVE cannot be modified: re-add instead. */
    if (op == EPOLL_CTL_MOD && ((events | io->events) & CU_EV_EXCLUSIVE)) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
        op = EPOLL_CTL_ADD;
    }
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0)
        return -errno;
    io->events = events;
    return CU_OK;
}

int cu_io_del(cu_loop_t *loop, cu_io_t *io)
{
    if (io->events == 0)
        return CU_OK;
    io->events = 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL) < 0)
        return -errno;
    return CU_OK;
}

/* ---- timers: binary min-heap on deadline ---- */

static void heap_swap(cu_loop_t *loop, int a, int b)
{
    cu_timer_t *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void heap_up(cu_loop_t *loop, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (loop->heap[p]->deadline_ms <= loop->heap[i]->deadline_ms)
            break;
        heap_swap(loop, i, p);
        i = p;
    }
}

static void heap_down(cu_loop_t *loop, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->nheap && loop->heap[l]->deadline_ms < loop->heap[m]->deadline_ms)
            m = l;
        if (r < loop->nheap && loop->heap[r]->deadline_ms < loop->heap[m]->deadline_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

void cu_timer_init(cu_timer_t *t, cu_timer_cb cb, void *data)
{
    t->deadline_ms = 0;
    t->heap_index = -1;
    t->cb = cb;
    t->data = data;
}

void cu_timer_stop(cu_loop_t *loop, cu_timer_t *t)
{
    int i = t->heap_index;
    if (i < 0)
        return;
    int last = --loop->nheap;
    if (i != last) {
        heap_swap(loop, i, last);
        heap_down(loop, i);
        heap_up(loop, i);
    }
    t->heap_index = -1;
}

void cu_timer_start(cu_loop_t *loop, cu_timer_t *t, int64_t ms)
{
    int64_t deadline = cu_time.mono_ms + ms;
    if (t->heap_index >= 0) {
        int64_t old = t->deadline_ms;
        t->deadline_ms = deadline;
        if (deadline < old)
            heap_up(loop, t->heap_index);
        else
            heap_down(loop, t->heap_index);
        return;
    }
    if (loop->nheap == loop->heap_cap) {
        loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        loop->heap = cu_xrealloc(loop->heap, (size_t)loop->heap_cap * sizeof(*loop->heap));
    }
    t->deadline_ms = deadline;
    t->heap_index = loop->nheap;
    loop->heap[loop->nheap++] = t;
    heap_up(loop, t->heap_index);
}

static void run_timers(cu_loop_t *loop)
{
    while (loop->nheap > 0 && loop->heap[0]->deadline_ms <= cu_time.mono_ms) {
        cu_timer_t *t = loop->heap[0];
        cu_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

int cu_loop_run_once(cu_loop_t *loop, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int wait = max_wait_ms;
    cu_time_update();
    if (loop->nheap > 0) {
        int64_t d = loop->heap[0]->deadline_ms - cu_time.mono_ms;
        if (d < 0)
            d = 0;
        if (wait < 0 || d < wait)
            wait = (int)d;
    }
    if (loop->unlock)
        loop->unlock(loop->lock_arg);
    /* With several threads each takes one event: an event taken is served only after the
     * apps of the ones before it, so a batch would queue requests behind one thread while
     * others sit idle (p99 20 ms with 4 threads and a batch of 8; 1 event: see below). */
    int n = epoll_wait(loop->epfd, evs, loop->unlock ? 1 : loop->batch, wait);
    int err = n < 0 ? errno : 0;
    if (loop->lock)
        loop->lock(loop->lock_arg);
    cu_time_update();
    for (int i = 0; i < n; i++) {
        cu_io_t *io = evs[i].data.ptr;
        int e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
            e |= CU_EV_READ;
        if (evs[i].events & EPOLLOUT)
            e |= CU_EV_WRITE;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            e |= CU_EV_ERROR | CU_EV_READ;
        if (io == &loop->wake_io)
            on_wakeup(loop, io, e);
        else
            io->cb(loop, io, e);
    }
    run_timers(loop);
    if (n < 0)
        return err == EINTR ? 0 : -err;
    return n;
}

int cu_loop_fd(const cu_loop_t *loop)
{
    return loop->epfd;
}

int64_t cu_loop_next_deadline(const cu_loop_t *loop)
{
    return loop->nheap > 0 ? loop->heap[0]->deadline_ms : -1;
}

void cu_loop_set_lock(cu_loop_t *loop, void (*lock)(void *), void (*unlock)(void *), void *arg)
{
    loop->lock = lock;
    loop->unlock = unlock;
    loop->lock_arg = arg;
}

void cu_loop_set_batch(cu_loop_t *loop, int max)
{
    loop->batch = max < 1 ? 1 : max > MAX_EVENTS ? MAX_EVENTS : max;
}

void cu_loop_wakeup_all(cu_loop_t *loop)
{
    loop->wake_sticky = 1;
    cu_loop_wakeup(loop);
}

void cu_loop_wakeup(cu_loop_t *loop)
{
    uint64_t one = 1;
    while (write(loop->wake_io.fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}
