/* Access log: gunicorn's access_log_format compiled once into pieces, rendered per request
 * into a stack buffer and written with one write(2). No allocation on the hot path. */
#include "log/access.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384

enum piece_kind {
    P_LIT,
    P_h,
    P_l,
    P_u,
    P_t,
    P_r,
    P_m,
    P_U,
    P_q,
    P_H,
    P_s,
    P_B,
    P_b,
    P_f,
    P_a,
    P_T,
    P_D,
    P_M,
    P_L,
    P_p,
    P_REQ_HDR,  /* {name}i */
    P_RESP_HDR, /* {name}o */
    P_ENV,      /* {name}e */
    P_UNKNOWN,  /* gunicorn's SafeAtoms renders '-' */
};

typedef struct piece_s {
    unsigned char kind;
    char conv;          /* 's', 'r', 'd' */
    unsigned char left; /* '-' flag */
    int width;          /* 0 = none */
    int prec;           /* -1 = none */
    const char *text;   /* literal, or the {name} of a header/environ atom */
    size_t len;
} piece_t;

static struct {
    int fd;     /* -1 = disabled */
    char *path; /* NULL for stdout */
    char *fmt;  /* owned copy the pieces point into */
    piece_t *pieces;
    size_t npieces;
    int needs_env;
} alog = {.fd = -1};

/* ---- compile ---- */

static const char single_atoms[] = "hlutrmUqHsBbfaTDMLp";

static int compile(const char *fmt, piece_t **out, size_t *nout, int *needs_env, char *err,
                   size_t errlen)
{
    size_t cap = 8, n = 0;
    piece_t *v = cu_xcalloc(cap, sizeof(*v));
    const char *p = fmt;
    *needs_env = 0;
    while (*p) {
        if (n + 2 >= cap) {
            cap *= 2;
            v = cu_xrealloc(v, cap * sizeof(*v));
        }
        if (*p != '%') {
            const char *e = strchr(p, '%');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            v[n++] = (piece_t){.kind = P_LIT, .text = p, .len = len};
            p += len;
            continue;
        }
        if (p[1] == '%') {
            v[n++] = (piece_t){.kind = P_LIT, .text = p, .len = 1};
            p += 2;
            continue;
        }
        const char *start = p++;
        if (*p != '(') {
            snprintf(err, errlen,
                     "access_log_format: '%%' must be followed by '(name)' or '%%' "
                     "at offset %zu",
                     (size_t)(start - fmt));
            goto fail;
        }
        /* the key may hold balanced parentheses, as in Python */
        const char *key = ++p;
        int depth = 1;
        while (*p && depth) {
            depth += (*p == '(') - (*p == ')');
            p++;
        }
        if (depth) {
            snprintf(err, errlen, "access_log_format: incomplete format key");
            goto fail;
        }
        piece_t pc = {.kind = P_UNKNOWN, .prec = -1, .text = key, .len = (size_t)(p - 1 - key)};
        for (; *p && strchr("#0- +", *p); p++)
            if (*p == '-')
                pc.left = 1;
        for (; *p >= '0' && *p <= '9'; p++)
            pc.width = pc.width * 10 + (*p - '0');
        if (*p == '.') {
            pc.prec = 0;
            for (p++; *p >= '0' && *p <= '9'; p++)
                pc.prec = pc.prec * 10 + (*p - '0');
        }
        while (*p == 'h' || *p == 'l' || *p == 'L')
            p++;
        if (*p == '\0') {
            snprintf(err, errlen, "access_log_format: incomplete format");
            goto fail;
        }
        if (!strchr("sradiu", *p)) {
            snprintf(err, errlen, "access_log_format: unsupported format character '%c'", *p);
            goto fail;
        }
        pc.conv = (*p == 's' || *p == 'r' || *p == 'a') ? (*p == 'a' ? 'r' : *p) : 'd';
        p++;

        if (pc.len == 1 && strchr(single_atoms, key[0])) {
            pc.kind = (unsigned char)(P_h + (strchr(single_atoms, key[0]) - single_atoms));
        } else if (pc.len >= 3 && key[0] == '{' && key[pc.len - 2] == '}' &&
                   strchr("ioe", key[pc.len - 1])) {
            char k = key[pc.len - 1];
            pc.kind = k == 'i' ? P_REQ_HDR : k == 'o' ? P_RESP_HDR : P_ENV;
            pc.text = key + 1;
            pc.len -= 3;
            if (pc.kind == P_ENV)
                *needs_env = 1;
        }
        v[n++] = pc;
    }
    *out = v;
    *nout = n;
    return CU_OK;
fail:
    cu_free(v);
    return CU_ERROR;
}

/* ---- output buffer: truncates silently at its cap ---- */

typedef struct out_s {
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void putc_(out_t *o, char c)
{
    if (o->len < o->cap)
        o->p[o->len++] = c;
}

enum { ESC_QUOTE = 1, LATIN1 = 2 };

/* A string atom: gunicorn escapes '"' as \" in every string value; request bytes were
 * decoded as latin-1 and are written out as UTF-8. */
static void put_str(out_t *o, const char *s, size_t n, int flags)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' && (flags & ESC_QUOTE)) {
            putc_(o, '\\');
            putc_(o, '"');
        } else if (c >= 0x80 && (flags & LATIN1)) {
            putc_(o, (char)(0xc0 | (c >> 6)));
            putc_(o, (char)(0x80 | (c & 0x3f)));
        } else {
            putc_(o, (char)c);
        }
    }
}

static void put_u64(out_t *o, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    put(o, b, (size_t)n);
}

/* ---- request helpers ---- */

static int ieq(const char *a, size_t alen, const char *b, size_t blen, int dash_is_underscore)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (dash_is_underscore) {
            x = x == '_' ? '-' : x;
            y = y == '_' ? '-' : y;
        }
        if (x != y)
            return 0;
    }
    return 1;
}

/* A header value, unfolded when it spans obs-fold line breaks. */
static void put_hdr_value(out_t *o, const cu_header_t *h, int flags)
{
    if (!h->folded) {
        put_str(o, h->value.p, h->value.len, flags);
        return;
    }
    const char *s = h->value.p, *e = s + h->value.len;
    while (s < e) {
        if (*s == '\r' || *s == '\n') {
            while (o->len > 0 && (o->p[o->len - 1] == ' ' || o->p[o->len - 1] == '\t'))
                o->len--;
            while (s < e && (*s == '\r' || *s == '\n' || *s == ' ' || *s == '\t'))
                s++;
            putc_(o, ' ');
            continue;
        }
        put_str(o, s, 1, flags);
        s++;
    }
}

/* The environ view of a header (HTTP_NAME): repeated fields joined with ','. Returns 0 if
 * the request has none. */
static int put_environ_header(out_t *o, const cu_req_t *req, const char *name, int flags)
{
    int found = 0;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const cu_header_t *h = &req->headers[i];
        if (!ieq(h->name.p, h->name.len, name, nlen, 1))
            continue;
        if (found++)
            putc_(o, ',');
        put_hdr_value(o, h, flags);
    }
    return found;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (k == 9 || (k == 1 && c < 0xc2) || i + k >= n + (k ? 0 : 1))
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        if (k == 2) {
            unsigned cp = ((c & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6);
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        } else if (k == 3) {
            unsigned cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12);
            if (cp < 0x10000 || cp > 0x10ffff)
                return 0;
        }
        i += k + 1;
    }
    return 1;
}

/* %(u)s: the user name from "Authorization: Basic base64(user:password)", decoded as
 * Python's b64decode does (non-alphabet bytes skipped, padding required). */
static void put_user(out_t *o, const cu_req_t *req)
{
    char vbuf[1024];
    out_t v = {vbuf, 0, sizeof(vbuf)};
    if (!put_environ_header(&v, req, "authorization", 0) || v.len < 5 ||
        !ieq(vbuf, 5, "basic", 5, 0))
        goto none;
    const char *sp = memchr(vbuf, ' ', v.len);
    if (!sp)
        goto none;

    unsigned char dec[768];
    size_t nd = 0, nchars = 0, npad = 0;
    uint32_t acc = 0;
    for (const char *c = sp + 1; c < vbuf + v.len; c++) {
        if (*c == '=') {
            npad++;
            if (nchars % 4 >= 2 && npad >= 4 - nchars % 4)
                break;
            continue;
        }
        int x = b64val((unsigned char)*c);
        if (x < 0 || npad)
            continue;
        acc = (acc << 6) | (uint32_t)x;
        if (++nchars % 4 == 0 && nd + 3 <= sizeof(dec)) {
            dec[nd++] = (unsigned char)(acc >> 16);
            dec[nd++] = (unsigned char)(acc >> 8);
            dec[nd++] = (unsigned char)acc;
        }
    }
    switch (nchars % 4) {
    case 1: goto none;
    case 2:
        if (npad < 2)
            goto none;
        dec[nd++] = (unsigned char)(acc >> 4);
        break;
    case 3:
        if (npad < 1)
            goto none;
        dec[nd++] = (unsigned char)(acc >> 10);
        dec[nd++] = (unsigned char)(acc >> 2);
        break;
    default: break;
    }
    const unsigned char *colon = memchr(dec, ':', nd);
    size_t ulen = colon ? (size_t)(colon - dec) : nd;
    if (ulen == 0 || !utf8_valid(dec, ulen))
        goto none;
    put_str(o, (const char *)dec, ulen, ESC_QUOTE);
    return;
none:
    putc_(o, '-');
}

static void put_method(out_t *o, const cu_req_t *req)
{
    for (size_t i = 0; i < req->method.len; i++) {
        char c = req->method.p[i];
        if (req->method_lower && c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        put_str(o, &c, 1, ESC_QUOTE | LATIN1);
    }
}

static void put_protocol(out_t *o, const cu_req_t *req)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "HTTP/%d.%d", req->version_major, req->version_minor);
    put(o, b, (size_t)n);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* PATH_INFO: the path percent-decoded (invalid escapes kept as they are). */
static void put_path_info(out_t *o, cu_str_t path)
{
    for (size_t i = 0; i < path.len; i++) {
        char c = path.p[i];
        int hi, lo;
        if (c == '%' && i + 2 < path.len && (hi = hexval(path.p[i + 1])) >= 0 &&
            (lo = hexval(path.p[i + 2])) >= 0) {
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        put_str(o, &c, 1, ESC_QUOTE | LATIN1);
    }
}

/* A response header the app set. The last field with the name wins, as gunicorn's dict of
 * them does. */
static int put_resp_header(out_t *o, const cu_resp_head_t *resp, const char *name, size_t nlen)
{
    if (!resp)
        return 0;
    for (size_t i = resp->nfields; i-- > 0;) {
        cu_str_t n = cu_resp_field_name(resp, i);
        if (ieq(n.p, n.len, name, nlen, 0)) {
            cu_str_t v = cu_resp_field_value(resp, i);
            put_str(o, v.p, v.len, ESC_QUOTE | LATIN1);
            return 1;
        }
    }
    return 0;
}

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* [24/Nov/2026:21:26:51 +0000] in local time, cached per thread for the current second. */
static void put_time(out_t *o, int64_t us)
{
    static _Thread_local time_t last_sec = -1;
    static _Thread_local char buf[40];
    static _Thread_local size_t blen;
    time_t sec = (time_t)(us / 1000000);
    if (sec != last_sec) {
        struct tm tm;
        localtime_r(&sec, &tm);
        long off = tm.tm_gmtoff / 60;
        char sign = off < 0 ? '-' : '+';
        off = off < 0 ? -off : off;
        int n = snprintf(buf, sizeof(buf), "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]", tm.tm_mday,
                         months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, sign, off / 60, off % 60);
        blen = n > 0 ? (size_t)n : 0;
        last_sec = sec;
    }
    put(o, buf, blen);
}

static void put_atom(out_t *o, const piece_t *pc, const cu_access_rec_t *r)
{
    const cu_req_t *req = r->req;
    int64_t dt = r->end_us - r->start_us;
    if (dt < 0)
        dt = 0;
    /* a timedelta's .seconds and .microseconds: days are not counted */
    int64_t secs = (dt / 1000000) % 86400, micros = dt % 1000000;
    char b[64];
    int n;

    switch ((enum piece_kind)pc->kind) {
    case P_LIT: put(o, pc->text, pc->len); break;
    case P_h: put_str(o, req->peer->host, strlen(req->peer->host), ESC_QUOTE); break;
    case P_l: putc_(o, '-'); break;
    case P_u: put_user(o, req); break;
    case P_t: put_time(o, r->end_us); break;
    case P_r:
        put_method(o, req);
        putc_(o, ' ');
        put_str(o, req->target.p, req->target.len, ESC_QUOTE | LATIN1);
        putc_(o, ' ');
        put_protocol(o, req);
        break;
    case P_m: put_method(o, req); break;
    case P_U: put_path_info(o, req->path); break;
    case P_q: put_str(o, req->query.p, req->query.len, ESC_QUOTE | LATIN1); break;
    case P_H: put_protocol(o, req); break;
    case P_s:
        n = snprintf(b, sizeof(b), "%d", r->resp ? r->resp->status : 0);
        put(o, b, (size_t)n);
        break;
    case P_B:
    case P_b: put_u64(o, r->body_sent); break;
    case P_f:
        if (!put_environ_header(o, req, "referer", ESC_QUOTE | LATIN1))
            putc_(o, '-');
        break;
    case P_a:
        if (!put_environ_header(o, req, "user-agent", ESC_QUOTE | LATIN1))
            putc_(o, '-');
        break;
    case P_T: put_u64(o, (uint64_t)secs); break;
    case P_D: put_u64(o, (uint64_t)(secs * 1000000 + micros)); break;
    case P_M: put_u64(o, (uint64_t)(secs * 1000 + micros / 1000)); break;
    case P_L:
        n = snprintf(b, sizeof(b), "%d.%06d", (int)secs, (int)micros);
        put(o, b, (size_t)n);
        break;
    case P_p:
        n = snprintf(b, sizeof(b), "<%d>", (int)getpid());
        put(o, b, (size_t)n);
        break;
    case P_REQ_HDR: {
        const cu_header_t *last = NULL;
        for (size_t i = 0; i < req->nheaders; i++)
            if (ieq(req->headers[i].name.p, req->headers[i].name.len, pc->text, pc->len, 0))
                last = &req->headers[i];
        if (last)
            put_hdr_value(o, last, ESC_QUOTE | LATIN1);
        else
            putc_(o, '-');
        break;
    }
    case P_RESP_HDR:
        if (!put_resp_header(o, r->resp, pc->text, pc->len))
            putc_(o, '-');
        break;
    case P_ENV: {
        ssize_t got = -1;
        char ebuf[2048];
        if (r->env)
            got = r->env(r->env_ctx, pc->text, pc->len, ebuf, sizeof(ebuf));
        if (got >= 0)
            put_str(o, ebuf, (size_t)got < sizeof(ebuf) ? (size_t)got : sizeof(ebuf), ESC_QUOTE);
        else
            putc_(o, '-');
        break;
    }
    case P_UNKNOWN: putc_(o, '-'); break;
    }
}

/* Python's repr() quotes around what was rendered at [from, len). */
static void make_repr(out_t *o, size_t from)
{
    size_t n = o->len - from;
    if (o->cap - o->len < 2)
        return;
    memmove(o->p + from + 1, o->p + from, n);
    o->p[from] = '\'';
    o->len++;
    putc_(o, '\'');
}

static size_t render(const cu_access_rec_t *r, char *buf, size_t cap)
{
    out_t o = {buf, 0, cap};
    for (size_t i = 0; i < alog.npieces; i++) {
        const piece_t *pc = &alog.pieces[i];
        size_t from = o.len;
        put_atom(&o, pc, r);
        if (pc->kind == P_LIT)
            continue;
        if (pc->conv == 'r')
            make_repr(&o, from);
        if (pc->prec >= 0 && o.len - from > (size_t)pc->prec)
            o.len = from + (size_t)pc->prec;
        size_t w = o.len - from;
        if (pc->width > 0 && w < (size_t)pc->width) {
            size_t pad = (size_t)pc->width - w;
            if (pad > o.cap - o.len)
                pad = o.cap - o.len;
            if (!pc->left)
                memmove(o.p + from + pad, o.p + from, w);
            memset(pc->left ? o.p + o.len : o.p + from, ' ', pad);
            o.len += pad;
        }
    }
    return o.len;
}

/* ---- public API ---- */

static void close_fd(void)
{
    if (alog.fd > 2)
        close(alog.fd);
    alog.fd = -1;
}

int cu_access_log_open(const char *path, const char *format, char *errbuf, size_t errlen)
{
    piece_t *pieces = NULL;
    size_t npieces = 0;
    int needs_env = 0;
    char *fmt = cu_xstrdup(format ? format : CU_ACCESS_DEFAULT_FORMAT);
    if (compile(fmt, &pieces, &npieces, &needs_env, errbuf, errlen) != CU_OK) {
        cu_free(fmt);
        return CU_ERROR;
    }
    int fd = -1;
    if (path && strcmp(path, "-") == 0) {
        fd = 1;
    } else if (path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            int e = errno;
            snprintf(errbuf, errlen, "%s: %s", path, strerror(e));
            cu_free(pieces);
            cu_free(fmt);
            return -e;
        }
    }
    close_fd();
    cu_free(alog.path);
    cu_free(alog.pieces);
    cu_free(alog.fmt);
    alog.fd = fd;
    alog.path = (path && fd > 2) ? cu_xstrdup(path) : NULL;
    alog.fmt = fmt;
    alog.pieces = pieces;
    alog.npieces = npieces;
    alog.needs_env = needs_env;
    return CU_OK;
}

void cu_access_log_reopen(void)
{
    if (!alog.path || alog.fd < 0)
        return;
    int fd = open(alog.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    /* dup2 swaps the file under the same descriptor, so a writer on another thread
     * never sees a closed or reused fd */
    if (dup2(fd, alog.fd) >= 0)
        (void)fcntl(alog.fd, F_SETFD, FD_CLOEXEC);
    close(fd);
}

static cu_access_sink_cb sink;

void cu_access_log_set_sink(cu_access_sink_cb cb)
{
    sink = cb;
}

int cu_access_log_enabled(void)
{
    return alog.fd >= 0 || sink != NULL;
}

int cu_access_log_needs_env(void)
{
    return alog.needs_env;
}

size_t cu_access_log_render(const cu_access_rec_t *r, char *buf, size_t cap)
{
    if (!alog.pieces) {
        char err[128];
        if (cu_access_log_open(NULL, NULL, err, sizeof(err)) != CU_OK)
            return 0;
    }
    return render(r, buf, cap);
}

void cu_access_log_write(const cu_access_rec_t *r)
{
    if (alog.fd < 0 && !sink)
        return;
    char line[LINE_MAX_BYTES];
    size_t n = render(r, line, sizeof(line) - 1);
    if ((sink && sink(line, n)) || alog.fd < 0)
        return;
    line[n++] = '\n';
    const char *p = line;
    while (n > 0) {
        ssize_t w = write(alog.fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}
