/* Access log: gunicorn's access_log_format atoms rendered in C.
 *   h l u t r m U q H s B b f a T D M L p, {header}i, {header}o, {variable}e
 * Default format: %(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"
 * The format is compiled once into a list of pieces; rendering does no allocation beyond a
 * per-call stack buffer and issues one write(2). */
#ifndef CU_ACCESS_H
#define CU_ACCESS_H

#include "core/cu_core.h"
#include "http/req.h"

#define CU_ACCESS_DEFAULT_FORMAT "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""

/* Looks up an environ variable for %({name}e)s. `name` is as written in the format; gunicorn
 * matches environ keys case-insensitively (%({remote_addr}e)s finds REMOTE_ADDR), so try the
 * exact key and then a case-insensitive match. Writes up to cap bytes of its str() (UTF-8)
 * into buf and returns the length, or -1 if absent. Called with whatever lock the caller holds
 * (the py layer calls cu_access_log_write with the GIL held and passes a lookup that reads
 * the environ dict). */
typedef ssize_t (*cu_access_env_cb)(void *ctx, const char *name, size_t nlen, char *buf,
                                    size_t cap);

typedef struct cu_access_rec_s {
    const cu_req_t *req;        /* the request (method, target, headers, peer) */
    const cu_resp_head_t *resp; /* status and the app's fields; NULL: none yet */
    uint64_t body_sent;         /* response body bytes (%(b)s) */
    int64_t start_us;           /* wall clock at request start */
    int64_t end_us;             /* wall clock at response end */
    cu_access_env_cb env;       /* may be NULL */
    void *env_ctx;
} cu_access_rec_t;

/* Open the log: path NULL = disabled, "-" = stdout. format NULL = default. Returns CU_OK,
 * -errno for the file, or CU_ERROR for a format it cannot compile (message in errbuf). */
int cu_access_log_open(const char *path, const char *format, char *errbuf, size_t errlen);
void cu_access_log_reopen(void);
int cu_access_log_enabled(void);
/* Does the compiled format use {var}e atoms (so the caller must keep the environ)? */
int cu_access_log_needs_env(void);

void cu_access_log_write(const cu_access_rec_t *r);

/* Another destination for access lines (syslog, Python logging's "gunicorn.access"): gets
 * each rendered line (no newline) and returns nonzero when the log fd must not get it.
 * While a sink is set the log counts as enabled even without a file, as gunicorn logs
 * access lines whenever logconfig or syslog is set. NULL = none. Set before workers fork;
 * kept across cu_access_log_open. */
typedef int (*cu_access_sink_cb)(const char *line, size_t len);
void cu_access_log_set_sink(cu_access_sink_cb cb);

/* Render into buf (for tests); returns length (truncated to cap). */
size_t cu_access_log_render(const cu_access_rec_t *r, char *buf, size_t cap);

#endif
