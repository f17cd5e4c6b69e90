/* Resolved settings. One table in config.c has a row per gunicorn setting (name, section,
 * CLI flags, type, default, validator, doc); the CLI parser, --help and --print-config come
 * from it. Values land in this struct; strings are owned by it (freed by cu_config_free). */
#ifndef CU_CONFIG_H
#define CU_CONFIG_H

#include "core/cu_core.h"

enum cu_header_map { CU_HEADER_MAP_DROP, CU_HEADER_MAP_REFUSE, CU_HEADER_MAP_DANGEROUS };
enum cu_proxy_protocol { CU_PROXY_OFF, CU_PROXY_V1, CU_PROXY_V2, CU_PROXY_AUTO };
enum cu_worker_class { CU_WORKER_SYNC, CU_WORKER_GTHREAD };

/* A list of strings (repeatable options such as --bind, --env, --pythonpath). */
typedef struct cu_strlist_s {
    char **v;
    size_t n;
} cu_strlist_t;

/* One allowed network for forwarded_allow_ips / proxy_allow_ips. */
typedef struct cu_cidr_s {
    int family;          /* AF_INET or AF_INET6; 0 = '*' (any), or AF_UNIX match */
    unsigned char addr[16];
    int prefix;
} cu_cidr_t;

typedef struct cu_cidrlist_s {
    cu_cidr_t *v;
    size_t n;
    int any; /* '*' present */
} cu_cidrlist_t;

typedef struct cu_config_s {
    /* server socket */
    cu_strlist_t bind;              /* default: 127.0.0.1:8000, or 0.0.0.0:$PORT */
    int backlog;                    /* 2048 */
    int reuse_port;                 /* false */

    /* worker processes */
    int workers;                    /* $WEB_CONCURRENCY or 1 */
    enum cu_worker_class worker_class;
    char *worker_class_str;         /* as given, for --print-config and messages */
    int threads;                    /* 1 */
    int worker_connections;         /* 1000 */
    int max_requests;               /* 0 = off */
    int max_requests_jitter;        /* 0 */
    int timeout;                    /* 30 s; 0 = off */
    int graceful_timeout;           /* 30 s */
    int keepalive;                  /* 2 s */

    /* security / parser limits */
    int limit_request_line;         /* 4094; 0 = unlimited (capped at 8190 internally like gunicorn) */
    int limit_request_fields;       /* 100; max 32768 */
    int limit_request_field_size;   /* 8190; 0 = unlimited (internal cap) */

    /* parser switches */
    enum cu_header_map header_map;  /* drop */
    int permit_obsolete_folding;
    int strip_header_spaces;
    int permit_unconventional_http_method;
    int permit_unconventional_http_version;
    int casefold_http_method;
    cu_cidrlist_t forwarded_allow_ips; /* $FORWARDED_ALLOW_IPS or 127.0.0.1,::1 */
    enum cu_proxy_protocol proxy_protocol;
    cu_cidrlist_t proxy_allow_ips;  /* 127.0.0.1,::1 */

    /* server mechanics */
    char *chdir;                    /* default: cwd at startup */
    cu_strlist_t pythonpath;        /* comma-separated on the CLI, split here */
    cu_strlist_t raw_env;           /* KEY=VALUE */
    char *pidfile;                  /* NULL = none */
    char *proc_name;                /* NULL = default (app module) */
    int preload_app;

    /* logging */
    char *accesslog;                /* NULL = off; "-" = stdout */
    char *access_log_format;        /* gunicorn's default format */
    char *errorlog;                 /* "-" */
    char *loglevel;                 /* "info" */

    /* app */
    char *app_uri;                  /* APP_MODULE positional */
    int print_config;
    int check_config;
} cu_config_t;

/* Fill every field with its default (reads PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS). */
void cu_config_defaults(cu_config_t *cfg);

/* Apply argv (argv[0] is skipped); GUNICORN_CMD_ARGS is applied first, then argv.
 * On a bad or unknown option: prints "cunicorn: error: ..." naming it to stderr and
 * returns 2 (the exit code to use). Prints help/version and returns CU_DONE for -h/-v.
 * Returns CU_OK otherwise. */
int cu_config_parse_argv(cu_config_t *cfg, int argc, char **argv);

/* Print "name = value" lines for every setting, sorted, as gunicorn --print-config does. */
void cu_config_print(const cu_config_t *cfg, FILE *out);

void cu_config_free(cu_config_t *cfg);

/* Does sockaddr `sa` match the list? (AF_UNIX peers match only '*'.) */
struct sockaddr;
int cu_cidr_match(const cu_cidrlist_t *l, const struct sockaddr *sa);

#endif
