/* Kinds of child the master supervises, and the one function that forks them.
 *
 * A kind says what a child is (its name and process title), what it runs after fork, how
 * many of it the master keeps (its respawn policy), whether its heartbeat slot is watched
 * for `timeout`, and which master hooks surround its life. Every child, whatever its kind,
 * owns one slot of the shared heartbeat table (kids[i] owns hb[i]) and is started by
 * cu__child_spawn, which does the fork dance once: take the GIL, PyOS_BeforeFork, fork
 * with every signal blocked, PyOS_AfterFork_*, and in the child reset the master's
 * handlers, close its loop and control socket and set the title before the kind runs.
 *
 * Adding a kind (the dirty arbiter of issue 16 is the next one):
 *   1. write `const cu_child_kind_t cu_kind_dirty_arbiter = {...}` in its own file under
 *      src/proc/ (or src/dirty/): name "dirty-arbiter", title "dirty-arbiter",
 *      .want returning 1 while dirty apps are configured (0 otherwise), .run calling the
 *      arbiter's main and returning its exit code, .watch_heartbeat if it stamps its slot;
 *   2. add it to cu__kinds[] in proc/child.c (order = start order: before the web workers
 *      if they need it up first);
 *   3. `show all` / `show stats` in proc/control.c read cu__child_count(m, &kind, ...).
 * Reap, the crash-loop backoff, timeout kills, HUP (a kind with .replace_on_reload) and
 * stop (TERM on graceful, QUIT on quick, SIGKILL after graceful_timeout) need no change. */
#ifndef CU_CHILD_H
#define CU_CHILD_H

#include "core/cu_core.h"

typedef struct cu_master_s cu_master_t;
typedef struct cu_child_s cu_child_t;

typedef struct cu_child_kind_s {
    const char *name;  /* "web": logs and the control socket's "type" */
    const char *title; /* process title: "cunicorn: <title> [proc_name]" */
    /* Respawn policy: how many children of this kind the master keeps alive now. Missing
     * ones are spawned (after the crash-loop backoff), extra ones get TERM, oldest first. */
    int (*want)(const cu_master_t *m);
    /* In the child after the fork dance, with signals still blocked (the kind unblocks once
     * its own handlers are in). Returns the exit code; the caller _exit()s with it. */
    int (*run)(cu_master_t *m, cu_child_t *k);
    /* Master side, optional: just before fork (gunicorn's pre_fork), after a successful
     * spawn, and when the child has been reaped (status from waitpid). */
    void (*before_fork)(cu_master_t *m, cu_child_t *k);
    void (*spawned)(cu_master_t *m, cu_child_t *k);
    void (*exited)(cu_master_t *m, cu_child_t *k, int status);
    unsigned watch_heartbeat : 1;   /* abort then kill when its slot is older than timeout */
    unsigned halt_on_boot_fail : 1; /* exit 3/4 (boot error, app load error) halts the master */
    unsigned replace_on_reload : 1; /* HUP starts new ones and TERMs the old */
} cu_child_kind_t;

/* A child as the master tracks it; kids[i] owns heartbeat slot i. */
struct cu_child_s {
    const cu_child_kind_t *kind; /* NULL = free slot */
    pid_t pid;                   /* 0 in the child before it knows itself; never 0 when used */
    int age;                     /* spawn counter, gunicorn's worker.age */
    size_t slot;                 /* index in kids[] and the heartbeat table */
    int64_t spawned_ms;
    int64_t aborted_ms;       /* when WORKER TIMEOUT sent SIGABRT; 0 = not yet */
    unsigned terminating : 1; /* sent (or about to get) TERM: no longer counted */
};

/* The kinds the master runs, in start order, NULL-terminated. */
extern const cu_child_kind_t *const cu__kinds[];
extern const cu_child_kind_t cu_kind_web;
extern const cu_child_kind_t cu_kind_dirty_arbiter; /* proc/kind_dirty.c */

/* Fork with the GIL held, PyOS_BeforeFork/AfterFork and every signal blocked. In the
 * parent the signal mask is restored before returning; in the child (0) every signal stays
 * blocked: call cu_signals_child_reset, then unblock. -1 with errno on failure. */
pid_t cu__fork(void);

/* Start one child of `kind` in a free slot. CU_OK, CU_AGAIN (no free slot), CU_ERROR (fork
 * failed: logged, spawning backs off for a second). Never returns in the child. */
int cu__child_spawn(cu_master_t *m, const cu_child_kind_t *kind);

/* Live children of `kind` (NULL: every kind), with or without the terminating ones. */
size_t cu__child_count(const cu_master_t *m, const cu_child_kind_t *kind, int count_terminating);

/* kids[] index of pid, or m->nslots. */
size_t cu__child_find(const cu_master_t *m, pid_t pid);

void cu__child_kill(cu_master_t *m, size_t i, int sig);
/* Signal every child of `kind` (NULL: every kind). */
void cu__children_kill(cu_master_t *m, const cu_child_kind_t *kind, int sig);

/* Spawn what each kind wants, TERM the extras (lowest age first, as gunicorn). */
void cu__children_manage(cu_master_t *m);

/* Reap every exited child (and the USR2 child) with gunicorn's log lines. A child of a
 * halt_on_boot_fail kind exiting 3 or 4 halts the master unless `stopping`. */
void cu__children_reap(cu_master_t *m, int stopping);

/* SIGABRT the watched children whose heartbeat is older than timeout; SIGKILL them when
 * they are still there CU_KILL_AFTER_ABORT_MS later. */
void cu__children_murder(cu_master_t *m);

/* The earliest moment the supervision pass has something to do (a spawn backoff or a
 * pending SIGKILL), as ms from now, capped at `cap`. */
int64_t cu__children_next_due(const cu_master_t *m, int64_t cap);

#endif
