/* The dirty arbiter process: listens on the unix socket named by GUNICORN_DIRTY_SOCKET
 * (mode 0600), keeps `dirty_workers` dirty workers alive (each with the apps it was given),
 * routes REQUESTs round-robin to the workers that loaded the target app and relays their
 * RESPONSE / ERROR / CHUNK / END back by request id, answers STASH / STATUS / MANAGE itself.
 *
 * Calls carry an arbiter-chosen id on the worker side, unique for the arbiter's life: a
 * reply whose call is gone (timed out, client closed) matches nothing and is dropped, so it
 * can never reach a later caller (gunicorn #3687). One event loop, one thread. */
#include "dirty/dirty.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "dirty/proto.h"
#include "dirty/stash.h"
#include "event/loop.h"
#include "proc/proctitle.h"
#include "py/dirty.h"
#include "py/py.h"
#include "workers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX    (CU_DIRTY_MAX_MSG * 4u) /* a client that does not read is dropped past this */
#define IN_MAX     (CU_DIRTY_MAX_MSG + CU_DIRTY_HDR_SIZE)
#define MIN_SLOTS  64
#define CRASH_MS   1000 /* a worker dying younger than this backs off the next spawn */
#define KILL_AFTER 1000 /* SIGKILL a worker this long after SIGABRT */

typedef struct client_s client_t;
typedef struct dworker_s dworker_t;

typedef struct call_s {
    uint64_t iid; /* the id the worker sees */
    uint64_t cid; /* the caller's request id */
    client_t *client;
    dworker_t *worker;
    struct call_s *cprev, *cnext; /* the client's calls */
    struct call_s *wprev, *wnext; /* the worker's calls */
    cu_timer_t timer;
} call_t;

struct client_s {
    int fd;
    cu_io_t io;
    cu_buf_t in, out;
    call_t *calls;
    client_t *prev, *next;
    int dead; /* closed at the end of the loop pass (callbacks may still hold it) */
};

struct dworker_s {
    pid_t pid; /* 0 = free */
    int age;
    int fd; /* -1 once its socket is closed */
    cu_io_t io;
    cu_buf_t in, out;
    unsigned char *apps; /* apps[i]: loaded app i */
    call_t *calls;
    int64_t spawned_ms, aborted_ms;
    int retiring; /* TERM sent: no new calls, not counted */
};

typedef struct app_s {
    char *path; /* module:Class */
    int limit;  /* -1: every worker */
    size_t rr;
} app_t;

typedef struct arb_s {
    const cu_config_t *cfg;
    const char *proc_name;
    const char *path;
    cu_loop_t *loop;
    int lfd;
    cu_io_t lio;
    client_t *clients;
    dworker_t *w;
    cu_heartbeat_slot_t *hb;
    size_t nslots;
    app_t *apps;
    size_t napps;
    int num_workers;
    int age;
    uint64_t next_iid;
    int stopping;
    int64_t stop_deadline;
    int64_t spawn_not_before;
    pid_t ppid;
    cu_stash_t *stash;
    cu_timer_t tick;
    cu_heartbeat_slot_t *slot; /* ours, in the master's table */
} arb_t;

static arb_t A;
static volatile sig_atomic_t g_sig[NSIG], g_any_sig;

static void on_signal(int sig)
{
    int saved = errno;
    g_sig[sig] = 1;
    g_any_sig = 1;
    if (A.loop)
        cu_loop_wakeup(A.loop);
    errno = saved;
}

/* ---- output ---- */

static void client_kill(client_t *c);
static void worker_lost(dworker_t *w, const char *why);

static void client_kill(client_t *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    cu_io_del(A.loop, &c->io);
}

static void client_flush(client_t *c)
{
    if (c->dead)
        return;
    while (cu_buf_unread(&c->out) > 0) {
        ssize_t n = write(c->fd, cu_buf_head(&c->out), cu_buf_unread(&c->out));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            client_kill(c);
            return;
        }
        cu_buf_consume(&c->out, (size_t)n);
    }
    int want = CU_EV_READ | (cu_buf_unread(&c->out) ? CU_EV_WRITE : 0);
    if (want != c->io.events)
        cu_io_set(A.loop, &c->io, want);
}

static void worker_flush(dworker_t *w)
{
    while (w->fd >= 0 && cu_buf_unread(&w->out) > 0) {
        ssize_t n = write(w->fd, cu_buf_head(&w->out), cu_buf_unread(&w->out));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            worker_lost(w, "its socket failed");
            return;
        }
        cu_buf_consume(&w->out, (size_t)n);
    }
    if (w->fd < 0)
        return;
    int want = CU_EV_READ | (cu_buf_unread(&w->out) ? CU_EV_WRITE : 0);
    if (want != w->io.events)
        cu_io_set(A.loop, &w->io, want);
}

static void send_error(client_t *c, uint64_t id, const char *type, const char *msg,
                       const char *dkey, const char *dval, const char *ikey, int64_t ival)
{
    if (!c || c->dead)
        return;
    const char *k[1] = {dkey}, *v[1] = {dval};
    if (cu_dirty_put_error(&c->out, id, type, msg, k, v, dkey ? 1 : 0, ikey, ival) != CU_OK)
        cu_log_warn("dirty arbiter: output to a client over its cap");
}

/* ---- calls ---- */

static void call_free(call_t *k)
{
    if (k->client) {
        if (k->cprev)
            k->cprev->cnext = k->cnext;
        else
            k->client->calls = k->cnext;
        if (k->cnext)
            k->cnext->cprev = k->cprev;
    }
    if (k->worker) {
        if (k->wprev)
            k->wprev->wnext = k->wnext;
        else
            k->worker->calls = k->wnext;
        if (k->wnext)
            k->wnext->wprev = k->wprev;
    }
    cu_timer_stop(A.loop, &k->timer);
    cu_free(k);
}

static void call_timeout(cu_loop_t *loop, cu_timer_t *t)
{
    call_t *k = t->data;
    client_t *c = k->client;
    cu_log_warn("Dirty call %llu timed out after %d s (worker pid:%d)", (unsigned long long)k->cid,
                A.cfg->dirty_timeout, k->worker ? (int)k->worker->pid : 0);
    send_error(c, k->cid, "DirtyTimeoutError", "Worker timeout", NULL, NULL, "timeout",
               A.cfg->dirty_timeout);
    call_free(k);
    if (c)
        client_flush(c);
}

/* Fail every call of a worker that can no longer answer. */
static void fail_calls(dworker_t *w, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "Dirty worker (pid:%d) %s", (int)w->pid, why);
    while (w->calls) {
        call_t *k = w->calls;
        client_t *c = k->client;
        send_error(c, k->cid, "DirtyWorkerError", msg, NULL, NULL, "worker_id", w->pid);
        call_free(k);
        if (c)
            client_flush(c);
    }
}

static void worker_close_fd(dworker_t *w)
{
    if (w->fd < 0)
        return;
    cu_io_del(A.loop, &w->io);
    close(w->fd);
    w->fd = -1;
    cu_buf_free(&w->in);
    cu_buf_free(&w->out);
}

static void worker_lost(dworker_t *w, const char *why)
{
    worker_close_fd(w);
    fail_calls(w, why);
}

/* ---- workers ---- */

static size_t live_workers(int count_retiring)
{
    size_t n = 0;
    for (size_t i = 0; i < A.nslots; i++)
        if (A.w[i].pid && (count_retiring || !A.w[i].retiring))
            n++;
    return n;
}

static int app_count(size_t a)
{
    int n = 0;
    for (size_t i = 0; i < A.nslots; i++)
        if (A.w[i].pid && !A.w[i].retiring && A.w[i].apps[a])
            n++;
    return n;
}

static int min_workers(void)
{
    int m = 1;
    for (size_t a = 0; a < A.napps; a++)
        if (A.apps[a].limit > m)
            m = A.apps[a].limit;
    return m;
}

static void worker_event(cu_loop_t *loop, cu_io_t *io, int events);

static void close_inherited(size_t keep)
{
    close(A.lfd);
    for (client_t *c = A.clients; c; c = c->next)
        close(c->fd);
    for (size_t i = 0; i < A.nslots; i++)
        if (i != keep && A.w[i].pid && A.w[i].fd >= 0)
            close(A.w[i].fd);
}

/* Spawn a worker with every app that still needs one (gunicorn's allocation: apps without
 * a limit go to every worker; limited apps until they have `limit` workers). A dead
 * worker's apps are the ones missing, so its replacement gets the same apps. */
static int spawn_worker(void)
{
    size_t i = 0;
    while (i < A.nslots && A.w[i].pid)
        i++;
    if (i == A.nslots)
        return CU_AGAIN;
    unsigned char *apps = cu_xcalloc(A.napps ? A.napps : 1, 1);
    const char **paths = cu_xcalloc(A.napps + 1, sizeof(*paths));
    size_t np = 0;
    for (size_t a = 0; a < A.napps; a++) {
        if (A.apps[a].limit < 0 || app_count(a) < A.apps[a].limit) {
            apps[a] = 1;
            paths[np++] = A.apps[a].path;
        }
    }
    if (np == 0) {
        cu_free(apps);
        cu_free(paths);
        return CU_DONE;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        cu_log_error("dirty arbiter: socketpair: %s", strerror(errno));
        cu_free(apps);
        cu_free(paths);
        return CU_ERROR;
    }
    int64_t now = cu_mono_ms();
    cu_heartbeat_slot_t *slot = &A.hb[i];
    memset((void *)slot, 0, sizeof(*slot));
    slot->stamp_ms = now;
    slot->booted_ms = now;
    int age = ++A.age;

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = cu_py_fork();
    if (pid == 0) {
        close(sv[0]);
        close_inherited(A.nslots);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            if (s != SIGPIPE && s != SIGKILL && s != SIGSTOP)
                sigaction(s, &sa, NULL);
        cu_dirty_worker_ctx_t ctx = {.cfg = A.cfg,
                                     .proc_name = A.proc_name,
                                     .fd = sv[1],
                                     .age = age,
                                     .ppid = getppid(),
                                     .apps = paths,
                                     .napps = np,
                                     .slot = slot};
        cu_dirty_worker_main(&ctx);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        cu_log_error("dirty arbiter: fork: %s", strerror(errno));
        close(sv[0]);
        cu_free(apps);
        cu_free(paths);
        A.spawn_not_before = now + 1000;
        return CU_ERROR;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    dworker_t *w = &A.w[i];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->age = age;
    w->fd = sv[0];
    w->apps = apps;
    w->spawned_ms = now;
    slot->pid = pid;
    cu_buf_init(&w->in, 64 * 1024, IN_MAX);
    cu_buf_init(&w->out, 64 * 1024, OUT_MAX);
    cu_io_init(&w->io, w->fd, worker_event, w);
    cu_io_set(A.loop, &w->io, CU_EV_READ);

    char list[1024];
    size_t o = 0;
    list[0] = '\0';
    for (size_t k = 0; k < np && o < sizeof(list); k++) {
        int n = snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", paths[k]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    cu_log_info("Spawned dirty worker (pid: %d) with apps: [%s]", (int)pid, list);
    cu_py_dirty_hook_post_fork(age, pid, paths, np, A.num_workers);
    cu_free(paths);
    return CU_OK;
}

static void retire(dworker_t *w, int sig)
{
    w->retiring = 1;
    if (kill(w->pid, sig) < 0 && errno != ESRCH)
        cu_log_warn("kill(%d): %s", (int)w->pid, strerror(errno));
}

static void manage_workers(void)
{
    if (A.stopping)
        return;
    size_t live = live_workers(0);
    if (cu_mono_ms() >= A.spawn_not_before) {
        while (live < (size_t)A.num_workers) {
            if (spawn_worker() != CU_OK)
                break;
            live++;
        }
    }
    while (live > (size_t)A.num_workers) {
        dworker_t *oldest = NULL;
        for (size_t i = 0; i < A.nslots; i++)
            if (A.w[i].pid && !A.w[i].retiring && (!oldest || A.w[i].age < oldest->age))
                oldest = &A.w[i];
        if (!oldest)
            break;
        retire(oldest, SIGTERM);
        live--;
    }
}

static void reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        dworker_t *w = NULL;
        for (size_t i = 0; i < A.nslots; i++)
            if (A.w[i].pid == pid)
                w = &A.w[i];
        if (!w)
            continue;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (WIFSIGNALED(status))
            cu_log_warn("Dirty worker (pid:%d) killed by signal %d", (int)pid, WTERMSIG(status));
        if (code == CU_WORKER_BOOT_ERROR)
            cu_log_error("Dirty worker failed to boot (pid:%d)", (int)pid);
        cu_log_info("Dirty worker exited (pid:%d)", (int)pid);
        /* Anything it still owed: read what it wrote before dying, then fail the rest. */
        if (w->fd >= 0)
            worker_event(A.loop, &w->io, CU_EV_READ);
        worker_lost(w, "died while handling the request");
        int64_t now = cu_mono_ms();
        if (code != 0 && !w->retiring && now - w->spawned_ms < CRASH_MS)
            A.spawn_not_before = now + CRASH_MS;
        int age = w->age;
        cu_free(w->apps);
        memset((void *)&A.hb[w - A.w], 0, sizeof(A.hb[0]));
        memset(w, 0, sizeof(*w));
        w->fd = -1;
        cu_py_dirty_hook_worker_exit(age, pid, A.num_workers);
    }
}

/* Workers whose main thread stopped stamping (the process hangs): ABRT, then KILL. */
static void murder_workers(void)
{
    if (A.cfg->dirty_timeout <= 0)
        return;
    int64_t now = cu_mono_ms(), limit = (int64_t)A.cfg->dirty_timeout * 1000;
    for (size_t i = 0; i < A.nslots; i++) {
        dworker_t *w = &A.w[i];
        if (!w->pid || now - A.hb[i].stamp_ms <= limit)
            continue;
        if (!w->aborted_ms) {
            cu_log_crit("DIRTY WORKER TIMEOUT (pid:%d)", (int)w->pid);
            w->aborted_ms = now;
            kill(w->pid, SIGABRT);
        } else if (now - w->aborted_ms >= KILL_AFTER) {
            kill(w->pid, SIGKILL);
        }
    }
}

/* A frame from a worker: find its call, relay it under the caller's id. */
static void worker_frame(dworker_t *w, const cu_dirty_hdr_t *h, const uint8_t *payload)
{
    call_t *k = w->calls;
    while (k && k->iid != h->id)
        k = k->wnext;
    if (!k)
        return; /* its call is over (timed out, caller gone): never reaches anyone */
    int last = h->type != CU_DIRTY_CHUNK;
    client_t *c = k->client && !k->client->dead ? k->client : NULL;
    if (c) {
        uint8_t hdr[CU_DIRTY_HDR_SIZE];
        cu_dirty_hdr_encode(hdr, h->type, h->len, k->cid);
        if (cu_buf_append(&c->out, hdr, sizeof(hdr)) != CU_OK ||
            cu_buf_append(&c->out, payload, h->len) != CU_OK) {
            cu_log_warn("dirty arbiter: a client does not read its stream; dropped");
            client_kill(c);
            c = NULL;
        }
    }
    if (last)
        call_free(k);
    else if (A.cfg->dirty_timeout > 0)
        cu_timer_start(A.loop, &k->timer, (int64_t)A.cfg->dirty_timeout * 1000);
    if (c)
        client_flush(c);
}

static void worker_event(cu_loop_t *loop, cu_io_t *io, int events)
{
    dworker_t *w = io->data;
    if (events & CU_EV_WRITE)
        worker_flush(w);
    if (w->fd < 0 || !(events & (CU_EV_READ | CU_EV_ERROR)))
        return;
    for (;;) {
        if (cu_buf_reserve(&w->in, 64 * 1024) != CU_OK) {
            worker_lost(w, "sent a message over the size limit");
            return;
        }
        ssize_t n = read(w->fd, w->in.data + w->in.len, w->in.cap - w->in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            worker_lost(w, "died while handling the request");
            return;
        }
        w->in.len += (size_t)n;
        for (;;) {
            cu_dirty_hdr_t h;
            size_t have = cu_buf_unread(&w->in);
            const uint8_t *p = (const uint8_t *)cu_buf_head(&w->in);
            int r = cu_dirty_hdr_decode(p, have, &h);
            if (r == -1) {
                worker_lost(w, "sent a malformed message");
                return;
            }
            if (r == -2 || have < CU_DIRTY_HDR_SIZE + (size_t)h.len)
                break;
            worker_frame(w, &h, p + CU_DIRTY_HDR_SIZE);
            cu_buf_consume(&w->in, CU_DIRTY_HDR_SIZE + (size_t)h.len);
        }
        if ((size_t)n < 64 * 1024)
            break;
    }
}

/* ---- client messages ---- */

static void route(client_t *c, const cu_dirty_hdr_t *h, const uint8_t *payload)
{
    cu_tlv_t d, ap;
    if (cu_tlv_read_full(payload, h->len, &d) != CU_OK || d.type != CU_TLV_DICT ||
        !cu_tlv_dict_get(&d, "app_path", &ap) || ap.type != CU_TLV_STR) {
        send_error(c, h->id, "DirtyProtocolError", "Malformed request", NULL, NULL, NULL, 0);
        return;
    }
    char path[512];
    size_t pl = ap.len < sizeof(path) - 1 ? ap.len : sizeof(path) - 1;
    memcpy(path, ap.p, pl);
    path[pl] = '\0';
    if (A.stopping) {
        send_error(c, h->id, "DirtyError", "Dirty arbiter is shutting down", NULL, NULL, NULL, 0);
        return;
    }
    size_t a = 0;
    while (a < A.napps &&
           !(strlen(A.apps[a].path) == ap.len && memcmp(A.apps[a].path, ap.p, ap.len) == 0))
        a++;
    dworker_t *pick = NULL;
    if (a < A.napps) {
        size_t n = 0;
        for (size_t i = 0; i < A.nslots; i++)
            if (A.w[i].pid && !A.w[i].retiring && A.w[i].fd >= 0 && A.w[i].apps[a])
                n++;
        if (n) {
            size_t want = A.apps[a].rr++ % n;
            for (size_t i = 0; i < A.nslots && !pick; i++)
                if (A.w[i].pid && !A.w[i].retiring && A.w[i].fd >= 0 && A.w[i].apps[a] &&
                    want-- == 0)
                    pick = &A.w[i];
        }
    }
    if (!pick) {
        char msg[600];
        if (live_workers(0) == 0) {
            send_error(c, h->id, "DirtyError", "No dirty workers available", NULL, NULL, NULL, 0);
        } else {
            snprintf(msg, sizeof(msg), "No workers available for app: %s", path);
            send_error(c, h->id, "DirtyNoWorkersAvailableError", msg, "app_path", path, NULL, 0);
        }
        return;
    }
    call_t *k = cu_xcalloc(1, sizeof(*k));
    k->iid = ++A.next_iid;
    k->cid = h->id;
    k->client = c;
    k->worker = pick;
    k->cnext = c->calls;
    if (c->calls)
        c->calls->cprev = k;
    c->calls = k;
    k->wnext = pick->calls;
    if (pick->calls)
        pick->calls->wprev = k;
    pick->calls = k;
    cu_timer_init(&k->timer, call_timeout, k);
    if (A.cfg->dirty_timeout > 0)
        cu_timer_start(A.loop, &k->timer, (int64_t)A.cfg->dirty_timeout * 1000);
    uint8_t hdr[CU_DIRTY_HDR_SIZE];
    cu_dirty_hdr_encode(hdr, CU_DIRTY_REQUEST, h->len, k->iid);
    if (cu_buf_append(&pick->out, hdr, sizeof(hdr)) != CU_OK ||
        cu_buf_append(&pick->out, payload, h->len) != CU_OK) {
        send_error(c, h->id, "DirtyWorkerError", "Dirty worker queue full", NULL, NULL, "worker_id",
                   pick->pid);
        call_free(k);
        return;
    }
    worker_flush(pick);
}

static void put_worker_status(cu_buf_t *b, const dworker_t *w, size_t slot, int64_t now)
{
    size_t n = 0;
    for (size_t a = 0; a < A.napps; a++)
        n += w->apps[a];
    cu_tlv_put_dict(b, 5);
    cu_tlv_put_cstr(b, "pid");
    cu_tlv_put_int(b, w->pid);
    cu_tlv_put_cstr(b, "age");
    cu_tlv_put_int(b, w->age);
    cu_tlv_put_cstr(b, "apps");
    cu_tlv_put_list(b, (uint32_t)n);
    for (size_t a = 0; a < A.napps; a++)
        if (w->apps[a])
            cu_tlv_put_cstr(b, A.apps[a].path);
    cu_tlv_put_cstr(b, "booted");
    cu_tlv_put_bool(b, A.hb[slot].pid == w->pid);
    cu_tlv_put_cstr(b, "last_heartbeat");
    cu_tlv_put_float(b, (double)(now - A.hb[slot].stamp_ms) / 1000.0);
}

static void status(client_t *c, uint64_t id)
{
    cu_buf_t *b = &c->out;
    int64_t now = cu_mono_ms();
    size_t n = live_workers(1);
    size_t at = cu_dirty_frame_begin(b);
    cu_tlv_put_dict(b, 1);
    cu_tlv_put_cstr(b, "result");
    cu_tlv_put_dict(b, 4);
    cu_tlv_put_cstr(b, "arbiter_pid");
    cu_tlv_put_int(b, getpid());
    cu_tlv_put_cstr(b, "workers");
    cu_tlv_put_list(b, (uint32_t)n);
    /* by age, as gunicorn sorts them */
    int last = -1;
    for (size_t done = 0; done < n; done++) {
        size_t best = A.nslots;
        for (size_t i = 0; i < A.nslots; i++)
            if (A.w[i].pid && A.w[i].age > last && (best == A.nslots || A.w[i].age < A.w[best].age))
                best = i;
        if (best == A.nslots)
            break;
        put_worker_status(b, &A.w[best], best, now);
        last = A.w[best].age;
    }
    cu_tlv_put_cstr(b, "worker_count");
    cu_tlv_put_int(b, (int64_t)n);
    cu_tlv_put_cstr(b, "apps");
    cu_tlv_put_list(b, (uint32_t)A.napps);
    for (size_t a = 0; a < A.napps; a++)
        cu_tlv_put_cstr(b, A.apps[a].path);
    cu_dirty_frame_end(b, at, CU_DIRTY_RESPONSE, id);
}

static void manage(client_t *c, uint64_t id, const uint8_t *payload, size_t len)
{
    cu_tlv_t d, op, cnt;
    if (cu_tlv_read_full(payload, len, &d) != CU_OK || !cu_tlv_dict_get(&d, "op", &op) ||
        op.type != CU_TLV_INT || (op.i != CU_MANAGE_ADD && op.i != CU_MANAGE_REMOVE)) {
        send_error(c, id, "DirtyError", "Unknown manage operation", NULL, NULL, NULL, 0);
        return;
    }
    int64_t count = cu_tlv_dict_get(&d, "count", &cnt) && cnt.type == CU_TLV_INT ? cnt.i : 1;
    if (count < 1)
        count = 1;
    int done = 0;
    if (op.i == CU_MANAGE_ADD) {
        for (int64_t i = 0; i < count && (size_t)A.num_workers * 2 < A.nslots; i++) {
            if (spawn_worker() != CU_OK)
                break;
            A.num_workers++;
            done++;
        }
    } else {
        for (int64_t i = 0; i < count && A.num_workers > min_workers() && live_workers(0) > 1;
             i++) {
            A.num_workers--;
            manage_workers();
            done++;
        }
    }
    cu_log_info("Worker management: %s %lld workers (spawned/removed: %d)",
                op.i == CU_MANAGE_ADD ? "add" : "remove", (long long)count, done);
    cu_buf_t *b = &c->out;
    size_t at = cu_dirty_frame_begin(b);
    cu_tlv_put_dict(b, 1);
    cu_tlv_put_cstr(b, "result");
    cu_tlv_put_dict(b, 6);
    cu_tlv_put_cstr(b, "success");
    cu_tlv_put_bool(b, 1);
    cu_tlv_put_cstr(b, "operation");
    cu_tlv_put_cstr(b, op.i == CU_MANAGE_ADD ? "add" : "remove");
    cu_tlv_put_cstr(b, "requested");
    cu_tlv_put_int(b, count);
    cu_tlv_put_cstr(b, op.i == CU_MANAGE_ADD ? "spawned" : "removed");
    cu_tlv_put_int(b, done);
    cu_tlv_put_cstr(b, "total_workers");
    cu_tlv_put_int(b, (int64_t)live_workers(0));
    cu_tlv_put_cstr(b, "target_workers");
    cu_tlv_put_int(b, A.num_workers);
    cu_dirty_frame_end(b, at, CU_DIRTY_RESPONSE, id);
}

static void client_message(client_t *c, const cu_dirty_hdr_t *h, const uint8_t *payload)
{
    switch (h->type) {
    case CU_DIRTY_REQUEST: route(c, h, payload); break;
    case CU_DIRTY_STASH: {
        cu_tlv_t d;
        if (cu_tlv_read_full(payload, h->len, &d) != CU_OK || d.type != CU_TLV_DICT)
            send_error(c, h->id, "DirtyProtocolError", "Malformed stash request", NULL, NULL, NULL,
                       0);
        else if (cu_stash_handle(A.stash, &d, h->id, &c->out) != CU_OK)
            cu_log_warn("dirty arbiter: stash reply over the output cap");
        break;
    }
    case CU_DIRTY_STATUS: status(c, h->id); break;
    case CU_DIRTY_MANAGE: manage(c, h->id, payload, h->len); break;
    default:
        send_error(c, h->id, "DirtyProtocolError", "Unexpected message type from a client", NULL,
                   NULL, NULL, 0);
        break;
    }
}

static void client_close(client_t *c)
{
    /* Its calls run on; their replies are dropped when they come. */
    for (call_t *k = c->calls; k; k = k->cnext)
        k->client = NULL;
    c->calls = NULL;
    if (!c->dead)
        cu_io_del(A.loop, &c->io);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        A.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cu_buf_free(&c->in);
    cu_buf_free(&c->out);
    cu_free(c);
}

static void client_event(cu_loop_t *loop, cu_io_t *io, int events)
{
    client_t *c = io->data;
    if (c->dead)
        return;
    if (events & CU_EV_WRITE)
        client_flush(c);
    if (c->dead)
        return;
    if (!(events & (CU_EV_READ | CU_EV_ERROR)))
        return;
    if (cu_buf_reserve(&c->in, 64 * 1024) != CU_OK) {
        client_kill(c);
        return;
    }
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        client_kill(c);
        return;
    }
    c->in.len += (size_t)n;
    for (;;) {
        cu_dirty_hdr_t h;
        size_t have = cu_buf_unread(&c->in);
        const uint8_t *p = (const uint8_t *)cu_buf_head(&c->in);
        int r = cu_dirty_hdr_decode(p, have, &h);
        if (r == -1) {
            cu_log_warn("dirty arbiter: malformed message from a client; connection closed");
            client_kill(c);
            return;
        }
        if (r == -2 || have < CU_DIRTY_HDR_SIZE + (size_t)h.len || c->dead)
            break;
        client_message(c, &h, p + CU_DIRTY_HDR_SIZE);
        cu_buf_consume(&c->in, CU_DIRTY_HDR_SIZE + (size_t)h.len);
    }
    client_flush(c);
}

static void accept_event(cu_loop_t *loop, cu_io_t *io, int events)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(A.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        client_t *c = cu_xcalloc(1, sizeof(*c));
        c->fd = fd;
        cu_buf_init(&c->in, 64 * 1024, IN_MAX);
        cu_buf_init(&c->out, 64 * 1024, OUT_MAX);
        cu_io_init(&c->io, fd, client_event, c);
        c->next = A.clients;
        if (A.clients)
            A.clients->prev = c;
        A.clients = c;
        cu_io_set(A.loop, &c->io, CU_EV_READ);
    }
}

/* ---- setup ---- */

static int parse_apps(void)
{
    const cu_strlist_t *l = &A.cfg->dirty_apps;
    A.apps = cu_xcalloc(l->n ? l->n : 1, sizeof(*A.apps));
    for (size_t i = 0; i < l->n; i++) {
        const char *spec = l->v[i];
        const char *c1 = strchr(spec, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || (c2 && strchr(c2 + 1, ':'))) {
            cu_log_error("Invalid import path format: %s. Expected 'module.path:ClassName' or "
                         "'module.path:ClassName:N'",
                         spec);
            return CU_ERROR;
        }
        app_t *a = &A.apps[A.napps++];
        a->limit = -1;
        if (c2) {
            char *end;
            long n = strtol(c2 + 1, &end, 10);
            if (end == c2 + 1 || *end) {
                cu_log_error("Invalid worker count in spec: %s. Expected integer, got '%s'", spec,
                             c2 + 1);
                return CU_ERROR;
            }
            if (n < 1) {
                cu_log_error("Invalid worker count in spec: %s. Worker count must be >= 1, got %ld",
                             spec, n);
                return CU_ERROR;
            }
            a->limit = (int)n;
            a->path = cu_xmalloc((size_t)(c2 - spec) + 1);
            memcpy(a->path, spec, (size_t)(c2 - spec));
            a->path[c2 - spec] = '\0';
        } else {
            a->path = cu_xstrdup(spec);
            int n;
            if (cu_py_dirty_app_workers(a->path, &n) == CU_OK && n > 0)
                a->limit = n;
        }
    }
    return CU_OK;
}

static int open_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(A.path) >= sizeof(sa.sun_path)) {
        cu_log_error("dirty arbiter: socket path too long: %s", A.path);
        return CU_ERROR;
    }
    strcpy(sa.sun_path, A.path);
    A.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (A.lfd < 0)
        return CU_ERROR;
    unlink(A.path);
    mode_t old = umask(0177); /* born 0600: never reachable by others, not even briefly */
    int rc = bind(A.lfd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(A.path, 0600) < 0 || listen(A.lfd, 1024) < 0) {
        cu_log_error("dirty arbiter: cannot listen on %s: %s", A.path, strerror(errno));
        return CU_ERROR;
    }
    cu_io_init(&A.lio, A.lfd, accept_event, NULL);
    return cu_io_set(A.loop, &A.lio, CU_EV_READ) == CU_OK ? CU_OK : CU_ERROR;
}

static void tick(cu_loop_t *loop, cu_timer_t *t)
{
    cu_timer_start(loop, t, 1000);
    cu_heartbeat_stamp(A.slot, cu_mono_ms());
    if (getppid() != A.ppid && !A.stopping) {
        cu_log_warn("Parent changed, shutting down dirty arbiter");
        g_sig[SIGTERM] = 1;
        g_any_sig = 1;
    }
    murder_workers();
    reap();
    manage_workers();
}

static void sweep_clients(void)
{
    for (client_t *c = A.clients, *n; c; c = n) {
        n = c->next;
        if (c->dead)
            client_close(c);
    }
}

static void begin_stop(int sig)
{
    if (A.stopping)
        return;
    A.stopping = 1;
    A.stop_deadline = cu_mono_ms() + (int64_t)A.cfg->dirty_graceful_timeout * 1000;
    cu_io_del(A.loop, &A.lio);
    close(A.lfd);
    A.lfd = -1;
    unlink(A.path);
    for (size_t i = 0; i < A.nslots; i++)
        if (A.w[i].pid)
            retire(&A.w[i], sig == SIGINT ? SIGQUIT : SIGTERM);
}

static void handle_signals(void)
{
    if (!g_any_sig)
        return;
    g_any_sig = 0;
    for (int s = 1; s < NSIG; s++) {
        if (!g_sig[s])
            continue;
        g_sig[s] = 0;
        switch (s) {
        case SIGCHLD: reap(); break;
        case SIGTTIN:
            if ((size_t)A.num_workers * 2 >= A.nslots) {
                cu_log_warn("SIGTTIN ignored: already at the maximum of %zu dirty workers",
                            A.nslots / 2);
                break;
            }
            A.num_workers++;
            cu_log_info("SIGTTIN: Increasing dirty workers to %d", A.num_workers);
            manage_workers();
            break;
        case SIGTTOU:
            if (A.num_workers <= min_workers()) {
                cu_log_warn("SIGTTOU: Cannot decrease below %d workers (required by app specs)",
                            min_workers());
                break;
            }
            A.num_workers--;
            cu_log_info("SIGTTOU: Decreasing dirty workers to %d", A.num_workers);
            manage_workers();
            break;
        case SIGUSR1:
            cu_log_reopen();
            for (size_t i = 0; i < A.nslots; i++)
                if (A.w[i].pid)
                    kill(A.w[i].pid, SIGUSR1);
            break;
        case SIGHUP:
            /* gunicorn's reload: a fresh set of workers, the old ones finish and go. */
            cu_log_info("Reloading dirty workers");
            for (size_t i = 0; i < A.nslots; i++)
                if (A.w[i].pid && !A.w[i].retiring)
                    retire(&A.w[i], SIGTERM);
            manage_workers();
            break;
        case SIGTERM:
        case SIGQUIT:
        case SIGINT: begin_stop(s); break;
        default: break;
        }
    }
}

_Noreturn void cu_dirty_arbiter_main(const cu_config_t *cfg, const char *socket_path,
                                     const char *proc_name, cu_heartbeat_slot_t *slot)
{
    memset(&A, 0, sizeof(A));
    A.cfg = cfg;
    A.path = socket_path;
    A.proc_name = proc_name;
    A.slot = slot;
    A.ppid = getppid();
    A.lfd = -1;
    A.num_workers = cfg->dirty_workers;
    int code = 1;
    cu_proctitle_set("cunicorn: dirty arbiter [%s]", proc_name);
    cu_log_info("Dirty arbiter starting (pid: %d)", (int)getpid());

    A.loop = cu_loop_create();
    if (!A.loop)
        _exit(1);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGHUP, SIGQUIT, SIGINT, SIGTERM, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < CU_NELEM(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (parse_apps() != CU_OK)
        goto fail_apps;
    if (A.num_workers < min_workers())
        A.num_workers = min_workers();
    A.nslots = (size_t)A.num_workers * 4 < MIN_SLOTS ? MIN_SLOTS : (size_t)A.num_workers * 4;
    A.hb = cu_heartbeat_create(A.nslots);
    if (!A.hb)
        goto fail_apps;
    A.w = cu_xcalloc(A.nslots, sizeof(*A.w));
    for (size_t i = 0; i < A.nslots; i++)
        A.w[i].fd = -1;
    A.stash = cu_stash_create();
    if (open_socket() != CU_OK)
        goto fail_socket;
    cu_log_info("Dirty arbiter listening on %s", A.path);
    cu_py_dirty_hook_starting(getpid(), A.path, A.num_workers);

    cu_timer_init(&A.tick, tick, NULL);
    cu_timer_start(A.loop, &A.tick, 1000);
    manage_workers();
    while (!A.stopping || (live_workers(1) > 0 && cu_mono_ms() < A.stop_deadline)) {
        cu_loop_run_once(A.loop, A.stopping ? 100 : 1000);
        cu_heartbeat_stamp(A.slot, cu_mono_ms()); /* the master's `timeout` watches it */
        handle_signals(); /* SIGCHLD reaps; the once-a-second tick reaps too */
        if (A.stopping)
            reap();
        sweep_clients();
    }
    /* Out of time: kill what is left; callers still waiting learn their worker died. */
    for (size_t i = 0; i < A.nslots; i++)
        if (A.w[i].pid)
            kill(A.w[i].pid, SIGKILL);
    for (int i = 0; i < 200 && live_workers(1) > 0; i++) {
        usleep(10 * 1000);
        reap();
    }
    /* Last answers out, best effort. */
    for (client_t *c = A.clients; c; c = c->next)
        if (cu_buf_unread(&c->out))
            (void)!write(c->fd, cu_buf_head(&c->out), cu_buf_unread(&c->out));
    code = 0;
fail_socket:
    if (A.lfd >= 0) {
        close(A.lfd);
        unlink(A.path);
    }
fail_apps:
    cu_log_info("Dirty arbiter exiting (pid: %d)", (int)getpid());
    cu_py_worker_exit();
    _exit(code);
}
