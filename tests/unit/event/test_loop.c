/* The event loop: fd readiness (read, write, one-shot, removal inside a callback, the batch
 * size), timers (order, re-arming, stopping, a timer that frees another) and the wakeup
 * from a signal handler and from another thread. Waits are bounded; nothing asserts wall-clock time
 * beyond "a 20 ms timer does not fire before 20 ms have passed". */
#include "core/clock.h"
#include "event/loop.h"
#include "t.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int calls;
    int last_events;
    int del_self;
} io_rec_t;

static void on_io(cu_loop_t *loop, cu_io_t *io, int events)
{
    io_rec_t *r = io->data;
    r->calls++;
    r->last_events = events;
    if (r->del_self)
        (void)cu_io_del(loop, io);
}

/* Run until cond holds or 200 iterations of at most 50 ms pass. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int _i = 0; _i < 200 && !(cond); _i++)                                                \
            (void)cu_loop_run_once((loop), 50);                                                    \
    } while (0)

static void test_fds(void)
{
    cu_loop_t *loop = cu_loop_create();
    CHECK(loop != NULL);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    io_rec_t r = {0};
    cu_io_t io;
    cu_io_init(&io, sv[0], on_io, &r);

    /* nothing to read: a short wait reports no event */
    CHECK(cu_io_set(loop, &io, CU_EV_READ) == CU_OK);
    CHECK(cu_loop_run_once(loop, 10) == 0 && r.calls == 0);

    CHECK(write(sv[1], "x", 1) == 1);
    RUN_UNTIL(loop, r.calls > 0);
    CHECK(r.calls >= 1 && (r.last_events & CU_EV_READ));
    char c;
    CHECK(read(sv[0], &c, 1) == 1 && c == 'x');

    /* writable at once; then removed, no more calls */
    r.calls = 0;
    CHECK(cu_io_set(loop, &io, CU_EV_WRITE) == CU_OK);
    RUN_UNTIL(loop, r.calls > 0);
    CHECK(r.calls == 1 && (r.last_events & CU_EV_WRITE) && !(r.last_events & CU_EV_READ));
    CHECK(cu_io_set(loop, &io, 0) == CU_OK && io.events == 0);
    r.calls = 0;
    CHECK(cu_loop_run_once(loop, 10) == 0 && r.calls == 0);

    /* one-shot: one event, then silent until re-armed */
    CHECK(write(sv[1], "y", 1) == 1);
    CHECK(cu_io_set(loop, &io, CU_EV_READ | CU_EV_ONESHOT) == CU_OK);
    RUN_UNTIL(loop, r.calls > 0);
    CHECK(r.calls == 1);
    (void)cu_loop_run_once(loop, 10);
    CHECK(r.calls == 1); /* still readable, but disarmed */
    CHECK(cu_io_set(loop, &io, CU_EV_READ | CU_EV_ONESHOT) == CU_OK);
    RUN_UNTIL(loop, r.calls > 1);
    CHECK(r.calls == 2);
    CHECK(cu_io_del(loop, &io) == CU_OK);

    /* a watcher that removes itself inside its callback is not called again */
    r = (io_rec_t){.del_self = 1};
    CHECK(cu_io_set(loop, &io, CU_EV_READ) == CU_OK);
    RUN_UNTIL(loop, r.calls > 0);
    (void)cu_loop_run_once(loop, 10);
    CHECK(r.calls == 1 && io.events == 0);

    /* the peer hangs up: reported as readable (and error/hup) */
    CHECK(read(sv[0], &c, 1) == 1);
    r = (io_rec_t){0};
    CHECK(cu_io_set(loop, &io, CU_EV_READ) == CU_OK);
    close(sv[1]);
    RUN_UNTIL(loop, r.calls > 0);
    CHECK(r.calls >= 1 && (r.last_events & CU_EV_READ));
    CHECK(read(sv[0], &c, 1) == 0);
    CHECK(cu_io_del(loop, &io) == CU_OK);
    close(sv[0]);
    cu_loop_destroy(loop);
}

#define NT 5
static int order[NT], norder;
static cu_timer_t timers[NT];

static void on_timer(cu_loop_t *loop, cu_timer_t *t)
{
    order[norder++] = (int)(t - timers);
    /* timer 0 stops timer 4, which is due later: it must never fire */
    if (t == &timers[0])
        cu_timer_stop(loop, &timers[4]);
}

static void test_timers(void)
{
    cu_loop_t *loop = cu_loop_create();
    static const int64_t due[NT] = {30, 10, 40, 20, 50};
    for (int i = 0; i < NT; i++) {
        cu_timer_init(&timers[i], on_timer, NULL);
        CHECK(!cu_timer_active(&timers[i]));
        cu_timer_start(loop, &timers[i], due[i]);
        CHECK(cu_timer_active(&timers[i]));
    }
    /* re-arming moves a timer: 2 goes from 40 to 5 ms, first of all */
    cu_timer_start(loop, &timers[2], 5);
    int64_t start = cu_mono_ms();
    RUN_UNTIL(loop, norder >= 4);
    (void)cu_loop_run_once(loop, 80);
    CHECK(norder == 4);
    CHECK(order[0] == 2 && order[1] == 1 && order[2] == 3 && order[3] == 0);
    CHECK(cu_mono_ms() - start >= 30); /* none fired early */
    for (int i = 0; i < NT; i++)
        CHECK(!cu_timer_active(&timers[i]));

    /* a stopped timer never fires; stopping twice is harmless */
    norder = 0;
    cu_timer_start(loop, &timers[1], 5);
    cu_timer_stop(loop, &timers[1]);
    cu_timer_stop(loop, &timers[1]);
    (void)cu_loop_run_once(loop, 20);
    CHECK(norder == 0);

    /* a wait with a timer armed returns by the timer's deadline even with -1 */
    cu_timer_start(loop, &timers[3], 10);
    CHECK(cu_loop_run_once(loop, -1) == 0);
    RUN_UNTIL(loop, norder > 0);
    CHECK(norder == 1 && order[0] == 3);
    cu_loop_destroy(loop);
}

static cu_loop_t *g_loop;
static void on_alarm(int sig)
{
    (void)sig;
    cu_loop_wakeup(g_loop);
}

static void *wake_later(void *arg)
{
    usleep(20 * 1000);
    cu_loop_wakeup(arg);
    return NULL;
}

static void test_wakeup(void)
{
    cu_loop_t *loop = cu_loop_create();
    g_loop = loop;
    /* a wakeup posted before the wait makes the next wait return at once, and only once */
    cu_loop_wakeup(loop);
    CHECK(cu_loop_run_once(loop, 5000) == 1);
    CHECK(cu_loop_run_once(loop, 10) == 0);

    /* from another thread, into an infinite wait */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, wake_later, loop) == 0);
    CHECK(cu_loop_run_once(loop, -1) == 1);
    pthread_join(th, NULL);

    /* from a signal handler (async-signal-safe), with a timer as the bound */
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    cu_timer_t guard;
    norder = 0;
    cu_timer_init(&guard, on_timer, NULL);
    cu_timer_start(loop, &guard, 5000);
    ualarm(20 * 1000, 0);
    int n = 0;
    for (int i = 0; i < 10 && n == 0; i++)
        n = cu_loop_run_once(loop, -1); /* an EINTR return (0) just waits again */
    CHECK(n == 1 && cu_timer_active(&guard));
    cu_timer_stop(loop, &guard);

    /* wakeup_all keeps the loop awake: every wait returns */
    cu_loop_wakeup_all(loop);
    CHECK(cu_loop_run_once(loop, 5000) == 1);
    CHECK(cu_loop_run_once(loop, 5000) == 1);
    cu_loop_destroy(loop);
}

/* cu_loop_set_batch(1) (the gevent worker): three ready fds take three iterations, one
 * event each; the default batch takes them in one. */
static void test_batch(void)
{
    for (int batch = 1; batch >= 0; batch--) {
        cu_loop_t *loop = cu_loop_create();
        CHECK(loop != NULL);
        if (batch)
            cu_loop_set_batch(loop, 1);
        int sv[3][2];
        io_rec_t r[3] = {{0}};
        cu_io_t io[3];
        for (int i = 0; i < 3; i++) {
            CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]) == 0);
            cu_io_init(&io[i], sv[i][0], on_io, &r[i]);
            CHECK(cu_io_set(loop, &io[i], CU_EV_READ | CU_EV_ONESHOT) == CU_OK);
            CHECK(write(sv[i][1], "x", 1) == 1);
        }
        int n = cu_loop_run_once(loop, 50);
        CHECK(n == (batch ? 1 : 3));
        int total = r[0].calls + r[1].calls + r[2].calls;
        CHECK(total == n);
        for (int k = 0; k < 5 && total < 3; k++) {
            (void)cu_loop_run_once(loop, 50);
            total = r[0].calls + r[1].calls + r[2].calls;
        }
        CHECK(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1); /* one-shot: once each */
        for (int i = 0; i < 3; i++) {
            close(sv[i][0]);
            close(sv[i][1]);
        }
        cu_loop_destroy(loop);
    }
}

int main(void)
{
    test_fds();
    test_batch();
    test_timers();
    test_wakeup();
    return t_done("test_loop");
}
