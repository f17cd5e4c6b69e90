/* The control socket: framing, a small JSON reader for requests, and non-blocking client
 * connections driven by the master's event loop. */
#include "ctl/ctl.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CU_CTL_MAX_CLIENTS 16
#define CU_CTL_MAX_MSG     (1024 * 1024) /* gunicorn allows 16 MB; no command needs 1 */
#define CU_CTL_MAX_ARGS    32

typedef struct cu_ctl_client_s {
    int fd; /* -1 = free */
    cu_io_t io;
    cu_ctl_t *ctl;
    cu_buf_t in, out;
} cu_ctl_client_t;

struct cu_ctl_s {
    int fd;
    cu_loop_t *loop;
    cu_io_t io;
    char *path;
    dev_t dev;
    ino_t ino;
    cu_ctl_cb cb;
    void *ctx;
    cu_ctl_client_t cl[CU_CTL_MAX_CLIENTS];
};

void cu_ctl_printf(cu_buf_t *out, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)cu_buf_append(out, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void cu_ctl_json_str(cu_buf_t *out, const char *s)
{
    (void)cu_buf_append(out, "\"", 1);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            (void)cu_buf_append(out, e, 2);
        } else if (ch < 0x20) {
            cu_ctl_printf(out, "\\u%04x", ch);
        } else {
            (void)cu_buf_append(out, s, 1);
        }
    }
    (void)cu_buf_append(out, "\"", 1);
}

/* ---- a JSON reader just big enough for requests ---- */

typedef struct cu_json_s {
    const char *p, *end;
} cu_json_t;

static void ws(cu_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A string at j->p into a new heap string (UTF-8); NULL when malformed. */
static char *json_string(cu_json_t *j)
{
    if (j->p >= j->end || *j->p != '"')
        return NULL;
    j->p++;
    cu_buf_t b;
    cu_buf_init(&b, 64, CU_CTL_MAX_MSG);
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c != '\\') {
            (void)cu_buf_append(&b, &c, 1);
            continue;
        }
        if (j->p >= j->end)
            goto fail;
        c = *j->p++;
        switch (c) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u': {
            if (j->end - j->p < 4)
                goto fail;
            unsigned v = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(j->p[i]);
                if (h < 0)
                    goto fail;
                v = v * 16 + (unsigned)h;
            }
            j->p += 4;
            /* Commands are ASCII; anything else is kept as UTF-8 (surrogates as '?'). */
            char u[3];
            size_t n = 1;
            if (v < 0x80) {
                u[0] = (char)v;
            } else if (v < 0x800) {
                u[0] = (char)(0xc0 | (v >> 6));
                u[1] = (char)(0x80 | (v & 0x3f));
                n = 2;
            } else if (v >= 0xd800 && v < 0xe000) {
                u[0] = '?';
            } else {
                u[0] = (char)(0xe0 | (v >> 12));
                u[1] = (char)(0x80 | ((v >> 6) & 0x3f));
                u[2] = (char)(0x80 | (v & 0x3f));
                n = 3;
            }
            (void)cu_buf_append(&b, u, n);
            continue;
        }
        default: break; /* '"', '\\', '/' stand for themselves */
        }
        (void)cu_buf_append(&b, &c, 1);
    }
    if (j->p >= j->end)
        goto fail;
    j->p++;
    (void)cu_buf_append(&b, "", 1);
    return b.data;
fail:
    cu_buf_free(&b);
    return NULL;
}

/* Skip any value; returns CU_OK or CU_ERROR. depth bounds nesting. */
static int json_skip(cu_json_t *j, int depth)
{
    ws(j);
    if (j->p >= j->end || depth > 32)
        return CU_ERROR;
    char c = *j->p;
    if (c == '"') {
        char *s = json_string(j);
        int ok = s != NULL;
        cu_free(s);
        return ok ? CU_OK : CU_ERROR;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return CU_OK;
        }
        for (;;) {
            if (c == '{') {
                ws(j);
                char *k = json_string(j);
                if (!k)
                    return CU_ERROR;
                cu_free(k);
                ws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return CU_ERROR;
            }
            if (json_skip(j, depth + 1) != CU_OK)
                return CU_ERROR;
            ws(j);
            if (j->p >= j->end)
                return CU_ERROR;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != close)
                return CU_ERROR;
            return CU_OK;
        }
    }
    const char *start = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') ||
                             (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    return j->p > start ? CU_OK : CU_ERROR;
}

typedef struct cu_ctl_req_s {
    char *id; /* the id's JSON text as received ("0" when absent) */
    char *command;
    char *args[CU_CTL_MAX_ARGS];
    int nargs;
} cu_ctl_req_t;

static void req_free(cu_ctl_req_t *r)
{
    cu_free(r->id);
    cu_free(r->command);
    for (int i = 0; i < r->nargs; i++) {
        cu_free(r->args[i]);
    }
    r->nargs = 0;
}

static int parse_request(const char *p, size_t n, cu_ctl_req_t *r)
{
    cu_json_t j = {p, p + n};
    memset(r, 0, sizeof(*r));
    ws(&j);
    if (j.p >= j.end || *j.p++ != '{')
        return CU_ERROR;
    ws(&j);
    if (j.p < j.end && *j.p == '}')
        return CU_OK;
    for (;;) {
        ws(&j);
        char *key = json_string(&j);
        if (!key)
            return CU_ERROR;
        ws(&j);
        if (j.p >= j.end || *j.p++ != ':') {
            cu_free(key);
            return CU_ERROR;
        }
        ws(&j);
        int rc = CU_OK;
        if (strcmp(key, "id") == 0) {
            const char *s = j.p;
            rc = json_skip(&j, 0);
            if (rc == CU_OK) {
                free(r->id);
                r->id = cu_xstrndup(s, (size_t)(j.p - s));
            }
        } else if (strcmp(key, "command") == 0 && j.p < j.end && *j.p == '"') {
            free(r->command);
            r->command = json_string(&j);
            rc = r->command ? CU_OK : CU_ERROR;
        } else if (strcmp(key, "args") == 0 && j.p < j.end && *j.p == '[') {
            j.p++;
            ws(&j);
            if (j.p < j.end && *j.p == ']') {
                j.p++;
            } else {
                for (;;) {
                    ws(&j);
                    char *a = NULL;
                    if (j.p < j.end && *j.p == '"') {
                        a = json_string(&j);
                    } else {
                        const char *s = j.p;
                        if (json_skip(&j, 1) == CU_OK)
                            a = cu_xstrndup(s, (size_t)(j.p - s));
                    }
                    if (!a || r->nargs >= CU_CTL_MAX_ARGS) {
                        cu_free(a);
                        rc = CU_ERROR;
                        break;
                    }
                    r->args[r->nargs++] = a;
                    ws(&j);
                    if (j.p < j.end && *j.p == ',') {
                        j.p++;
                        continue;
                    }
                    if (j.p >= j.end || *j.p++ != ']')
                        rc = CU_ERROR;
                    break;
                }
            }
        } else {
            rc = json_skip(&j, 0);
        }
        cu_free(key);
        if (rc != CU_OK)
            return CU_ERROR;
        ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        return j.p < j.end && *j.p == '}' ? CU_OK : CU_ERROR;
    }
}

/* Split a command like shlex (whitespace, '...' and "..." quoting, backslash escapes). */
static int split_words(const char *s, char **words, int cap, char *store, size_t storecap)
{
    int n = 0;
    size_t o = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (!*s)
            break;
        if (n >= cap)
            return -1;
        words[n++] = store + o;
        char q = 0;
        while (*s && (q || (*s != ' ' && *s != '\t' && *s != '\n'))) {
            if (!q && (*s == '\'' || *s == '"')) {
                q = *s++;
                continue;
            }
            if (q && *s == q) {
                q = 0;
                s++;
                continue;
            }
            if (*s == '\\' && q != '\'' && s[1])
                s++;
            if (o + 1 >= storecap)
                return -1;
            store[o++] = *s++;
        }
        if (q)
            return -1;
        store[o++] = '\0';
    }
    return n;
}

/* ---- connections ---- */

static void client_close(cu_ctl_client_t *cl, int owner)
{
    if (owner)
        (void)cu_io_del(cl->ctl->loop, &cl->io);
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cu_buf_free(&cl->in);
    cu_buf_free(&cl->out);
}

static void reply(cu_ctl_t *c, cu_ctl_client_t *cl, const char *p, size_t n)
{
    cu_ctl_req_t r;
    cu_buf_t data;
    cu_buf_init(&data, 256, CU_CTL_MAX_MSG);
    int rc = CU_ERROR;
    if (parse_request(p, n, &r) != CU_OK) {
        cu_ctl_printf(&data, "Invalid request");
    } else if (!r.command || !r.command[0]) {
        cu_ctl_printf(&data, "Empty command");
    } else {
        char *words[CU_CTL_MAX_ARGS * 2];
        size_t storecap = strlen(r.command) + 1;
        char *store = cu_xmalloc(storecap);
        int nw = split_words(r.command, words, CU_CTL_MAX_ARGS, store, storecap);
        if (nw < 0) {
            cu_ctl_printf(&data, "Invalid argument: cannot parse the command");
        } else {
            for (int i = 0; i < r.nargs; i++)
                words[nw++] = r.args[i];
            if (nw == 0)
                cu_ctl_printf(&data, "Empty command");
            else
                rc = c->cb(c->ctx, nw, words, &data);
        }
        cu_free(store);
    }
    cu_buf_t msg;
    cu_buf_init(&msg, 512, CU_CTL_MAX_MSG + 256);
    cu_ctl_printf(&msg, "{\"id\": %s, \"status\": ", r.id ? r.id : "0");
    (void)cu_buf_append(&data, "", 1);
    if (rc == CU_OK) {
        cu_ctl_printf(&msg, "\"ok\", \"data\": ");
        (void)cu_buf_append(&msg, data.data, strlen(data.data));
    } else {
        cu_ctl_printf(&msg, "\"error\", \"error\": ");
        cu_ctl_json_str(&msg, data.data);
    }
    (void)cu_buf_append(&msg, "}", 1);
    uint32_t len = (uint32_t)cu_buf_unread(&msg);
    unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    (void)cu_buf_append(&cl->out, hdr, 4);
    (void)cu_buf_append(&cl->out, cu_buf_head(&msg), len);
    cu_buf_free(&msg);
    cu_buf_free(&data);
    req_free(&r);
}

/* Returns CU_ERROR when the client must be closed. */
static int client_read(cu_ctl_t *c, cu_ctl_client_t *cl)
{
    for (;;) {
        if (cu_buf_reserve(&cl->in, 4096) != CU_OK)
            return CU_ERROR;
        ssize_t r = read(cl->fd, cl->in.data + cl->in.len, cl->in.cap - cl->in.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN ? CU_OK : CU_ERROR;
        if (r == 0)
            return CU_ERROR;
        cl->in.len += (size_t)r;
        while (cu_buf_unread(&cl->in) >= 4) {
            const unsigned char *h = (const unsigned char *)cu_buf_head(&cl->in);
            uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
            if (len > CU_CTL_MAX_MSG)
                return CU_ERROR;
            if (cu_buf_unread(&cl->in) < 4 + (size_t)len)
                break;
            reply(c, cl, cu_buf_head(&cl->in) + 4, len);
            cu_buf_consume(&cl->in, 4 + (size_t)len);
        }
    }
}

static int client_write(cu_ctl_client_t *cl)
{
    while (cu_buf_unread(&cl->out)) {
        ssize_t w = send(cl->fd, cu_buf_head(&cl->out), cu_buf_unread(&cl->out), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? CU_OK : CU_ERROR;
        cu_buf_consume(&cl->out, (size_t)w);
    }
    return CU_OK;
}

/* Is a server accepting on the socket file at sun? 1 yes (it answered, or its backlog is
 * full), 0 no (a stale file: connection refused, or gone), -errno when unknown. Never
 * blocks: the probe is non-blocking and closed at once. */
static int socket_is_live(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
    int err = rc < 0 ? errno : 0;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
        return 1;
    if (err == ECONNREFUSED || err == ENOENT)
        return 0;
    return -err;
}

static void on_client(cu_loop_t *loop, cu_io_t *io, int events);
static void on_accept(cu_loop_t *loop, cu_io_t *io, int events);

cu_ctl_t *cu_ctl_open(cu_loop_t *loop, const char *path, int mode, cu_ctl_cb cb, void *ctx)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        cu_log_warn("Failed to start control socket: path too long: %s", path);
        return NULL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);

    char *dir = cu_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        struct stat st;
        if (stat(dir, &st) < 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
            cu_log_warn("Failed to create %s: %s", dir, strerror(errno));
    }
    cu_free(dir);

    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int live = socket_is_live(&sun);
        if (live != 0) {
            if (live > 0)
                cu_log_warn("Control socket %s is in use by another running server; not "
                            "replacing it. This server runs without a control socket: give "
                            "it its own path with --control-socket PATH (or "
                            "--no-control-socket), or stop the other server first.",
                            path);
            else
                cu_log_warn("Control socket %s: cannot tell whether another server uses "
                            "it (%s); not replacing it. This server runs without a control "
                            "socket: give it its own path with --control-socket PATH.",
                            path, strerror(-live));
            return NULL;
        }
        (void)unlink(path); /* stale: nobody accepts on it any more */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* Created with its final mode: a client that sees the path never sees it wider. */
    mode_t old = umask((mode_t)(~mode & 0777));
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0 || chmod(path, (mode_t)mode) < 0 || stat(path, &st) < 0)
        goto fail_fd;

    cu_ctl_t *c = cu_xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->loop = loop;
    cu_io_init(&c->io, fd, on_accept, c);
    if ((rc = cu_io_set(loop, &c->io, CU_EV_READ)) != CU_OK) {
        cu_free(c);
        errno = -rc;
        goto fail_fd;
    }
    c->path = cu_xstrdup(path);
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->cb = cb;
    c->ctx = ctx;
    for (size_t i = 0; i < CU_CTL_MAX_CLIENTS; i++)
        c->cl[i].fd = -1;
    cu_log_info("Control socket listening at %s", path);
    return c;

fail_fd : {
    int e = errno;
    close(fd);
    errno = e;
}
fail:
    cu_log_warn("Failed to start control socket: %s: %s", path, strerror(errno));
    return NULL;
}

static cu_ctl_client_t *free_client(cu_ctl_t *c)
{
    for (size_t i = 0; i < CU_CTL_MAX_CLIENTS; i++)
        if (c->cl[i].fd < 0)
            return &c->cl[i];
    return NULL;
}

static void on_accept(cu_loop_t *loop, cu_io_t *io, int events)
{
    cu_ctl_t *c = io->data;
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        cu_ctl_client_t *cl = free_client(c);
        if (!cl) {
            close(fd); /* full: the client sees EOF and may retry */
            continue;
        }
        cl->fd = fd;
        cl->ctl = c;
        cu_buf_init(&cl->in, 4096, CU_CTL_MAX_MSG + 4);
        cu_buf_init(&cl->out, 4096, (size_t)CU_CTL_MAX_MSG * 4);
        cu_io_init(&cl->io, fd, on_client, cl);
        if (cu_io_set(loop, &cl->io, CU_EV_READ) != CU_OK)
            client_close(cl, 1);
    }
}

static void on_client(cu_loop_t *loop, cu_io_t *io, int events)
{
    cu_ctl_client_t *cl = io->data;
    int rc = CU_OK;
    if (events & (CU_EV_READ | CU_EV_ERROR))
        rc = client_read(cl->ctl, cl);
    if (client_write(cl) != CU_OK)
        rc = CU_ERROR;
    /* A client that hung up after its last request still gets the reply written. */
    if (rc == CU_OK)
        rc = cu_io_set(loop, &cl->io,
                       cu_buf_unread(&cl->out) ? CU_EV_READ | CU_EV_WRITE : CU_EV_READ);
    if (rc != CU_OK)
        client_close(cl, 1);
}

void cu_ctl_close(cu_ctl_t *c, int owner)
{
    if (!c)
        return;
    for (size_t i = 0; i < CU_CTL_MAX_CLIENTS; i++)
        if (c->cl[i].fd >= 0)
            client_close(&c->cl[i], owner);
    if (owner)
        (void)cu_io_del(c->loop, &c->io);
    close(c->fd);
    struct stat st;
    if (owner && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        (void)unlink(c->path);
    cu_free(c->path);
    free(c);
}
