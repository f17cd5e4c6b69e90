/* Shared basics for every module: return codes, {ptr,len} strings, asserts.
 * libc only; included by everything. */
#ifndef CU_CORE_H
#define CU_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define CU_OK    0
#define CU_ERROR -1
#define CU_AGAIN -2
#define CU_DONE  -4

/* A slice into someone else's memory (usually a connection's read buffer).
 * Never owns what it points to. */
typedef struct cu_str_s {
    const char *p;
    size_t len;
} cu_str_t;

#define CU_STR(lit)    ((cu_str_t){(lit), sizeof(lit) - 1})
#define CU_NELEM(a)    (sizeof(a) / sizeof((a)[0]))
#define CU_UNUSED(x)   ((void)(x))
#define CU_LIKELY(x)   __builtin_expect(!!(x), 1)
#define CU_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Kept in release builds: for what cannot happen, never for what a peer can cause. */
#define cu_assert(e) ((e) ? (void)0 : cu__assert_fail(#e, __FILE__, __LINE__))
_Noreturn void cu__assert_fail(const char *expr, const char *file, int line);

static inline int cu_str_eq(cu_str_t a, cu_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* write(2) all of p, retrying on EINTR and short writes; gives up silently on other errors
 * (for logs, which must never take the server down). */
void cu_write_all(int fd, const char *p, size_t n);

/* ASCII case-insensitive comparison of a slice with a NUL-terminated lower-case literal. */
int cu_str_ieq_lit(cu_str_t a, const char *lower);

/* free() and forget: the pointer cannot be used or freed again by mistake. */
#define cu_free(p)                                                                                 \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

/* Allocation that cannot fail silently: aborts with a message on ENOMEM. */
void *cu_xmalloc(size_t n);
void *cu_xcalloc(size_t n, size_t size);
void *cu_xrealloc(void *p, size_t n);
char *cu_xstrdup(const char *s);
char *cu_xstrndup(const char *s, size_t n);

#endif
