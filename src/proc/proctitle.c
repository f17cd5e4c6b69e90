/* Process title: the argv + environ area is reused for the title once its contents have
 * been moved to the heap. */
#include "proc/proctitle.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_area;
static size_t title_len;

static char **volatile our_env;
static char **volatile our_strings;

void cu_proctitle_init(int argc, char **argv)
{
    if (argc < 1 || !argv || !argv[0])
        return;
    /* The area is argv[0]..end of the last string that follows contiguously, through the
     * environment strings the kernel placed right after argv. */
    char *start = argv[0];
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i] != end)
            break;
        end = argv[i] + strlen(argv[i]) + 1;
    }
    size_t nenv = 0;
    while (environ && environ[nenv])
        nenv++;
    for (size_t i = 0; i < nenv; i++) {
        if (environ[i] != end)
            break;
        end = environ[i] + strlen(environ[i]) + 1;
    }

    char **env = cu_xcalloc(nenv + 1, sizeof(char *));
    for (size_t i = 0; i < nenv; i++)
        env[i] = cu_xstrdup(environ[i]);
    environ = env;
    /* setenv() may later replace `environ` with its own array and unsetenv() drops entries
     * from it: keep the array and every string reachable (they live as long as the process). */
    our_env = env;
    our_strings = cu_xcalloc(nenv + 1, sizeof(char *));
    memcpy((void *)our_strings, env, nenv * sizeof(char *));
    for (int i = 0; i < argc; i++)
        argv[i] = cu_xstrdup(argv[i]);
    /* glibc keeps its own pointers into argv[0] for error messages. */
    program_invocation_name = argv[0];
    char *slash = strrchr(argv[0], '/');
    program_invocation_short_name = slash ? slash + 1 : argv[0];

    title_area = start;
    title_len = (size_t)(end - start);
}

void cu_proctitle_set(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (title_area && title_len > 1) {
        size_t n = strlen(buf);
        if (n > title_len - 1)
            n = title_len - 1;
        memcpy(title_area, buf, n);
        memset(title_area + n, 0, title_len - n);
    }
    prctl(PR_SET_NAME, buf, 0, 0, 0);
}
