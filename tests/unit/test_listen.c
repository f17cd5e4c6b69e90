/* Listeners: --bind parsing for every form gunicorn accepts, and real binds on
 * 127.0.0.1:0, [::1]:0, a temporary unix path and an inherited fd. */
#include "net/listen.h"
#include "core/log.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_ok(const char *s, cu_bind_addr_t *a)
{
    char err[256];
    return cu_bind_parse(s, a, err, sizeof(err)) == CU_OK;
}

static void test_parse_tcp(void)
{
    cu_bind_addr_t a;
    CHECK(parse_ok("127.0.0.1:8000", &a));
    CHECK(a.kind == CU_BIND_TCP && strcmp(a.host, "127.0.0.1") == 0 && a.port == 8000 && !a.v6);

    CHECK(parse_ok("0.0.0.0:9090", &a));
    CHECK(strcmp(a.host, "0.0.0.0") == 0 && a.port == 9090);

    /* a bare host defaults to port 8000 */
    CHECK(parse_ok("localhost", &a));
    CHECK(strcmp(a.host, "localhost") == 0 && a.port == 8000);

    /* host names are lower-cased like gunicorn does */
    CHECK(parse_ok("LocalHost:81", &a));
    CHECK(strcmp(a.host, "localhost") == 0 && a.port == 81);

    CHECK(parse_ok("tcp://10.0.0.1:7000", &a));
    CHECK(strcmp(a.host, "10.0.0.1") == 0 && a.port == 7000);

    /* empty host means all interfaces */
    CHECK(parse_ok(":5000", &a));
    CHECK(strcmp(a.host, "0.0.0.0") == 0 && a.port == 5000);
    CHECK(parse_ok("", &a));
    CHECK(strcmp(a.host, "0.0.0.0") == 0 && a.port == 8000);

    CHECK(parse_ok("127.0.0.1:0", &a));
    CHECK(a.port == 0);
    CHECK(parse_ok("h:65535", &a));
    CHECK(a.port == 65535);
}

static void test_parse_v6(void)
{
    cu_bind_addr_t a;
    CHECK(parse_ok("[::1]:8080", &a));
    CHECK(a.kind == CU_BIND_TCP && strcmp(a.host, "::1") == 0 && a.port == 8080 && a.v6);
    CHECK(parse_ok("[::]", &a));
    CHECK(strcmp(a.host, "::") == 0 && a.port == 8000 && a.v6);
    CHECK(parse_ok("[FE80::1]:1", &a));
    CHECK(strcmp(a.host, "fe80::1") == 0 && a.port == 1);
}

static void test_parse_unix_fd(void)
{
    cu_bind_addr_t a;
    CHECK(parse_ok("unix:/tmp/app.sock", &a));
    CHECK(a.kind == CU_BIND_UNIX && strcmp(a.path, "/tmp/app.sock") == 0);
    CHECK(parse_ok("unix:///run/app.sock", &a));
    CHECK(a.kind == CU_BIND_UNIX && strcmp(a.path, "/run/app.sock") == 0);
    CHECK(parse_ok("unix:rel.sock", &a));
    CHECK(strcmp(a.path, "rel.sock") == 0);
    CHECK(parse_ok("fd://3", &a));
    CHECK(a.kind == CU_BIND_FD && a.fd == 3);
}

static void test_parse_errors(void)
{
    cu_bind_addr_t a;
    char err[256];
    CHECK(cu_bind_parse("127.0.0.1:http", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(strcmp(err, "'http' is not a valid port number.") == 0);
    CHECK(cu_bind_parse("127.0.0.1:", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("127.0.0.1:65536", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("127.0.0.1:-1", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("[::1]x", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("fd://x", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(strcmp(err, "'x' is not a valid file descriptor.") == 0);
    CHECK(cu_bind_parse("fd://", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("fd://-1", &a, err, sizeof(err)) == CU_ERROR);
    CHECK(cu_bind_parse("unix:", &a, err, sizeof(err)) == CU_ERROR);
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "unix:/", 6);
    longp[sizeof(longp) - 1] = '\0';
    CHECK(cu_bind_parse(longp, &a, err, sizeof(err)) == CU_ERROR);
}

static cu_listen_opts_t mkcfg(char **binds, size_t n)
{
    cu_listen_opts_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.bind = binds;
    cfg.nbind = n;
    cfg.backlog = 16;
    return cfg;
}

static void test_bind_tcp(void)
{
    char *binds[] = {"127.0.0.1:0"};
    cu_listen_opts_t cfg = mkcfg(binds, 1);
    cu_listener_t *ls = NULL;
    size_t n = 0;
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_OK);
    CHECK(n == 1);
    if (n != 1)
        return;
    CHECK(ls[0].fd >= 0 && ls[0].family == AF_INET);
    CHECK(strcmp(ls[0].bind, "127.0.0.1:0") == 0);
    CHECK(strcmp(ls[0].server_name, "127.0.0.1") == 0);
    CHECK(atoi(ls[0].server_port) > 0);
    CHECK(ls[0].unix_path == NULL);
    CHECK((fcntl(ls[0].fd, F_GETFL) & O_NONBLOCK) != 0);
    char d[128], want[128];
    cu_listener_describe(&ls[0], d, sizeof(d));
    snprintf(want, sizeof(want), "http://127.0.0.1:%s", ls[0].server_port);
    CHECK(strcmp(d, want) == 0);

    /* The same port again is in use: fails after the retries. */
    char spec[64];
    snprintf(spec, sizeof(spec), "127.0.0.1:%s", ls[0].server_port);
    char *binds2[] = {spec};
    cu_listen_opts_t cfg2 = mkcfg(binds2, 1);
    cu_listener_t *ls2 = NULL;
    size_t n2 = 0;
    cu_listen_retry_ms = 1;
    CHECK(cu_listeners_open(&cfg2, &ls2, &n2) == CU_ERROR);
    cu_listeners_close(ls, n, 1);
}

static void test_bind_v6(void)
{
    char *binds[] = {"[::1]:0"};
    cu_listen_opts_t cfg = mkcfg(binds, 1);
    cu_listener_t *ls = NULL;
    size_t n = 0;
    if (cu_listeners_open(&cfg, &ls, &n) != CU_OK)
        return; /* no IPv6 loopback in this environment */
    CHECK(ls[0].family == AF_INET6);
    CHECK(strcmp(ls[0].server_name, "::1") == 0);
    char d[128], want[128];
    cu_listener_describe(&ls[0], d, sizeof(d));
    snprintf(want, sizeof(want), "http://[::1]:%s", ls[0].server_port);
    CHECK(strcmp(d, want) == 0);
    cu_listeners_close(ls, n, 1);
}

static void test_bind_unix(void)
{
    char path[64], spec[80];
    snprintf(path, sizeof(path), "/tmp/cu_test_listen_%d.sock", (int)getpid());
    snprintf(spec, sizeof(spec), "unix:%s", path);
    char *binds[] = {spec};
    cu_listen_opts_t cfg = mkcfg(binds, 1);
    cu_listener_t *ls = NULL;
    size_t n = 0;
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_OK);
    if (n != 1)
        return;
    CHECK(ls[0].family == AF_UNIX);
    CHECK(ls[0].unix_path && strcmp(ls[0].unix_path, path) == 0);
    CHECK(ls[0].server_name[0] == '\0' && ls[0].server_port[0] == '\0');
    char d[128], want[128];
    cu_listener_describe(&ls[0], d, sizeof(d));
    snprintf(want, sizeof(want), "unix:%s", path);
    CHECK(strcmp(d, want) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));

    /* A stale socket file left behind (no unlink on close) is replaced on the next bind. */
    cu_listeners_close(ls, n, 0);
    CHECK(stat(path, &st) == 0);
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_OK);
    cu_listeners_close(ls, n, 1);
    CHECK(stat(path, &st) < 0 && errno == ENOENT);

    /* A regular file in the way is not removed. */
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_ERROR);
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);
}

static void test_bind_fd(void)
{
    /* A socket bound elsewhere and handed over as fd://N is adopted and listened on. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    char spec[32];
    snprintf(spec, sizeof(spec), "fd://%d", s);
    char *binds[] = {spec};
    cu_listen_opts_t cfg = mkcfg(binds, 1);
    cu_listener_t *ls = NULL;
    size_t n = 0;
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_OK);
    if (n != 1)
        return;
    CHECK(ls[0].fd == s && ls[0].family == AF_INET);
    int acc = 0;
    socklen_t al = sizeof(acc);
    CHECK(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc);
    cu_listeners_close(ls, n, 1);

    /* A regular file descriptor is refused. */
    int fd = open("/dev/null", O_RDONLY);
    snprintf(spec, sizeof(spec), "fd://%d", fd);
    CHECK(cu_listeners_open(&cfg, &ls, &n) == CU_ERROR);
    close(fd);
}

int main(void)
{
    /* The error paths log; keep the test output readable. */
    cu_log_level = CU_LOG_CRITICAL + 1;
    test_parse_tcp();
    test_parse_v6();
    test_parse_unix_fd();
    test_parse_errors();
    test_bind_tcp();
    test_bind_v6();
    test_bind_unix();
    test_bind_fd();
    return t_done("test_listen");
}
