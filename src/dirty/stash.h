/* The stash: gunicorn's shared tables of keys and values, held by the dirty arbiter and
 * reached by every HTTP and dirty worker through STASH messages. Keys and values are kept
 * as their encoded TLV bytes, so what a client put is returned byte for byte. No I/O. */
#ifndef CU_DIRTY_STASH_H
#define CU_DIRTY_STASH_H

#include "dirty/proto.h"

typedef struct cu_stash_s cu_stash_t;

cu_stash_t *cu_stash_create(void);
void cu_stash_destroy(cu_stash_t *s);

/* Run one STASH message (`msg`: the validated payload dict: op, table, key, value,
 * pattern) and append the reply frame for request `id` to `out`: RESPONSE with the result,
 * or ERROR (StashKeyNotFoundError, StashTableNotFoundError, DirtyError for a bad op).
 * Returns CU_OK, or CU_ERROR when `out` is full. */
int cu_stash_handle(cu_stash_t *s, const cu_tlv_t *msg, uint64_t id, cu_buf_t *out);

/* Total entries over all tables (for tests and status). */
size_t cu_stash_entries(const cu_stash_t *s);

#endif
