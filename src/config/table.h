/* The settings table: one row per gunicorn setting (internal to src/config/).
 * table.c holds the rows; config.c applies and prints values; cli.c parses argv. */
#ifndef CU_CONFIG_TABLE_H
#define CU_CONFIG_TABLE_H

#include "config/config.h"

#include <stddef.h>

/* How the command line gives a value (gunicorn's argparse action/nargs). */
enum cu__action {
    CU__A_NONE,     /* no command-line flag (config file only) */
    CU__A_STORE,    /* --opt VALUE, last one wins */
    CU__A_APPEND,   /* --opt VALUE, repeatable */
    CU__A_TRUE,     /* flag: store_true */
    CU__A_CONST,    /* flag: store_const (value in `konst`) */
    CU__A_OPTIONAL, /* --opt [VALUE]: `konst` when no value follows */
};

/* What the value is, and for supported settings how it is held in cu_config_t. */
enum cu__kind {
    CU__K_INT,      /* int field, validate_pos_int */
    CU__K_BOOL,     /* int field, 0/1 */
    CU__K_STR,      /* char * field, stripped, NULL = None */
    CU__K_LIST,     /* cu_strlist_t field, each entry stripped */
    CU__K_ADDRS,    /* cu_cidrlist_t field, comma list of IPs/CIDRs or '*' */
    CU__K_ENV,      /* raw_env: list of KEY=VALUE */
    CU__K_WORKER,   /* worker_class */
    CU__K_HMAP,     /* header_map */
    CU__K_PROXY,    /* proxy_protocol */
    CU__K_PROTO,    /* protocol: http or uwsgi */
    CU__K_CHDIR,    /* chdir */
    CU__K_PYPATH,   /* pythonpath */
    CU__K_PROCNAME, /* default_proc_name: derived from APP_MODULE */
    CU__K_CONFIG,   /* config: the config file path */
    CU__K_HOOK,     /* a server hook: a Python callable kept by py/hooks.c (config file only) */
    CU__K_DICT,     /* char * field: str(dict) of a config-file dict, NULL = default */
    CU__K_CSV,      /* cu_strlist_t field from one comma-separated str (validate_string_to_list) */
    CU__K_PARSER,   /* http_parser: char * field, auto/fast/python (validate_http_parser) */
    CU__K_SENDFILE, /* sendfile: int field, -1 = None, else validate_bool */
    CU__K_LOGGER,   /* logger_class: char * field, NULL = gunicorn.glogging.Logger */
    CU__K_H2PROTO,  /* http_protocols: comma list of h1/h2 */
    CU__K_H2C,      /* http2_cleartext */
    CU__K_OTHER,    /* not supported yet: only its default is known */
};

enum cu__status { CU__SUPPORTED, CU__NOT_YET };

/* Section of the cunicorn-only settings (max_worker_memory): --print-config skips them. */
#define CU_SECTION_CUNICORN "cunicorn"

enum cu__argtype { CU__T_STR, CU__T_INT, CU__T_AUTOINT };

typedef struct cu__setting_s {
    const char *name;
    const char *section;
    const char *flags[3];  /* all spellings, NULL-terminated */
    const char *meta;      /* metavar in --help */
    unsigned char action;  /* enum cu__action */
    unsigned char kind;    /* enum cu__kind */
    unsigned char status;  /* enum cu__status */
    unsigned char argtype; /* enum cu__argtype: how argparse converts the text */
    size_t off;            /* offsetof(cu_config_t, field) for supported settings */
    const char *def;       /* gunicorn's default as --print-config shows it; NULL = computed */
    const char *konst;     /* value for CU__A_CONST / CU__A_OPTIONAL */
    const char *doc;       /* one line */
} cu__setting_t;

extern const cu__setting_t cu__settings[];
extern const size_t cu__nsettings;

const cu__setting_t *cu__setting_find(const char *name);

/* Default value text for a NOT_YET setting whose default depends on the environment
 * (user, group, control_socket). Writes into buf; returns buf. */
const char *cu__setting_dyn_default(const cu__setting_t *s, char *buf, size_t cap);

/* The option's spellings with their metavar, as --help shows them: "-b ADDRESS, --bind
 * ADDRESS". Writes a NUL-terminated string into buf (truncated to cap). */
void cu__option_synopsis(const cu__setting_t *s, char *buf, size_t cap);

/* Python's repr() of a str, as list printing in --print-config needs. */
void cu__py_repr(FILE *out, const char *s);

/* Apply one raw value (from the command line or cu_config_set) to cfg. For CU__A_TRUE and
 * CU__A_CONST flags value is "true"/"false" or the const. Returns CU_OK or an exit code
 * with a message (naming the setting) in err. */
int cu__setting_apply(cu_config_t *cfg, const cu__setting_t *s, const char *value, char *err,
                      size_t errlen);
int cu__setting_apply_list(cu_config_t *cfg, const cu__setting_t *s, const char *const *v, size_t n,
                           char *err, size_t errlen);

/* Finish after all sources were applied: resolve worker_class, pythonpath; check that an
 * APP_MODULE was given. Returns CU_OK or an exit code with a message in err. */
int cu__config_finish(cu_config_t *cfg, char *err, size_t errlen);

#endif
