/* TLS over OpenSSL: the server context (built from gunicorn's SSL settings, swapped when
 * the certificate files change), the non-blocking "tls" transport and its listener
 * factory. Handshakes run in the engine's loop like any read: no thread waits on one. */
#include "net/tls.h"

#include "core/clock.h"
#include "core/log.h"
#include "event/loop.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* One file the context was built from, as stat(2) saw it then. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int missing;
} file_stamp_t;

enum { F_CERT, F_KEY, F_CA, NFILES };

struct cu_tls_s {
    pthread_mutex_t lock; /* guards ctx and stamps */
    SSL_CTX *ctx;         /* what new connections get; each SSL holds its own reference */
    cu_config_t cfg;      /* the SSL settings only (strings owned) */
    cu_tls_build_cb build;
    void *build_arg;
    char *files[NFILES]; /* NULL when unset */
    file_stamp_t stamps[NFILES];
    _Atomic int64_t next_check_ms;
    unsigned char alpn[32]; /* wire format: length-prefixed names */
    size_t alpn_len;
    int suppress_ragged_eofs;
};

/* SSL ex_data slot holding the cu_tls_t of a connection (app data is left to others). */
static int tls_ex_index = -1;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_init_once(void)
{
    tls_ex_index = SSL_get_ex_new_index(0, "cunicorn tls", NULL, NULL, NULL);
}

int cu_tls_enabled(const cu_config_t *cfg)
{
    return (cfg->certfile && *cfg->certfile) || (cfg->keyfile && *cfg->keyfile);
}

/* The first queued OpenSSL error as text ("" when none); empties the queue. */
static const char *ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    buf[0] = '\0';
    if (e)
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

/* PEM password callback: gunicorn would prompt on the terminal; a server must not. Noting
 * the call lets the error say the key is encrypted. */
static int no_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    *(int *)userdata = 1;
    return 0;
}

static int mismatch(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                              ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

SSL_CTX *cu_tls_ctx_default(const cu_config_t *cfg, char *err, size_t errlen)
{
    char e[256];
    int asked = 0;
    const char *cert = cfg->certfile && *cfg->certfile ? cfg->certfile : NULL;
    const char *key = cfg->keyfile && *cfg->keyfile ? cfg->keyfile : cert;
    ERR_clear_error();
    if (!cert) {
        snprintf(err, errlen, "keyfile is set but certfile is not: TLS needs a certificate");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context: %s", ssl_errstr(e, sizeof(e)));
        return NULL;
    }
    /* create_default_context(Purpose.CLIENT_AUTH) on the same OpenSSL, plus no client
     * renegotiation (a DoS lever) and smaller idle connections */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_ALL | SSL_OP_NO_SSLv3 | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_DH_USE |
                                 SSL_OP_SINGLE_ECDH_USE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
    /* resumption with a client certificate needs a session id context */
    static const unsigned char sid[] = "cunicorn";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);

    const char *ciphers = cfg->ciphers && *cfg->ciphers ? cfg->ciphers : CU_TLS_DEFAULT_CIPHERS;
    if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
        snprintf(err, errlen, "ciphers: no cipher can be selected from '%s' (%s)", ciphers,
                 ssl_errstr(e, sizeof(e)));
        goto fail;
    }
    if (cfg->ca_certs && *cfg->ca_certs &&
        !SSL_CTX_load_verify_locations(ctx, cfg->ca_certs, NULL)) {
        snprintf(err, errlen, "ca_certs: cannot load CA certificates from '%s': %s", cfg->ca_certs,
                 access(cfg->ca_certs, R_OK) ? strerror(errno) : ssl_errstr(e, sizeof(e)));
        goto fail;
    }
    if (!SSL_CTX_use_certificate_chain_file(ctx, cert)) {
        snprintf(err, errlen, "certfile: cannot load the certificate from '%s': %s", cert,
                 access(cert, R_OK) ? strerror(errno) : ssl_errstr(e, sizeof(e)));
        goto fail;
    }
    if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM)) {
        const char *which = key == cert ? "certfile" : "keyfile";
        if (access(key, R_OK))
            snprintf(err, errlen, "%s: cannot read the private key '%s': %s", which, key,
                     strerror(errno));
        else if (mismatch(ERR_peek_last_error()))
            snprintf(err, errlen,
                     "%s: the private key in '%s' does not match the certificate in '%s'", which,
                     key, cert);
        else if (asked)
            snprintf(err, errlen,
                     "%s: the private key in '%s' is encrypted (password-protected); use an "
                     "unencrypted key, or decrypt it in an ssl_context hook",
                     which, key);
        else
            snprintf(err, errlen, "%s: no usable private key in '%s': %s", which, key,
                     ssl_errstr(e, sizeof(e)));
        goto fail;
    }
    if (!SSL_CTX_check_private_key(ctx)) {
        snprintf(err, errlen,
                 "keyfile: the private key in '%s' does not match the certificate "
                 "in '%s'",
                 key, cert);
        goto fail;
    }
    switch (cfg->cert_reqs) {
    case 0: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); break;
    case 1: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); break;
    default:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    ERR_clear_error();
    return ctx;

fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

/* ALPN: the first protocol of ours the client also offers (server preference). */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    cu_tls_t *tls = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, tls->alpn, (unsigned)tls->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* a client without http/1.1 still gets HTTP/1.1 */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void stamp_file(const char *path, file_stamp_t *st)
{
    struct stat sb;
    memset(st, 0, sizeof(*st));
    if (!path || stat(path, &sb) != 0) {
        st->missing = 1;
        return;
    }
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime = sb.st_mtim;
}

static int stamp_same(const file_stamp_t *a, const file_stamp_t *b)
{
    return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* A new context from the settings, ALPN set. NULL with err set on failure. */
static SSL_CTX *make_ctx(cu_tls_t *tls, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls->build ? tls->build(tls->build_arg, &tls->cfg, err, errlen)
                              : cu_tls_ctx_default(&tls->cfg, err, errlen);
    /* an ssl_context hook's context keeps the ALPN its maker chose */
    if (ctx && !tls->build)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, tls);
    return ctx;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? cu_xstrdup(s) : NULL;
}

cu_tls_t *cu_tls_new(const cu_config_t *cfg, cu_tls_build_cb build, void *arg, char *err,
                     size_t errlen)
{
    pthread_once(&tls_once, tls_init_once);
    cu_tls_t *tls = cu_xcalloc(1, sizeof(*tls));
    pthread_mutex_init(&tls->lock, NULL);
    tls->cfg.certfile = dup_or_null(cfg->certfile);
    tls->cfg.keyfile = dup_or_null(cfg->keyfile);
    tls->cfg.ca_certs = dup_or_null(cfg->ca_certs);
    tls->cfg.ciphers = dup_or_null(cfg->ciphers);
    tls->cfg.cert_reqs = cfg->cert_reqs;
    tls->cfg.suppress_ragged_eofs = cfg->suppress_ragged_eofs;
    tls->cfg.do_handshake_on_connect = cfg->do_handshake_on_connect;
    tls->suppress_ragged_eofs = cfg->suppress_ragged_eofs;
    tls->build = build;
    tls->build_arg = arg;
    tls->files[F_CERT] = tls->cfg.certfile;
    tls->files[F_KEY] = tls->cfg.keyfile;
    tls->files[F_CA] = tls->cfg.ca_certs;
    /* what http_protocols allows, in its order (the server's preference): h2, http/1.1 */
    tls->alpn_len = 0;
    for (size_t i = 0; i < cfg->http_protocols.n; i++) {
        const char *proto = strcmp(cfg->http_protocols.v[i], "h2") == 0 ? "h2" : "http/1.1";
        size_t pl = strlen(proto);
        tls->alpn[tls->alpn_len] = (unsigned char)pl;
        memcpy(tls->alpn + tls->alpn_len + 1, proto, pl);
        tls->alpn_len += pl + 1;
    }
    if (tls->alpn_len == 0) {
        memcpy(tls->alpn, "\x08http/1.1", 9);
        tls->alpn_len = 9;
    }

    for (int i = 0; i < NFILES; i++)
        stamp_file(tls->files[i], &tls->stamps[i]);
    tls->ctx = make_ctx(tls, err, errlen);
    if (!tls->ctx) {
        cu_tls_free(tls);
        return NULL;
    }
    tls->next_check_ms = cu_mono_ms() + 1000;
    return tls;
}

void cu_tls_free(cu_tls_t *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->ctx);
    cu_free(tls->cfg.certfile);
    cu_free(tls->cfg.keyfile);
    cu_free(tls->cfg.ca_certs);
    cu_free(tls->cfg.ciphers);
    pthread_mutex_destroy(&tls->lock);
    free(tls);
}

/* Give `to` the session ticket keys of `from`, so that tickets issued by one resume on the
 * other. */
static void copy_ticket_keys(SSL_CTX *to, SSL_CTX *from)
{
    unsigned char keys[80];
    if (SSL_CTX_get_tlsext_ticket_keys(from, keys, sizeof(keys)) == 1)
        SSL_CTX_set_tlsext_ticket_keys(to, keys, sizeof(keys));
    OPENSSL_cleanse(keys, sizeof(keys));
}

void cu_tls_inherit_tickets(cu_tls_t *to, cu_tls_t *from)
{
    pthread_mutex_lock(&from->lock);
    pthread_mutex_lock(&to->lock);
    copy_ticket_keys(to->ctx, from->ctx);
    pthread_mutex_unlock(&to->lock);
    pthread_mutex_unlock(&from->lock);
}

/* Swap in a freshly built context. Lock held. */
static int rebuild_locked(cu_tls_t *tls, const char *why)
{
    char err[512];
    SSL_CTX *ctx = make_ctx(tls, err, sizeof(err));
    if (!ctx) {
        cu_log_error("TLS: %s, but the new context cannot be built (still serving the previous "
                     "certificate): %s",
                     why, err);
        return CU_ERROR;
    }
    copy_ticket_keys(ctx, tls->ctx); /* sessions issued before the rotation still resume */
    SSL_CTX_free(tls->ctx);
    tls->ctx = ctx;
    cu_log_info("TLS: %s: new connections get the new certificate", why);
    return CU_OK;
}

int cu_tls_reload(cu_tls_t *tls)
{
    pthread_mutex_lock(&tls->lock);
    for (int i = 0; i < NFILES; i++)
        stamp_file(tls->files[i], &tls->stamps[i]);
    int rc = rebuild_locked(tls, "reload");
    pthread_mutex_unlock(&tls->lock);
    return rc;
}

void cu_tls_check_files(cu_tls_t *tls)
{
    /* A context from the ssl_context hook is rebuilt on HUP only: calling Python (and
     * waiting for the GIL) from the accept path could stall or deadlock the loop. */
    if (tls->build)
        return;
    int64_t now = cu_mono_ms();
    int64_t next = atomic_load_explicit(&tls->next_check_ms, memory_order_relaxed);
    if (now < next || !atomic_compare_exchange_strong(&tls->next_check_ms, &next, now + 1000))
        return;
    pthread_mutex_lock(&tls->lock);
    int changed = 0;
    for (int i = 0; i < NFILES; i++) {
        file_stamp_t st;
        if (!tls->files[i])
            continue;
        stamp_file(tls->files[i], &st);
        if (!stamp_same(&st, &tls->stamps[i])) {
            tls->stamps[i] = st; /* a failed build is retried on the next change only */
            changed = 1;
        }
    }
    if (changed)
        (void)rebuild_locked(tls, "certificate files changed");
    pthread_mutex_unlock(&tls->lock);
}

/* ---- the transport ---- */

SSL *cu_tls_ssl(const cu_transport_t *t)
{
    return t->ops == &cu_transport_tls || t->ops == &cu_transport_tls_ktls ? t->impl : NULL;
}

int cu_tls_alpn_h2(const cu_transport_t *t)
{
    SSL *ssl = cu_tls_ssl(t);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (ssl)
        SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

/* Map SSL_get_error after a call that did not complete. Returns CU_AGAIN (t->want set),
 * 0 for a clean or (when suppressed) ragged EOF, CU_ERROR otherwise. */
static int io_result(cu_transport_t *t, int ret, const char *what)
{
    SSL *ssl = t->impl;
    int e = SSL_get_error(ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ: t->want = CU_EV_READ; return CU_AGAIN;
    case SSL_ERROR_WANT_WRITE: t->want = CU_EV_WRITE; return CU_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: break;
    }
    unsigned long code = ERR_peek_last_error();
    int ragged = (e == SSL_ERROR_SYSCALL && code == 0 && errno == 0) ||
                 (e == SSL_ERROR_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
    char buf[256];
    if (ragged) {
        cu_log_debug("ssl connection closed (%s: EOF without close_notify)", what);
        ERR_clear_error();
    } else {
        cu_log_debug("ssl %s failed: %s", what,
                     e == SSL_ERROR_SYSCALL && !code ? strerror(errno)
                                                     : ssl_errstr(buf, sizeof(buf)));
    }
    /* after a fatal error no close_notify may be sent */
    SSL_set_quiet_shutdown(ssl, 1);
    if (ragged && strcmp(what, "read") == 0) {
        cu_tls_t *tls = SSL_get_ex_data(ssl, tls_ex_index);
        return tls && tls->suppress_ragged_eofs ? 0 : CU_ERROR;
    }
    return CU_ERROR;
}

static int tls_handshake(cu_transport_t *t)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->impl);
    if (r == 1) {
        /* the kernel took the keys (SSL_OP_ENABLE_KTLS): files go out with SSL_sendfile */
        if (BIO_get_ktls_send(SSL_get_wbio(t->impl)))
            t->ops = &cu_transport_tls_ktls;
        return CU_OK;
    }
    r = io_result(t, r, "handshake");
    return r == CU_AGAIN ? CU_AGAIN : CU_ERROR;
}

static ssize_t tls_read(cu_transport_t *t, void *buf, size_t n)
{
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(t->impl, buf, n, &got) == 1)
        return (ssize_t)got;
    return io_result(t, 0, "read");
}

/* TLS records carry at most 16 KiB: small iovecs are gathered into one record rather
 * than each becoming a record (and a syscall) of its own. */
#define GATHER_MAX 16384

static ssize_t tls_writev(cu_transport_t *t, const struct iovec *iov, int iovcnt)
{
    unsigned char stage[GATHER_MAX];
    const void *p;
    size_t len = 0;
    while (iovcnt > 0 && iov[0].iov_len == 0) {
        iov++;
        iovcnt--;
    }
    if (iovcnt == 0)
        return 0;
    if (iovcnt == 1 || iov[0].iov_len >= GATHER_MAX) {
        /* the same iovecs after CU_AGAIN take the same path: OpenSSL sees the same bytes */
        p = iov[0].iov_base;
        len = iov[0].iov_len;
    } else {
        for (int i = 0; i < iovcnt && len < GATHER_MAX; i++) {
            size_t take = iov[i].iov_len;
            if (take > GATHER_MAX - len)
                take = GATHER_MAX - len;
            memcpy(stage + len, iov[i].iov_base, take);
            len += take;
        }
        p = stage;
    }
    size_t wrote = 0;
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(t->impl, p, len, &wrote) == 1)
        return (ssize_t)wrote;
    int r = io_result(t, 0, "write");
    return r == CU_AGAIN ? CU_AGAIN : CU_ERROR;
}

static size_t tls_pending(cu_transport_t *t)
{
    int n = SSL_pending(t->impl);
    return n > 0 ? (size_t)n : 0;
}

static int tls_shutdown(cu_transport_t *t)
{
    SSL *ssl = t->impl;
    if (SSL_is_init_finished(ssl) && !SSL_get_quiet_shutdown(ssl)) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_shutdown(ssl); /* 0: our close_notify is out; we do not wait for theirs */
        if (r < 0) {
            int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_WANT_WRITE) {
                t->want = CU_EV_WRITE;
                return CU_AGAIN;
            }
            if (e != SSL_ERROR_WANT_READ) {
                ERR_clear_error();
                (void)shutdown(t->fd, SHUT_WR);
                return CU_ERROR;
            }
        }
    }
    ERR_clear_error();
    (void)shutdown(t->fd, SHUT_WR);
    return CU_OK;
}

static void tls_close(cu_transport_t *t)
{
    SSL_free(t->impl);
    t->impl = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* Kernel TLS only: the kernel encrypts what sendfile(2) sends. */
static ssize_t tls_sendfile(cu_transport_t *t, int fd, off_t *off, size_t count)
{
    ERR_clear_error();
    errno = 0;
    ossl_ssize_t n = SSL_sendfile(t->impl, fd, *off, count, 0);
    if (n > 0) {
        *off += n;
        return n;
    }
    int r = io_result(t, (int)n, "sendfile");
    return r == CU_AGAIN ? CU_AGAIN : CU_ERROR;
}

/* Without kernel TLS, sendfile is NULL: file responses are read and written through
 * SSL_write. */
const cu_transport_ops_t cu_transport_tls = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = NULL,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

/* The same, once the handshake handed the keys to the kernel (kernel TLS send). */
const cu_transport_ops_t cu_transport_tls_ktls = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

static int tls_open(void *arg, cu_transport_t *t, int fd)
{
    cu_tls_t *tls = arg;
    cu_tls_check_files(tls);
    pthread_mutex_lock(&tls->lock);
    SSL *ssl = SSL_new(tls->ctx);
    pthread_mutex_unlock(&tls->lock);
    if (!ssl)
        goto fail;
    if (!SSL_set_fd(ssl, fd))
        goto fail_ssl;
    SSL_set_accept_state(ssl);
    SSL_set_ex_data(ssl, tls_ex_index, tls);
    cu_transport_init(t, &cu_transport_tls, fd);
    t->impl = ssl;
    return CU_OK;

fail_ssl:
    SSL_free(ssl);
fail:
    ERR_clear_error();
    cu_log_error("TLS: cannot set up a connection (out of memory?)");
    return CU_ERROR;
}

void cu_tls_factory(cu_tls_t *tls, cu_transport_factory_t *out)
{
    out->open = tls_open;
    out->ctx = tls;
    out->scheme = "https";
}

/* ---- what the app sees ---- */

int cu_tls_info(const cu_transport_t *t, cu_tls_info_t *out)
{
    SSL *ssl = cu_tls_ssl(t);
    memset(out, 0, sizeof(*out));
    if (!ssl)
        return CU_ERROR;
    out->protocol = SSL_get_version(ssl);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    out->cipher = c ? SSL_CIPHER_get_name(c) : "";
    out->cipher_bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    out->alpn = alen ? (const char *)alpn : NULL;
    out->alpn_len = alen;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    out->has_peer_cert = peer != NULL;
    long vr = SSL_get_verify_result(ssl);
    int asked = SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER;
    if (!peer)
        out->verify = "NONE";
    else if (!asked)
        out->verify = "NONE"; /* sent unasked: not verified */
    else if (vr == X509_V_OK)
        out->verify = "SUCCESS";
    else
        out->verify = "FAILED";
    out->verified = peer && asked && vr == X509_V_OK;
    return CU_OK;
}

/* Contents of a memory BIO as a malloc'd NUL-terminated buffer. */
static char *bio_take(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = NULL;
    if (n >= 0) {
        out = cu_xmalloc((size_t)n + 1);
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(b);
    return out;
}

char *cu_tls_peer_pem(const cu_transport_t *t, size_t *len)
{
    SSL *ssl = cu_tls_ssl(t);
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    BIO *b = peer ? BIO_new(BIO_s_mem()) : NULL;
    if (!b)
        return NULL;
    if (!PEM_write_bio_X509(b, peer)) {
        BIO_free(b);
        ERR_clear_error();
        return NULL;
    }
    return bio_take(b, len);
}

char *cu_tls_peer_subject(const cu_transport_t *t, size_t *len)
{
    SSL *ssl = cu_tls_ssl(t);
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    BIO *b = peer ? BIO_new(BIO_s_mem()) : NULL;
    if (!b)
        return NULL;
    /* mod_ssl's SSL_CLIENT_S_DN: RFC 2253, UTF-8 kept as is */
    if (X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        BIO_free(b);
        ERR_clear_error();
        return NULL;
    }
    return bio_take(b, len);
}

unsigned char *cu_tls_peer_der(const cu_transport_t *t, size_t *len)
{
    SSL *ssl = cu_tls_ssl(t);
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    unsigned char *der = NULL;
    int n = peer ? i2d_X509(peer, NULL) : -1;
    if (n <= 0)
        return NULL;
    der = cu_xmalloc((size_t)n);
    unsigned char *p = der;
    i2d_X509(peer, &p);
    *len = (size_t)n;
    return der;
}

/* Copy *n bytes of s, NUL-terminated, into f->text after *used (cut short, *n updated,
 * when it is full: it holds the longest ALPN name with the other strings). */
static const char *keep(cu_tls_facts_t *f, size_t *used, const char *s, size_t *n)
{
    char *out = f->text + *used;
    size_t room = sizeof(f->text) - *used - 1;
    if (*n > room)
        *n = room;
    memcpy(out, s, *n);
    out[*n] = '\0';
    *used += *n + 1;
    return out;
}

static const char *keep_str(cu_tls_facts_t *f, size_t *used, const char *s)
{
    size_t n = strlen(s);
    return keep(f, used, s, &n);
}

cu_tls_facts_t *cu_tls_facts_new(const cu_transport_t *t)
{
    cu_tls_info_t in;
    SSL *ssl = cu_tls_ssl(t);
    if (!ssl || cu_tls_info(t, &in) != CU_OK)
        return NULL;
    cu_tls_facts_t *f = cu_xcalloc(1, sizeof(*f));
    size_t used = 0;
    f->info = in;
    f->info.protocol = keep_str(f, &used, in.protocol);
    f->info.cipher = keep_str(f, &used, in.cipher);
    f->info.verify = keep_str(f, &used, in.verify);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    f->cipher_version = keep_str(f, &used, c ? SSL_CIPHER_get_version(c) : "");
    if (in.alpn)
        f->info.alpn = keep(f, &used, in.alpn, &f->info.alpn_len);
    f->der = cu_tls_peer_der(t, &f->der_len);
    if (f->der) {
        f->subject = cu_tls_peer_subject(t, &f->subject_len);
        f->pem = cu_tls_peer_pem(t, &f->pem_len);
    }
    return f;
}

void cu_tls_facts_free(cu_tls_facts_t *f)
{
    if (!f)
        return;
    if (f->cache && f->cache_free)
        f->cache_free(f->cache);
    free(f->der);
    free(f->subject);
    free(f->pem);
    free(f);
}
