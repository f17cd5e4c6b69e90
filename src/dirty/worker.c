/* A dirty worker: loads its apps once, then `dirty_threads` threads take REQUEST frames
 * from the arbiter's socketpair and answer them; the main thread stamps the heartbeat and
 * watches signals. TERM/QUIT/INT: finish the calls already received, close() the apps,
 * exit 0. */
#include "dirty/dirty.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "dirty/proto.h"
#include "proc/proctitle.h"
#include "proc/signals.h"
#include "py/dirty.h"
#include "py/py.h"
#include "workers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct wk_s {
    int fd;
    pthread_mutex_t rd, wr; /* one reader takes a whole frame; one writer sends a whole frame */
    cu_buf_t in;            /* under rd */
} wk_t;

static volatile sig_atomic_t g_stop, g_reopen;
static int g_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGUSR1)
        g_reopen = 1;
    else
        g_stop = 1;
    if (g_pipe[1] >= 0)
        (void)!write(g_pipe[1], "x", 1);
    errno = saved;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CU_ERROR;
        c += w;
        n -= (size_t)w;
    }
    return CU_OK;
}

static int emit(void *arg, const void *frame, size_t n)
{
    wk_t *w = arg;
    pthread_mutex_lock(&w->wr);
    int rc = write_all(w->fd, frame, n);
    pthread_mutex_unlock(&w->wr);
    return rc;
}

/* Under w->rd: the next complete frame, payload copied to *payload (malloc'd). 1 = got one,
 * 0 = end of input (stop), -1 = a malformed frame (the arbiter never sends one: stop). */
static int next_frame(wk_t *w, cu_dirty_hdr_t *h, uint8_t **payload)
{
    for (;;) {
        size_t have = cu_buf_unread(&w->in);
        const uint8_t *p = (const uint8_t *)cu_buf_head(&w->in);
        int r = have ? cu_dirty_hdr_decode(p, have, h) : -2;
        if (r == -1)
            return -1;
        if (r > 0 && have >= CU_DIRTY_HDR_SIZE + (size_t)h->len) {
            *payload = cu_xmalloc(h->len ? h->len : 1);
            memcpy(*payload, p + CU_DIRTY_HDR_SIZE, h->len);
            cu_buf_consume(&w->in, CU_DIRTY_HDR_SIZE + (size_t)h->len);
            return 1;
        }
        size_t want = r > 0 ? CU_DIRTY_HDR_SIZE + (size_t)h->len - have : 64 * 1024;
        if (want < 64 * 1024)
            want = 64 * 1024;
        if (cu_buf_reserve(&w->in, want) != CU_OK)
            return -1;
        ssize_t n = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        w->in.len += (size_t)n;
    }
}

static void *serve(void *arg)
{
    wk_t *w = arg;
    cu_py_thread_attach();
    for (;;) {
        cu_dirty_hdr_t h;
        uint8_t *payload = NULL;
        pthread_mutex_lock(&w->rd);
        int r = next_frame(w, &h, &payload);
        pthread_mutex_unlock(&w->rd);
        if (r <= 0)
            break;
        if (h.type == CU_DIRTY_REQUEST) {
            cu_py_dirty_call(payload, h.len, h.id, emit, w);
        } else {
            cu_buf_t b;
            cu_buf_init(&b, 128, 4096);
            cu_dirty_put_error(&b, h.id, "DirtyWorkerError", "Unknown message type", NULL, NULL, 0,
                               NULL, 0);
            (void)emit(w, cu_buf_head(&b), cu_buf_unread(&b));
            cu_buf_free(&b);
        }
        cu_free(payload);
    }
    /* Wake the main thread: input ended (arbiter gone or our own stop). */
    g_stop = 1;
    if (g_pipe[1] >= 0)
        (void)!write(g_pipe[1], "x", 1);
    cu_py_thread_detach();
    return NULL;
}

_Noreturn void cu_dirty_worker_main(const cu_dirty_worker_ctx_t *ctx)
{
    const cu_config_t *cfg = ctx->cfg;
    cu_proctitle_set("cunicorn: dirty worker [%s]", ctx->proc_name);
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        _exit(CU_WORKER_BOOT_ERROR);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < CU_NELEM(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (ctx->slot) {
        ctx->slot->pid = getpid();
        cu_heartbeat_stamp(ctx->slot, cu_mono_ms());
    }
    if (cu_py_dirty_worker_load(ctx->age, ctx->ppid, ctx->apps, ctx->napps) != CU_OK)
        _exit(CU_WORKER_BOOT_ERROR);

    wk_t w;
    memset(&w, 0, sizeof(w));
    w.fd = ctx->fd;
    pthread_mutex_init(&w.rd, NULL);
    pthread_mutex_init(&w.wr, NULL);
    cu_buf_init(&w.in, 64 * 1024, CU_DIRTY_MAX_MSG + CU_DIRTY_HDR_SIZE + 64 * 1024);

    int nthreads = cfg->dirty_threads > 0 ? cfg->dirty_threads : 1;
    pthread_t *th = cu_xcalloc((size_t)nthreads, sizeof(*th));
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, serve, &w) != 0)
            break;
    if (started == 0) {
        cu_log_error("Dirty worker (pid:%d): cannot start a thread", (int)getpid());
        _exit(CU_WORKER_BOOT_ERROR);
    }
    cu_log_info("Dirty worker %d ready (%d thread%s)", (int)getpid(), started,
                started == 1 ? "" : "s");

    /* Stamp four times per dirty_timeout (at most once a second), like gunicorn's
     * dirty_timeout / 2, with room for a loaded machine. */
    int every =
        cfg->dirty_timeout > 0 && cfg->dirty_timeout * 250 < 1000 ? cfg->dirty_timeout * 250 : 1000;
    while (!g_stop) {
        struct pollfd p = {.fd = g_pipe[0], .events = POLLIN};
        (void)poll(&p, 1, every);
        char drain[64];
        while (read(g_pipe[0], drain, sizeof(drain)) > 0) {
        }
        cu_heartbeat_stamp(ctx->slot, cu_mono_ms());
        if (g_reopen) {
            g_reopen = 0;
            cu_log_reopen();
        }
        if (getppid() != ctx->ppid) {
            cu_log_warn("Dirty worker %d: arbiter gone, exiting", (int)getpid());
            g_stop = 1;
        }
    }
    /* Calls already received are finished and answered; no new one is read. */
    shutdown(w.fd, SHUT_RD);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        cu_heartbeat_stamp(ctx->slot, cu_mono_ms());
    }
    cu_py_dirty_worker_close();
    cu_log_info("Dirty worker %d exiting", (int)getpid());
    cu_py_worker_exit();
    _exit(0);
}
