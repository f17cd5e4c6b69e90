/* Worker timeout report: the in-app request table and the thread that answers and logs
 * the stuck requests when the master's SIGABRT arrives (see watchdog.h). */
#include "workers/watchdog.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

typedef struct slot_s {
    atomic_int busy;   /* 1 while a thread runs the app for `c`; 2 while claiming */
    cu_conn_t *c;      /* written before busy=1, read by the reporter after busy==1 */
    unsigned long tid; /* pthread_self(): the id faulthandler prints ("Thread 0x...") */
} slot_t;

static struct {
    int started;
    int nslots;
    slot_t *slots;
    sem_t fire;
    pthread_t thread;
    pthread_t main; /* the thread that started the watchdog: the worker's main thread */
    void (*dump_stacks)(int fd);
    void (*after)(void);
} w;

static void report_one(slot_t *s, int64_t now_us)
{
    cu_conn_t *c = s->c;
    const cu_req_t *r = &c->request;
    double ran = (double)(now_us - r->start_us) / 1e6;
    int answer = !c->resp.head_emitted;
    cu_log_crit("Worker timeout: request %.*s %.*s from %s ran %.3f s (thread 0x%016lx)%s",
                (int)r->method.len, r->method.p, (int)r->path.len, r->path.p,
                c->peer.host[0] ? c->peer.host : "unix", ran, s->tid,
                answer ? "; answered 500" : "; response already started: connection closed");
    /* The app thread is stuck in Python and the process exits right after: nothing else
     * writes to this connection any more. */
    if (answer)
        (void)cu_resp_error(c, 500, NULL);
}

static void *watch_main(void *arg)
{
    while (sem_wait(&w.fire) != 0 && errno == EINTR) {
    }
    int64_t now = cu_wall_us();
    for (int i = 0; i < w.nslots; i++)
        if (atomic_load(&w.slots[i].busy) == 1)
            report_one(&w.slots[i], now);
    cu_log_crit("Python stacks of worker %d at timeout (most recent call first):", (int)getpid());
    if (w.dump_stacks)
        w.dump_stacks(cu_log_fd);
    w.after();
    /* after() armed the worker_abort hook (a Python-level signal handler, run by the app's
     * thread the next time it checks for signals): a thread blocked in a system call
     * (time.sleep, a socket read) checks only when interrupted, so interrupt it. Its
     * SIGABRT finds the watchdog already fired and returns. A class without slots
     * (gevent: greenlets on the worker's main thread) gets its main thread interrupted;
     * Python runs signal handlers only there anyway. */
    int kicked_main = 0;
    for (int i = 0; i < w.nslots; i++) {
        if (atomic_load(&w.slots[i].busy) == 1) {
            (void)pthread_kill((pthread_t)w.slots[i].tid, SIGABRT);
            kicked_main |= pthread_equal((pthread_t)w.slots[i].tid, w.main);
        }
    }
    if (!kicked_main)
        (void)pthread_kill(w.main, SIGABRT);
    return NULL;
}

int cu_watchdog_start(int nslots, void (*dump_stacks)(int fd), void (*after)(void))
{
    w.nslots = nslots > 0 ? nslots : 1;
    w.slots = cu_xcalloc((size_t)w.nslots, sizeof(*w.slots));
    w.dump_stacks = dump_stacks;
    w.after = after;
    w.main = pthread_self();
    if (sem_init(&w.fire, 0, 0) != 0)
        goto fail_sem;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&w.thread, &attr, watch_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        goto fail_thread;
    w.started = 1;
    return CU_OK;

fail_thread:
    sem_destroy(&w.fire);
fail_sem:
    cu_free(w.slots);
    w.slots = NULL;
    cu_log_error("worker timeout reporter: cannot start (%s)", strerror(errno));
    return CU_ERROR;
}

int cu_watchdog_enter(cu_conn_t *c)
{
    if (!w.started)
        return -1;
    for (int i = 0; i < w.nslots; i++) {
        slot_t *s = &w.slots[i];
        int zero = 0;
        /* Claim with 2 (filling), publish with 1 once c and tid are written. */
        if (atomic_compare_exchange_strong(&s->busy, &zero, 2)) {
            s->c = c;
            s->tid = (unsigned long)pthread_self();
            atomic_store(&s->busy, 1);
            return i;
        }
    }
    return -1;
}

void cu_watchdog_leave(int slot)
{
    if (slot >= 0)
        atomic_store(&w.slots[slot].busy, 0);
}

int cu_watchdog_fire(void)
{
    if (!w.started)
        return 0;
    sem_post(&w.fire);
    return 1;
}
