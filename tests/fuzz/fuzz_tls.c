/* libFuzzer target: a client's first flight (ClientHello and whatever follows) through the
 * real server context and "tls" transport, over memory BIOs. The first byte picks the
 * client-certificate mode (cert_reqs 0/1/2); a handshake that completes is then read from,
 * written to and shut down. Nothing may crash, leak or loop; every result is one the
 * transport contract allows. */
#include "net/tls.h"

#include "core/log.h"
#include "event/loop.h"

#include <assert.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>

static cu_tls_t *servers[3];

/* A self-signed certificate and key in a scratch directory, once. */
static void setup(void)
{
    static char dir[] = "/tmp/cu_fuzz_tls_XXXXXX";
    char cert[64], key[64];
    if (!mkdtemp(dir))
        abort();
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    FILE *f = fopen(cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    cu_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.certfile = cert;
    cfg.keyfile = key;
    cfg.ca_certs = cert;
    cfg.suppress_ragged_eofs = 1;
    char err[512];
    for (int i = 0; i < 3; i++) {
        cfg.cert_reqs = i;
        servers[i] = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
        if (!servers[i]) {
            fprintf(stderr, "fuzz_tls: %s\n", err);
            abort();
        }
    }
    /* the contexts are built: the files are not needed any more */
    unlink(cert);
    unlink(key);
    rmdir(dir);
    X509_free(x);
    EVP_PKEY_free(k);
    cu_log_level = CU_LOG_CRITICAL + 1; /* handshake failures are the normal case here */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!servers[0])
        setup();
    if (size < 1)
        return 0;
    cu_tls_t *tls = servers[data[0] % 3];
    cu_transport_factory_t f;
    cu_transport_t t;
    cu_tls_factory(tls, &f);
    if (f.open(f.ctx, &t, -1) != CU_OK)
        abort();
    BIO *rbio = BIO_new_mem_buf(data + 1, (int)(size - 1)); /* EOF after the input */
    BIO *wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(cu_tls_ssl(&t), rbio, wbio);

    int r = CU_AGAIN;
    for (int i = 0; i < 8 && r == CU_AGAIN; i++) {
        r = t.ops->handshake(&t);
        assert(r == CU_OK || r == CU_AGAIN || r == CU_ERROR);
        if (r == CU_AGAIN)
            assert(t.want == CU_EV_READ || t.want == CU_EV_WRITE);
    }
    if (r == CU_OK) {
        char buf[512];
        for (int i = 0; i < 8; i++) {
            ssize_t n = t.ops->read(&t, buf, sizeof(buf));
            assert(n == CU_AGAIN || n == CU_ERROR || (n >= 0 && n <= (ssize_t)sizeof(buf)));
            if (n <= 0)
                break;
        }
        struct iovec iov[2] = {{"HTTP/1.1 200 OK\r\n", 17}, {"\r\n", 2}};
        ssize_t w = t.ops->writev(&t, iov, 2);
        assert(w == CU_AGAIN || w == CU_ERROR || (w > 0 && w <= 19));
        (void)t.ops->pending(&t);
        (void)t.ops->shutdown(&t);
        cu_tls_info_t info;
        assert(cu_tls_info(&t, &info) == CU_OK && info.protocol && info.verify);
    }
    t.fd = -1; /* no socket here: close frees the SSL (and both BIOs) only */
    t.ops->close(&t);
    ERR_clear_error();
    return 0;
}
