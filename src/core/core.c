/* Allocation wrappers, assert failure, small string helpers. */
#include "cu_core.h"

#include <errno.h>
#include <unistd.h>

void cu__assert_fail(const char *expr, const char *file, int line)
{
    char msg[512];
    int n =
        snprintf(msg, sizeof(msg), "cunicorn: assertion failed: %s (%s:%d)\n", expr, file, line);
    if (n > 0)
        (void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    abort();
}

static _Noreturn void oom(size_t n)
{
    char msg[128];
    int k = snprintf(msg, sizeof(msg), "cunicorn: out of memory (%zu bytes)\n", n);
    if (k > 0)
        (void)!write(2, msg, (size_t)k);
    abort();
}

void *cu_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *cu_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *cu_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *cu_xstrdup(const char *s)
{
    return cu_xstrndup(s, strlen(s));
}

char *cu_xstrndup(const char *s, size_t n)
{
    char *p = cu_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int cu_str_ieq_lit(cu_str_t a, const char *lower)
{
    size_t i;
    for (i = 0; i < a.len; i++) {
        unsigned char c = (unsigned char)a.p[i];
        if (lower[i] == '\0')
            return 0;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return lower[i] == '\0';
}

void cu_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}
