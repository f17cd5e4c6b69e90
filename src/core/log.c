/* Error log. */
#include "log.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>

int cu_log_level = CU_LOG_INFO;
int cu_log_fd = 2;
int cu_log_capture_std;
cu_log_sink_cb cu_log_sink;
static char *log_path;

static const char *level_name(int level)
{
    switch (level) {
    case CU_LOG_DEBUG: return "DEBUG";
    case CU_LOG_INFO: return "INFO";
    case CU_LOG_WARNING: return "WARNING";
    case CU_LOG_ERROR: return "ERROR";
    default: return "CRITICAL";
    }
}

int cu_log_level_parse(const char *name)
{
    static const struct {
        const char *n;
        int l;
    } t[] = {
        {"debug", CU_LOG_DEBUG},  {"info", CU_LOG_INFO},   {"warning", CU_LOG_WARNING},
        {"warn", CU_LOG_WARNING}, {"error", CU_LOG_ERROR}, {"critical", CU_LOG_CRITICAL},
    };
    for (size_t i = 0; i < CU_NELEM(t); i++)
        if (strcasecmp(name, t[i].n) == 0)
            return t[i].l;
    return -1;
}

int cu_log_open(const char *path)
{
    if (strcmp(path, "-") == 0) {
        cu_free(log_path);
        cu_log_fd = 2;
        return CU_OK;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (cu_log_fd > 2)
        close(cu_log_fd);
    cu_log_fd = fd;
    if (log_path != path) {
        free(log_path);
        log_path = cu_xstrdup(path);
    }
    return CU_OK;
}

void cu_log_reopen(void)
{
    if (log_path) {
        char *p = cu_xstrdup(log_path);
        (void)cu_log_open(p);
        cu_free(p);
        /* capture_output: the app's print() goes to the new file too, as in gunicorn. */
        if (cu_log_capture_std && cu_log_fd > 2) {
            dup2(cu_log_fd, 1);
            dup2(cu_log_fd, 2);
        }
    }
}

void cu_log(int level, const char *fmt, ...)
{
    if (level < cu_log_level)
        return;
    char line[4096];
    cu_time_update();
    int n = snprintf(line, sizeof(line), "[%s] [%d] [%s] ", cu_time.log_date, (int)getpid(),
                     level_name(level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    if (cu_log_sink && cu_log_sink(level, line + n, len - (size_t)n, 0))
        return;
    line[len++] = '\n';
    cu_write_all(cu_log_fd, line, len);
}

void cu_log_block(int level, const char *text, size_t len)
{
    if (level < cu_log_level)
        return;
    if (cu_log_sink && cu_log_sink(level, text, len, 1))
        return;
    /* One write for the whole block keeps a traceback contiguous. */
    cu_time_update();
    char head[96];
    int hn = snprintf(head, sizeof(head), "[%s] [%d] [%s] ", cu_time.log_date, (int)getpid(),
                      level_name(level));
    if (hn < 0)
        return;
    size_t cap = (size_t)hn + len + 2, o = 0;
    char *out = cu_xmalloc(cap);
    memcpy(out, head, (size_t)hn);
    o = (size_t)hn;
    memcpy(out + o, text, len);
    o += len;
    if (len == 0 || text[len - 1] != '\n')
        out[o++] = '\n';
    cu_write_all(cu_log_fd, out, o);
    cu_free(out);
}
