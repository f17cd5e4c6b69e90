/* Shared-memory liveness table: one slot per worker, mmap'd MAP_SHARED before fork.
 * Workers stamp their slot; the master reads it. Lock-free: single writer per slot. */
#ifndef CU_HEARTBEAT_H
#define CU_HEARTBEAT_H

#include "core/cu_core.h"

struct cu_heartbeat_slot_s {
    volatile int64_t stamp_ms;  /* worker's CLOCK_MONOTONIC ms at last sign of life */
    volatile pid_t pid;         /* 0 = free */
    volatile uint64_t requests; /* requests handled (for stats / control socket) */
    volatile int64_t booted_ms;
    /* Set by a worker that began a graceful stop on its own (max_requests): the master then
     * stops counting it and spawns its replacement at once. 0 otherwise. */
    volatile int retiring;
};

typedef struct cu_heartbeat_slot_s cu_heartbeat_slot_t;

/* Map a table of n slots (MAP_SHARED|MAP_ANONYMOUS). NULL on failure. */
cu_heartbeat_slot_t *cu_heartbeat_create(size_t n);
void cu_heartbeat_destroy(cu_heartbeat_slot_t *t, size_t n);

static inline void cu_heartbeat_stamp(cu_heartbeat_slot_t *s, int64_t now_ms)
{
    if (s)
        s->stamp_ms = now_ms;
}

#endif
