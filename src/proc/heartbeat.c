/* Shared-memory liveness table: mapped once in the master, inherited by every worker. */
#include "proc/heartbeat.h"

#include <sys/mman.h>

cu_heartbeat_slot_t *cu_heartbeat_create(size_t n)
{
    if (n == 0)
        return NULL;
    void *p = mmap(NULL, n * sizeof(cu_heartbeat_slot_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    /* Anonymous mappings are zero-filled: every slot starts free (pid 0). */
    return p;
}

void cu_heartbeat_destroy(cu_heartbeat_slot_t *t, size_t n)
{
    if (t)
        munmap(t, n * sizeof(cu_heartbeat_slot_t));
}
