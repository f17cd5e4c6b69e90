/* Settings table, command line, GUNICORN_CMD_ARGS, --print-config, IP allow-lists. */
#include "config/config.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char errtext[4096];
static char outtext[65536];

/* Parse a NULL-terminated argument list into cfg (defaults first); captures stdout and
 * stderr into outtext/errtext. */
static int parse(cu_config_t *cfg, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, cfg);
    argv[argc++] = "cunicorn";
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    FILE *ef = tmpfile(), *of = tmpfile();
    int saved_err = dup(2), saved_out = dup(1);
    dup2(fileno(ef), 2);
    dup2(fileno(of), 1);
    cu_config_defaults(cfg);
    int rc = cu_config_parse_argv(cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    rewind(ef);
    size_t n = fread(errtext, 1, sizeof(errtext) - 1, ef);
    errtext[n] = '\0';
    rewind(of);
    n = fread(outtext, 1, sizeof(outtext) - 1, of);
    outtext[n] = '\0';
    fclose(ef);
    fclose(of);
    return rc;
}

static int has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void print_to(const cu_config_t *cfg, char *buf, size_t cap)
{
    FILE *f = fmemopen(buf, cap, "w");
    cu_config_print(cfg, f);
    fclose(f);
}

static void clean_env(void)
{
    unsetenv("PORT");
    unsetenv("WEB_CONCURRENCY");
    unsetenv("FORWARDED_ALLOW_IPS");
    unsetenv("GUNICORN_CMD_ARGS");
}

static void test_defaults(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "app:app", NULL) == CU_OK);
    CHECK(c.bind.n == 1 && strcmp(c.bind.v[0], "127.0.0.1:8000") == 0);
    CHECK(c.backlog == 2048 && c.workers == 1 && c.threads == 1);
    CHECK(c.worker_class == CU_WORKER_SYNC && strcmp(c.worker_class_str, "sync") == 0);
    CHECK(c.worker_connections == 1000 && c.max_requests == 0 && c.max_requests_jitter == 0);
    CHECK(c.timeout == 30 && c.graceful_timeout == 30 && c.keepalive == 2);
    CHECK(c.limit_request_line == 4094 && c.limit_request_fields == 100 &&
          c.limit_request_field_size == 8190);
    CHECK(c.header_map == CU_HEADER_MAP_DROP && c.proxy_protocol == CU_PROXY_OFF);
    CHECK(c.forwarded_allow_ips.src.n == 2 && c.forwarded_allow_ips.n == 2 &&
          !c.forwarded_allow_ips.any);
    CHECK(c.proxy_allow_ips.n == 2);
    CHECK(c.protocol == CU_PROTOCOL_HTTP && c.uwsgi_allow_ips.n == 2 && !c.uwsgi_allow_ips.any);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof(cwd)) && c.chdir && c.chdir[0] == '/');
    CHECK(strcmp(c.errorlog, "-") == 0 && strcmp(c.loglevel, "info") == 0);
    CHECK(c.accesslog == NULL && c.pidfile == NULL && c.proc_name == NULL);
    CHECK(strcmp(c.access_log_format,
                 "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"") == 0);
    CHECK(strcmp(c.app_uri, "app:app") == 0);
    CHECK(!c.preload_app && !c.reuse_port && !c.print_config && !c.check_config);
    CHECK(c.config == NULL);
    cu_config_free(&c);
}

static void test_env_defaults(void)
{
    cu_config_t c;
    clean_env();
    setenv("PORT", "5000", 1);
    setenv("WEB_CONCURRENCY", "3", 1);
    setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.168.1.1", 1);
    CHECK(parse(&c, "app:app", NULL) == CU_OK);
    CHECK(c.bind.n == 1 && strcmp(c.bind.v[0], "0.0.0.0:5000") == 0);
    CHECK(c.workers == 3);
    CHECK(c.forwarded_allow_ips.src.n == 2 &&
          strcmp(c.forwarded_allow_ips.src.v[1], "192.168.1.1") == 0);
    cu_config_free(&c);

    /* the command line replaces env-derived defaults */
    CHECK(parse(&c, "-b", "x:1", "-w", "2", "app:app", NULL) == CU_OK);
    CHECK(c.bind.n == 1 && strcmp(c.bind.v[0], "x:1") == 0 && c.workers == 2);
    cu_config_free(&c);

    setenv("FORWARDED_ALLOW_IPS", "not-an-ip", 1);
    CHECK(parse(&c, "app:app", NULL) == 1);
    CHECK(has(errtext, "FORWARDED_ALLOW_IPS"));
    cu_config_free(&c);
    CHECK(parse(&c, "--forwarded-allow-ips", "*", "app:app", NULL) == CU_OK);
    CHECK(c.forwarded_allow_ips.any);
    cu_config_free(&c);
    clean_env();
}

static void test_option_forms(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "-w4", "app:app", NULL) == CU_OK && c.workers == 4);
    cu_config_free(&c);
    CHECK(parse(&c, "-w", "5", "app:app", NULL) == CU_OK && c.workers == 5);
    cu_config_free(&c);
    CHECK(parse(&c, "--workers=6", "app:app", NULL) == CU_OK && c.workers == 6);
    cu_config_free(&c);
    CHECK(parse(&c, "-w=7", "app:app", NULL) == CU_OK && c.workers == 7);
    cu_config_free(&c);
    CHECK(parse(&c, "--worker-conn", "8", "app:app", NULL) == CU_OK && c.worker_connections == 8);
    cu_config_free(&c);
    CHECK(parse(&c, "app:app", "-w", "9", NULL) == CU_OK && c.workers == 9 &&
          strcmp(c.app_uri, "app:app") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "-w", " 1_0 ", "app:app", NULL) == CU_OK && c.workers == 10);
    cu_config_free(&c);
    CHECK(parse(&c, "-w", "2", "-w", "3", "app:app", NULL) == CU_OK && c.workers == 3);
    cu_config_free(&c);
    /* last value wins before validation: an overridden bad value is not an error */
    CHECK(parse(&c, "-w", "-3", "-w", "4", "app:app", NULL) == CU_OK && c.workers == 4);
    cu_config_free(&c);

    CHECK(parse(&c, "-b127.0.0.1:9000", "--bind", "unix:/tmp/s", "--bind=[::1]:80", "app:app",
                NULL) == CU_OK);
    CHECK(c.bind.n == 3 && strcmp(c.bind.v[0], "127.0.0.1:9000") == 0 &&
          strcmp(c.bind.v[1], "unix:/tmp/s") == 0 && strcmp(c.bind.v[2], "[::1]:80") == 0);
    cu_config_free(&c);

    CHECK(parse(&c, "-e", "A=1", "--env", "B=x=y", "app:app", NULL) == CU_OK);
    CHECK(c.raw_env.n == 2 && strcmp(c.raw_env.v[1], "B=x=y") == 0);
    cu_config_free(&c);

    CHECK(parse(&c, "--pythonpath", "/a,b", "--chdir", "/tmp", "app:app", NULL) == CU_OK);
    CHECK(c.pythonpath.n == 2 && strcmp(c.pythonpath.v[0], "/a") == 0 &&
          strcmp(c.pythonpath.v[1], "/tmp/b") == 0 && strcmp(c.chdir, "/tmp") == 0);
    CHECK(strcmp(c.pythonpath_str, "/a,b") == 0);
    cu_config_free(&c);

    CHECK(parse(&c, "-k", "gthread", "--threads", "4", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_GTHREAD && c.threads == 4);
    cu_config_free(&c);
    CHECK(parse(&c, "--threads", "2", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_GTHREAD && strcmp(c.worker_class_str, "sync") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "-k", "gthread", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_GTHREAD);
    cu_config_free(&c);
    /* asgi, and uvicorn's worker names run it (threads do not make it gthread) */
    CHECK(parse(&c, "-k", "asgi", "--threads", "4", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_ASGI && !c.worker_class_alias);
    CHECK(strcmp(c.asgi_loop, "auto") == 0 && strcmp(c.asgi_lifespan, "auto") == 0 &&
          c.asgi_disconnect_grace_period == 3 && strcmp(c.root_path, "") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "-k", "uvicorn.workers.UvicornWorker", "--asgi-loop", " UVLoop ",
                "--asgi-lifespan", "ON", "--root-path", "/api", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_ASGI && c.worker_class_alias);
    CHECK(strcmp(c.asgi_loop, "uvloop") == 0 && strcmp(c.asgi_lifespan, "on") == 0 &&
          strcmp(c.root_path, "/api") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "-k", "uvicorn_worker.UvicornWorker", "app:app", NULL) == CU_OK);
    CHECK(c.worker_class == CU_WORKER_ASGI && c.worker_class_alias);
    cu_config_free(&c);
    CHECK(parse(&c, "--asgi-loop", "gevent", "app:app", NULL) == 1 &&
          has(errtext, "Invalid ASGI loop: gevent"));
    cu_config_free(&c);
    CHECK(parse(&c, "--asgi-lifespan", "yes", "app:app", NULL) == 1 &&
          has(errtext, "Invalid ASGI lifespan: yes"));
    cu_config_free(&c);
    CHECK(parse(&c, "--websocket-max-message-size", "5", "app:app", NULL) == CU_OK &&
          c.websocket_max_message_size == 5);
    cu_config_free(&c);

    CHECK(parse(&c, "--proxy-protocol", "app:app", NULL) != CU_OK); /* takes app:app */
    cu_config_free(&c);
    CHECK(parse(&c, "app:app", "--proxy-protocol", NULL) == CU_OK);
    CHECK(c.proxy_protocol == CU_PROXY_AUTO);
    cu_config_free(&c);
    CHECK(parse(&c, "--proxy-protocol", "--preload", "app:app", NULL) == CU_OK);
    CHECK(c.proxy_protocol == CU_PROXY_AUTO && c.preload_app);
    cu_config_free(&c);
    CHECK(parse(&c, "--proxy-protocol=v2", "app:app", NULL) == CU_OK);
    CHECK(c.proxy_protocol == CU_PROXY_V2);
    cu_config_free(&c);
    CHECK(parse(&c, "--proxy-protocol", "V1", "app:app", NULL) == CU_OK);
    CHECK(c.proxy_protocol == CU_PROXY_V1);
    cu_config_free(&c);
    CHECK(parse(&c, "--proxy-protocol", "off", "app:app", NULL) == CU_OK);
    CHECK(c.proxy_protocol == CU_PROXY_OFF);
    cu_config_free(&c);

    CHECK(parse(&c, "--header-map", "REFUSE", "--limit-request-line", "9000",
                "--limit-request-fields", "40000", "--limit-request-field_size", "0", "app:app",
                NULL) == CU_OK);
    CHECK(c.header_map == CU_HEADER_MAP_REFUSE && c.limit_request_line == 9000);
    CHECK(cu_config_eff_limit_request_line(&c) == 8190);
    CHECK(cu_config_eff_limit_request_fields(&c) == 32768);
    CHECK(cu_config_eff_limit_request_field_size(&c) == 8190);
    cu_config_free(&c);

    CHECK(parse(&c, "--permit-obsolete-folding", "--strip-header-spaces",
                "--permit-unconventional-http-method", "--permit-unconventional-http-version",
                "--casefold-http-method", "--reuse-port", "--preload", "--check-config", "app:app",
                NULL) == CU_OK);
    CHECK(c.permit_obsolete_folding && c.strip_header_spaces &&
          c.permit_unconventional_http_method && c.permit_unconventional_http_version &&
          c.casefold_http_method && c.reuse_port && c.preload_app && c.check_config);
    cu_config_free(&c);

    CHECK(parse(&c, "-p", "/tmp/pid", "-n", " name ", "--access-logfile", "-", "--access-logformat",
                "%(h)s", "--log-file", "/tmp/e", "--log-level", "debug", "--forwarded-allow-ips",
                "10.0.0.0/8,*", "--proxy-allow-from", "::1", "app:app", NULL) == CU_OK);
    CHECK(strcmp(c.pidfile, "/tmp/pid") == 0 && strcmp(c.proc_name, "name") == 0);
    CHECK(strcmp(c.accesslog, "-") == 0 && strcmp(c.access_log_format, "%(h)s") == 0);
    CHECK(strcmp(c.errorlog, "/tmp/e") == 0 && strcmp(c.loglevel, "debug") == 0);
    CHECK(c.forwarded_allow_ips.any && c.forwarded_allow_ips.n == 1);
    CHECK(c.proxy_allow_ips.n == 1 && c.proxy_allow_ips.v[0].family == AF_INET6);
    cu_config_free(&c);

    /* uwsgi_allow_ips: CIDRs matched as networks, '*' for all (gunicorn compares strings) */
    CHECK(parse(&c, "--protocol", " http ", "--uwsgi-allow-from", "10.0.0.0/8, ::1", "app:app",
                NULL) == CU_OK);
    CHECK(c.protocol == CU_PROTOCOL_HTTP && c.uwsgi_allow_ips.n == 2 && !c.uwsgi_allow_ips.any);
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.200.3.4", &in4.sin_addr);
    CHECK(cu_cidr_match(&c.uwsgi_allow_ips, (struct sockaddr *)&in4));
    inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
    CHECK(!cu_cidr_match(&c.uwsgi_allow_ips, (struct sockaddr *)&in4));
    cu_config_free(&c);
    CHECK(parse(&c, "--uwsgi-allow-from", "*", "app:app", NULL) == CU_OK && c.uwsgi_allow_ips.any);
    cu_config_free(&c);
    CHECK(parse(&c, "--protocol", "uwsgi", "app:app", NULL) == CU_OK);
    CHECK(c.protocol == CU_PROTOCOL_UWSGI);
    cu_config_free(&c);

    /* '--' ends options; '-' is a value */
    CHECK(parse(&c, "--error-logfile", "-", "--", "-w", NULL) == CU_OK);
    CHECK(strcmp(c.app_uri, "-w") == 0 && c.workers == 1);
    cu_config_free(&c);
    /* a negative number is a value, then validation rejects it (gunicorn exits 1) */
    CHECK(parse(&c, "-w", "-3", "app:app", NULL) == 1);
    CHECK(has(errtext, "workers") && has(errtext, "Value must be positive: -3"));
    cu_config_free(&c);
}

static void test_gunicorn_cmd_args(void)
{
    cu_config_t c;
    clean_env();
    setenv("GUNICORN_CMD_ARGS", "-w 3 --bind 1.1.1.1:1 --log-level 'de''bug' -e \"A=x y\"", 1);
    CHECK(parse(&c, "app:app", NULL) == CU_OK);
    CHECK(c.workers == 3 && c.bind.n == 1 && strcmp(c.bind.v[0], "1.1.1.1:1") == 0);
    CHECK(strcmp(c.loglevel, "debug") == 0);
    CHECK(c.raw_env.n == 1 && strcmp(c.raw_env.v[0], "A=x y") == 0);
    cu_config_free(&c);

    /* argv wins; a list from argv replaces the env list */
    CHECK(parse(&c, "-w", "5", "-b", "2.2.2.2:2", "app:app", NULL) == CU_OK);
    CHECK(c.workers == 5 && c.bind.n == 1 && strcmp(c.bind.v[0], "2.2.2.2:2") == 0);
    CHECK(strcmp(c.loglevel, "debug") == 0);
    cu_config_free(&c);

    setenv("GUNICORN_CMD_ARGS", "--bogus", 1);
    CHECK(parse(&c, "app:app", NULL) == 2 && has(errtext, "unrecognized arguments: --bogus"));
    cu_config_free(&c);
    setenv("GUNICORN_CMD_ARGS", "--http2-max-concurrent-streams 10", 1);
    CHECK(parse(&c, "app:app", NULL) == CU_OK && c.http2_max_concurrent_streams == 10);
    cu_config_free(&c);
    setenv("GUNICORN_CMD_ARGS", "'open", 1);
    CHECK(parse(&c, "app:app", NULL) == 2 && has(errtext, "No closing quotation"));
    cu_config_free(&c);
    /* positional arguments in the variable are ignored */
    setenv("GUNICORN_CMD_ARGS", "other:app", 1);
    CHECK(parse(&c, "app:app", NULL) == CU_OK && strcmp(c.app_uri, "app:app") == 0);
    cu_config_free(&c);
    clean_env();
}

static void test_errors(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "--foo", "app:app", "--bar=1", NULL) == 2);
    CHECK(has(errtext, "cunicorn: error: unrecognized arguments: --foo --bar=1"));
    cu_config_free(&c);
    CHECK(parse(&c, "-w", "abc", "app:app", NULL) == 2);
    CHECK(has(errtext, "argument -w/--workers: invalid int value: 'abc'"));
    cu_config_free(&c);
    CHECK(parse(&c, "app:app", "-b", NULL) == 2);
    CHECK(has(errtext, "argument -b/--bind: expected one argument"));
    cu_config_free(&c);
    CHECK(parse(&c, "--preload=yes", "app:app", NULL) == 2);
    CHECK(has(errtext, "ignored explicit argument 'yes'"));
    cu_config_free(&c);
    CHECK(parse(&c, "--wor", "3", "app:app", NULL) == 2);
    CHECK(has(errtext, "ambiguous option: --wor could match --workers"));
    cu_config_free(&c);
    CHECK(parse(&c, NULL) == 1 && has(errtext, "No application module specified."));
    cu_config_free(&c);
    CHECK(parse(&c, "--print-config", NULL) == 1);
    cu_config_free(&c);
    CHECK(parse(&c, "--chdir", "/nonexistent-dir", "app:app", NULL) == 1);
    CHECK(has(errtext, "can't chdir to '/nonexistent-dir'"));
    cu_config_free(&c);
    CHECK(parse(&c, "--forwarded-allow-ips", "10.0.0.1/8", "app:app", NULL) == 1);
    CHECK(has(errtext, "forwarded_allow_ips") && has(errtext, "has host bits set"));
    cu_config_free(&c);
    CHECK(parse(&c, "--header-map", "x", "app:app", NULL) == 1);
    CHECK(has(errtext, "Invalid header map behaviour"));
    cu_config_free(&c);
    CHECK(parse(&c, "--proxy-protocol", "v3", "app:app", NULL) == 1);
    CHECK(has(errtext, "proxy_protocol must be: off, v1, v2, or auto"));
    cu_config_free(&c);
    /* gunicorn serves HTTP for any protocol but "uwsgi"; a typo is refused here */
    CHECK(parse(&c, "--protocol", "uWSGI", "app:app", NULL) == 1);
    CHECK(has(errtext, "protocol must be: http or uwsgi"));
    cu_config_free(&c);
    CHECK(parse(&c, "--uwsgi-allow-from", "10.0.0.1/8", "app:app", NULL) == 1);
    CHECK(has(errtext, "uwsgi_allow_ips") && has(errtext, "has host bits set"));
    cu_config_free(&c);
    CHECK(parse(&c, "-e", "NOEQUALS", "app:app", NULL) == 1 && has(errtext, "raw_env"));
    cu_config_free(&c);
}

/* gunicorn 27's HTTP/2 settings: names, defaults, validation. */
static void test_http2_settings(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "app:app", NULL) == CU_OK);
    CHECK(c.http_protocols.n == 1 && strcmp(c.http_protocols.v[0], "h1") == 0 && !cu_config_h2(&c));
    CHECK(c.http2_cleartext == CU_H2C_OFF && c.http2_max_concurrent_streams == 100 &&
          c.http2_initial_window_size == 65535 && c.http2_max_frame_size == 16384 &&
          c.http2_max_header_list_size == 65536);
    cu_config_free(&c);
    CHECK(parse(&c, "--http-protocols", " H2 , h1", "--http2-cleartext", "Prior-Knowledge",
                "--http2-max-concurrent-streams", "7", "--http2-initial-window-size", "65536",
                "--http2-max-frame-size", "16777215", "--http2-max-header-list-size", "0",
                "app:app", NULL) == CU_OK);
    CHECK(c.http_protocols.n == 2 && strcmp(c.http_protocols.v[0], "h2") == 0 &&
          strcmp(c.http_protocols.v[1], "h1") == 0 && cu_config_h2(&c));
    CHECK(c.http2_cleartext == CU_H2C_PRIOR && c.http2_max_concurrent_streams == 7 &&
          c.http2_initial_window_size == 65536 && c.http2_max_frame_size == 16777215 &&
          c.http2_max_header_list_size == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "--http-protocols", "h2,h3", "app:app", NULL) == 1 &&
          has(errtext, "Invalid protocol 'h3'"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http-protocols", "h1,H1", "app:app", NULL) == 1 &&
          has(errtext, "Duplicate protocols"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-cleartext", "both", "app:app", NULL) == CU_OK &&
          c.http2_cleartext == CU_H2C_BOTH);
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-cleartext", "upgrade", "app:app", NULL) == CU_OK &&
          c.http2_cleartext == CU_H2C_UPGRADE);
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-cleartext", "sometimes", "app:app", NULL) == 1 &&
          has(errtext, "Invalid http2_cleartext: sometimes"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-max-frame-size", "16383", "app:app", NULL) == 1 &&
          has(errtext, "between 16384 and 16777215, got 16383"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-max-concurrent-streams", "0", "app:app", NULL) == 1 &&
          has(errtext, "at least 1"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-initial-window-size", "2147483648", "app:app", NULL) == 1);
    cu_config_free(&c);
}

/* gunicorn's SSL settings: names, flags, defaults, validators */
static void test_ssl_settings(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "app:app", NULL) == CU_OK);
    CHECK(!c.certfile && !c.keyfile && !c.ca_certs && !c.ciphers && c.cert_reqs == 0);
    CHECK(c.suppress_ragged_eofs == 1 && c.do_handshake_on_connect == 0);
    CHECK(strcmp(c.ssl_version, "2") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "--certfile", " c.pem ", "--keyfile", "k.pem", "--ca-certs", "ca.pem",
                "--cert-reqs", "2", "--ciphers", "ECDHE+AESGCM", "--suppress-ragged-eofs",
                "--do-handshake-on-connect", "app:app", NULL) == CU_OK);
    CHECK(strcmp(c.certfile, "c.pem") == 0 && strcmp(c.keyfile, "k.pem") == 0);
    CHECK(strcmp(c.ca_certs, "ca.pem") == 0 && strcmp(c.ciphers, "ECDHE+AESGCM") == 0);
    CHECK(c.cert_reqs == 2 && c.suppress_ragged_eofs && c.do_handshake_on_connect);
    cu_config_free(&c);
    CHECK(parse(&c, "--cert-reqs", "0x1", "app:app", NULL) == CU_OK && c.cert_reqs == 1);
    cu_config_free(&c);
    CHECK(parse(&c, "--cert-reqs", "3", "app:app", NULL) == 1 && has(errtext, "cert_reqs"));
    cu_config_free(&c);
    CHECK(parse(&c, "--cert-reqs", "-1", "app:app", NULL) == 1);
    cu_config_free(&c);
    /* deprecated and ignored, but still taken (with gunicorn's warning) */
    CHECK(parse(&c, "--ssl-version", "TLSv1_2", "app:app", NULL) == CU_OK);
    CHECK(strcmp(c.ssl_version, "TLSv1_2") == 0);
    cu_config_free(&c);
}

static void test_not_yet(void)
{
    cu_config_t c;
    clean_env();
    /* the HTTP/2 settings, the last ones "not yet", are supported now */
    CHECK(parse(&c, "--http2-max-concurrent-streams", "10", "app:app", NULL) == 0 &&
          c.http2_max_concurrent_streams == 10);
    cu_config_free(&c);
    CHECK(parse(&c, "app:app", NULL) == 0 && c.sendfile == -1);
    cu_config_free(&c);
    CHECK(parse(&c, "--no-sendfile", "app:app", NULL) == 0 && c.sendfile == 0 &&
          !cu_config_use_sendfile(&c));
    cu_config_free(&c);
    CHECK(parse(&c, "--http-parser", " Python", "app:app", NULL) == 0 &&
          strcmp(c.http_parser, "python") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "--http-parser", "pico", "app:app", NULL) != 0 &&
          has(errtext, "http_parser must be one of: auto, fast, python"));
    cu_config_free(&c);
    CHECK(parse(&c, "--http2-max-c", "5", "app:app", NULL) == 0 &&
          c.http2_max_concurrent_streams == 5); /* an abbreviation, as argparse takes it */
    cu_config_free(&c);
    CHECK(parse(&c, "-k", "tornado", "app:app", NULL) == 2);
    CHECK(has(errtext, "'tornado'") && has(errtext, "not supported yet"));
    cu_config_free(&c);
    static const char *const gevents[] = {"gevent", "gevent_wsgi", "gevent_pywsgi",
                                          "gunicorn.workers.ggevent.GeventWorker",
                                          "gunicorn.workers.ggevent.GeventPyWSGIWorker"};
    for (size_t i = 0; i < CU_NELEM(gevents); i++) {
        CHECK(parse(&c, "-k", gevents[i], "--threads", "4", "app:app", NULL) == CU_OK);
        CHECK(c.worker_class == CU_WORKER_GEVENT); /* --threads does not make it gthread */
        cu_config_free(&c);
    }
    cu_config_free(&c);
    CHECK(parse(&c, "-c", "gunicorn.conf.py", "app:app", NULL) == 2);
    CHECK(has(errtext, "config files are not supported yet"));
    cu_config_free(&c);
    CHECK(parse(&c, "--config=x.py", "app:app", NULL) == 2);
    cu_config_free(&c);
}

static void test_help_version_print(void)
{
    cu_config_t c;
    clean_env();
    CHECK(parse(&c, "-v", NULL) == CU_DONE);
    CHECK(strcmp(outtext, "cunicorn (version " CU_VERSION ")\n") == 0);
    cu_config_free(&c);
    CHECK(parse(&c, "--foo", "--help", NULL) == CU_DONE);
    CHECK(has(outtext, "usage: cunicorn") && has(outtext, "--workers INT") &&
          has(outtext, "does not support yet") && has(outtext, "--certfile FILE"));
    cu_config_free(&c);
    CHECK(parse(&c, "--print-settings-doc", NULL) == CU_DONE);
    CHECK(has(outtext, "| `workers` |") && has(outtext, "| `http2_max_frame_size` |") &&
          has(outtext, "| supported |"));
    cu_config_free(&c);

    static char buf[65536];
    CHECK(parse(&c, "--print-config", "-w", "3", "-b", "a:1", "-b", "b:2", "--forwarded-allow-ips",
                "10.0.0.0/8, *", "--proxy-protocol", "v1", "--uwsgi-allow-from", "::1, 10.1.0.0/16",
                "x:app", NULL) == CU_OK);
    print_to(&c, buf, sizeof(buf));
    CHECK(has(buf, "\nworkers                            = 3\n"));
    CHECK(has(buf, "\nbind                               = ['a:1', 'b:2']\n"));
    CHECK(has(buf, "\nforwarded_allow_ips                = ['10.0.0.0/8', '*']\n"));
    CHECK(has(buf, "\nproxy_protocol                     = v1\n"));
    CHECK(has(buf, "\nprotocol                           = http\n"));
    CHECK(has(buf, "\nuwsgi_allow_ips                    = ['::1', '10.1.0.0/16']\n"));
    CHECK(has(buf, "\nprint_config                       = True\n"));
    CHECK(has(buf, "\ndefault_proc_name                  = x:app\n"));
    CHECK(has(buf, "\ncertfile                           = None\n"));
    CHECK(has(buf, "\nsecure_scheme_headers              = {'X-FORWARDED-PROTOCOL': 'ssl', "));
    CHECK(has(buf, "\nwhen_ready                         = <WhenReady.when_ready()>\n"));
    CHECK(strncmp(buf, "access_log_format                  = %(h)s", 41) == 0);
    /* 120 settings, one line each */
    size_t lines = 0;
    for (const char *p = buf; *p; p++)
        lines += *p == '\n';
    CHECK(lines == 120);
    cu_config_free(&c);
}

static void test_set_api(void)
{
    cu_config_t c;
    char err[256];
    clean_env();
    cu_config_defaults(&c);
    CHECK(cu_config_set(&c, "workers", "0x10", err, sizeof(err)) == CU_OK && c.workers == 16);
    CHECK(cu_config_set(&c, "workers", "010", err, sizeof(err)) == 1);
    CHECK(cu_config_set(&c, "preload_app", "True", err, sizeof(err)) == CU_OK && c.preload_app);
    CHECK(cu_config_set(&c, "preload_app", "maybe", err, sizeof(err)) == 1);
    const char *binds[] = {"a:1", "b:2"};
    CHECK(cu_config_set_list(&c, "bind", binds, 2, err, sizeof(err)) == CU_OK && c.bind.n == 2);
    CHECK(cu_config_set(&c, "http2_max_frame_size", "1000", err, sizeof(err)) == 1);
    CHECK(cu_config_set(&c, "http2_max_frame_size", "32768", err, sizeof(err)) == CU_OK &&
          c.http2_max_frame_size == 32768);
    CHECK(cu_config_set(&c, "nope", "x", err, sizeof(err)) == 1);
    cu_config_free(&c);
}

int main(void)
{
    test_defaults();
    test_env_defaults();
    test_option_forms();
    test_gunicorn_cmd_args();
    test_errors();
    test_not_yet();
    test_http2_settings();
    test_ssl_settings();
    test_help_version_print();
    test_set_api();
    return t_done("test_config");
}
