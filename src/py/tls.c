/* The ssl_context hook: gunicorn's default_ssl_context_factory in Python, the hook called
 * with it, and the SSL_CTX of the ssl.SSLContext it returns handed to the C transport
 * (net/tls.c), after checking that Python's _ssl runs on the very libssl cunicorn does.
 * Without a hook, no Python is involved: the C default context is the same one. */
#include "py/py_internal.h"

#include "core/log.h"
#include "net/tls.h"
#include "py/hooks.h"
#include "py/tls.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <openssl/crypto.h>

/* cunicorn._tls (src/py/lib/_tls.py) */

static PyObject *support;  /* the module above (new ref) */
static PyObject *contexts; /* list: every SSLContext whose SSL_CTX serves or served (their
                              ALPN callback reads the Python object) */

/* The SSL_CTX of each entry of `contexts`, also held here: Python objects are never freed
 * (no Py_Finalize), and a C pointer keeps what they own visibly reachable for LeakSanitizer. */
static SSL_CTX **held;
static size_t nheld;

/* The layout every CPython 3 ssl.SSLContext starts with. */
typedef struct {
    PyObject_HEAD SSL_CTX *ctx;
} py_sslcontext_head_t;

/* Does Python's _ssl call into the libssl this binary links? Same version number, and
 * SSL_CTX_new as _ssl resolves it is ours. GIL held. */
static int same_libssl(char *err, size_t errlen)
{
    PyObject *ssl = PyImport_ImportModule("ssl"); /* new ref */
    PyObject *num = ssl ? PyObject_GetAttrString(ssl, "OPENSSL_VERSION_NUMBER") : NULL;
    PyObject *text = ssl ? PyObject_GetAttrString(ssl, "OPENSSL_VERSION") : NULL;
    PyObject *mod = PyImport_ImportModule("_ssl");
    PyObject *file = mod ? PyObject_GetAttrString(mod, "__file__") : NULL;
    int ok = 0;
    if (!num || !text || !file) {
        PyErr_Clear();
        snprintf(err, errlen, "ssl_context: Python's ssl module is not available");
        goto done;
    }
    unsigned long pyver = PyLong_AsUnsignedLong(num);
    if (pyver != OpenSSL_version_num()) {
        snprintf(err, errlen,
                 "ssl_context: Python's ssl module runs %s but cunicorn runs %s; the context "
                 "the hook returns cannot be used",
                 PyUnicode_AsUTF8(text), OpenSSL_version(OPENSSL_VERSION));
        goto done;
    }
    const char *path = PyUnicode_AsUTF8(file);
    void *h = path ? dlopen(path, RTLD_LAZY | RTLD_NOLOAD) : NULL;
    void *theirs = h ? dlsym(h, "SSL_CTX_new") : NULL;
    if (h)
        dlclose(h);
    if (theirs != (void *)SSL_CTX_new) {
        snprintf(err, errlen,
                 "ssl_context: Python's _ssl (%s) does not use the libssl cunicorn is linked "
                 "with; the context the hook returns cannot be used",
                 path ? path : "?");
        goto done;
    }
    ok = 1;
done:
    PyErr_Clear();
    Py_XDECREF(ssl);
    Py_XDECREF(num);
    Py_XDECREF(text);
    Py_XDECREF(mod);
    Py_XDECREF(file);
    return ok;
}

/* The exception text for err. GIL held; clears it. */
static void exc_text(const char *what, char *err, size_t errlen)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    const char *tn = type ? ((PyTypeObject *)type)->tp_name : "error";
    snprintf(err, errlen, "%s: %s: %s", what, tn, t ? t : "?");
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
}

/* cu_tls_build_cb: call the hook, take its context's SSL_CTX. Takes the GIL. */
static SSL_CTX *hook_build(void *arg, const cu_config_t *cfg, char *err, size_t errlen)
{
    PyGILState_STATE g = PyGILState_Ensure();
    SSL_CTX *out = NULL;
    PyObject *fn = NULL, *conf = NULL, *factory = NULL, *ctx = NULL, *facts = NULL;
    if (cu__hook_ssl_context(&fn, &conf) != CU_OK || fn == NULL) {
        exc_text("ssl_context", err, errlen);
        goto done;
    }
    factory = PyObject_CallMethod(support, "factory_for", "O", conf);
    ctx = factory ? PyObject_CallFunctionObjArgs(fn, conf, factory, NULL) : NULL;
    if (!ctx) {
        exc_text("ssl_context hook raised", err, errlen);
        goto done;
    }
    facts = PyObject_CallMethod(support, "check", "O", ctx);
    if (!facts) {
        exc_text("ssl_context", err, errlen);
        goto done;
    }
    SSL_CTX *c = ((py_sslcontext_head_t *)ctx)->ctx;
    long mode = PyLong_AsLong(PyTuple_GET_ITEM(facts, 0));
    unsigned long long opts = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(facts, 1));
    int vm = c ? SSL_CTX_get_verify_mode(c) : -1;
    long cmode = vm & SSL_VERIFY_FAIL_IF_NO_PEER_CERT ? 2 : vm & SSL_VERIFY_PEER ? 1 : 0;
    if (PyErr_Occurred() || !c || cmode != mode ||
        (unsigned long long)SSL_CTX_get_options(c) != opts) {
        PyErr_Clear();
        snprintf(err, errlen,
                 "ssl_context: cannot read the returned SSLContext's OpenSSL "
                 "context on this Python");
        goto done;
    }
    if (PyList_Append(contexts, ctx) < 0) {
        exc_text("ssl_context", err, errlen);
        goto done;
    }
    held = cu_xrealloc(held, (nheld + 1) * sizeof(*held));
    held[nheld++] = c;
    /* resumption with client certificates needs a session id context */
    static const unsigned char sid[] = "cunicorn";
    SSL_CTX_set_session_id_context(c, sid, sizeof(sid) - 1);
    SSL_CTX_up_ref(c);
    out = c;
done:
    Py_XDECREF(factory);
    Py_XDECREF(ctx);
    Py_XDECREF(facts);
    PyGILState_Release(g);
    return out;
}

static int load_support(void)
{
    if (!support)
        support = cu__py_module("cunicorn._tls"); /* new ref */
    return support ? CU_OK : CU_ERROR;
}

/* env[key] = str(v) (latin-1: never fails on the bytes OpenSSL gives). -1 on error. */
static int set_str(PyObject *env, const char *key, const char *v, Py_ssize_t n)
{
    PyObject *o = PyUnicode_DecodeLatin1(v, n < 0 ? (Py_ssize_t)strlen(v) : n, NULL);
    int rc = o ? PyDict_SetItemString(env, key, o) : -1;
    Py_XDECREF(o);
    return rc;
}

/* A connection's TLS facts do not change between its requests: they are built once, as a
 * dict kept in the SSL's ex_data, and copied into each request's environ. SSL_free runs in
 * the loop without the GIL, so it only queues the dict; the next request (GIL held)
 * releases what was queued. */
static int cache_index = -1;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dead_lock = PTHREAD_MUTEX_INITIALIZER;
static PyObject **dead;
static _Atomic size_t ndead; /* written under dead_lock; peeked without it */
static size_t dead_cap;

/* Queue dict (owned) for release_dead. Any thread, no GIL needed. */
static void queue_dead(void *dict)
{
    pthread_mutex_lock(&dead_lock);
    if (ndead == dead_cap) {
        dead_cap = dead_cap ? dead_cap * 2 : 64;
        dead = cu_xrealloc(dead, dead_cap * sizeof(*dead));
    }
    dead[ndead++] = dict;
    pthread_mutex_unlock(&dead_lock);
}

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    if (ptr)
        queue_dead(ptr);
}

static void cache_init(void)
{
    cache_index = SSL_get_ex_new_index(0, "cunicorn environ", NULL, NULL, cache_free);
}

/* Release the dicts of closed connections. GIL held. */
static void release_dead(void)
{
    if (!atomic_load_explicit(&ndead, memory_order_relaxed)) /* the next request looks again */
        return;
    pthread_mutex_lock(&dead_lock);
    PyObject **list = dead;
    size_t n = ndead;
    dead = NULL;
    ndead = 0;
    dead_cap = 0;
    pthread_mutex_unlock(&dead_lock);
    for (size_t i = 0; i < n; i++)
        Py_DECREF(list[i]);
    free(list);
}

/* The TLS keys of one connection (new ref), or NULL with an exception set. */
static PyObject *build_items(const cu_tls_facts_t *f);

int cu__tls_environ(PyObject *env, cu_conn_t *c)
{
    pthread_once(&cache_once, cache_init);
    release_dead();
    cu_tls_facts_t *f = c->tls_facts;
    if (f) {
        /* An HTTP/2 stream: the facts its session took at the start, and the dict built from
         * them kept there (the GIL orders the streams of one session that get here at once). */
        if (!f->cache) {
            f->cache = build_items(f);
            if (!f->cache)
                return -1;
            f->cache_free = queue_dead;
        }
        return PyDict_Update(env, f->cache);
    }
    SSL *ssl = cu_tls_ssl(&c->t);
    if (!ssl)
        return 0;
    PyObject *items = SSL_get_ex_data(ssl, cache_index); /* owned by the SSL */
    if (!items) {
        f = cu_tls_facts_new(&c->t);
        if (!f)
            return 0;
        items = build_items(f);
        cu_tls_facts_free(f);
        if (!items)
            return -1;
        if (!SSL_set_ex_data(ssl, cache_index, items)) {
            int rc = PyDict_Update(env, items);
            Py_DECREF(items);
            return rc;
        }
    }
    return PyDict_Update(env, items);
}

static PyObject *build_items(const cu_tls_facts_t *f)
{
    const cu_tls_info_t *in = &f->info;
    PyObject *env = PyDict_New();
    if (!env)
        return NULL;
    int rc = -1;
    PyObject *sock = NULL, *derobj = NULL;
    if (set_str(env, "SSL_PROTOCOL", in->protocol, -1) < 0 ||
        set_str(env, "SSL_CIPHER", in->cipher, -1) < 0 ||
        set_str(env, "SSL_CLIENT_VERIFY", in->verify, -1) < 0)
        goto done;
    if (f->subject && set_str(env, "SSL_CLIENT_S_DN", f->subject, (Py_ssize_t)f->subject_len) < 0)
        goto done;
    if (f->pem && set_str(env, "SSL_CLIENT_CERT", f->pem, (Py_ssize_t)f->pem_len) < 0)
        goto done;
    if (load_support() != CU_OK)
        goto done;
    derobj = f->der ? PyBytes_FromStringAndSize((const char *)f->der, (Py_ssize_t)f->der_len)
                    : Py_NewRef(Py_None);
    if (!derobj)
        goto done;
    sock = PyObject_CallMethod(support, "TLSSocket", "OO(ssi)sz#", derobj,
                               in->verified ? Py_True : Py_False, in->cipher, f->cipher_version,
                               in->cipher_bits, in->protocol, in->alpn, (Py_ssize_t)in->alpn_len);
    if (!sock)
        goto done;
    rc = PyDict_SetItemString(env, "gunicorn.socket", sock);
done:
    Py_XDECREF(sock);
    Py_XDECREF(derobj);
    if (rc < 0)
        Py_CLEAR(env);
    return env;
}

cu_tls_t *cu_py_tls_new(const cu_config_t *cfg, char *err, size_t errlen)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *fn = NULL, *conf = NULL;
    int use_hook = 0;
    if (cu__hook_ssl_context(&fn, &conf) != CU_OK) {
        exc_text("ssl_context", err, errlen);
        PyGILState_Release(g);
        return NULL;
    }
    if (fn) {
        use_hook = 1;
        if (!same_libssl(err, errlen))
            goto fail;
        if (load_support() != CU_OK) {
            exc_text("ssl_context", err, errlen);
            goto fail;
        }
        if (!contexts && !(contexts = PyList_New(0))) {
            exc_text("ssl_context", err, errlen);
            goto fail;
        }
    }
    PyGILState_Release(g);
    return cu_tls_new(cfg, use_hook ? hook_build : NULL, NULL, err, errlen);
fail:
    PyGILState_Release(g);
    return NULL;
}
