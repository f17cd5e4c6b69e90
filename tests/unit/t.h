/* Minimal unit-test harness: CHECK records a failure and continues; t_done() prints the
 * closing line "N passed, N failed" and returns the exit code. */
#ifndef CU_T_H
#define CU_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(s, lit) CHECK((s).len == strlen(lit) && memcmp((s).p, (lit), (s).len) == 0)

static inline int t_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
