/* Settings values: defaults, validators (gunicorn's rules), --print-config, --help,
 * docs/settings.md, and IP allow-lists. The rows live in table.c, argv parsing in cli.c. */
#include "config/table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small string helpers ---- */

static int is_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Python's str.strip(): a new string without surrounding whitespace. */
static char *strip_dup(const char *s)
{
    while (is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space((unsigned char)s[n - 1]))
        n--;
    return cu_xstrndup(s, n);
}

static void strlist_clear(cu_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cu_free(l->v[i]);
    }
    cu_free(l->v);
    l->n = 0;
}

static void strlist_push(cu_strlist_t *l, char *owned)
{
    l->v = cu_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = owned;
}

static void set_str(char **field, char *owned)
{
    cu_free(*field);
    *field = owned;
}

void cu__py_repr(FILE *out, const char *s)
{
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    fputc(q, out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\' || *p == (unsigned char)q)
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc(q, out);
}

static void print_list(FILE *out, const cu_strlist_t *l)
{
    fputc('[', out);
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            fputs(", ", out);
        cu__py_repr(out, l->v[i]);
    }
    fputc(']', out);
}

/* The repr() of a value into err, for messages that quote what the user gave. */
static void repr_into(char *buf, size_t cap, const char *s)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f) {
        snprintf(buf, cap, "'%s'", s);
        return;
    }
    cu__py_repr(f, s);
    fclose(f);
    snprintf(buf, cap, "%s", mem);
    cu_free(mem);
}

/* ---- gunicorn's current directory: $PWD when it names the cwd (keeps symlinks) ---- */

static char *startup_cwd(void)
{
    char buf[PATH_MAX];
    const char *pwd = getenv("PWD");
    struct stat a, b;
    if (pwd && pwd[0] == '/' && stat(pwd, &a) == 0 && stat(".", &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        return cu_xstrdup(pwd);
    if (getcwd(buf, sizeof(buf)))
        return cu_xstrdup(buf);
    return cu_xstrdup(".");
}

/* os.path.normpath(os.path.join(base, p)), lexically. */
static char *path_join_norm(const char *base, const char *p)
{
    size_t cap = strlen(base) + strlen(p) + 3;
    char *joined = cu_xmalloc(cap);
    if (p[0] == '/')
        snprintf(joined, cap, "%s", p);
    else
        snprintf(joined, cap, "%s/%s", base, p);

    char *out = cu_xmalloc(cap);
    size_t n = 0;
    const char *s = joined;
    while (*s) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        if (len == 0 || (len == 1 && s[0] == '.')) {
            /* skip */
        } else if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else {
            out[n++] = '/';
            memcpy(out + n, s, len);
            n += len;
        }
        s = e;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    cu_free(joined);
    return out;
}

/* ---- IP allow-lists ---- */

void cu_cidrlist_free(cu_cidrlist_t *l)
{
    cu_free(l->v);
    l->n = 0;
    l->any = 0;
    strlist_clear(&l->src);
}

static int parse_prefix(const char *s, int max, int family, int *prefix)
{
    if (*s == '\0')
        return CU_ERROR;
    if (family == AF_INET && strchr(s, '.')) {
        /* a dotted netmask such as 255.255.255.0 */
        struct in_addr m;
        if (inet_pton(AF_INET, s, &m) != 1)
            return CU_ERROR;
        uint32_t v = ntohl(m.s_addr);
        int bits = 0;
        while (bits < 32 && (v & (0x80000000u >> bits)))
            bits++;
        if (bits < 32 && (v << bits) != 0)
            return CU_ERROR;
        *prefix = bits;
        return CU_OK;
    }
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p) || p - s > 3)
            return CU_ERROR;
        v = v * 10 + (*p - '0');
    }
    if (v > max)
        return CU_ERROR;
    *prefix = (int)v;
    return CU_OK;
}

/* "10.0.0.0/8", "::1", "::ffff:10.0.0.0/104" (stored as IPv4 10.0.0.0/8). */
static int cidr_parse(const char *text, cu_cidr_t *c, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    char rep[300];
    repr_into(rep, sizeof(rep), text);
    if (alen >= sizeof(addr))
        goto bad;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, addr, c->addr) == 1) {
        c->family = AF_INET;
        c->prefix = 32;
    } else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
        c->family = AF_INET6;
        c->prefix = 128;
    } else {
        goto bad;
    }
    if (slash &&
        parse_prefix(slash + 1, c->family == AF_INET ? 32 : 128, c->family, &c->prefix) != CU_OK)
        goto bad;

    size_t nbytes = c->family == AF_INET ? 4 : 16;
    for (size_t bit = (size_t)c->prefix; bit < nbytes * 8; bit++) {
        if (c->addr[bit / 8] & (0x80 >> (bit % 8))) {
            snprintf(err, errlen, "%s has host bits set", text);
            return CU_ERROR;
        }
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == AF_INET6 && c->prefix >= 96 && memcmp(c->addr, mapped, 12) == 0) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->prefix -= 96;
    }
    return CU_OK;
bad:
    snprintf(err, errlen, "%s does not appear to be an IPv4 or IPv6 network", rep);
    return CU_ERROR;
}

int cu_cidrlist_parse(cu_cidrlist_t *l, const char *text, char *err, size_t errlen)
{
    cu_cidrlist_t nl = {0};
    char *all = strip_dup(text);
    char *save = NULL;
    /* gunicorn: strip the whole, split on ',', drop empty pieces, strip each */
    for (char *tok = *all ? strtok_r(all, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
        strlist_push(&nl.src, strip_dup(tok));
    cu_free(all);

    nl.v = cu_xcalloc(nl.src.n ? nl.src.n : 1, sizeof(*nl.v));
    for (size_t i = 0; i < nl.src.n; i++) {
        if (strcmp(nl.src.v[i], "*") == 0) {
            nl.any = 1;
            continue;
        }
        if (cidr_parse(nl.src.v[i], &nl.v[nl.n], err, errlen) != CU_OK) {
            cu_cidrlist_free(&nl);
            return CU_ERROR;
        }
        nl.n++;
    }
    cu_cidrlist_free(l);
    *l = nl;
    return CU_OK;
}

static int prefix_eq(const unsigned char *a, const unsigned char *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char m = (unsigned char)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

int cu_cidr_match(const cu_cidrlist_t *l, const struct sockaddr *sa)
{
    if (l->any || sa->sa_family == AF_UNIX)
        return 1;
    const unsigned char *v4 = NULL, *v6 = NULL;
    if (sa->sa_family == AF_INET) {
        v4 = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        v6 = a->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            v4 = a->s6_addr + 12;
    } else {
        return 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        const cu_cidr_t *c = &l->v[i];
        if (c->family == AF_INET && v4 && prefix_eq(v4, c->addr, c->prefix))
            return 1;
        if (c->family == AF_INET6 && v6 && prefix_eq(v6, c->addr, c->prefix))
            return 1;
    }
    return 0;
}

/* ---- defaults ---- */

static void cidr_default(cu_cidrlist_t *l, const char *text)
{
    char err[256];
    if (cu_cidrlist_parse(l, text, err, sizeof(err)) != CU_OK)
        (void)cu_cidrlist_parse(l, "", err, sizeof(err)); /* cli.c reports the bad env value */
}

void cu_config_defaults(cu_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *port = getenv("PORT");
    if (port) {
        size_t n = strlen(port) + sizeof("0.0.0.0:");
        char *b = cu_xmalloc(n);
        snprintf(b, n, "0.0.0.0:%s", port);
        strlist_push(&cfg->bind, b);
    } else {
        strlist_push(&cfg->bind, cu_xstrdup("127.0.0.1:8000"));
    }
    cfg->backlog = 2048;

    cfg->workers = 1;
    const char *wc = getenv("WEB_CONCURRENCY");
    if (wc && *wc) {
        char *end;
        errno = 0;
        long v = strtol(wc, &end, 10);
        while (is_space((unsigned char)*end))
            end++;
        if (!errno && *end == '\0' && v >= 0 && v <= INT_MAX)
            cfg->workers = (int)v;
    }
    cfg->worker_class = CU_WORKER_SYNC;
    cfg->worker_class_str = cu_xstrdup("sync");
    cfg->threads = 1;
    cfg->worker_connections = 1000;
    cfg->timeout = 30;
    cfg->graceful_timeout = 30;
    cfg->dirty_timeout = 300;
    cfg->dirty_threads = 1;
    cfg->dirty_graceful_timeout = 30;
    cfg->keepalive = 2;
    cfg->asgi_loop = cu_xstrdup("auto");
    cfg->asgi_lifespan = cu_xstrdup("auto");
    cfg->asgi_disconnect_grace_period = 3;
    cfg->websocket_max_message_size = 16 * 1024 * 1024;
    cfg->root_path = cu_xstrdup("");
    cfg->control_socket_mode = 0600;

    cfg->limit_request_line = 4094;
    cfg->limit_request_fields = 100;
    cfg->limit_request_field_size = 8190;

    cfg->header_map = CU_HEADER_MAP_DROP;
    const char *fwd = getenv("FORWARDED_ALLOW_IPS");
    cidr_default(&cfg->forwarded_allow_ips, fwd ? fwd : "127.0.0.1,::1");
    cfg->proxy_protocol = CU_PROXY_OFF;
    cidr_default(&cfg->proxy_allow_ips, "127.0.0.1,::1");
    cfg->protocol = CU_PROTOCOL_HTTP;
    cidr_default(&cfg->uwsgi_allow_ips, "127.0.0.1,::1");
    strlist_push(&cfg->forwarder_headers, cu_xstrdup("SCRIPT_NAME"));
    strlist_push(&cfg->forwarder_headers, cu_xstrdup("PATH_INFO"));
    strlist_push(&cfg->http_protocols, cu_xstrdup("h1"));
    cfg->http2_cleartext = CU_H2C_OFF;
    cfg->http2_max_concurrent_streams = 100;
    cfg->http2_initial_window_size = 65535;
    cfg->http2_max_frame_size = 16384;
    cfg->http2_max_header_list_size = 65536;

    cfg->chdir = startup_cwd();
    cfg->access_log_format =
        cu_xstrdup("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"");
    cfg->errorlog = cu_xstrdup("-");
    cfg->loglevel = cu_xstrdup("info");
    cfg->syslog_addr = cu_xstrdup("udp://localhost:514");
    cfg->syslog_facility = cu_xstrdup("user");
    cfg->statsd_prefix = cu_xstrdup("");
    cfg->dogstatsd_tags = cu_xstrdup("");
    cfg->reload_engine = cu_xstrdup("auto");
    cfg->ssl_version = cu_xstrdup("2");
    cfg->suppress_ragged_eofs = 1;
    cfg->sendfile = -1;
    cfg->require_host = 1;
    cfg->http_parser = cu_xstrdup("auto");
}

void cu_config_free(cu_config_t *cfg)
{
    strlist_clear(&cfg->bind);
    cu_free(cfg->worker_class_str);
    cu_cidrlist_free(&cfg->forwarded_allow_ips);
    cu_cidrlist_free(&cfg->proxy_allow_ips);
    cu_cidrlist_free(&cfg->uwsgi_allow_ips);
    cu_free(cfg->secure_scheme_headers);
    strlist_clear(&cfg->forwarder_headers);
    strlist_clear(&cfg->http_protocols);
    char **logstr[] = {&cfg->syslog_addr,   &cfg->syslog_prefix,  &cfg->syslog_facility,
                       &cfg->logconfig,     &cfg->logconfig_dict, &cfg->logconfig_json,
                       &cfg->statsd_host,   &cfg->statsd_prefix,  &cfg->dogstatsd_tags,
                       &cfg->reload_engine, &cfg->paste,          &cfg->asgi_loop,
                       &cfg->asgi_lifespan, &cfg->root_path};
    for (size_t i = 0; i < CU_NELEM(logstr); i++)
        cu_free(*logstr[i]);
    strlist_clear(&cfg->reload_extra_files);
    strlist_clear(&cfg->dirty_apps);
    strlist_clear(&cfg->raw_paste_global_conf);
    cu_free(cfg->chdir);
    strlist_clear(&cfg->pythonpath);
    cu_free(cfg->pythonpath_str);
    strlist_clear(&cfg->raw_env);
    cu_free(cfg->pidfile);
    cu_free(cfg->user);
    cu_free(cfg->group);
    cu_free(cfg->worker_tmp_dir);
    cu_free(cfg->tmp_upload_dir);
    cu_free(cfg->logger_class);
    cu_free(cfg->http_parser);
    cu_free(cfg->control_socket);
    cu_free(cfg->proc_name);
    cu_free(cfg->accesslog);
    cu_free(cfg->access_log_format);
    cu_free(cfg->errorlog);
    cu_free(cfg->loglevel);
    cu_free(cfg->keyfile);
    cu_free(cfg->certfile);
    cu_free(cfg->ssl_version);
    cu_free(cfg->ca_certs);
    cu_free(cfg->ciphers);
    cu_free(cfg->app_uri);
    cu_free(cfg->config);
    cu_free(cfg->wsgi_app);
    if (cfg->shown) {
        for (size_t i = 0; i < cu__nsettings; i++) {
            cu_free(cfg->shown[i]);
        }
    }
    cu_free(cfg->shown);
}

/* ---- validators ---- */

/* int(val, 0) as gunicorn's validate_pos_int does for strings: optional sign, 0x/0o/0b
 * prefixes, '_' between digits, no leading zeros in decimal. */
static int py_int0(const char *s, long long *out)
{
    while (is_space((unsigned char)*s))
        s++;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8, s += 2;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, s += 2;
    if (base != 10 && *s == '_')
        s++;
    long long v = 0;
    int ndig = 0, zero_lead = (base == 10 && s[0] == '0');
    for (; *s && !is_space((unsigned char)*s); s++) {
        if (*s == '_' && ndig > 0 && s[1] && s[1] != '_')
            continue;
        int d;
        if (isdigit((unsigned char)*s))
            d = *s - '0';
        else if (isalpha((unsigned char)*s))
            d = tolower((unsigned char)*s) - 'a' + 10;
        else
            return CU_ERROR;
        if (d >= base)
            return CU_ERROR;
        if (v > (LLONG_MAX - d) / base)
            return CU_ERROR;
        v = v * base + d;
        ndig++;
    }
    while (is_space((unsigned char)*s))
        s++;
    if (*s || ndig == 0 || (zero_lead && v != 0))
        return CU_ERROR;
    *out = neg ? -v : v;
    return CU_OK;
}

static int apply_int(int *field, const cu__setting_t *s, const char *value, char *err,
                     size_t errlen)
{
    long long v;
    if (py_int0(value, &v) != CU_OK) {
        char rep[256];
        repr_into(rep, sizeof(rep), value);
        snprintf(err, errlen, "%s: invalid literal for int() with base 0: %s", s->name, rep);
        return 1;
    }
    if (v < 0) {
        snprintf(err, errlen, "%s: Value must be positive: %lld", s->name, v);
        return 1;
    }
    if (v > INT_MAX) {
        snprintf(err, errlen, "%s: Value too large: %lld", s->name, v);
        return 1;
    }
    if (strcmp(s->name, "http2_max_concurrent_streams") == 0 && v < 1) {
        snprintf(err, errlen, "%s: HTTP/2 max concurrent streams must be at least 1: %lld", s->name,
                 v);
        return 1;
    }
    if (strcmp(s->name, "http2_max_frame_size") == 0 && (v < 16384 || v > 16777215)) {
        snprintf(err, errlen,
                 "%s: http2_max_frame_size must be between 16384 and 16777215, got %lld", s->name,
                 v);
        return 1;
    }
    *field = (int)v;
    return CU_OK;
}

int cu_config_h2(const cu_config_t *cfg)
{
    for (size_t i = 0; i < cfg->http_protocols.n; i++)
        if (strcmp(cfg->http_protocols.v[i], "h2") == 0)
            return 1;
    return 0;
}

/* gunicorn's validate_http_protocols: a comma list of h1/h2, case-insensitive, no
 * duplicates; empty means h1. */
static int apply_h2proto(cu_config_t *cfg, const char *value, char *err, size_t errlen)
{
    cu_strlist_t nl = {0};
    char *all = cu_xstrdup(value), *save = NULL;
    int rc = CU_OK;
    for (char *tok = strtok_r(all, ",", &save); tok && rc == CU_OK;
         tok = strtok_r(NULL, ",", &save)) {
        char *e = strip_dup(tok);
        for (char *p = e; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (!*e) {
            cu_free(e);
            continue;
        }
        if (strcmp(e, "h1") != 0 && strcmp(e, "h2") != 0) {
            snprintf(err, errlen, "http_protocols: Invalid protocol '%s'. Valid protocols: h1, h2",
                     e);
            rc = 1;
        }
        for (size_t i = 0; rc == CU_OK && i < nl.n; i++) {
            if (strcmp(nl.v[i], e) == 0) {
                snprintf(err, errlen, "http_protocols: Duplicate protocols specified");
                rc = 1;
            }
        }
        if (rc == CU_OK)
            strlist_push(&nl, e);
        else
            cu_free(e);
    }
    cu_free(all);
    if (rc != CU_OK) {
        strlist_clear(&nl);
        return rc;
    }
    if (nl.n == 0)
        strlist_push(&nl, cu_xstrdup("h1"));
    strlist_clear(&cfg->http_protocols);
    cfg->http_protocols = nl;
    return CU_OK;
}

static int apply_bool(int *field, const cu__setting_t *s, const char *value, char *err,
                      size_t errlen)
{
    char *v = strip_dup(value);
    for (char *p = v; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int rc = CU_OK;
    if (strcmp(v, "true") == 0) {
        *field = 1;
    } else if (strcmp(v, "false") == 0) {
        *field = 0;
    } else {
        snprintf(err, errlen, "%s: Invalid boolean: %s", s->name, value);
        rc = 1;
    }
    cu_free(v);
    return rc;
}

int cu_config_use_sendfile(const cu_config_t *cfg)
{
    if (cfg->sendfile >= 0)
        return 0;
    const char *e = getenv("SENDFILE");
    if (e == NULL)
        return 1;
    return strcasecmp(e, "y") == 0 || strcmp(e, "1") == 0 || strcasecmp(e, "yes") == 0 ||
           strcasecmp(e, "true") == 0;
}

const char *cu_config_worker_class_str(const cu_config_t *cfg)
{
    const char *wc = cfg->worker_class_str ? cfg->worker_class_str : "sync";
    size_t n = strlen(wc);
    int sync = strcmp(wc, "sync") == 0 || (n >= 10 && strcmp(wc + n - 10, "SyncWorker") == 0);
    return sync && cfg->threads > 1 ? "gthread" : wc;
}

/* Which worker classes cunicorn runs; gunicorn's spellings of them. *cls gets the class
 * (sync before the threads rule), *alias 1 when the name is another server's worker that
 * cunicorn runs as its own (uvicorn's: logged at startup). */
static int worker_class_known(const char *v, int *cls, int *alias)
{
    static const struct {
        const char *name;
        int cls;
        int alias;
    } known[] = {
        {"sync", CU_WORKER_SYNC, 0},
        {"egg:gunicorn#sync", CU_WORKER_SYNC, 0},
        {"gunicorn.workers.sync.SyncWorker", CU_WORKER_SYNC, 0},
        {"gthread", CU_WORKER_GTHREAD, 0},
        {"egg:gunicorn#gthread", CU_WORKER_GTHREAD, 0},
        {"gunicorn.workers.gthread.ThreadWorker", CU_WORKER_GTHREAD, 0},
        {"asgi", CU_WORKER_ASGI, 0},
        {"egg:gunicorn#asgi", CU_WORKER_ASGI, 0},
        {"gunicorn.workers.gasgi.ASGIWorker", CU_WORKER_ASGI, 0},
        {"uvicorn.workers.UvicornWorker", CU_WORKER_ASGI, 1},
        {"uvicorn_worker.UvicornWorker", CU_WORKER_ASGI, 1},
        /* gunicorn's gevent workers: cunicorn runs them all as -k gevent */
        {"gevent", CU_WORKER_GEVENT, 0},
        {"gevent_wsgi", CU_WORKER_GEVENT, 0},
        {"gevent_pywsgi", CU_WORKER_GEVENT, 0},
        {"egg:gunicorn#gevent", CU_WORKER_GEVENT, 0},
        {"egg:gunicorn#gevent_wsgi", CU_WORKER_GEVENT, 0},
        {"egg:gunicorn#gevent_pywsgi", CU_WORKER_GEVENT, 0},
        {"gunicorn.workers.ggevent.GeventWorker", CU_WORKER_GEVENT, 0},
        {"gunicorn.workers.ggevent.GeventPyWSGIWorker", CU_WORKER_GEVENT, 0},
    };
    for (size_t i = 0; i < CU_NELEM(known); i++) {
        if (strcmp(v, known[i].name) == 0) {
            *cls = known[i].cls;
            if (alias)
                *alias = known[i].alias;
            return 1;
        }
    }
    return 0;
}

/* asgi_loop / asgi_lifespan: lower-cased and stripped in place, then one of `allowed`. */
static int check_choice(char *v, const char *const *allowed, size_t n)
{
    for (char *p = v; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, allowed[i]) == 0)
            return 1;
    return 0;
}

static int lower_eq(const char *a, const char *lower)
{
    while (*a && *lower && tolower((unsigned char)*a) == *lower)
        a++, lower++;
    return *a == '\0' && *lower == '\0';
}

int cu__setting_apply(cu_config_t *cfg, const cu__setting_t *s, const char *value, char *err,
                      size_t errlen)
{
    char *base = (char *)cfg + s->off;
    if (s->status == CU__NOT_YET && s->kind != CU__K_CONFIG) {
        snprintf(err, errlen, "%s is a gunicorn setting cunicorn does not support yet", s->name);
        return 2;
    }
    switch ((enum cu__kind)s->kind) {
    case CU__K_INT: return apply_int((int *)(void *)base, s, value, err, errlen);
    case CU__K_BOOL: return apply_bool((int *)(void *)base, s, value, err, errlen);
    case CU__K_STR: set_str((char **)(void *)base, strip_dup(value)); return CU_OK;
    case CU__K_LIST:
    case CU__K_ENV: {
        const char *one[1] = {value};
        return cu__setting_apply_list(cfg, s, one, 1, err, errlen);
    }
    case CU__K_ADDRS: {
        char why[300];
        if (cu_cidrlist_parse((cu_cidrlist_t *)(void *)base, value, why, sizeof(why)) != CU_OK) {
            snprintf(err, errlen, "%s: %s", s->name, why);
            return 1;
        }
        return CU_OK;
    }
    case CU__K_WORKER: {
        char *v = strip_dup(value);
        int cls;
        if (!worker_class_known(v, &cls, NULL)) {
            snprintf(err, errlen,
                     "worker class '%s' (worker_class) is not supported yet; cunicorn runs "
                     "sync, gthread, gevent and asgi",
                     v);
            cu_free(v);
            return 2;
        }
        set_str(&cfg->worker_class_str, v);
        return CU_OK;
    }
    case CU__K_SENDFILE: return apply_bool((int *)(void *)base, s, value, err, errlen);
    case CU__K_LOGGER: set_str((char **)(void *)base, strip_dup(value)); return CU_OK;
    case CU__K_PARSER: {
        char *v = strip_dup(value);
        for (char *p = v; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (strcmp(v, "auto") != 0 && strcmp(v, "fast") != 0 && strcmp(v, "python") != 0) {
            snprintf(err, errlen, "http_parser: http_parser must be one of: auto, fast, python");
            cu_free(v);
            return 1;
        }
        set_str((char **)(void *)base, v);
        return CU_OK;
    }
    case CU__K_HMAP: {
        char *v = strip_dup(value);
        int rc = CU_OK;
        if (lower_eq(v, "drop"))
            cfg->header_map = CU_HEADER_MAP_DROP;
        else if (lower_eq(v, "refuse"))
            cfg->header_map = CU_HEADER_MAP_REFUSE;
        else if (lower_eq(v, "dangerous"))
            cfg->header_map = CU_HEADER_MAP_DANGEROUS;
        else
            snprintf(err, errlen, "header_map: Invalid header map behaviour: %s", value), rc = 1;
        cu_free(v);
        return rc;
    }
    case CU__K_PROXY: {
        static const struct {
            const char *in;
            enum cu_proxy_protocol out;
        } map[] = {{"false", CU_PROXY_OFF}, {"off", CU_PROXY_OFF},   {"0", CU_PROXY_OFF},
                   {"none", CU_PROXY_OFF},  {"true", CU_PROXY_AUTO}, {"auto", CU_PROXY_AUTO},
                   {"1", CU_PROXY_AUTO},    {"v1", CU_PROXY_V1},     {"v2", CU_PROXY_V2}};
        char *v = strip_dup(value);
        int rc = 1;
        for (size_t i = 0; i < CU_NELEM(map); i++) {
            if (lower_eq(v, map[i].in)) {
                cfg->proxy_protocol = map[i].out;
                rc = CU_OK;
                break;
            }
        }
        cu_free(v);
        if (rc != CU_OK)
            snprintf(err, errlen, "proxy_protocol must be: off, v1, v2, or auto");
        return rc;
    }
    case CU__K_PROTO: {
        /* gunicorn takes any string and serves HTTP unless it is exactly "uwsgi"; a typo
         * must not silently serve the other protocol, so anything else is refused. */
        char *v = strip_dup(value);
        int rc = CU_OK;
        if (strcmp(v, "http") == 0)
            cfg->protocol = CU_PROTOCOL_HTTP;
        else if (strcmp(v, "uwsgi") == 0)
            cfg->protocol = CU_PROTOCOL_UWSGI;
        else
            snprintf(err, errlen, "protocol must be: http or uwsgi"), rc = 1;
        cu_free(v);
        return rc;
    }
    case CU__K_CHDIR: {
        char *v = strip_dup(value);
        char *cwd = startup_cwd();
        char *path = path_join_norm(cwd, v);
        cu_free(cwd);
        struct stat st;
        if (stat(path, &st) != 0) {
            char rep[300];
            repr_into(rep, sizeof(rep), v);
            snprintf(err, errlen, "chdir: can't chdir to %s", rep);
            cu_free(v);
            cu_free(path);
            return 1;
        }
        cu_free(v);
        set_str(&cfg->chdir, path);
        return CU_OK;
    }
    case CU__K_PYPATH: set_str(&cfg->pythonpath_str, strip_dup(value)); return CU_OK;
    case CU__K_DICT: set_str((char **)(void *)base, cu_xstrdup(value)); return CU_OK;
    case CU__K_CSV: {
        /* gunicorn's validate_string_to_list: split on ',', strip, drop empty pieces */
        cu_strlist_t *l = (cu_strlist_t *)(void *)base;
        strlist_clear(l);
        char *all = cu_xstrdup(value), *save = NULL;
        for (char *tok = strtok_r(all, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *e = strip_dup(tok);
            if (*e)
                strlist_push(l, e);
            else
                cu_free(e);
        }
        cu_free(all);
        return CU_OK;
    }
    case CU__K_CONFIG: set_str(&cfg->config, strip_dup(value)); return CU_OK;
    case CU__K_H2PROTO: return apply_h2proto(cfg, value, err, errlen);
    case CU__K_H2C: {
        static const char *const h2c[] = {"off", "prior-knowledge", "upgrade", "both"};
        char *v = strip_dup(value);
        int rc = 1;
        for (size_t i = 0; i < CU_NELEM(h2c); i++) {
            if (lower_eq(v, h2c[i])) {
                cfg->http2_cleartext = (enum cu_h2c)i;
                rc = CU_OK;
            }
        }
        cu_free(v);
        if (rc != CU_OK)
            snprintf(err, errlen, "http2_cleartext: Invalid http2_cleartext: %s", value);
        return rc;
    }
    case CU__K_HOOK:
        snprintf(err, errlen, "%s: a hook is a Python callable; set it in a config file", s->name);
        return 1;
    case CU__K_PROCNAME:
    case CU__K_OTHER: break;
    }
    snprintf(err, errlen, "%s cannot be set by cunicorn yet", s->name);
    return 2;
}

int cu__setting_apply_list(cu_config_t *cfg, const cu__setting_t *s, const char *const *v, size_t n,
                           char *err, size_t errlen)
{
    if (s->kind != CU__K_LIST && s->kind != CU__K_ENV) {
        if (n != 1) {
            snprintf(err, errlen, "%s takes one value, not a list", s->name);
            return 1;
        }
        return cu__setting_apply(cfg, s, v[0], err, errlen);
    }
    if (s->status == CU__NOT_YET) {
        snprintf(err, errlen, "%s is a gunicorn setting cunicorn does not support yet", s->name);
        return 2;
    }
    cu_strlist_t nl = {0};
    for (size_t i = 0; i < n; i++) {
        char *e = strip_dup(v[i]);
        if (s->kind == CU__K_ENV && !strchr(e, '=')) {
            char rep[300];
            repr_into(rep, sizeof(rep), e);
            snprintf(err, errlen, "raw_env: environment setting %s invalid", rep);
            cu_free(e);
            strlist_clear(&nl);
            return 1;
        }
        strlist_push(&nl, e);
    }
    cu_strlist_t *field = (cu_strlist_t *)(void *)((char *)cfg + s->off);
    strlist_clear(field);
    *field = nl;
    return CU_OK;
}

int cu_config_set(cu_config_t *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s) {
        snprintf(err, errlen, "no configuration setting for: %s", name);
        return 1;
    }
    if (s->kind == CU__K_CONFIG) {
        snprintf(err, errlen, "config cannot be set from a config file");
        return 1;
    }
    if (value == NULL) {
        /* Python's None: only string settings keep it (as "unset") */
        if (s->status == CU__SUPPORTED &&
            (s->kind == CU__K_STR || s->kind == CU__K_PYPATH || s->kind == CU__K_DICT)) {
            set_str((char **)(void *)((char *)cfg + s->off), NULL);
            return CU_OK;
        }
        snprintf(err, errlen, "%s: None is not a valid value", s->name);
        return 1;
    }
    return cu__setting_apply(cfg, s, value, err, errlen);
}

int cu_config_set_list(cu_config_t *cfg, const char *name, const char *const *v, size_t n,
                       char *err, size_t errlen)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s) {
        snprintf(err, errlen, "no configuration setting for: %s", name);
        return 1;
    }
    return cu__setting_apply_list(cfg, s, v, n, err, errlen);
}

int cu__config_finish(cu_config_t *cfg, char *err, size_t errlen)
{
    int cls = CU_WORKER_SYNC;
    if (!worker_class_known(cfg->worker_class_str, &cls, &cfg->worker_class_alias)) {
        snprintf(err, errlen, "worker class '%s' (worker_class) is not supported yet",
                 cfg->worker_class_str);
        return 2;
    }
    /* like gunicorn: the sync worker with more than one thread is the threaded worker */
    if (cls == CU_WORKER_SYNC && cfg->threads > 1)
        cls = CU_WORKER_GTHREAD;
    cfg->worker_class = (enum cu_worker_class)cls; /* gevent: --threads does not apply */
    static const char *const loops[] = {"auto", "asyncio", "uvloop"};
    static const char *const lifespans[] = {"auto", "on", "off"};
    if (!cfg->asgi_loop)
        cfg->asgi_loop = cu_xstrdup("auto"); /* gunicorn: None -> auto */
    if (!cfg->asgi_lifespan)
        cfg->asgi_lifespan = cu_xstrdup("auto");
    if (!check_choice(cfg->asgi_loop, loops, CU_NELEM(loops))) {
        snprintf(err, errlen, "Invalid ASGI loop: %s", cfg->asgi_loop);
        return 1;
    }
    if (!check_choice(cfg->asgi_lifespan, lifespans, CU_NELEM(lifespans))) {
        snprintf(err, errlen, "Invalid ASGI lifespan: %s", cfg->asgi_lifespan);
        return 1;
    }

    strlist_clear(&cfg->pythonpath);
    if (cfg->pythonpath_str && *cfg->pythonpath_str) {
        const char *p = cfg->pythonpath_str;
        for (;;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char *piece = cu_xstrndup(p, len);
            strlist_push(&cfg->pythonpath, path_join_norm(cfg->chdir, piece));
            cu_free(piece);
            if (!e)
                break;
            p = e + 1;
        }
    }

    if (cfg->reload_engine && strcmp(cfg->reload_engine, "auto") != 0 &&
        strcmp(cfg->reload_engine, "poll") != 0 && strcmp(cfg->reload_engine, "inotify") != 0) {
        char rep[300];
        repr_into(rep, sizeof(rep), cfg->reload_engine);
        snprintf(err, errlen, "Invalid reload_engine: %s", rep);
        return 1;
    }
    /* cunicorn keeps worker heartbeats in shared memory, so nothing is written there; but
     * gunicorn's workers would fail to start on a directory they cannot write, and a
     * deployment that relies on that must not start silently. */
    if (cfg->worker_tmp_dir && *cfg->worker_tmp_dir &&
        access(cfg->worker_tmp_dir, W_OK | X_OK) != 0) {
        snprintf(err, errlen, "Invalid value for worker_tmp_dir: %s is not a writable directory",
                 cfg->worker_tmp_dir);
        return 1;
    }
    /* gunicorn lets the ssl module reject other values when a context is built (per
     * connection in its sync worker); refusing them at startup is kinder. */
    if (cfg->cert_reqs > 2) {
        snprintf(err, errlen, "Invalid value for cert_reqs: %d (0 none, 1 optional, 2 required)",
                 cfg->cert_reqs);
        return 1;
    }
    /* gunicorn's validate_ssl_version: the setting is ignored, a changed one only warned */
    if (cfg->ssl_version && strcmp(cfg->ssl_version, "2") != 0 && !cfg->ssl_version_warned) {
        fputs("Warning: option `ssl_version` is deprecated and it is ignored. Use ssl_context "
              "instead.\n",
              stderr);
        cfg->ssl_version_warned = 1;
    }
    /* gunicorn: --paste names the application (and wins over APP_MODULE) */
    if (cfg->paste && *cfg->paste) {
        set_str(&cfg->app_uri, cu_xstrdup(cfg->paste));
        cfg->app_from_args = 1;
        return CU_OK;
    }
    if (!cfg->app_uri && cfg->wsgi_app && *cfg->wsgi_app)
        cfg->app_uri = cu_xstrdup(cfg->wsgi_app);
    if (!cfg->app_uri) {
        snprintf(err, errlen, "No application module specified.");
        return 1;
    }
    return CU_OK;
}

/* ---- --print-config ---- */

/* A str value: as is for --print-config, repr() for a Python literal. */
static void put_str(FILE *out, const char *v, int literal)
{
    if (!v)
        fputs("None", out);
    else if (literal)
        cu__py_repr(out, v);
    else
        fputs(v, out);
}

static void print_value(FILE *out, const cu_config_t *cfg, const cu__setting_t *s, int literal)
{
    const char *base = (const char *)cfg + s->off;
    size_t idx = (size_t)(s - cu__settings);
    if (cfg->shown && cfg->shown[idx]) {
        fputs(cfg->shown[idx], out);
        return;
    }
    if (s->status == CU__NOT_YET && s->kind != CU__K_CONFIG) {
        char buf[PATH_MAX + 64];
        fputs(s->def ? s->def : cu__setting_dyn_default(s, buf, sizeof(buf)), out);
        return;
    }
    static const char *const hmap[] = {"drop", "refuse", "dangerous"};
    static const char *const proxy[] = {"off", "v1", "v2", "auto"};
    static const char *const proto[] = {"http", "uwsgi"};
    static const char *const h2c[] = {"off", "prior-knowledge", "upgrade", "both"};
    switch ((enum cu__kind)s->kind) {
    case CU__K_INT: fprintf(out, "%d", *(const int *)(const void *)base); break;
    case CU__K_SENDFILE: {
        int v = *(const int *)(const void *)base;
        fputs(v < 0 ? "None" : v ? "True" : "False", out);
        break;
    }
    case CU__K_PARSER: put_str(out, *(char *const *)(const void *)base, literal); break;
    case CU__K_LOGGER: {
        const char *v = *(char *const *)(const void *)base;
        put_str(out, v ? v : s->def, literal);
        break;
    }
    case CU__K_BOOL: fputs(*(const int *)(const void *)base ? "True" : "False", out); break;
    case CU__K_STR: {
        const char *v = *(char *const *)(const void *)base;
        char buf[PATH_MAX + 64];
        /* unset with a default gunicorn computes (user, group, control_socket) */
        if (!v && !s->def)
            v = cu__setting_dyn_default(s, buf, sizeof(buf));
        put_str(out, v, literal);
        break;
    }
    case CU__K_LIST:
    case CU__K_ENV: print_list(out, (const cu_strlist_t *)(const void *)base); break;
    case CU__K_ADDRS: print_list(out, &((const cu_cidrlist_t *)(const void *)base)->src); break;
    case CU__K_CSV: print_list(out, (const cu_strlist_t *)(const void *)base); break;
    case CU__K_DICT: {
        const char *v = *(char *const *)(const void *)base;
        fputs(v ? v : s->def, out);
        break;
    }
    case CU__K_WORKER: put_str(out, cfg->worker_class_str, literal); break;
    case CU__K_HMAP: put_str(out, hmap[cfg->header_map], literal); break;
    case CU__K_PROXY: put_str(out, proxy[cfg->proxy_protocol], literal); break;
    case CU__K_PROTO: put_str(out, proto[cfg->protocol], literal); break;
    case CU__K_H2PROTO: print_list(out, &cfg->http_protocols); break;
    case CU__K_H2C: put_str(out, h2c[cfg->http2_cleartext], literal); break;
    case CU__K_CHDIR: put_str(out, cfg->chdir, literal); break;
    case CU__K_PYPATH: put_str(out, cfg->pythonpath_str, literal); break;
    case CU__K_PROCNAME:
        put_str(out, cfg->app_uri && cfg->app_from_args ? cfg->app_uri : "gunicorn", literal);
        break;
    case CU__K_CONFIG: put_str(out, cfg->config ? cfg->config : s->def, literal); break;
    case CU__K_HOOK:
    case CU__K_OTHER: fputs(s->def ? s->def : "None", out); break;
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const cu__setting_t *const *)a)->name,
                  (*(const cu__setting_t *const *)b)->name);
}

void cu_config_print(const cu_config_t *cfg, FILE *out)
{
    const cu__setting_t **rows = cu_xcalloc(cu__nsettings, sizeof(*rows));
    int width = 0;
    for (size_t i = 0; i < cu__nsettings; i++) {
        rows[i] = &cu__settings[i];
        int n = (int)strlen(rows[i]->name);
        width = n > width ? n : width;
    }
    qsort(rows, cu__nsettings, sizeof(*rows), by_name);
    for (size_t i = 0; i < cu__nsettings; i++) {
        if (strcmp(rows[i]->section, CU_SECTION_CUNICORN) == 0)
            continue;
        fprintf(out, "%-*s = ", width, rows[i]->name);
        print_value(out, cfg, rows[i], 0);
        fputc('\n', out);
    }
    cu_free(rows);
}

/* ---- what a config-file loader needs ---- */

int cu_config_lookup(const char *name, enum cu_config_vtype *vtype)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s)
        return CU_ERROR;
    if (s->status == CU__NOT_YET) {
        *vtype = CU_CV_NOT_YET;
        return CU_OK;
    }
    switch ((enum cu__kind)s->kind) {
    case CU__K_INT: *vtype = CU_CV_INT; break;
    case CU__K_BOOL:
    case CU__K_SENDFILE: *vtype = CU_CV_BOOL; break;
    case CU__K_PARSER: *vtype = CU_CV_CHOICE; break;
    case CU__K_STR:
    case CU__K_PYPATH:
    case CU__K_CHDIR: *vtype = CU_CV_STR; break;
    case CU__K_LIST:
    case CU__K_ENV: *vtype = CU_CV_LIST; break;
    case CU__K_ADDRS:
    case CU__K_CSV: *vtype = CU_CV_ADDRS; break;
    case CU__K_DICT: *vtype = CU_CV_DICT; break;
    case CU__K_HMAP:
    case CU__K_PROXY:
    case CU__K_PROTO:
    case CU__K_H2PROTO:
    case CU__K_H2C: *vtype = CU_CV_CHOICE; break;
    case CU__K_WORKER:
    case CU__K_LOGGER: *vtype = CU_CV_CLASS; break;
    case CU__K_HOOK: *vtype = CU_CV_HOOK; break;
    case CU__K_PROCNAME:
    case CU__K_CONFIG: *vtype = CU_CV_FIXED; break;
    case CU__K_OTHER: *vtype = CU_CV_NOT_YET; break;
    }
    return CU_OK;
}

const char *cu_config_setting_name(size_t i)
{
    return i < cu__nsettings ? cu__settings[i].name : NULL;
}

const char *cu_config_default_text(const char *name, char *buf, size_t cap)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s) {
        snprintf(buf, cap, "None");
        return buf;
    }
    if (s->def && s->status == CU__NOT_YET)
        return s->def;
    return cu__setting_dyn_default(s, buf, cap);
}

void cu_config_set_shown(cu_config_t *cfg, const char *name, const char *text)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s)
        return;
    if (!cfg->shown)
        cfg->shown = cu_xcalloc(cu__nsettings, sizeof(*cfg->shown));
    size_t i = (size_t)(s - cu__settings);
    cu_free(cfg->shown[i]);
    if (text)
        cfg->shown[i] = cu_xstrdup(text);
}

int cu_config_print_value(const cu_config_t *cfg, const char *name, int literal, FILE *out)
{
    const cu__setting_t *s = cu__setting_find(name);
    if (!s)
        return CU_ERROR;
    print_value(out, cfg, s, literal);
    return CU_OK;
}

/* ---- --help and docs/settings.md ---- */

/* "-b ADDRESS, --bind ADDRESS" as argparse writes it (table.h). */
void cu__option_synopsis(const cu__setting_t *s, char *buf, size_t cap)
{
    char meta[64];
    size_t n = 0;
    if (s->meta) {
        snprintf(meta, sizeof(meta), "%s", s->meta);
    } else {
        size_t i = 0;
        for (; s->name[i] && i < sizeof(meta) - 1; i++)
            meta[i] = (char)toupper((unsigned char)s->name[i]);
        meta[i] = '\0';
    }
    buf[0] = '\0';
    for (int i = 0; s->flags[i]; i++) {
        int w;
        const char *sep = i ? ", " : "";
        if (s->action == CU__A_TRUE || s->action == CU__A_CONST)
            w = snprintf(buf + n, cap - n, "%s%s", sep, s->flags[i]);
        else if (s->action == CU__A_OPTIONAL)
            w = snprintf(buf + n, cap - n, "%s%s [%s]", sep, s->flags[i], meta);
        else
            w = snprintf(buf + n, cap - n, "%s%s %s", sep, s->flags[i], meta);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

static void help_line(FILE *out, const char *syn, const char *doc, const char *def)
{
    if (strlen(syn) <= 22)
        fprintf(out, "  %-22s  %s", syn, doc);
    else
        fprintf(out, "  %s\n  %-22s  %s", syn, "", doc);
    if (def)
        fprintf(out, " [%s]", def);
    fputc('\n', out);
}

void cu_config_print_help(FILE *out)
{
    char syn[256];
    fputs("usage: cunicorn [OPTIONS] [APP_MODULE]\n\n"
          "A pre-fork WSGI HTTP server with gunicorn's command line.\n\n"
          "positional arguments:\n"
          "  APP_MODULE              the application, as MODULE:VARIABLE\n\n"
          "options:\n",
          out);
    help_line(out, "-h, --help", "show this help message and exit", NULL);
    help_line(out, "-v, --version", "show program's version number and exit", NULL);
    const char *section = NULL;
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status != CU__SUPPORTED || !s->flags[0])
            continue;
        if (!section || strcmp(section, s->section) != 0)
            fprintf(out, "\n %s:\n", section = s->section);
        cu__option_synopsis(s, syn, sizeof(syn));
        help_line(out, syn, s->doc, s->def);
    }
    fputs("\ngunicorn options cunicorn does not support yet (giving one is an error):\n", out);
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status == CU__SUPPORTED || !s->flags[0])
            continue;
        cu__option_synopsis(s, syn, sizeof(syn));
        help_line(out, syn, s->doc, NULL);
    }
}

static void md_code(FILE *out, const char *s)
{
    /* a code span that survives backticks and table pipes */
    const char *fence = strchr(s, '`') ? "``" : "`";
    fprintf(out, "%s%s", fence, fence[1] ? " " : "");
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
    fprintf(out, "%s%s", fence[1] ? " " : "", fence);
}

void cu_config_print_doc(FILE *out)
{
    char syn[256];
    size_t nsup = 0;
    for (size_t i = 0; i < cu__nsettings; i++)
        nsup += cu__settings[i].status == CU__SUPPORTED;
    fprintf(out,
            "# cunicorn settings\n\n"
            "<!-- Generated from src/config/table.c by `cunicorn --print-settings-doc > "
            "docs/settings.md`; do not edit by hand. -->\n\n"
            "cunicorn takes gunicorn's settings under the same names and flags. This page "
            "lists every gunicorn setting (%zu) and whether cunicorn supports it yet (%zu "
            "do). Giving a setting cunicorn does not support yet, on the command line or in "
            "`GUNICORN_CMD_ARGS`, is an error (exit status 2) rather than being ignored; in a "
            "config file, giving one a value other than its default is an error too (exit "
            "status 1).\n\n"
            "Precedence, lowest first: defaults, config file (`-c PATH`, `-c file:PATH`, "
            "`-c python:MODULE`, else `./gunicorn.conf.py`), `GUNICORN_CMD_ARGS`, command "
            "line. The config file is Python, run by the embedded interpreter; module-level "
            "names that are settings apply, other names are ignored. Server hooks are "
            "described in [hooks.md](hooks.md).\n",
            cu__nsettings, nsup);
    const char *section = NULL;
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (!section || strcmp(section, s->section) != 0) {
            fprintf(out, "\n## %s\n\n", section = s->section);
            fputs("| setting | flags | default | status | description |\n"
                  "|---|---|---|---|---|\n",
                  out);
        }
        fputs("| ", out);
        md_code(out, s->name);
        fputs(" | ", out);
        if (s->flags[0]) {
            cu__option_synopsis(s, syn, sizeof(syn));
            md_code(out, syn);
        } else {
            fputs("(config file only)", out);
        }
        fputs(" | ", out);
        if (s->def) {
            md_code(out, s->def);
        } else if (strcmp(s->name, "control_socket") == 0) {
            md_code(out, "$XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl");
        } else {
            md_code(out, strcmp(s->name, "user") == 0 ? "effective uid" : "effective gid");
        }
        fprintf(out, " | %s | %s |\n", s->status == CU__SUPPORTED ? "supported" : "not yet",
                s->doc);
    }
}
