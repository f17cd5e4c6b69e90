/* The WSGI environ: a per-worker template of constant keys, copied per request and filled
 * from the parsed request head the way gunicorn's wsgi.create() does (HTTP_* keys, repeated
 * fields joined with ",", SERVER_* from the listener or, on unix sockets, the Host field,
 * SCRIPT_NAME stripped from PATH_INFO, secure_scheme_headers from trusted forwarders). */
#include "py/py_internal.h"

#include "core/log.h"
#include "net/listen.h"
#include "py/pylog.h"
#include "py/tls.h"

#include <sys/socket.h>

/* Interned keys and shared values, built once per worker. */
static struct {
    PyObject *tmpl;
    PyObject *k_method, *k_query, *k_raw_uri, *k_protocol, *k_path_info, *k_script_name;
    PyObject *k_request_uri;
    PyObject *k_content_type, *k_content_length, *k_scheme, *k_remote_addr, *k_remote_port;
    PyObject *k_server_name, *k_server_port, *k_input;
    PyObject *v_empty, *v_http, *v_https, *v_http11, *v_http10, *v_80, *v_443;
    PyObject *script_name; /* SCRIPT_NAME from the process environment (str, maybe "") */
} E;

/* Request methods seen often enough to keep their str. */
static const char *const methods[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"};
static PyObject *method_objs[CU_NELEM(methods)];

/* ---- header name table ---- */

enum hkind {
    H_PLAIN,          /* HTTP_<NAME> */
    H_CONTENT_TYPE,   /* CONTENT_TYPE, not prefixed, last one wins (as gunicorn) */
    H_CONTENT_LENGTH, /* CONTENT_LENGTH */
    H_HOST,           /* HTTP_HOST, and SERVER_NAME/PORT on unix sockets */
    H_SCRIPT_NAME,    /* a "SCRIPT_NAME" field (only with an underscore) sets SCRIPT_NAME */
    H_SECURE,         /* one of gunicorn's default secure_scheme_headers */
};

typedef struct {
    char name[32]; /* upper-cased as on the wire ('-' kept) */
    uint8_t len;
    uint8_t kind;
    uint32_t hash;
    const char *secure; /* H_SECURE: the value that means https */
    PyObject *key;      /* interned environ key */
} hentry_t;

#define HTAB_SIZE 128 /* power of two, well above the entries below */
static hentry_t htab[HTAB_SIZE];

static const struct {
    const char *name;
    enum hkind kind;
    const char *secure;
} known_headers[] = {
    {"HOST", H_HOST, NULL},
    {"CONTENT-TYPE", H_CONTENT_TYPE, NULL},
    {"CONTENT-LENGTH", H_CONTENT_LENGTH, NULL},
    {"SCRIPT_NAME", H_SCRIPT_NAME, NULL},
    {"X-FORWARDED-PROTOCOL", H_SECURE, "ssl"},
    {"X-FORWARDED-PROTO", H_SECURE, "https"},
    {"X-FORWARDED-SSL", H_SECURE, "on"},
    {"USER-AGENT", H_PLAIN, NULL},
    {"ACCEPT", H_PLAIN, NULL},
    {"ACCEPT-ENCODING", H_PLAIN, NULL},
    {"ACCEPT-LANGUAGE", H_PLAIN, NULL},
    {"ACCEPT-CHARSET", H_PLAIN, NULL},
    {"CONNECTION", H_PLAIN, NULL},
    {"KEEP-ALIVE", H_PLAIN, NULL},
    {"COOKIE", H_PLAIN, NULL},
    {"REFERER", H_PLAIN, NULL},
    {"ORIGIN", H_PLAIN, NULL},
    {"AUTHORIZATION", H_PLAIN, NULL},
    {"CACHE-CONTROL", H_PLAIN, NULL},
    {"PRAGMA", H_PLAIN, NULL},
    {"UPGRADE", H_PLAIN, NULL},
    {"UPGRADE-INSECURE-REQUESTS", H_PLAIN, NULL},
    {"IF-MODIFIED-SINCE", H_PLAIN, NULL},
    {"IF-NONE-MATCH", H_PLAIN, NULL},
    {"IF-MATCH", H_PLAIN, NULL},
    {"IF-RANGE", H_PLAIN, NULL},
    {"IF-UNMODIFIED-SINCE", H_PLAIN, NULL},
    {"RANGE", H_PLAIN, NULL},
    {"EXPECT", H_PLAIN, NULL},
    {"TRANSFER-ENCODING", H_PLAIN, NULL},
    {"TE", H_PLAIN, NULL},
    {"VIA", H_PLAIN, NULL},
    {"FORWARDED", H_PLAIN, NULL},
    {"X-FORWARDED-FOR", H_PLAIN, NULL},
    {"X-FORWARDED-HOST", H_PLAIN, NULL},
    {"X-FORWARDED-PORT", H_PLAIN, NULL},
    {"X-REAL-IP", H_PLAIN, NULL},
    {"X-REQUEST-ID", H_PLAIN, NULL},
    {"X-REQUESTED-WITH", H_PLAIN, NULL},
    {"X-CSRFTOKEN", H_PLAIN, NULL},
    {"DNT", H_PLAIN, NULL},
    {"PRIORITY", H_PLAIN, NULL},
    {"SEC-FETCH-DEST", H_PLAIN, NULL},
    {"SEC-FETCH-MODE", H_PLAIN, NULL},
    {"SEC-FETCH-SITE", H_PLAIN, NULL},
    {"SEC-FETCH-USER", H_PLAIN, NULL},
    {"SEC-CH-UA", H_PLAIN, NULL},
    {"SEC-CH-UA-MOBILE", H_PLAIN, NULL},
    {"SEC-CH-UA-PLATFORM", H_PLAIN, NULL},
    {"SEC-WEBSOCKET-KEY", H_PLAIN, NULL},
    {"SEC-WEBSOCKET-VERSION", H_PLAIN, NULL},
};

static inline uint32_t hash_step(uint32_t h, unsigned char ch)
{
    return (h ^ ch) * 16777619u; /* FNV-1a */
}

static inline unsigned char upper(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (unsigned char)(ch - 32) : ch;
}

static const hentry_t *htab_find(const char *up, size_t len, uint32_t hash)
{
    if (len >= sizeof(htab[0].name))
        return NULL;
    for (uint32_t i = hash & (HTAB_SIZE - 1);; i = (i + 1) & (HTAB_SIZE - 1)) {
        const hentry_t *e = &htab[i];
        if (e->key == NULL)
            return NULL;
        if (e->hash == hash && e->len == len && memcmp(e->name, up, len) == 0)
            return e;
    }
}

/* "HTTP_" + name with '-' -> '_' (CONTENT_* without the prefix). New ref. */
static PyObject *environ_key(const char *upname, size_t len, enum hkind kind)
{
    char buf[64];
    cu_assert(len + 5 < sizeof(buf));
    size_t o = 0;
    if (kind != H_CONTENT_TYPE && kind != H_CONTENT_LENGTH) {
        memcpy(buf, "HTTP_", 5);
        o = 5;
    }
    for (size_t i = 0; i < len; i++)
        buf[o++] = upname[i] == '-' ? '_' : upname[i];
    buf[o] = '\0';
    return PyUnicode_InternFromString(buf);
}

static int htab_init(void)
{
    for (size_t k = 0; k < CU_NELEM(known_headers); k++) {
        const char *n = known_headers[k].name;
        size_t len = strlen(n);
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++)
            h = hash_step(h, (unsigned char)n[i]);
        uint32_t i = h & (HTAB_SIZE - 1);
        while (htab[i].key != NULL)
            i = (i + 1) & (HTAB_SIZE - 1);
        hentry_t *e = &htab[i];
        cu_assert(len < sizeof(e->name));
        memcpy(e->name, n, len);
        e->len = (uint8_t)len;
        e->kind = (uint8_t)known_headers[k].kind;
        e->hash = h;
        e->secure = known_headers[k].secure;
        e->key = environ_key(n, len, known_headers[k].kind);
        if (e->key == NULL)
            return -1;
    }
    return 0;
}

/* secure_scheme_headers from the config file replace gunicorn's three defaults: each key
 * (matched against the upper-cased field name, as gunicorn does) marks https when its
 * value is exactly the dict's value. */
static int secure_headers_init(const cu_config_t *cfg)
{
    if (cfg->secure_scheme_headers == NULL)
        return 0;
    for (size_t i = 0; i < HTAB_SIZE; i++) {
        if (htab[i].key != NULL && htab[i].kind == H_SECURE) {
            htab[i].kind = H_PLAIN;
            htab[i].secure = NULL;
        }
    }
    PyObject *d = cu__pylog_kept_dict("secure_scheme_headers"); /* new ref */
    if (d == NULL)
        return 0;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    int rc = 0;
    while (rc == 0 && PyDict_Next(d, &pos, &k, &v)) {
        const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
        PyObject *vs = PyObject_Str(v); /* new ref */
        const char *val = vs ? PyUnicode_AsUTF8(vs) : NULL;
        if (name == NULL || val == NULL) {
            PyErr_Clear();
            Py_XDECREF(vs);
            continue;
        }
        size_t len = strlen(name);
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++)
            h = hash_step(h, (unsigned char)name[i]);
        hentry_t *e = (hentry_t *)htab_find(name, len, h);
        if (e == NULL && len < sizeof(e->name)) {
            uint32_t i = h & (HTAB_SIZE - 1), n = 0;
            while (htab[i].key != NULL && n++ < HTAB_SIZE)
                i = (i + 1) & (HTAB_SIZE - 1);
            if (htab[i].key == NULL) {
                e = &htab[i];
                memcpy(e->name, name, len);
                e->len = (uint8_t)len;
                e->kind = H_PLAIN;
                e->hash = h;
                e->key = environ_key(name, len, H_PLAIN);
                rc = e->key ? 0 : -1;
            }
        }
        if (e == NULL)
            cu_log_warn("secure_scheme_headers: header %s is not supported (too long)", name);
        else if (rc == 0 && e->kind == H_PLAIN) {
            e->kind = H_SECURE;
            e->secure = cu_xstrdup(val); /* for the worker's life */
        }
        Py_DECREF(vs);
    }
    Py_DECREF(d);
    return rc;
}

/* ---- template ---- */

static int intern_all(void)
{
    static const struct {
        PyObject **slot;
        const char *s;
    } keys[] = {
        {&E.k_method, "REQUEST_METHOD"},
        {&E.k_query, "QUERY_STRING"},
        {&E.k_raw_uri, "RAW_URI"},
        {&E.k_request_uri, "REQUEST_URI"},
        {&E.k_protocol, "SERVER_PROTOCOL"},
        {&E.k_path_info, "PATH_INFO"},
        {&E.k_script_name, "SCRIPT_NAME"},
        {&E.k_content_type, "CONTENT_TYPE"},
        {&E.k_content_length, "CONTENT_LENGTH"},
        {&E.k_scheme, "wsgi.url_scheme"},
        {&E.k_remote_addr, "REMOTE_ADDR"},
        {&E.k_remote_port, "REMOTE_PORT"},
        {&E.k_server_name, "SERVER_NAME"},
        {&E.k_server_port, "SERVER_PORT"},
        {&E.k_input, "wsgi.input"},
        {&E.v_empty, ""},
        {&E.v_http, "http"},
        {&E.v_https, "https"},
        {&E.v_http11, "HTTP/1.1"},
        {&E.v_http10, "HTTP/1.0"},
        {&E.v_80, "80"},
        {&E.v_443, "443"},
    };
    for (size_t i = 0; i < CU_NELEM(keys); i++)
        if ((*keys[i].slot = PyUnicode_InternFromString(keys[i].s)) == NULL)
            return -1;
    for (size_t i = 0; i < CU_NELEM(methods); i++)
        if ((method_objs[i] = PyUnicode_InternFromString(methods[i])) == NULL)
            return -1;
    return 0;
}

/* A dict with room for a whole environ, so the per-request copy (which clones the key
 * table, capacity included) never resizes while the request keys go in. */
static PyObject *new_presized_dict(void)
{
#if PY_VERSION_HEX < 0x030D0000
    return _PyDict_NewPresized(48);
#else
    return PyDict_New();
#endif
}

static int set_str(PyObject *d, const char *k, const char *v)
{
    PyObject *o = PyUnicode_FromString(v); /* new ref */
    int rc = o ? PyDict_SetItemString(d, k, o) : -1;
    Py_XDECREF(o);
    return rc;
}

int cu__environ_init(const cu_config_t *cfg, int multithread)
{
    if (E.tmpl != NULL)
        return CU_OK;
    if (intern_all() < 0 || htab_init() < 0 || secure_headers_init(cfg) < 0)
        return CU_ERROR;

    const char *sn = getenv("SCRIPT_NAME");
    E.script_name = PyUnicode_DecodeFSDefault(sn ? sn : "");
    if (E.script_name == NULL)
        return CU_ERROR;

    PyObject *d = new_presized_dict(); /* new ref, becomes E.tmpl */
    if (d == NULL)
        return CU_ERROR;
    PyObject *version = Py_BuildValue("(ii)", 1, 0);
    PyObject *errors = cu__errors_new();
    int rc = (version && errors) ? 0 : -1;
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.version", version);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.errors", errors);
    Py_XDECREF(version);
    Py_XDECREF(errors);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.multithread", multithread ? Py_True : Py_False);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.multiprocess", cfg->workers > 1 ? Py_True : Py_False);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.run_once", Py_False);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.file_wrapper", (PyObject *)&cu__filewrapper_type);
    /* A slot for wsgi.early_hints (py/wsgi.c sets it per request): the copy then has room. */
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.early_hints", Py_None);
    if (rc == 0)
        rc = PyDict_SetItemString(d, "wsgi.input_terminated", Py_True);
    if (rc == 0)
        rc = set_str(d, "SERVER_SOFTWARE", CU_SERVER_SOFTWARE);
    if (rc == 0)
        rc = PyDict_SetItem(d, E.k_script_name, E.script_name);
    if (rc < 0) {
        Py_DECREF(d);
        return CU_ERROR;
    }
    E.tmpl = d;
    return CU_OK;
}

/* ---- per request ---- */

static PyObject *latin1(const char *p, size_t n)
{
    return n == 0 ? Py_NewRef(E.v_empty) : PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
}

/* a + "," + b for two latin-1 str. New ref. */
static PyObject *join_comma(PyObject *a, PyObject *b)
{
    Py_ssize_t la = PyUnicode_GET_LENGTH(a), lb = PyUnicode_GET_LENGTH(b);
    Py_UCS4 ma = PyUnicode_MAX_CHAR_VALUE(a), mb = PyUnicode_MAX_CHAR_VALUE(b);
    PyObject *r = PyUnicode_New(la + 1 + lb, ma > mb ? ma : mb);
    if (r == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(r);
    memcpy(d, PyUnicode_1BYTE_DATA(a), (size_t)la);
    d[la] = ',';
    memcpy(d + la + 1, PyUnicode_1BYTE_DATA(b), (size_t)lb);
    return r;
}

/* environ[key] = val, or, when the field was already there, the values joined with ","
 * (gunicorn joins repeated fields). */
static int set_or_join(PyObject *env, PyObject *key, PyObject *val)
{
    PyObject *old; /* borrowed */
    if (PyUnicode_GET_LENGTH(val) <= 1) {
        /* Empty and 1-char str are shared singletons: SetDefault returning the same object
         * would not tell a repeat from a first insert. */
        old = PyDict_GetItemWithError(env, key);
        if (old == NULL)
            return PyErr_Occurred() ? -1 : PyDict_SetItem(env, key, val);
    } else {
        old = PyDict_SetDefault(env, key, val);
        if (old == NULL)
            return -1;
        if (old == val)
            return 0;
    }
    PyObject *joined = join_comma(old, val); /* new ref */
    if (joined == NULL)
        return -1;
    int rc = PyDict_SetItem(env, key, joined);
    Py_DECREF(joined);
    return rc;
}

static PyObject *method_str(const cu_req_t *r)
{
    char up[32];
    const char *p = r->method.p;
    size_t n = r->method.len;
    if (r->method_lower && n <= sizeof(up)) {
        for (size_t i = 0; i < n; i++)
            up[i] = (char)upper((unsigned char)p[i]);
        p = up;
    } else if (r->method_lower) {
        PyObject *m = latin1(p, n);
        if (m == NULL)
            return NULL;
        PyObject *u = PyObject_CallMethod(m, "upper", NULL);
        Py_DECREF(m);
        return u;
    }
    for (size_t i = 0; i < CU_NELEM(methods); i++)
        if (strlen(methods[i]) == n && memcmp(methods[i], p, n) == 0)
            return Py_NewRef(method_objs[i]);
    return latin1(p, n);
}

/* SERVER_NAME / SERVER_PORT for TCP listeners: cached per listener. */
static struct {
    const cu_listener_t *l;
    PyObject *name, *port;
} srv_cache[4];

static int set_server_tcp(PyObject *env, const cu_listener_t *l)
{
    size_t slot = 0;
    for (; slot < CU_NELEM(srv_cache); slot++)
        if (srv_cache[slot].l == l || srv_cache[slot].l == NULL)
            break;
    if (slot == CU_NELEM(srv_cache)) {
        slot = 0;
        srv_cache[0].l = NULL;
    }
    if (srv_cache[slot].l != l) {
        PyObject *name =
            PyUnicode_DecodeLatin1(l->server_name, (Py_ssize_t)strlen(l->server_name), NULL);
        PyObject *port =
            PyUnicode_DecodeLatin1(l->server_port, (Py_ssize_t)strlen(l->server_port), NULL);
        if (name == NULL || port == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(port);
            return -1;
        }
        Py_XSETREF(srv_cache[slot].name, name);
        Py_XSETREF(srv_cache[slot].port, port);
        srv_cache[slot].l = l;
    }
    if (PyDict_SetItem(env, E.k_server_name, srv_cache[slot].name) < 0 ||
        PyDict_SetItem(env, E.k_server_port, srv_cache[slot].port) < 0)
        return -1;
    return 0;
}

/* gunicorn on a unix socket: SERVER_NAME/PORT from host.split(':'), the port defaulting by
 * scheme; without Host, the socket path and "". */
static int set_server_unix(PyObject *env, const cu_listener_t *l, PyObject *host, int https)
{
    PyObject *name = NULL, *port = NULL;
    if (host != NULL) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(host);
        const char *h = (const char *)PyUnicode_1BYTE_DATA(host);
        const char *colon = memchr(h, ':', (size_t)n);
        if (colon == NULL) {
            name = Py_NewRef(host);
            port = Py_NewRef(https ? E.v_443 : E.v_80);
        } else {
            const char *rest = colon + 1;
            const char *end = memchr(rest, ':', (size_t)(h + n - rest));
            name = latin1(h, (size_t)(colon - h));
            port = latin1(rest, (size_t)((end ? end : h + n) - rest));
        }
    } else {
        const char *path = "";
        if (l != NULL && l->unix_path != NULL)
            path = l->unix_path;
        else if (l != NULL && l->bind != NULL && strncmp(l->bind, "unix:", 5) == 0)
            path = l->bind + 5;
        name = PyUnicode_DecodeFSDefault(path);
        port = Py_NewRef(E.v_empty);
    }
    int rc = (name && port && PyDict_SetItem(env, E.k_server_name, name) == 0 &&
              PyDict_SetItem(env, E.k_server_port, port) == 0)
                 ? 0
                 : -1;
    Py_XDECREF(name);
    Py_XDECREF(port);
    return rc;
}

static int set_remote(PyObject *env, const cu_peer_t *peer)
{
    PyObject *addr = PyUnicode_FromString(peer->host); /* new ref */
    if (addr == NULL)
        return -1;
    int rc = PyDict_SetItem(env, E.k_remote_addr, addr);
    Py_DECREF(addr);
    if (rc < 0)
        return -1;
    /* gunicorn leaves REMOTE_PORT out for unix-socket clients (the peer address is a str). */
    if (peer->is_unix && peer->port == 0)
        return 0;
    char pb[16];
    int pn = snprintf(pb, sizeof(pb), "%d", peer->port);
    PyObject *port = PyUnicode_FromStringAndSize(pb, pn);
    rc = port ? PyDict_SetItem(env, E.k_remote_port, port) : -1;
    Py_XDECREF(port);
    return rc;
}

/* PATH_INFO: the raw path minus SCRIPT_NAME, percent-decoded, bytes read as latin-1. */
static int set_path(PyObject *env, const cu_req_t *r, PyObject *script, int *status, char *msg,
                    size_t msglen)
{
    cu_str_t path = r->path;
    Py_ssize_t sl = PyUnicode_GET_LENGTH(script);
    if (sl > 0) {
        int ok = PyUnicode_KIND(script) == PyUnicode_1BYTE_KIND && (size_t)sl <= path.len &&
                 memcmp(PyUnicode_1BYTE_DATA(script), path.p, (size_t)sl) == 0;
        if (!ok) {
            PyObject *p = latin1(path.p, path.len);
            PyObject *m =
                p ? PyUnicode_FromFormat(
                        "Configuration problem: Request path %R does not start with SCRIPT_NAME %R",
                        p, script)
                  : NULL;
            const char *t = m ? PyUnicode_AsUTF8(m) : NULL;
            if (t == NULL) {
                Py_XDECREF(p);
                Py_XDECREF(m);
                return -1;
            }
            snprintf(msg, msglen, "%s", t);
            Py_DECREF(p);
            Py_DECREF(m);
            *status = 500;
            return 1;
        }
        path.p += sl;
        path.len -= (size_t)sl;
    }
    if (PyDict_SetItem(env, E.k_script_name, script) < 0)
        return -1;

    char stack[1024];
    char *buf = path.len <= sizeof(stack) ? stack : cu_xmalloc(path.len);
    size_t n = memchr(path.p, '%', path.len) ? cu_percent_decode(path, buf) : 0;
    PyObject *pi = latin1(n ? buf : path.p, n ? n : path.len); /* new ref */
    if (buf != stack) {
        cu_free(buf);
    }
    int rc = pi ? PyDict_SetItem(env, E.k_path_info, pi) : -1;
    Py_XDECREF(pi);
    return rc;
}

/* Set a key to a new ref, consuming it. */
static int put(PyObject *env, PyObject *key, PyObject *val)
{
    if (val == NULL)
        return -1;
    int rc = PyDict_SetItem(env, key, val);
    Py_DECREF(val);
    return rc;
}

/* What the header pass learns besides the HTTP_* keys. */
typedef struct hdr_state_s {
    PyObject *host;   /* Host value (new ref) or NULL */
    PyObject *script; /* a SCRIPT_NAME field's value (new ref) or NULL */
    int https;        /* wsgi.url_scheme so far */
    int scheme_seen;  /* a secure scheme header already decided it */
} hdr_state_t;

/* Put one header field into the environ. Returns 0; -1 with an exception set; or 1 when
 * the request must be refused (*status and msg filled). */
static int add_header(PyObject *env, const cu_conn_t *c, const cu_header_t *h, hdr_state_t *st,
                      int *status, char *msg, size_t msglen)
{
    /* "HTTP_" + the upper-cased name; the hash for the table is taken on the way. */
    char stack[128];
    char *up = h->name.len + 6 <= sizeof(stack) ? stack : cu_xmalloc(h->name.len + 6);
    uint32_t hash = 2166136261u;
    for (size_t k = 0; k < h->name.len; k++) {
        unsigned char ch = upper((unsigned char)h->name.p[k]);
        up[5 + k] = (char)ch;
        hash = hash_step(hash, ch);
    }
    const hentry_t *e = htab_find(up + 5, h->name.len, hash);
    enum hkind kind = e ? (enum hkind)e->kind : H_PLAIN;

    PyObject *key = NULL, *val; /* new refs */
    if (h->folded) {
        char *tmp = cu_xmalloc(h->value.len + 1);
        val = latin1(tmp, cu_header_value(h, tmp));
        cu_free(tmp);
    } else {
        val = latin1(h->value.p, h->value.len);
    }
    int rc = -1;
    if (val == NULL)
        goto out;

    if (kind == H_CONTENT_TYPE || kind == H_CONTENT_LENGTH) {
        rc = PyDict_SetItem(env, e->key, val);
        goto out;
    }
    if (kind == H_HOST) {
        Py_XSETREF(st->host, Py_NewRef(val));
    } else if (kind == H_SCRIPT_NAME) {
        Py_XSETREF(st->script, Py_NewRef(val));
    } else if (kind == H_SECURE && c->request.peer->trusted_forwarder) {
        size_t sl = strlen(e->secure);
        int secure = (size_t)PyUnicode_GET_LENGTH(val) == sl &&
                     memcmp(PyUnicode_1BYTE_DATA(val), e->secure, sl) == 0;
        if (st->scheme_seen && secure != st->https) {
            snprintf(msg, msglen, "Contradictory scheme headers");
            *status = 400;
            rc = 1;
            goto out;
        }
        st->scheme_seen = 1;
        st->https = secure;
    }
    if (e != NULL) {
        key = Py_NewRef(e->key);
    } else {
        memcpy(up, "HTTP_", 5);
        for (size_t k = 5; k < 5 + h->name.len; k++)
            if (up[k] == '-')
                up[k] = '_';
        key = PyUnicode_FromStringAndSize(up, (Py_ssize_t)(5 + h->name.len));
    }
    rc = key ? set_or_join(env, key, val) : -1;

out:
    Py_XDECREF(key);
    Py_XDECREF(val);
    if (up != stack) {
        cu_free(up);
    }
    return rc;
}

int cu__request_https(const cu_conn_t *c)
{
    const cu_req_t *r = &c->request;
    int https = strcmp(r->scheme, "https") == 0, seen = 0;
    if (!r->peer->trusted_forwarder)
        return https;
    for (size_t i = 0; i < r->nheaders; i++) {
        const cu_header_t *h = &r->headers[i];
        char up[64];
        if (h->name.len > sizeof(up))
            continue; /* longer than any scheme header name the table holds */
        uint32_t hash = 2166136261u;
        for (size_t k = 0; k < h->name.len; k++) {
            unsigned char ch = upper((unsigned char)h->name.p[k]);
            up[k] = (char)ch;
            hash = hash_step(hash, ch);
        }
        const hentry_t *e = htab_find(up, h->name.len, hash);
        if (e == NULL || e->kind != H_SECURE)
            continue;
        size_t sl = strlen(e->secure);
        int secure = h->value.len == sl && memcmp(h->value.p, e->secure, sl) == 0;
        if (seen && secure != https)
            return -1;
        seen = 1;
        https = secure;
    }
    return https;
}

PyObject *cu__environ_build(cu_conn_t *c, PyObject *input, int *status, char *msg, size_t msglen)
{
    const cu_req_t *r = &c->request;
    *status = 0;
    PyObject *env = PyDict_Copy(E.tmpl); /* new ref, returned */
    if (env == NULL)
        return NULL;
    hdr_state_t st = {
        .https = strcmp(r->scheme, "https") == 0,
    };
    for (size_t i = 0; i < r->nheaders; i++)
        if (add_header(env, c, &r->headers[i], &st, status, msg, msglen) != 0)
            goto fail;
    int https = st.https;
    PyObject *host = st.host, *script = st.script; /* borrowed from st */

    if (PyDict_SetItem(env, E.k_scheme, https ? E.v_https : E.v_http) < 0 ||
        set_remote(env, r->peer) < 0)
        goto fail;
    const cu_listener_t *l = r->listener;
    if (l != NULL && l->family != AF_UNIX) {
        if (set_server_tcp(env, l) < 0)
            goto fail;
    } else if (set_server_unix(env, l, host, https) < 0) {
        goto fail;
    }
    int prc = set_path(env, r, script ? script : E.script_name, status, msg, msglen);
    if (prc != 0)
        goto fail;

    PyObject *proto; /* new ref */
    if (r->version_major == 1 && r->version_minor == 1)
        proto = Py_NewRef(E.v_http11);
    else if (r->version_major == 1 && r->version_minor == 0)
        proto = Py_NewRef(E.v_http10);
    else
        proto = PyUnicode_FromFormat("HTTP/%d.%d", r->version_major, r->version_minor);
    if (put(env, E.k_protocol, proto) < 0 || put(env, E.k_method, method_str(r)) < 0 ||
        put(env, E.k_query, latin1(r->query.p, r->query.len)) < 0 ||
        put(env, E.k_raw_uri, latin1(r->target.p, r->target.len)) < 0 ||
        PyDict_SetItem(env, E.k_input, input) < 0)
        goto fail;
    /* uwsgi: the proxy's REQUEST_URI (the raw request-target), as uWSGI passes it on */
    if (c->settings->request_uri &&
        put(env, E.k_request_uri, latin1(r->target.p, r->target.len)) < 0)
        goto fail;
    if ((cu_tls_ssl(&c->t) || c->tls_facts) && cu__tls_environ(env, c) < 0) /* py/tls.c */
        goto fail;

    Py_XDECREF(st.host);
    Py_XDECREF(st.script);
    return env;

fail:
    Py_XDECREF(st.host);
    Py_XDECREF(st.script);
    Py_DECREF(env);
    return NULL;
}
