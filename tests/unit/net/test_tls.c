/* net/tls.c: the TLS transport over a socketpair, against an OpenSSL client in the same
 * process; certificates (a CA, server and client certs) are made here. */
#include "net/tls.h"

#include "event/loop.h"
#include "t.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[] = "/tmp/cu_tls_XXXXXX";
static char path_ca[256], path_cert[256], path_key[256], path_ccert[256], path_ckey[256];
static char path_other_key[256], path_enc_key[256], path_cert2[256];

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, int is_ca)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"cunicorn tests", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, is_ca ? n : X509_get_subject_name(ca_cert));
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, is_ca ? x : ca_cert, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                              is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, is_ca ? key : ca_key, EVP_sha256());
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, x);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k, const char *password)
{
    FILE *f = fopen(path, "w");
    if (password)
        PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), (unsigned char *)password,
                             (int)strlen(password), NULL, NULL);
    else
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static void make_files(void)
{
    if (!mkdtemp(dir))
        abort();
#define P(var, name) snprintf(var, sizeof(var), "%s/%s", dir, name)
    P(path_ca, "ca.pem");
    P(path_cert, "server.pem");
    P(path_key, "server.key");
    P(path_ccert, "client.pem");
    P(path_ckey, "client.key");
    P(path_other_key, "other.key");
    P(path_enc_key, "enc.key");
    P(path_cert2, "server2.pem");
#undef P
    ca_key = EVP_EC_gen("P-256");
    ca_cert = make_cert(ca_key, "Test CA", 1, 1);
    write_cert(path_ca, ca_cert);
    EVP_PKEY *sk = EVP_EC_gen("P-256");
    X509 *sc = make_cert(sk, "localhost", 2, 0);
    write_cert(path_cert, sc);
    write_key(path_key, sk, NULL);
    write_key(path_enc_key, sk, "secret");
    X509 *sc2 = make_cert(sk, "localhost", 22, 0); /* the "renewed" certificate */
    write_cert(path_cert2, sc2);
    EVP_PKEY *ck = EVP_EC_gen("P-256");
    X509 *cc = make_cert(ck, "alice", 3, 0);
    write_cert(path_ccert, cc);
    write_key(path_ckey, ck, NULL);
    EVP_PKEY *ok = EVP_EC_gen("P-256");
    write_key(path_other_key, ok, NULL);
    X509_free(sc);
    X509_free(sc2);
    X509_free(cc);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ok);
}

static void remove_files(void)
{
    const char *all[] = {path_ca,   path_cert,      path_key,     path_ccert,
                         path_ckey, path_other_key, path_enc_key, path_cert2};
    for (size_t i = 0; i < CU_NELEM(all); i++)
        unlink(all[i]);
    rmdir(dir);
}

static cu_config_t base_cfg(void)
{
    cu_config_t c;
    memset(&c, 0, sizeof(c));
    c.certfile = path_cert;
    c.keyfile = path_key;
    c.suppress_ragged_eofs = 1;
    return c;
}

/* A connected pair: the server side through the factory, the client an OpenSSL SSL. */
typedef struct {
    cu_transport_t srv;
    SSL_CTX *cctx;
    SSL *cli;
    int cfd;
} pair_t;

static SSL_CTX *client_ctx(int max_version, int with_cert)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
    SSL_CTX_set_security_level(c, 0); /* let the client offer TLS 1.0/1.1 for the refusal test */
    if (max_version)
        SSL_CTX_set_max_proto_version(c, max_version);
    SSL_CTX_load_verify_locations(c, path_ca, NULL);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(c, alpn, sizeof(alpn) - 1);
    if (with_cert) {
        SSL_CTX_use_certificate_file(c, path_ccert, SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(c, path_ckey, SSL_FILETYPE_PEM);
    }
    return c;
}

static int pair_open(pair_t *p, cu_tls_t *tls, int max_version, int with_cert)
{
    int sv[2];
    memset(p, 0, sizeof(*p));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return CU_ERROR;
    cu_transport_factory_t f;
    cu_tls_factory(tls, &f);
    CHECK(strcmp(f.scheme, "https") == 0);
    if (f.open(f.ctx, &p->srv, sv[0]) != CU_OK)
        return CU_ERROR;
    p->cctx = client_ctx(max_version, with_cert);
    p->cli = SSL_new(p->cctx);
    p->cfd = sv[1];
    SSL_set_fd(p->cli, sv[1]);
    SSL_set_connect_state(p->cli);
    SSL_set_tlsext_host_name(p->cli, "localhost");
    return CU_OK;
}

static void pair_close(pair_t *p)
{
    p->srv.ops->close(&p->srv);
    SSL_free(p->cli);
    SSL_CTX_free(p->cctx);
    close(p->cfd);
}

/* Step both ends until the handshake ends. Server's result: CU_OK or CU_ERROR. */
static int handshake(pair_t *p)
{
    int srv = CU_AGAIN, cli = 0;
    for (int i = 0; i < 100 && srv == CU_AGAIN; i++) {
        srv = p->srv.ops->handshake(&p->srv);
        if (srv == CU_AGAIN)
            CHECK(p->srv.want == CU_EV_READ || p->srv.want == CU_EV_WRITE);
        if (cli != 1) {
            cli = SSL_do_handshake(p->cli);
            ERR_clear_error();
        }
    }
    /* TLS 1.3: the client finishes after its Finished is out; read the tickets */
    return srv;
}

/* Client writes everything (non-blocking; the server side drains in between). */
static void client_write(pair_t *p, const char *data, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t w = 0;
        if (SSL_write_ex(p->cli, data + off, n - off, &w) == 1)
            off += w;
        else
            ERR_clear_error();
    }
}

static size_t server_read_all(pair_t *p, char *buf, size_t cap, size_t want)
{
    size_t got = 0;
    for (int i = 0; i < 10000 && got < want; i++) {
        ssize_t r = p->srv.ops->read(&p->srv, buf + got, cap - got);
        if (r > 0)
            got += (size_t)r;
        else if (r != CU_AGAIN)
            break;
    }
    return got;
}

static void test_handshake_and_io(void)
{
    char err[512] = "";
    cu_config_t cfg = base_cfg();
    cu_tls_t *tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    CHECK(tls != NULL);
    if (!tls) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    pair_t p;
    CHECK(pair_open(&p, tls, 0, 0) == CU_OK);
    CHECK(strcmp(p.srv.ops->name, "tls") == 0);
    CHECK(cu_tls_ssl(&p.srv) != NULL);
    CHECK(handshake(&p) == CU_OK);
    cu_tls_info_t info;
    CHECK(cu_tls_info(&p.srv, &info) == CU_OK);
    CHECK(strcmp(info.protocol, "TLSv1.3") == 0);
    CHECK(info.alpn_len == 8 && memcmp(info.alpn, "http/1.1", 8) == 0);
    CHECK(strcmp(info.verify, "NONE") == 0 && !info.has_peer_cert);
    CHECK(cu_tls_peer_pem(&p.srv, &(size_t){0}) == NULL);
    CHECK(SSL_get_verify_result(p.cli) == X509_V_OK); /* the client trusts our CA's cert */

    /* request bytes in, then a small read leaves the rest pending inside TLS */
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client_write(&p, req, sizeof(req) - 1);
    char buf[256];
    ssize_t r = CU_AGAIN;
    for (int i = 0; i < 100 && r == CU_AGAIN; i++)
        r = p.srv.ops->read(&p.srv, buf, 4);
    CHECK(r == 4 && memcmp(buf, "GET ", 4) == 0);
    CHECK(p.srv.ops->pending(&p.srv) == sizeof(req) - 1 - 4);
    CHECK(p.srv.ops->read(&p.srv, buf, sizeof(buf)) == (ssize_t)(sizeof(req) - 1 - 4));
    r = p.srv.ops->read(&p.srv, buf, sizeof(buf));
    CHECK(r == CU_AGAIN && p.srv.want == CU_EV_READ);

    /* gathered response, bigger than the socket buffer: partial writes and CU_AGAIN */
    size_t body_len = 1 << 20;
    char *body = malloc(body_len);
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)('a' + i % 26);
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n";
    size_t total = sizeof(head) - 1 + body_len, sent = 0, got = 0;
    char *recv = malloc(total);
    int agains = 0;
    for (int i = 0; i < 100000 && got < total; i++) {
        if (sent < total) {
            struct iovec iov[2];
            int n = 0;
            if (sent < sizeof(head) - 1)
                iov[n++] = (struct iovec){(char *)head + sent, sizeof(head) - 1 - sent};
            size_t boff = sent < sizeof(head) - 1 ? 0 : sent - (sizeof(head) - 1);
            iov[n++] = (struct iovec){body + boff, body_len - boff};
            ssize_t w = p.srv.ops->writev(&p.srv, iov, n);
            if (w > 0)
                sent += (size_t)w;
            else if (w == CU_AGAIN) {
                agains++;
                CHECK(p.srv.want == CU_EV_WRITE);
            } else
                break;
        }
        size_t rd = 0;
        if (i % 3 != 2) /* let the server fill the socket now and then */
            continue;
        if (SSL_read_ex(p.cli, recv + got, total - got, &rd) == 1)
            got += rd;
        else
            ERR_clear_error();
    }
    CHECK(sent == total && got == total);
    CHECK(agains > 0);
    CHECK(memcmp(recv, head, sizeof(head) - 1) == 0);
    CHECK(memcmp(recv + sizeof(head) - 1, body, body_len) == 0);
    free(body);
    free(recv);

    /* close_notify: the client reads a clean EOF */
    CHECK(p.srv.ops->shutdown(&p.srv) == CU_OK);
    size_t rd = 0;
    int cr = SSL_read_ex(p.cli, buf, sizeof(buf), &rd);
    CHECK(cr == 0 && SSL_get_error(p.cli, cr) == SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    pair_close(&p);
    cu_tls_free(tls);
}

static void test_ragged_eof(int suppress)
{
    char err[512] = "";
    cu_config_t cfg = base_cfg();
    cfg.suppress_ragged_eofs = suppress;
    cu_tls_t *tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    pair_t p;
    CHECK(pair_open(&p, tls, 0, 0) == CU_OK);
    CHECK(handshake(&p) == CU_OK);
    shutdown(p.cfd, SHUT_RDWR); /* gone without close_notify */
    char buf[64];
    ssize_t r = CU_AGAIN;
    for (int i = 0; i < 100 && r == CU_AGAIN; i++)
        r = p.srv.ops->read(&p.srv, buf, sizeof(buf));
    CHECK(r == (suppress ? 0 : CU_ERROR));
    CHECK(p.srv.ops->shutdown(&p.srv) != CU_AGAIN); /* no close_notify after that */
    pair_close(&p);
    cu_tls_free(tls);
}

static void test_old_protocols_refused(void)
{
    char err[512] = "";
    cu_config_t cfg = base_cfg();
    cu_tls_t *tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION};
    int expect[] = {CU_ERROR, CU_ERROR, CU_OK};
    for (int i = 0; i < 3; i++) {
        pair_t p;
        CHECK(pair_open(&p, tls, versions[i], 0) == CU_OK);
        CHECK(handshake(&p) == expect[i]);
        if (expect[i] == CU_OK) {
            cu_tls_info_t info;
            cu_tls_info(&p.srv, &info);
            CHECK(strcmp(info.protocol, "TLSv1.2") == 0);
            CHECK(strncmp(info.cipher, "ECDHE-", 6) == 0); /* forward secrecy */
        }
        pair_close(&p);
    }
    /* garbage instead of a ClientHello: an error, not a crash */
    pair_t p;
    CHECK(pair_open(&p, tls, 0, 0) == CU_OK);
    CHECK(write(p.cfd, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
    int r = CU_AGAIN;
    for (int i = 0; i < 10 && r == CU_AGAIN; i++)
        r = p.srv.ops->handshake(&p.srv);
    CHECK(r == CU_ERROR);
    pair_close(&p);
    cu_tls_free(tls);
}

static int cache_freed;

static void note_cache_free(void *cache)
{
    (*(int *)cache)++;
}

static void test_client_certs(void)
{
    char err[512] = "";
    cu_config_t cfg = base_cfg();
    cfg.ca_certs = path_ca;
    cfg.cert_reqs = 2;
    cu_tls_t *tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    CHECK(tls != NULL);
    pair_t p;
    /* required, none given: TLS 1.3 fails the client after the server's read of it */
    CHECK(pair_open(&p, tls, 0, 0) == CU_OK);
    int r = handshake(&p);
    CHECK(r == CU_ERROR);
    pair_close(&p);

    CHECK(pair_open(&p, tls, 0, 1) == CU_OK);
    CHECK(handshake(&p) == CU_OK);
    cu_tls_info_t info;
    cu_tls_info(&p.srv, &info);
    CHECK(strcmp(info.verify, "SUCCESS") == 0 && info.verified && info.has_peer_cert);
    size_t n = 0;
    char *dn = cu_tls_peer_subject(&p.srv, &n);
    CHECK(dn && strcmp(dn, "CN=alice,O=cunicorn tests") == 0);
    free(dn);
    char *pem = cu_tls_peer_pem(&p.srv, &n);
    CHECK(pem && strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0 && n == strlen(pem));
    free(pem);
    unsigned char *der = cu_tls_peer_der(&p.srv, &n);
    CHECK(der && n > 100 && der[0] == 0x30);
    /* the facts an HTTP/2 session copies: the same, and still there once the connection
     * is gone */
    cu_tls_facts_t *f = cu_tls_facts_new(&p.srv);
    pair_close(&p);
    CHECK(f && strcmp(f->info.verify, "SUCCESS") == 0 && f->info.verified);
    CHECK(strcmp(f->info.protocol, "TLSv1.3") == 0 && strncmp(f->info.cipher, "TLS_", 4) == 0);
    CHECK(strcmp(f->cipher_version, "TLSv1.3") == 0 && f->info.cipher_bits >= 128);
    CHECK(f->subject && strcmp(f->subject, "CN=alice,O=cunicorn tests") == 0 &&
          f->subject_len == strlen(f->subject));
    CHECK(f->pem && strncmp(f->pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    CHECK(f->der_len == n && memcmp(f->der, der, n) == 0);
    f->cache = &cache_freed;
    f->cache_free = note_cache_free;
    cu_tls_facts_free(f);
    CHECK(cache_freed == 1);
    free(der);
    cu_tls_free(tls);

    /* optional: served without a certificate, verified with one */
    cfg.cert_reqs = 1;
    tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    CHECK(pair_open(&p, tls, 0, 0) == CU_OK);
    CHECK(handshake(&p) == CU_OK);
    cu_tls_info(&p.srv, &info);
    CHECK(strcmp(info.verify, "NONE") == 0 && !info.verified);
    f = cu_tls_facts_new(&p.srv);
    CHECK(f && strcmp(f->info.verify, "NONE") == 0 && !f->der && !f->subject && !f->pem);
    cu_tls_facts_free(f);
    pair_close(&p);
    cu_tls_free(tls);
    /* not a tls transport */
    cu_transport_t plain;
    cu_transport_init(&plain, &cu_transport_plain, -1);
    CHECK(cu_tls_facts_new(&plain) == NULL);
}

static long served_serial(cu_tls_t *tls)
{
    pair_t p;
    long serial = -1;
    if (pair_open(&p, tls, 0, 0) == CU_OK && handshake(&p) == CU_OK) {
        X509 *x = SSL_get0_peer_certificate(p.cli);
        serial = x ? ASN1_INTEGER_get(X509_get0_serialNumber(x)) : -1;
    }
    pair_close(&p);
    return serial;
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_TRUNC);
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        CHECK(write(out, buf, (size_t)n) == n);
    close(in);
    close(out);
}

static void test_rotation(void)
{
    char err[512] = "";
    char cert[300];
    snprintf(cert, sizeof(cert), "%s/rotating.pem", dir);
    int fd = open(cert, O_CREAT | O_WRONLY, 0600);
    close(fd);
    copy_file(path_cert, cert);
    cu_config_t cfg = base_cfg();
    cfg.certfile = cert;
    cu_tls_t *tls = cu_tls_new(&cfg, NULL, NULL, err, sizeof(err));
    CHECK(served_serial(tls) == 2);

    /* a connection made before the renewal keeps working after it */
    pair_t old;
    CHECK(pair_open(&old, tls, 0, 0) == CU_OK);
    CHECK(handshake(&old) == CU_OK);

    copy_file(path_cert2, cert);
    /* the file check runs at most once a second: poll (bounded) until it is picked up */
    long serial = 2;
    for (int i = 0; i < 400 && serial == 2; i++) {
        usleep(10000);
        serial = served_serial(tls);
    }
    CHECK(serial == 22);

    client_write(&old, "ping", 4);
    char buf[8];
    CHECK(server_read_all(&old, buf, sizeof(buf), 4) == 4 && memcmp(buf, "ping", 4) == 0);
    pair_close(&old);

    /* a broken renewal keeps the working certificate */
    copy_file(path_other_key, cert); /* not a certificate at all */
    CHECK(cu_tls_reload(tls) == CU_ERROR);
    CHECK(served_serial(tls) == 22);
    copy_file(path_cert, cert);
    CHECK(cu_tls_reload(tls) == CU_OK);
    CHECK(served_serial(tls) == 2);
    cu_tls_free(tls);
    unlink(cert);
}

static SSL_CTX *ktls_build(void *arg, const cu_config_t *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = cu_tls_ctx_default(cfg, err, errlen);
    if (ctx)
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return ctx;
}

/* Kernel TLS asked for (as an ssl_context hook would): with a kernel that takes the keys,
 * the connection gets sendfile and a file arrives intact; without (a kernel without the
 * tls module, as on the machine these tests were written on), the plain tls operations
 * stay and carry the data. Over TCP: kernel TLS needs a TCP socket. */
static void test_ktls_opt_in(void)
{
    char err[512] = "";
    cu_config_t cfg = base_cfg();
    cu_tls_t *tls = cu_tls_new(&cfg, ktls_build, NULL, err, sizeof(err));
    CHECK(tls != NULL);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    CHECK(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 1) == 0);
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    int sfd = accept(ls, NULL, NULL);
    close(ls);
    fcntl(sfd, F_SETFL, O_NONBLOCK);
    fcntl(cfd, F_SETFL, O_NONBLOCK);

    pair_t p;
    memset(&p, 0, sizeof(p));
    cu_transport_factory_t f;
    cu_tls_factory(tls, &f);
    CHECK(f.open(f.ctx, &p.srv, sfd) == CU_OK);
    p.cctx = client_ctx(0, 0);
    p.cli = SSL_new(p.cctx);
    p.cfd = cfd;
    SSL_set_fd(p.cli, cfd);
    SSL_set_connect_state(p.cli);
    CHECK(handshake(&p) == CU_OK);
    CHECK(cu_tls_ssl(&p.srv) != NULL);
    int ktls = BIO_get_ktls_send(SSL_get_wbio(cu_tls_ssl(&p.srv)));
    CHECK(ktls ? p.srv.ops == &cu_transport_tls_ktls && p.srv.ops->sendfile != NULL
               : p.srv.ops == &cu_transport_tls && p.srv.ops->sendfile == NULL);
    printf("test_tls: kernel TLS %s\n", ktls ? "active: sendfile tested" : "not available here");

    char fpath[300];
    snprintf(fpath, sizeof(fpath), "%s/file.bin", dir);
    int fd = open(fpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
    char data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7);
    CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
    char *got = malloc(sizeof(data));
    size_t have = 0;
    off_t off = 0;
    /* TCP loopback delivers in softirq, not at once: when a round moves nothing, wait for
     * either side to become ready (bounded: 30 s in all) instead of counting spins. */
    for (int idle_ms = 0; idle_ms < 30000 && have < sizeof(data);) {
        size_t before = have;
        off_t before_off = off;
        if ((size_t)off < sizeof(data)) {
            ssize_t n;
            if (p.srv.ops->sendfile) {
                n = p.srv.ops->sendfile(&p.srv, fd, &off, sizeof(data) - (size_t)off);
            } else {
                struct iovec iov = {data + off, sizeof(data) - (size_t)off};
                n = p.srv.ops->writev(&p.srv, &iov, 1);
                if (n > 0)
                    off += n;
            }
            CHECK(n > 0 || n == CU_AGAIN);
        }
        size_t rd = 0;
        if (SSL_read_ex(p.cli, got + have, sizeof(data) - have, &rd) == 1)
            have += rd;
        else
            ERR_clear_error();
        if (have == before && off == before_off) {
            /* the server side only while it has bytes to write: a writable socket with
             * nothing to send must not end the wait at once */
            struct pollfd pf[2] = {
                {.fd = cfd, .events = POLLIN},
                {.fd = sfd, .events = p.srv.want & CU_EV_READ ? POLLIN : POLLOUT}};
            (void)poll(pf, (size_t)off < sizeof(data) ? 2 : 1, 10);
            idle_ms += 10;
        }
    }
    CHECK(have == sizeof(data) && memcmp(got, data, sizeof(data)) == 0);
    free(got);
    close(fd);
    unlink(fpath);
    pair_close(&p);
    cu_tls_free(tls);
}

static void test_startup_errors(void)
{
    char err[512];
    cu_config_t cfg = base_cfg();
    cfg.certfile = "/nonexistent/cert.pem";
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "certfile:", 9) == 0 && strstr(err, "/nonexistent/cert.pem"));

    cfg = base_cfg();
    cfg.keyfile = path_other_key;
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "keyfile:", 8) == 0 && strstr(err, "does not match"));

    cfg = base_cfg();
    cfg.keyfile = path_enc_key;
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "keyfile:", 8) == 0 && strstr(err, "encrypted"));

    cfg = base_cfg();
    cfg.keyfile = "/nonexistent/key.pem";
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "keyfile:", 8) == 0);

    cfg = base_cfg();
    cfg.ca_certs = "/nonexistent/ca.pem";
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "ca_certs:", 9) == 0);

    cfg = base_cfg();
    cfg.ciphers = "NO-SUCH-CIPHER";
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "ciphers:", 8) == 0);

    cfg = base_cfg();
    cfg.certfile = NULL;
    CHECK(cu_tls_ctx_default(&cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "certfile") != NULL);

    /* the certificate file may hold the key too (gunicorn: keyfile optional) */
    char both[300];
    snprintf(both, sizeof(both), "%s/both.pem", dir);
    int fd = open(both, O_CREAT | O_WRONLY, 0600);
    close(fd);
    copy_file(path_cert, both);
    FILE *f = fopen(both, "a"), *k = fopen(path_key, "r");
    int ch;
    while ((ch = fgetc(k)) != EOF)
        fputc(ch, f);
    fclose(f);
    fclose(k);
    cfg = base_cfg();
    cfg.certfile = both;
    cfg.keyfile = NULL;
    SSL_CTX *ctx = cu_tls_ctx_default(&cfg, err, sizeof(err));
    CHECK(ctx != NULL);
    SSL_CTX_free(ctx);
    unlink(both);

    cfg = base_cfg();
    CHECK(cu_tls_enabled(&cfg));
    cfg.certfile = cfg.keyfile = NULL;
    CHECK(!cu_tls_enabled(&cfg));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in the server: a peer gone is an error return */
    make_files();
    test_handshake_and_io();
    test_ragged_eof(1);
    test_ragged_eof(0);
    test_old_protocols_refused();
    test_client_certs();
    test_rotation();
    test_ktls_opt_in();
    test_startup_errors();
    remove_files();
    EVP_PKEY_free(ca_key);
    X509_free(ca_cert);
    return t_done("test_tls");
}
