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

static const char tls_src[] =
    "import ssl\n"
    "\n"
    "def factory_for(conf):\n"
    "    def default_ssl_context_factory():\n"
    "        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=conf.ca_certs)\n"
    "        context.load_cert_chain(certfile=conf.certfile, keyfile=conf.keyfile)\n"
    "        context.verify_mode = conf.cert_reqs\n"
    "        if conf.ciphers:\n"
    "            context.set_ciphers(conf.ciphers)\n"
    "        context.set_alpn_protocols(['http/1.1'])\n"
    "        return context\n"
    "    return default_ssl_context_factory\n"
    "\n"
    "def check(ctx):\n"
    "    '''What cunicorn cannot honour exactly is refused, never ignored.'''\n"
    "    if not isinstance(ctx, ssl.SSLContext):\n"
    "        raise TypeError('ssl_context must return an ssl.SSLContext, not %s'\n"
    "                        % type(ctx).__name__)\n"
    "    if ctx.protocol == ssl.PROTOCOL_TLS_CLIENT:\n"
    "        raise ValueError('ssl_context returned a client context (PROTOCOL_TLS_CLIENT); '\n"
    "                         'a server needs ssl.PROTOCOL_TLS_SERVER')\n"
    "    if ctx.sni_callback is not None:\n"
    "        raise ValueError('sni_callback is not supported by cunicorn '\n"
    "                         '(handshakes run in C, outside Python)')\n"
    "    if getattr(ctx, 'keylog_filename', None):\n"
    "        raise ValueError('keylog_filename is not supported by cunicorn')\n"
    "    if getattr(ctx, '_msg_callback', None) is not None:\n"
    "        raise ValueError('_msg_callback is not supported by cunicorn')\n"
    "    return (int(ctx.verify_mode), int(ctx.options))\n"
    "\n"
    "def _decode(der):\n"
    "    '''The dict ssl.SSLSocket.getpeercert() gives, by the ssl module's own decoder.'''\n"
    "    import os, _ssl\n"
    "    fd = os.memfd_create('peercert', os.MFD_CLOEXEC)\n"
    "    try:\n"
    "        os.write(fd, ssl.DER_cert_to_PEM_cert(der).encode())\n"
    "        return _ssl._test_decode_cert('/proc/self/fd/%d' % fd)\n"
    "    finally:\n"
    "        os.close(fd)\n"
    "\n"
    "class TLSSocket:\n"
    "    '''environ['gunicorn.socket'] of a TLS connection: what apps read of ssl.SSLSocket.'''\n"
    "    __slots__ = ('_der', '_verified', '_cipher', '_version', '_alpn', '_dict')\n"
    "\n"
    "    def __init__(self, der, verified, cipher, version, alpn):\n"
    "        self._der, self._verified, self._cipher = der, verified, cipher\n"
    "        self._version, self._alpn, self._dict = version, alpn, None\n"
    "\n"
    "    def getpeercert(self, binary_form=False):\n"
    "        if binary_form or self._der is None:\n"
    "            return self._der\n"
    "        if not self._verified:\n"
    "            return {}  # as ssl: a certificate not asked for is not decoded\n"
    "        if self._dict is None:\n"
    "            self._dict = _decode(self._der)\n"
    "        return self._dict\n"
    "\n"
    "    def cipher(self):\n"
    "        return self._cipher\n"
    "\n"
    "    def version(self):\n"
    "        return self._version\n"
    "\n"
    "    def selected_alpn_protocol(self):\n"
    "        return self._alpn\n"
    "\n"
    "    def __repr__(self):\n"
    "        return '<cunicorn TLSSocket %s %s>' % (self._version, self._cipher[0])\n";

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
        support = cu__py_module_from_source("cunicorn._tls", tls_src);
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

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    if (!ptr)
        return;
    pthread_mutex_lock(&dead_lock);
    if (ndead == dead_cap) {
        dead_cap = dead_cap ? dead_cap * 2 : 64;
        dead = cu_xrealloc(dead, dead_cap * sizeof(*dead));
    }
    dead[ndead++] = ptr;
    pthread_mutex_unlock(&dead_lock);
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
static PyObject *build_items(cu_conn_t *c, SSL *ssl, const cu_tls_info_t *info);

int cu__tls_environ(PyObject *env, cu_conn_t *c)
{
    cu_tls_info_t in;
    SSL *ssl = cu_tls_ssl(&c->t);
    if (!ssl)
        return 0;
    pthread_once(&cache_once, cache_init);
    release_dead();
    PyObject *items = SSL_get_ex_data(ssl, cache_index); /* owned by the SSL */
    if (!items) {
        if (cu_tls_info(&c->t, &in) != CU_OK)
            return 0;
        items = build_items(c, ssl, &in);
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

static PyObject *build_items(cu_conn_t *c, SSL *ssl, const cu_tls_info_t *info)
{
    cu_tls_info_t in = *info;
    PyObject *env = PyDict_New();
    if (!env)
        return NULL;
    int rc = -1;
    size_t n = 0, dn_len = 0, pem_len = 0;
    unsigned char *der = cu_tls_peer_der(&c->t, &n);
    char *dn = der ? cu_tls_peer_subject(&c->t, &dn_len) : NULL;
    char *pem = der ? cu_tls_peer_pem(&c->t, &pem_len) : NULL;
    PyObject *sock = NULL, *derobj = NULL;
    if (set_str(env, "SSL_PROTOCOL", in.protocol, -1) < 0 ||
        set_str(env, "SSL_CIPHER", in.cipher, -1) < 0 ||
        set_str(env, "SSL_CLIENT_VERIFY", in.verify, -1) < 0)
        goto done;
    if (dn && set_str(env, "SSL_CLIENT_S_DN", dn, (Py_ssize_t)dn_len) < 0)
        goto done;
    if (pem && set_str(env, "SSL_CLIENT_CERT", pem, (Py_ssize_t)pem_len) < 0)
        goto done;
    if (load_support() != CU_OK)
        goto done;
    derobj = der ? PyBytes_FromStringAndSize((const char *)der, (Py_ssize_t)n) : Py_NewRef(Py_None);
    if (!derobj)
        goto done;
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    sock = PyObject_CallMethod(support, "TLSSocket", "OO(ssi)sz#", derobj,
                               in.verified ? Py_True : Py_False, in.cipher,
                               ci ? SSL_CIPHER_get_version(ci) : "", in.cipher_bits, in.protocol,
                               in.alpn, (Py_ssize_t)in.alpn_len);
    if (!sock)
        goto done;
    rc = PyDict_SetItemString(env, "gunicorn.socket", sock);
done:
    Py_XDECREF(sock);
    Py_XDECREF(derobj);
    free(der);
    free(dn);
    free(pem);
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
