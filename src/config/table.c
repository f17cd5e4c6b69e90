/* The settings table: every gunicorn setting, in gunicorn's order, with its flags, type,
 * default and whether cunicorn supports it yet. --help, --print-config, the parser and
 * docs/settings.md all come from these rows. */
#include "config/table.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFF(f) offsetof(cu_config_t, f)

/* A supported setting stored in cu_config_t.f */
#define SUP(nm, sect, fl, meta, act, kind, argt, f, def, doc)                                      \
    {                                                                                              \
        nm, sect, fl, meta, act, kind, CU__SUPPORTED, argt, OFF(f), def, NULL, doc                 \
    }
/* A gunicorn setting cunicorn does not support yet */
#define NOT(nm, sect, fl, meta, act, argt, def, doc)                                               \
    {                                                                                              \
        nm, sect, fl, meta, act, CU__K_OTHER, CU__NOT_YET, argt, 0, def, NULL, doc                 \
    }
#define FL(...)                                                                                    \
    {                                                                                              \
        __VA_ARGS__, NULL                                                                          \
    }
#define NOFL                                                                                       \
    {                                                                                              \
        NULL                                                                                       \
    }
/* A server hook cunicorn calls (the callable lives in py/hooks.c) */
#define HOOK(nm, sect, qual, doc)                                                                  \
    {                                                                                              \
        nm, sect, NOFL, NULL, CU__A_NONE, CU__K_HOOK, CU__SUPPORTED, CU__T_STR, 0, qual, NULL, doc \
    }
/* A hook of a feature cunicorn does not have yet */
#define HOOK_NOT(nm, sect, qual, doc) NOT(nm, sect, NOFL, NULL, CU__A_NONE, CU__T_STR, qual, doc)

#define S_CFG   "Config File"
#define S_SOCK  "Server Socket"
#define S_WORK  "Worker Processes"
#define S_SEC   "Security"
#define S_DBG   "Debugging"
#define S_MECH  "Server Mechanics"
#define S_LOG   "Logging"
#define S_NAME  "Process Naming"
#define S_HOOK  "Server Hooks"
#define S_SSL   "SSL"
#define S_H2    "HTTP/2"
#define S_DIRTY "Dirty Arbiters"
#define S_DHOOK "Dirty Arbiter Hooks"
#define S_CTL   "Control"
/* Settings gunicorn does not have: left out of --print-config, which mirrors gunicorn's. */
#define S_CUNICORN CU_SECTION_CUNICORN

const cu__setting_t cu__settings[] = {
    {"config", S_CFG, FL("-c", "--config"), "CONFIG", CU__A_STORE, CU__K_CONFIG, CU__SUPPORTED,
     CU__T_STR, 0, "./gunicorn.conf.py", NULL,
     "Python config file (gunicorn.conf.py) to read settings from."},
    SUP("wsgi_app", S_CFG, NOFL, "STRING", CU__A_NONE, CU__K_STR, CU__T_STR, wsgi_app, "None",
        "WSGI application as MODULE:VARIABLE when no APP_MODULE is given (config file)."),

    SUP("bind", S_SOCK, FL("-b", "--bind"), "ADDRESS", CU__A_APPEND, CU__K_LIST, CU__T_STR, bind,
        "['127.0.0.1:8000'] (['0.0.0.0:$PORT'] when PORT is set)",
        "Address to listen on: HOST, HOST:PORT, unix:PATH or fd://FD; repeatable."),
    SUP("backlog", S_SOCK, FL("--backlog"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT, backlog,
        "2048", "Maximum number of pending connections on a listener."),

    SUP("workers", S_WORK, FL("-w", "--workers"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT, workers,
        "1 ($WEB_CONCURRENCY when set)", "Number of worker processes."),
    SUP("worker_class", S_WORK, FL("-k", "--worker-class"), "STRING", CU__A_STORE, CU__K_WORKER,
        CU__T_STR, worker_class_str, "sync",
        "Worker type: sync, gthread, gevent or asgi (sync with --threads > 1 runs gthread; "
        "uvicorn.workers.UvicornWorker runs asgi)."),
    SUP("threads", S_WORK, FL("--threads"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT, threads, "1",
        "Number of application threads per worker (gthread)."),
    SUP("worker_connections", S_WORK, FL("--worker-connections"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, worker_connections, "1000",
        "Maximum number of simultaneous client connections per worker."),
    SUP("max_requests", S_WORK, FL("--max-requests"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT,
        max_requests, "0", "Restart a worker after this many requests (0 = never)."),
    SUP("max_requests_jitter", S_WORK, FL("--max-requests-jitter"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, max_requests_jitter, "0",
        "Random extra requests, up to this many, added to max_requests per worker."),
    SUP("timeout", S_WORK, FL("-t", "--timeout"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT, timeout,
        "30", "Kill and restart a worker silent for this many seconds (0 = off)."),
    SUP("graceful_timeout", S_WORK, FL("--graceful-timeout"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, graceful_timeout, "30",
        "Seconds a worker gets to finish its requests after a graceful stop."),
    SUP("keepalive", S_WORK, FL("--keep-alive"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT,
        keepalive, "2", "Seconds to wait for the next request on a keep-alive connection."),

    SUP("limit_request_line", S_SEC, FL("--limit-request-line"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, limit_request_line, "4094",
        "Maximum request-line size in bytes (0 = unlimited; capped at 8190)."),
    SUP("limit_request_fields", S_SEC, FL("--limit-request-fields"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, limit_request_fields, "100",
        "Maximum number of header fields in a request (capped at 32768)."),
    SUP("limit_request_field_size", S_SEC, FL("--limit-request-field_size"), "INT", CU__A_STORE,
        CU__K_INT, CU__T_INT, limit_request_field_size, "8190",
        "Maximum size in bytes of one request header field (0 = 8190)."),

    SUP("reload", S_DBG, FL("--reload"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, reload, "False",
        "Restart workers when application code changes."),
    SUP("reload_engine", S_DBG, FL("--reload-engine"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        reload_engine, "auto", "How --reload watches files: auto, poll or inotify."),
    SUP("reload_extra_files", S_DBG, FL("--reload-extra-file"), "FILES", CU__A_APPEND, CU__K_LIST,
        CU__T_STR, reload_extra_files, "[]", "More files or glob patterns for --reload to watch."),
    SUP("spew", S_DBG, FL("--spew"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, spew, "False",
        "Trace every line the server executes."),
    SUP("check_config", S_DBG, FL("--check-config"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        check_config, "False", "Check the configuration and the application, then exit."),
    SUP("print_config", S_DBG, FL("--print-config"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        print_config, "False", "Print the resolved settings, then check like --check-config."),

    SUP("preload_app", S_MECH, FL("--preload"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        preload_app, "False", "Import the application in the master before forking workers."),
    {"sendfile", S_MECH, FL("--no-sendfile"), NULL, CU__A_CONST, CU__K_SENDFILE, CU__SUPPORTED,
     CU__T_STR, OFF(sendfile), "None", "false",
     "Do not use sendfile() for wsgi.file_wrapper responses (default: $SENDFILE, else on)."},
    SUP("reuse_port", S_MECH, FL("--reuse-port"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        reuse_port, "False", "Set SO_REUSEPORT on listening sockets."),
    SUP("chdir", S_MECH, FL("--chdir"), NULL, CU__A_STORE, CU__K_CHDIR, CU__T_STR, chdir,
        "current directory", "Change to this directory before loading the application."),
    SUP("daemon", S_MECH, FL("-D", "--daemon"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, daemon,
        "False", "Detach the server from the terminal and run in the background."),
    SUP("raw_env", S_MECH, FL("-e", "--env"), "ENV", CU__A_APPEND, CU__K_ENV, CU__T_STR, raw_env,
        "[]", "Set an environment variable (KEY=VALUE) for the application; repeatable."),
    SUP("pidfile", S_MECH, FL("-p", "--pid"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR, pidfile,
        "None", "Write the master's PID to this file."),
    SUP("worker_tmp_dir", S_MECH, FL("--worker-tmp-dir"), "DIR", CU__A_STORE, CU__K_STR, CU__T_STR,
        worker_tmp_dir, "None",
        "Must be writable, as in gunicorn; holds the unlinked spill files of output for slow "
        "readers past --max-unsent-output (heartbeats are shared memory)."),
    SUP("user", S_MECH, FL("-u", "--user"), "USER", CU__A_STORE, CU__K_STR, CU__T_STR, user, NULL,
        "Run workers as this user (name or uid)."),
    SUP("group", S_MECH, FL("-g", "--group"), "GROUP", CU__A_STORE, CU__K_STR, CU__T_STR, group,
        NULL, "Run workers as this group (name or gid)."),
    SUP("umask", S_MECH, FL("-m", "--umask"), "INT", CU__A_STORE, CU__K_INT, CU__T_AUTOINT, umask,
        "0", "File mode mask for unix sockets and the workers."),
    SUP("initgroups", S_MECH, FL("--initgroups"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        initgroups, "False", "Give workers all the groups of --user."),
    SUP("tmp_upload_dir", S_MECH, NOFL, "DIR", CU__A_NONE, CU__K_STR, CU__T_STR, tmp_upload_dir,
        "None", "Accepted as in gunicorn, which never uses it: bodies stream to wsgi.input."),
    SUP("secure_scheme_headers", S_MECH, NOFL, NULL, CU__A_NONE, CU__K_DICT, CU__T_STR,
        secure_scheme_headers,
        "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': "
        "'on'}",
        "Headers and values a trusted proxy uses to mark a request as HTTPS."),
    SUP("forwarded_allow_ips", S_MECH, FL("--forwarded-allow-ips"), "STRING", CU__A_STORE,
        CU__K_ADDRS, CU__T_STR, forwarded_allow_ips,
        "['127.0.0.1', '::1'] ($FORWARDED_ALLOW_IPS when set)",
        "Proxies (IPs, CIDRs or '*') trusted to set forwarding headers; comma-separated."),

    SUP("accesslog", S_LOG, FL("--access-logfile"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR,
        accesslog, "None", "Access log file ('-' = stdout); no access log when unset."),
    SUP("disable_redirect_access_to_syslog", S_LOG, FL("--disable-redirect-access-to-syslog"), NULL,
        CU__A_TRUE, CU__K_BOOL, CU__T_STR, disable_redirect_access_to_syslog, "False",
        "Do not send access log lines to syslog."),
    SUP("access_log_format", S_LOG, FL("--access-logformat"), "STRING", CU__A_STORE, CU__K_STR,
        CU__T_STR, access_log_format,
        "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"",
        "Access log line format, with gunicorn's %(atom)s atoms."),
    SUP("errorlog", S_LOG, FL("--error-logfile", "--log-file"), "FILE", CU__A_STORE, CU__K_STR,
        CU__T_STR, errorlog, "-", "Error log file ('-' = stderr)."),
    SUP("loglevel", S_LOG, FL("--log-level"), "LEVEL", CU__A_STORE, CU__K_STR, CU__T_STR, loglevel,
        "info", "Error log level: debug, info, warning, error or critical."),
    SUP("capture_output", S_LOG, FL("--capture-output"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR,
        capture_output, "False", "Send the application's stdout/stderr to the error log file."),
    SUP("logger_class", S_LOG, FL("--logger-class"), "STRING", CU__A_STORE, CU__K_LOGGER, CU__T_STR,
        logger_class, "gunicorn.glogging.Logger",
        "A gunicorn Logger (sub)class that gets every error and access log call; the default "
        "is cunicorn's C logger."),
    SUP("logconfig", S_LOG, FL("--log-config"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR,
        logconfig, "None", "Python logging config file (fileConfig format)."),
    SUP("logconfig_dict", S_LOG, NOFL, NULL, CU__A_NONE, CU__K_DICT, CU__T_STR, logconfig_dict,
        "{}", "Python logging config as a dictionary (dictConfig)."),
    SUP("logconfig_json", S_LOG, FL("--log-config-json"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR,
        logconfig_json, "None", "Python logging config read from a JSON file."),
    SUP("syslog_addr", S_LOG, FL("--log-syslog-to"), "SYSLOG_ADDR", CU__A_STORE, CU__K_STR,
        CU__T_STR, syslog_addr, "udp://localhost:514", "Where to send syslog messages."),
    SUP("syslog", S_LOG, FL("--log-syslog"), NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, syslog,
        "False", "Send logs to syslog."),
    SUP("syslog_prefix", S_LOG, FL("--log-syslog-prefix"), "SYSLOG_PREFIX", CU__A_STORE, CU__K_STR,
        CU__T_STR, syslog_prefix, "None", "Program name used in syslog entries."),
    SUP("syslog_facility", S_LOG, FL("--log-syslog-facility"), "SYSLOG_FACILITY", CU__A_STORE,
        CU__K_STR, CU__T_STR, syslog_facility, "user", "Syslog facility name."),
    SUP("enable_stdio_inheritance", S_LOG, FL("-R", "--enable-stdio-inheritance"), NULL, CU__A_TRUE,
        CU__K_BOOL, CU__T_STR, enable_stdio_inheritance, "False",
        "With --daemon, keep stdout/stderr where they point unless they are a terminal."),
    SUP("statsd_host", S_LOG, FL("--statsd-host"), "STATSD_ADDR", CU__A_STORE, CU__K_STR, CU__T_STR,
        statsd_host, "None", "StatsD server to send metrics to (host:port or unix://PATH)."),
    SUP("dogstatsd_tags", S_LOG, FL("--dogstatsd-tags"), "DOGSTATSD_TAGS", CU__A_STORE, CU__K_STR,
        CU__T_STR, dogstatsd_tags, "", "Comma-separated DogStatsD tags added to every metric."),
    SUP("statsd_prefix", S_LOG, FL("--statsd-prefix"), "STATSD_PREFIX", CU__A_STORE, CU__K_STR,
        CU__T_STR, statsd_prefix, "", "Prefix for StatsD metric names."),
    SUP("enable_backlog_metric", S_LOG, FL("--enable-backlog-metric"), NULL, CU__A_TRUE, CU__K_BOOL,
        CU__T_STR, enable_backlog_metric, "False",
        "Report the listen backlog length as a metric (Linux)."),

    SUP("proc_name", S_NAME, FL("-n", "--name"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        proc_name, "None", "Base name for the processes' titles."),
    {"default_proc_name", S_NAME, NOFL, NULL, CU__A_NONE, CU__K_PROCNAME, CU__SUPPORTED, CU__T_STR,
     0, "gunicorn", NULL, "Process title base when proc_name is unset (APP_MODULE)."},

    SUP("pythonpath", S_MECH, FL("--pythonpath"), "STRING", CU__A_STORE, CU__K_PYPATH, CU__T_STR,
        pythonpath, "None", "Comma-separated directories to add to the Python path."),
    SUP("paste", S_MECH, FL("--paste", "--paster"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        paste, "None", "Load a PasteDeploy config file (PATH[#SECTION])."),

    HOOK("on_starting", S_HOOK, "<OnStarting.on_starting()>",
         "Hook: before the master initializes."),
    HOOK("on_reload", S_HOOK, "<OnReload.on_reload()>", "Hook: on SIGHUP reload."),
    HOOK("when_ready", S_HOOK, "<WhenReady.when_ready()>", "Hook: once the server started."),
    HOOK("pre_fork", S_HOOK, "<Prefork.pre_fork()>", "Hook: before a worker is forked."),
    HOOK("post_fork", S_HOOK, "<Postfork.post_fork()>", "Hook: in a worker just after fork."),
    HOOK("post_worker_init", S_HOOK, "<PostWorkerInit.post_worker_init()>",
         "Hook: after a worker loaded the application."),
    HOOK("worker_int", S_HOOK, "<WorkerInt.worker_int()>", "Hook: a worker got SIGINT or SIGQUIT."),
    HOOK("worker_abort", S_HOOK, "<WorkerAbort.worker_abort()>", "Hook: a worker got SIGABRT."),
    HOOK("pre_exec", S_HOOK, "<PreExec.pre_exec()>", "Hook: before a new master is exec'd."),
    HOOK("pre_request", S_HOOK, "<PreRequest.pre_request()>",
         "Hook: before a worker handles a request."),
    HOOK("post_request", S_HOOK, "<PostRequest.post_request()>",
         "Hook: after a worker handled a request."),
    HOOK("child_exit", S_HOOK, "<ChildExit.child_exit()>",
         "Hook: in the master after a worker exited."),
    HOOK("worker_exit", S_HOOK, "<WorkerExit.worker_exit()>", "Hook: in a worker as it exits."),
    HOOK("nworkers_changed", S_HOOK, "<NumWorkersChanged.nworkers_changed()>",
         "Hook: the number of workers changed."),
    HOOK("on_exit", S_HOOK, "<OnExit.on_exit()>", "Hook: before the server exits."),
    HOOK("ssl_context", S_HOOK, "<NewSSLContext.ssl_context()>",
         "Hook: build the SSLContext for TLS listeners."),

    {"proxy_protocol", S_MECH, FL("--proxy-protocol"), "MODE", CU__A_OPTIONAL, CU__K_PROXY,
     CU__SUPPORTED, CU__T_STR, 0, "off", "auto",
     "Accept the PROXY protocol: off, v1, v2 or auto (the flag alone means auto)."},
    SUP("proxy_allow_ips", S_MECH, FL("--proxy-allow-from"), NULL, CU__A_STORE, CU__K_ADDRS,
        CU__T_STR, proxy_allow_ips, "['127.0.0.1', '::1']",
        "Peers (IPs, CIDRs or '*') allowed to send a PROXY header; comma-separated."),
    SUP("protocol", S_MECH, FL("--protocol"), "STRING", CU__A_STORE, CU__K_PROTO, CU__T_STR,
        protocol, "http",
        "Protocol on the listeners: http, or uwsgi (nginx uwsgi_pass; see docs/uwsgi.md)."),
    SUP("uwsgi_allow_ips", S_MECH, FL("--uwsgi-allow-from"), NULL, CU__A_STORE, CU__K_ADDRS,
        CU__T_STR, uwsgi_allow_ips, "['127.0.0.1', '::1']",
        "Peers (IPs, CIDRs or '*') allowed to send uwsgi requests; comma-separated."),

    SUP("keyfile", S_SSL, FL("--keyfile"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR, keyfile,
        "None", "TLS private key file (PEM; unencrypted)."),
    SUP("certfile", S_SSL, FL("--certfile"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR, certfile,
        "None", "TLS certificate (chain) file, PEM; TLS is on when certfile or keyfile is set."),
    SUP("ssl_version", S_SSL, FL("--ssl-version"), NULL, CU__A_STORE, CU__K_STR, CU__T_STR,
        ssl_version, "2", "Deprecated and ignored, as in gunicorn; use ssl_context."),
    SUP("cert_reqs", S_SSL, FL("--cert-reqs"), NULL, CU__A_STORE, CU__K_INT, CU__T_STR, cert_reqs,
        "0", "Client certificate: 0 not asked, 1 optional, 2 required (ssl.CERT_*)."),
    SUP("ca_certs", S_SSL, FL("--ca-certs"), "FILE", CU__A_STORE, CU__K_STR, CU__T_STR, ca_certs,
        "None", "CA certificates file that client certificates are verified against."),
    SUP("suppress_ragged_eofs", S_SSL, FL("--suppress-ragged-eofs"), NULL, CU__A_TRUE, CU__K_BOOL,
        CU__T_STR, suppress_ragged_eofs, "True",
        "Treat a TLS connection closed without close_notify as EOF."),
    SUP("do_handshake_on_connect", S_SSL, FL("--do-handshake-on-connect"), NULL, CU__A_TRUE,
        CU__K_BOOL, CU__T_STR, do_handshake_on_connect, "False",
        "Accepted as in gunicorn; the handshake always runs in the loop before the request."),
    SUP("ciphers", S_SSL, FL("--ciphers"), NULL, CU__A_STORE, CU__K_STR, CU__T_STR, ciphers, "None",
        "TLS 1.2 cipher list (OpenSSL syntax); default: Python's ssl module default list."),

    SUP("http_protocols", S_H2, FL("--http-protocols"), "STRING", CU__A_STORE, CU__K_H2PROTO,
        CU__T_STR, http_protocols, "['h1']",
        "HTTP versions to offer, in preference order (h1, h2): ALPN over TLS, h2c per "
        "http2_cleartext; h2 on the sync, gthread and asgi workers."),
    SUP("http2_cleartext", S_H2, FL("--http2-cleartext"), "STRING", CU__A_STORE, CU__K_H2C,
        CU__T_STR, http2_cleartext, "off",
        "HTTP/2 without TLS: off, prior-knowledge, upgrade or both (peers in "
        "forwarded_allow_ips and unix sockets only)."),
    SUP("http2_max_concurrent_streams", S_H2, FL("--http2-max-concurrent-streams"), "INT",
        CU__A_STORE, CU__K_INT, CU__T_INT, http2_max_concurrent_streams, "100",
        "Maximum concurrent HTTP/2 streams per connection."),
    SUP("http2_initial_window_size", S_H2, FL("--http2-initial-window-size"), "INT", CU__A_STORE,
        CU__K_INT, CU__T_INT, http2_initial_window_size, "65535",
        "Initial HTTP/2 flow-control window in bytes."),
    SUP("http2_max_frame_size", S_H2, FL("--http2-max-frame-size"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_INT, http2_max_frame_size, "16384",
        "Maximum HTTP/2 frame payload in bytes (16384 to "
        "16777215)."),
    SUP("http2_max_header_list_size", S_H2, FL("--http2-max-header-list-size"), "INT", CU__A_STORE,
        CU__K_INT, CU__T_INT, http2_max_header_list_size, "65536",
        "Maximum HTTP/2 header list size in bytes (0 = unlimited); larger header "
        "blocks reset their stream."),

    SUP("raw_paste_global_conf", S_MECH, FL("--paste-global"), "CONF", CU__A_APPEND, CU__K_ENV,
        CU__T_STR, raw_paste_global_conf, "[]",
        "PasteDeploy global variable KEY=VALUE; repeatable."),
    SUP("permit_obsolete_folding", S_MECH, FL("--permit-obsolete-folding"), NULL, CU__A_TRUE,
        CU__K_BOOL, CU__T_STR, permit_obsolete_folding, "False",
        "Accept header values continued on the next line (obs-fold)."),
    SUP("strip_header_spaces", S_MECH, FL("--strip-header-spaces"), NULL, CU__A_TRUE, CU__K_BOOL,
        CU__T_STR, strip_header_spaces, "False",
        "Strip spaces between a header name and its colon (unsafe)."),
    SUP("permit_unconventional_http_method", S_MECH, FL("--permit-unconventional-http-method"),
        NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, permit_unconventional_http_method, "False",
        "Accept request methods that break the usual conventions."),
    SUP("permit_unconventional_http_version", S_MECH, FL("--permit-unconventional-http-version"),
        NULL, CU__A_TRUE, CU__K_BOOL, CU__T_STR, permit_unconventional_http_version, "False",
        "Accept HTTP versions other than 1.0 and 1.1."),
    SUP("casefold_http_method", S_MECH, FL("--casefold-http-method"), NULL, CU__A_TRUE, CU__K_BOOL,
        CU__T_STR, casefold_http_method, "False",
        "Upper-case request methods received in lower case."),
    SUP("forwarder_headers", S_MECH, FL("--forwarder-headers"), NULL, CU__A_STORE, CU__K_CSV,
        CU__T_STR, forwarder_headers, "['SCRIPT_NAME', 'PATH_INFO']",
        "Environ variables a trusted proxy may set through headers."),
    {"header_map", S_MECH, FL("--header-map"), NULL, CU__A_STORE, CU__K_HMAP, CU__SUPPORTED,
     CU__T_STR, 0, "drop", NULL,
     "Header names with '_': drop them, refuse the request, or map them (dangerous)."},

    SUP("asgi_loop", S_WORK, FL("--asgi-loop"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        asgi_loop, "auto", "Event loop for ASGI workers: auto, asyncio or uvloop."),
    SUP("asgi_lifespan", S_WORK, FL("--asgi-lifespan"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        asgi_lifespan, "auto", "ASGI lifespan protocol: auto, on or off."),
    SUP("asgi_disconnect_grace_period", S_WORK, FL("--asgi-disconnect-grace-period"), "INT",
        CU__A_STORE, CU__K_INT, CU__T_INT, asgi_disconnect_grace_period, "3",
        "Seconds an ASGI app gets after a client disconnects."),
    SUP("websocket_max_message_size", S_WORK, FL("--websocket-max-message-size"), "INT",
        CU__A_STORE, CU__K_INT, CU__T_INT, websocket_max_message_size, "16777216",
        "Largest WebSocket message the ASGI worker accepts (larger: close 1009)."),
    SUP("http_parser", S_WORK, FL("--http-parser"), "STRING", CU__A_STORE, CU__K_PARSER, CU__T_STR,
        http_parser, "auto",
        "auto, fast or python as in gunicorn: cunicorn's C parser serves all three."),
    SUP("root_path", S_MECH, FL("--root-path"), "STRING", CU__A_STORE, CU__K_STR, CU__T_STR,
        root_path, "", "ASGI root_path (mount point behind a proxy)."),

    SUP("dirty_apps", S_DIRTY, FL("--dirty-app"), "STRING", CU__A_APPEND, CU__K_LIST, CU__T_STR,
        dirty_apps, "[]",
        "Dirty application as module:Class or module:Class:N (N workers load it); repeatable."),
    SUP("dirty_workers", S_DIRTY, FL("--dirty-workers"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT,
        dirty_workers, "0", "Number of dirty worker processes (0 = no dirty arbiter)."),
    SUP("dirty_timeout", S_DIRTY, FL("--dirty-timeout"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT,
        dirty_timeout, "300",
        "Seconds a dirty call may take before its caller gets an error (0 = off)."),
    SUP("dirty_threads", S_DIRTY, FL("--dirty-threads"), "INT", CU__A_STORE, CU__K_INT, CU__T_INT,
        dirty_threads, "1", "Calls a dirty worker runs at once (threads per dirty worker)."),
    SUP("dirty_graceful_timeout", S_DIRTY, FL("--dirty-graceful-timeout"), "INT", CU__A_STORE,
        CU__K_INT, CU__T_INT, dirty_graceful_timeout, "30",
        "Seconds dirty workers get to finish their calls on a graceful stop."),
    HOOK("on_dirty_starting", S_DHOOK, "<OnDirtyStarting.on_dirty_starting()>",
         "Hook: in the dirty arbiter as it starts."),
    HOOK("dirty_post_fork", S_DHOOK, "<DirtyPostFork.dirty_post_fork()>",
         "Hook: in the dirty arbiter after a dirty worker was forked."),
    HOOK("dirty_worker_init", S_DHOOK, "<DirtyWorkerInit.dirty_worker_init()>",
         "Hook: in a dirty worker after every app's init()."),
    HOOK("dirty_worker_exit", S_DHOOK, "<DirtyWorkerExit.dirty_worker_exit()>",
         "Hook: in the dirty arbiter after a dirty worker exited."),

    SUP("control_socket", S_CTL, FL("--control-socket"), "PATH", CU__A_STORE, CU__K_STR, CU__T_STR,
        control_socket, NULL, "UNIX socket for the control interface."),
    SUP("control_socket_mode", S_CTL, FL("--control-socket-mode"), "INT", CU__A_STORE, CU__K_INT,
        CU__T_AUTOINT, control_socket_mode, "384", "File mode of the control socket."),
    SUP("control_socket_disable", S_CTL, FL("--no-control-socket"), NULL, CU__A_TRUE, CU__K_BOOL,
        CU__T_STR, control_socket_disable, "False", "Do not open the control socket."),
    /* cunicorn-only (not a gunicorn setting) */
    SUP("max_worker_memory", S_CUNICORN, FL("--max-worker-memory"), "MB", CU__A_STORE, CU__K_INT,
        CU__T_INT, max_worker_memory, "0",
        "cunicorn only: recycle a worker gracefully once its RSS passes this many MB (0 = off)."),
    {"require_host", S_CUNICORN, FL("--no-require-host"), NULL, CU__A_CONST, CU__K_BOOL,
     CU__SUPPORTED, CU__T_STR, OFF(require_host), "True", "false",
     "cunicorn only: an HTTP/1.1 request without Host gets 400 (RFC 9112 3.2, as nginx); "
     "--no-require-host serves it, as gunicorn does."},
    SUP("max_unsent_output", S_CUNICORN, FL("--max-unsent-output"), "MB", CU__A_STORE, CU__K_INT,
        CU__T_INT, max_unsent_output, "32",
        "cunicorn only: response bytes a worker keeps in memory for clients that read slower "
        "than the app writes, all connections together; past it they go to an unlinked "
        "temporary file (0 = straight to the file)."),
    SUP("websocket_deflate_disable", S_CUNICORN, FL("--no-websocket-deflate"), NULL, CU__A_TRUE,
        CU__K_BOOL, CU__T_STR, websocket_deflate_disable, "False",
        "cunicorn only: never negotiate permessage-deflate on ASGI WebSockets."),
};

const size_t cu__nsettings = CU_NELEM(cu__settings);

const cu__setting_t *cu__setting_find(const char *name)
{
    for (size_t i = 0; i < cu__nsettings; i++)
        if (strcmp(cu__settings[i].name, name) == 0)
            return &cu__settings[i];
    return NULL;
}

const char *cu__setting_dyn_default(const cu__setting_t *s, char *buf, size_t cap)
{
    if (strcmp(s->name, "user") == 0) {
        snprintf(buf, cap, "%u", (unsigned)geteuid());
    } else if (strcmp(s->name, "group") == 0) {
        snprintf(buf, cap, "%u", (unsigned)getegid());
    } else if (strcmp(s->name, "control_socket") == 0) {
        /* $XDG_RUNTIME_DIR/gunicorn.ctl when that is a directory, else ~/.gunicorn/ */
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        struct stat st;
        if (xdg && *xdg && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(buf, cap, "%s/gunicorn.ctl", xdg);
        } else {
            const char *home = getenv("HOME");
            if (!home) {
                struct passwd *pw = getpwuid(getuid());
                home = pw ? pw->pw_dir : "~";
            }
            snprintf(buf, cap, "%s/.gunicorn/gunicorn.ctl", home);
        }
    } else {
        snprintf(buf, cap, "%s", s->def ? s->def : "None");
    }
    return buf;
}
