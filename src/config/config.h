/* Resolved settings. One table in config.c has a row per gunicorn setting (name, section,
 * CLI flags, type, default, validator, doc); the CLI parser, --help and --print-config come
 * from it. Values land in this struct; strings are owned by it (freed by cu_config_free). */
#ifndef CU_CONFIG_H
#define CU_CONFIG_H

#include "core/cu_core.h"

/* The version: written once, in python/cunicorn/_version.py, which the Makefile reads. */
#ifndef CU_VERSION
#error "CU_VERSION comes from python/cunicorn/_version.py (-DCU_VERSION, see the Makefile)"
#endif

/* The gunicorn release whose behaviour cunicorn follows. */
#define CU_GUNICORN_VERSION "27.0.1"

/* environ["SERVER_SOFTWARE"] (and the SERVER_SOFTWARE environment variable, as gunicorn's
 * arbiter sets it). Apps test for "gunicorn/" (httpbin accepts chunked uploads only then),
 * so the string starts as gunicorn's does and names cunicorn in a product comment
 * (RFC 9110 10.2.4 syntax): "gunicorn/27.0.1 (cunicorn 0.1.0)". */
#define CU_SERVER_SOFTWARE "gunicorn/" CU_GUNICORN_VERSION " (cunicorn " CU_VERSION ")"

enum cu_header_map { CU_HEADER_MAP_DROP, CU_HEADER_MAP_REFUSE, CU_HEADER_MAP_DANGEROUS };
enum cu_proxy_protocol { CU_PROXY_OFF, CU_PROXY_V1, CU_PROXY_V2, CU_PROXY_AUTO };
enum cu_worker_class { CU_WORKER_SYNC, CU_WORKER_GTHREAD, CU_WORKER_GEVENT, CU_WORKER_ASGI };
enum cu_protocol { CU_PROTOCOL_HTTP, CU_PROTOCOL_UWSGI };
/* http2_cleartext: how HTTP/2 without TLS may start (trusted peers only). */
enum cu_h2c { CU_H2C_OFF, CU_H2C_PRIOR, CU_H2C_UPGRADE, CU_H2C_BOTH };

/* A list of strings (repeatable options such as --bind, --env, --pythonpath). */
typedef struct cu_strlist_s {
    char **v;
    size_t n;
} cu_strlist_t;

/* One allowed network for forwarded_allow_ips / proxy_allow_ips / uwsgi_allow_ips. */
typedef struct cu_cidr_s {
    int family; /* AF_INET or AF_INET6; 0 = '*' (any), or AF_UNIX match */
    unsigned char addr[16];
    int prefix;
} cu_cidr_t;

typedef struct cu_cidrlist_s {
    cu_cidr_t *v;
    size_t n;
    int any;          /* '*' present */
    cu_strlist_t src; /* the entries as given (for --print-config) */
} cu_cidrlist_t;

typedef struct cu_config_s {
    /* server socket */
    cu_strlist_t bind; /* default: 127.0.0.1:8000, or 0.0.0.0:$PORT */
    int backlog;       /* 2048 */
    int reuse_port;    /* false */

    /* worker processes */
    int workers; /* $WEB_CONCURRENCY or 1 */
    enum cu_worker_class worker_class;
    char *worker_class_str;  /* as given, for --print-config and messages */
    int worker_class_alias;  /* named another server's worker (uvicorn's): runs asgi */
    int threads;             /* 1 */
    int worker_connections;  /* 1000 */
    int max_requests;        /* 0 = off */
    int max_requests_jitter; /* 0 */
    int timeout;             /* 30 s; 0 = off */
    int graceful_timeout;    /* 30 s */
    int keepalive;           /* 2 s */
    /* ASGI worker (-k asgi) */
    char *asgi_loop;                  /* "auto", "asyncio", "uvloop" (validated, lower-cased) */
    char *asgi_lifespan;              /* "auto", "on", "off" */
    int asgi_disconnect_grace_period; /* 3 s */
    char *root_path;                  /* "" */
    int websocket_max_message_size;   /* 16 MiB: larger messages close with 1009 */
    int websocket_deflate_disable;    /* cunicorn only: never negotiate permessage-deflate */

    /* security / parser limits */
    /* Stored as given (--print-config shows them so); use the cu_config_eff_* helpers
     * below for the limits gunicorn actually enforces. */
    int limit_request_line;       /* 4094 */
    int limit_request_fields;     /* 100 */
    int limit_request_field_size; /* 8190 */

    /* parser switches */
    enum cu_header_map header_map; /* drop */
    int permit_obsolete_folding;
    int strip_header_spaces;
    int permit_unconventional_http_method;
    int permit_unconventional_http_version;
    int casefold_http_method;
    cu_cidrlist_t forwarded_allow_ips; /* $FORWARDED_ALLOW_IPS or 127.0.0.1,::1 */
    enum cu_proxy_protocol proxy_protocol;
    cu_cidrlist_t proxy_allow_ips; /* 127.0.0.1,::1 */
    enum cu_protocol protocol;     /* http: what every listener speaks */
    cu_cidrlist_t uwsgi_allow_ips; /* 127.0.0.1,::1: peers allowed to send uwsgi packets */
    /* secure_scheme_headers: a dict in a config file; str(dict) here (NULL = gunicorn's
     * default). The dict itself is kept by the config-file loader (py/): see py/pylog.c. */
    char *secure_scheme_headers;
    cu_strlist_t forwarder_headers; /* SCRIPT_NAME,PATH_INFO; upper-case names */

    /* HTTP/2 (http/h2.c) */
    cu_strlist_t http_protocols;      /* "h1", "h2" in preference order (validated) */
    enum cu_h2c http2_cleartext;      /* off */
    int http2_max_concurrent_streams; /* 100, >= 1 */
    int http2_initial_window_size;    /* 65535, <= 2^31-1 */
    int http2_max_frame_size;         /* 16384 .. 16777215 */
    int http2_max_header_list_size;   /* 65536; 0 = unlimited */

    /* server mechanics */
    char *chdir;             /* default: cwd at startup */
    cu_strlist_t pythonpath; /* comma-separated on the CLI, split here; relative entries
                                are made absolute against chdir, as gunicorn does */
    char *pythonpath_str;    /* as given (NULL = unset) */
    cu_strlist_t raw_env;    /* KEY=VALUE */
    char *pidfile;           /* NULL = none */
    char *proc_name;         /* NULL = default (app module) */
    int preload_app;
    int sendfile;         /* -1 = None (gunicorn's default: $SENDFILE decides); see
                             cu_config_use_sendfile */
    char *tmp_upload_dir; /* accepted and validated as gunicorn; unused, as in gunicorn */
    char *http_parser;    /* auto, fast or python: cunicorn's C parser serves all three */
    /* process management (proc/master.c) */
    int daemon;                   /* -D */
    int enable_stdio_inheritance; /* -R: with -D, stdout/stderr kept unless a terminal */
    char *user;                   /* -u: name or uid; NULL = do not change */
    char *group;                  /* -g: name or gid; NULL = do not change */
    int initgroups;               /* --initgroups */
    int umask;                    /* -m: for unix sockets and workers; 0 */
    char *worker_tmp_dir;         /* accepted; the heartbeat is shared memory, not a file */
    char *control_socket;         /* NULL = $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/ */
    int control_socket_mode;      /* 0600 (384) */
    int control_socket_disable;
    int max_worker_memory; /* cunicorn-only: recycle a worker past this RSS (MB); 0 = off */
    int require_host;      /* cunicorn-only: HTTP/1.1 without Host -> 400 (RFC 9112 3.2); 1 */
    int max_unsent_output; /* cunicorn-only: unsent response bytes kept in memory (MB) */

    /* dirty arbiters (gunicorn 25+): the arbiter runs when dirty_workers > 0 and apps set */
    cu_strlist_t dirty_apps;    /* module:Class or module:Class:N */
    int dirty_workers;          /* 0 = off */
    int dirty_timeout;          /* 300 s; 0 = off */
    int dirty_threads;          /* 1 */
    int dirty_graceful_timeout; /* 30 s */

    /* logging */
    char *accesslog;         /* NULL = off; "-" = stdout */
    char *access_log_format; /* gunicorn's default format */
    char *errorlog;          /* "-" */
    char *loglevel;          /* "info" */
    int capture_output;      /* stdout/stderr into the error log file */
    int syslog;
    char *syslog_addr;     /* NULL = udp://localhost:514 */
    char *syslog_prefix;   /* NULL = proc name */
    char *syslog_facility; /* NULL = "user" */
    int disable_redirect_access_to_syslog;
    char *logger_class;   /* NULL = gunicorn.glogging.Logger: the C logger (py/pylog.c) */
    char *logconfig;      /* fileConfig file */
    char *logconfig_dict; /* str(dict) of the config-file dict (kept by py/); NULL = {} */
    char *logconfig_json; /* dictConfig from a JSON file */
    char *statsd_host;    /* host:port or unix://PATH; NULL = off */
    char *statsd_prefix;  /* NULL = "" */
    char *dogstatsd_tags; /* NULL = "" */
    int enable_backlog_metric;

    /* debugging, paste */
    int reload;
    char *reload_engine;             /* NULL = auto; auto, poll, inotify */
    cu_strlist_t reload_extra_files; /* files or glob patterns */
    int spew;
    char *paste;                        /* PATH[#SECTION]: load the app with PasteDeploy */
    cu_strlist_t raw_paste_global_conf; /* KEY=VALUE */

    /* SSL (net/tls.c): TLS is on when certfile or keyfile is set */
    char *keyfile;
    char *certfile;
    char *ssl_version; /* deprecated, validated and ignored as in gunicorn; "2" by default */
    int cert_reqs;     /* 0 none, 1 optional, 2 required */
    char *ca_certs;
    int suppress_ragged_eofs; /* true */
    int do_handshake_on_connect;
    char *ciphers; /* NULL = Python's default cipher list */
    int ssl_version_warned;

    /* app */
    char *app_uri; /* APP_MODULE positional */
    int print_config;
    int check_config;
    char *config;      /* -c PATH, or ./gunicorn.conf.py when it exists; NULL = none */
    char *wsgi_app;    /* from a config file: the app when no APP_MODULE is given */
    int app_from_args; /* app_uri came from the command line (default_proc_name) */

    /* --print-config text of values held outside this struct (hooks: "<qualname()>"),
     * indexed like the settings table; NULL entries print the usual way. Owned. */
    char **shown;
} cu_config_t;

/* http_protocols includes h2. */
int cu_config_h2(const cu_config_t *cfg);

/* Effective parser limits, as gunicorn derives them from the settings:
 * request line: 0 = unlimited (gunicorn still stops at 1 MiB), >= 8190 -> 8190;
 * fields: 0 or > 32768 -> 32768; field size: 0 -> 8190 (not unlimited). */
#define CU_MAX_REQUEST_LINE             8190
#define CU_MAX_HEADERS                  32768
#define CU_DEFAULT_MAX_HEADERFIELD_SIZE 8190
static inline size_t cu_config_eff_limit_request_line(const cu_config_t *cfg)
{
    if (cfg->limit_request_line == 0)
        return 1024 * 1024;
    return cfg->limit_request_line >= CU_MAX_REQUEST_LINE ? CU_MAX_REQUEST_LINE
                                                          : (size_t)cfg->limit_request_line;
}
static inline size_t cu_config_eff_limit_request_fields(const cu_config_t *cfg)
{
    if (cfg->limit_request_fields <= 0 || cfg->limit_request_fields > CU_MAX_HEADERS)
        return CU_MAX_HEADERS;
    return (size_t)cfg->limit_request_fields;
}
static inline size_t cu_config_eff_limit_request_field_size(const cu_config_t *cfg)
{
    return cfg->limit_request_field_size <= 0 ? CU_DEFAULT_MAX_HEADERFIELD_SIZE
                                              : (size_t)cfg->limit_request_field_size;
}

/* Fill every field with its default (reads PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS). */
void cu_config_defaults(cu_config_t *cfg);

/* Apply the command line like gunicorn: defaults (already in cfg) < config file <
 * GUNICORN_CMD_ARGS (split like shlex) < argv (argv[0] is skipped). A repeatable option
 * given in argv replaces, not extends, the list from GUNICORN_CMD_ARGS (as in gunicorn).
 * Returns:
 *   CU_OK    settings applied, APP_MODULE present, cfg->worker_class resolved;
 *   CU_DONE  -h/--help, -v/--version (or the hidden --print-settings-doc) was printed to
 *            stdout: exit 0;
 *   2        command-line error (unknown/ambiguous option, missing or malformed argument,
 *            a gunicorn setting cunicorn does not support yet, a config file);
 *   1        a value its validator rejects, or no APP_MODULE (gunicorn exits 1 for these).
 * Every error prints one "cunicorn: error: ..." line naming the option/setting to stderr. */
int cu_config_parse_argv(cu_config_t *cfg, int argc, char **argv);

/* Config-file hook (gunicorn.conf.py). Until one is registered, a config file (-c PATH, or
 * ./gunicorn.conf.py in the startup directory) is an error. The loader runs after the
 * command line was parsed and before its values are applied (so the command line wins);
 * it sets values with cu_config_set()/cu_config_set_list() and returns CU_OK, or an exit
 * code (> 0) after printing its own message. `path` is the location as given (-c value,
 * "file:PATH", "python:MODULE") or the absolute path of ./gunicorn.conf.py; `shown` is how
 * messages name it ("gunicorn.conf.py" for the default file). main() installs
 * py/config_file.c's (cu_py_config_file_install). */
typedef int (*cu_config_file_cb)(cu_config_t *cfg, const char *path, const char *shown, void *ctx);
void cu_config_set_file_loader(cu_config_file_cb cb, void *ctx);

/* What a config-file loader needs to know about a setting name. */
enum cu_config_vtype {
    CU_CV_INT,     /* validate_pos_int: int (bool counts) or str for int(x, 0) */
    CU_CV_BOOL,    /* validate_bool: bool or "true"/"false" */
    CU_CV_STR,     /* validate_string: str (stripped) or None */
    CU_CV_LIST,    /* validate_list_string: str, or an iterable of str */
    CU_CV_ADDRS,   /* validate_string_to_addr_list: one comma-separated str */
    CU_CV_CHOICE,  /* header_map / proxy_protocol / protocol / http_protocols / http2_cleartext:
                    * str (proxy_protocol and http2_cleartext: bool too) */
    CU_CV_CLASS,   /* worker_class: str */
    CU_CV_HOOK,    /* a server hook: a callable, kept by the loader */
    CU_CV_FIXED,   /* config / default_proc_name: not taken from a file */
    CU_CV_NOT_YET, /* a gunicorn setting cunicorn does not support yet */
    CU_CV_DICT,    /* validate_dict: a dict; the loader keeps the object, C gets str(dict) */
};

/* CU_OK and *vtype for a setting name; CU_ERROR when no setting has that name. */
int cu_config_lookup(const char *name, enum cu_config_vtype *vtype);

/* Names of all settings, in table order: i = 0.. until NULL. */
const char *cu_config_setting_name(size_t i);

/* gunicorn's default as --print-config shows it, for any setting (into buf). */
const char *cu_config_default_text(const char *name, char *buf, size_t cap);

/* Override what --print-config shows for `name` (copied; NULL clears). */
void cu_config_set_shown(cu_config_t *cfg, const char *name, const char *text);

/* Write one setting's value: as --print-config does (literal = 0), or as a Python literal
 * (literal = 1: strings quoted, lists as lists) for building a Python-side cfg object;
 * settings without a literal form (hooks, not-yet ones) are written as --print-config
 * shows them. Returns CU_OK, or CU_ERROR for an unknown name. */
int cu_config_print_value(const cu_config_t *cfg, const char *name, int literal, FILE *out);

/* Set one setting by gunicorn name from its string form, through the same validator as
 * the command line (lists: replaced by the one value; bools: "true"/"false"; value NULL is
 * Python's None: unsets a string setting).
 * Returns CU_OK, or an exit code (> 0) with a message in err. Settings cunicorn does not
 * support yet are rejected (2). */
int cu_config_set(cu_config_t *cfg, const char *name, const char *value, char *err, size_t errlen);
int cu_config_set_list(cu_config_t *cfg, const char *name, const char *const *v, size_t n,
                       char *err, size_t errlen);

/* Print "name = value" lines for every setting, sorted, as gunicorn --print-config does
 * (settings cunicorn does not support yet show gunicorn's default). */
void cu_config_print(const cu_config_t *cfg, FILE *out);

/* --help text, generated from the settings table. */
void cu_config_print_help(FILE *out);

/* docs/settings.md, generated from the settings table (`cunicorn --print-settings-doc`). */
void cu_config_print_doc(FILE *out);

/* The man page (roff) and the bash completion script, generated from the settings table
 * (config/gen.c; `cunicorn --print-man-page`, `--print-bash-completion`; make install). */
void cu_config_print_man(FILE *out);
void cu_config_print_bash_completion(FILE *out);

void cu_config_free(cu_config_t *cfg);

/* Parse a comma-separated list of IPs/CIDRs or '*' (forwarded_allow_ips syntax) into l
 * (replacing its contents). Returns CU_OK, or CU_ERROR with the reason in err. */
int cu_cidrlist_parse(cu_cidrlist_t *l, const char *text, char *err, size_t errlen);
void cu_cidrlist_free(cu_cidrlist_t *l);

/* Does sockaddr `sa` match the list? An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches
 * IPv4 entries. AF_UNIX peers always match: gunicorn trusts UNIX-socket peers for both
 * forwarded headers and the PROXY protocol. */
struct sockaddr;
int cu_cidr_match(const cu_cidrlist_t *l, const struct sockaddr *sa);

/* gunicorn's cfg.sendfile: 0 when the sendfile setting was given at all (--no-sendfile,
 * or any value in a config file: gunicorn only tests that it is set), otherwise $SENDFILE
 * (y, 1, yes, true, any case) when that is set, otherwise 1. */
int cu_config_use_sendfile(const cu_config_t *cfg);

/* gunicorn's cfg.worker_class_str: the worker_class as given, "gthread" for sync with
 * threads > 1 ("Using worker: %s" at startup). Borrowed from cfg. */
const char *cu_config_worker_class_str(const cu_config_t *cfg);

#endif
