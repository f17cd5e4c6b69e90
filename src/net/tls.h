/* TLS over OpenSSL: the server context made from the SSL settings (rebuilt when its files
 * change on disk), the "tls" transport (a non-blocking SSL over a connection's fd) and the
 * listener factory that opens one per accepted connection. No Python here: the
 * ssl_context hook lives in py/ and hands its SSL_CTX in through a build callback. */
#ifndef CU_TLS_H
#define CU_TLS_H

#include "config/config.h"
#include "net/transport.h"

#include <openssl/ssl.h>

typedef struct cu_tls_s cu_tls_t;

/* Python's ssl module default cipher list (TLS 1.2; TLS 1.3 suites are OpenSSL's). */
#define CU_TLS_DEFAULT_CIPHERS                                                                     \
    "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"

/* TLS is on when certfile or keyfile is set (gunicorn's is_ssl). */
int cu_tls_enabled(const cu_config_t *cfg);

/* A new SSL_CTX as gunicorn's default_ssl_context_factory makes one:
 * ssl.create_default_context(Purpose.CLIENT_AUTH, cafile=ca_certs) (TLS 1.2 minimum,
 * Python's options and cipher list), load_cert_chain(certfile, keyfile),
 * verify_mode = cert_reqs, set_ciphers(ciphers) when set. Session tickets stay on.
 * Returns the context (caller owns: SSL_CTX_free) or NULL with a message naming the setting
 * in err (missing file, key that does not match, password-protected key, bad ciphers). */
SSL_CTX *cu_tls_ctx_default(const cu_config_t *cfg, char *err, size_t errlen);

/* Makes the serving context: a new SSL_CTX reference (caller of the callback owns it) or
 * NULL with a message in err. py/ passes one that calls the ssl_context hook. */
typedef SSL_CTX *(*cu_tls_build_cb)(void *arg, const cu_config_t *cfg, char *err, size_t errlen);

/* The server's TLS state for cfg (the SSL settings are copied): builds the context now
 * with `build` (NULL: cu_tls_ctx_default) and sets ALPN to what http_protocols allows
 * (h2 and/or http/1.1, in its order). Returns NULL with a message in err when the context cannot be
 * built. Build it in the master before forking: workers then share the session ticket keys. */
cu_tls_t *cu_tls_new(const cu_config_t *cfg, cu_tls_build_cb build, void *arg, char *err,
                     size_t errlen);
void cu_tls_free(cu_tls_t *tls);

/* Rebuild the context now (HUP). New connections get it; open ones keep theirs. The
 * ticket keys carry over, so sessions resume across a rotation. CU_OK, or CU_ERROR
 * (logged) with the previous context still serving. Thread-safe. */
int cu_tls_reload(cu_tls_t *tls);

/* Give `to` the session ticket keys of `from` (HUP: the new workers resume the sessions
 * the old ones issued). */
void cu_tls_inherit_tickets(cu_tls_t *to, cu_tls_t *from);

/* Rebuild when certfile, keyfile or ca_certs changed on disk (a stat each, at most once a
 * second; a failed rebuild is retried only when the files change again). Thread-safe;
 * the factory calls it on accept. Does nothing for a context made by a build callback (the
 * ssl_context hook): that one is rebuilt on HUP. */
void cu_tls_check_files(cu_tls_t *tls);

/* The listener factory for tls: open() makes a tls transport over fd with the current
 * context; scheme "https". */
void cu_tls_factory(cu_tls_t *tls, cu_transport_factory_t *out);

/* The tls transport. A connection whose context has SSL_OP_ENABLE_KTLS (an ssl_context
 * hook sets it) and whose kernel took the keys switches to cu_transport_tls_ktls after the
 * handshake: the same operations plus sendfile (SSL_sendfile). */
extern const cu_transport_ops_t cu_transport_tls;
extern const cu_transport_ops_t cu_transport_tls_ktls;

/* The SSL of a tls transport (borrowed), NULL for any other transport. */
SSL *cu_tls_ssl(const cu_transport_t *t);

/* The finished handshake of a tls transport chose HTTP/2 ("h2") by ALPN. */
int cu_tls_alpn_h2(const cu_transport_t *t);

/* What the request environ shows of a finished handshake (mod_ssl names). Strings are
 * static or point into `buf`-like storage owned by the SSL; valid while the transport is. */
typedef struct cu_tls_info_s {
    const char *protocol; /* SSL_PROTOCOL: "TLSv1.3" */
    const char *cipher;   /* SSL_CIPHER: "TLS_AES_256_GCM_SHA384" */
    int cipher_bits;      /* secret bits */
    const char *alpn;     /* negotiated ALPN protocol, NULL when none */
    size_t alpn_len;
    const char *verify; /* SSL_CLIENT_VERIFY: "NONE", "SUCCESS", "FAILED:reason" */
    int has_peer_cert;
    int verified; /* the peer certificate was asked for and verified */
} cu_tls_info_t;
int cu_tls_info(const cu_transport_t *t, cu_tls_info_t *out);

/* The peer certificate as PEM text (SSL_CLIENT_CERT), RFC 2253 subject (SSL_CLIENT_S_DN)
 * and DER bytes (getpeercert(True)). Each returns a malloc'd buffer the caller frees and
 * its length in *len, or NULL when there is no peer certificate. */
char *cu_tls_peer_pem(const cu_transport_t *t, size_t *len);
char *cu_tls_peer_subject(const cu_transport_t *t, size_t *len);
unsigned char *cu_tls_peer_der(const cu_transport_t *t, size_t *len);

/* A connection's TLS facts copied once, to be read without the connection: an HTTP/2
 * session takes them when it opens, and the requests of its streams read them from any
 * thread while the connection is driven by another (or is already closed). */
typedef struct cu_tls_facts_s {
    cu_tls_info_t info;         /* its strings point into text */
    const char *cipher_version; /* SSL_CIPHER_get_version: "TLSv1.3" (into text) */
    unsigned char *der;         /* the peer certificate (DER, RFC 2253 subject, PEM), NULL */
    size_t der_len;             /* when there is none */
    char *subject;
    size_t subject_len;
    char *pem;
    size_t pem_len;
    /* What py/ built from these facts (under the GIL), and how to drop it: called by
     * cu_tls_facts_free, without the GIL. */
    void *cache;
    void (*cache_free)(void *cache);
    char text[400];
} cu_tls_facts_t;

/* The facts of the finished handshake of tls transport t (caller frees them with
 * cu_tls_facts_free), or NULL when t is not a tls transport. */
cu_tls_facts_t *cu_tls_facts_new(const cu_transport_t *t);
void cu_tls_facts_free(cu_tls_facts_t *f);

#endif
