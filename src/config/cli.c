/* The command line, parsed the way gunicorn's argparse parser reads it: --opt VALUE,
 * --opt=VALUE, unambiguous --prefixes, -wVALUE, -w=VALUE, combined short flags, '--',
 * options and APP_MODULE in any order; then GUNICORN_CMD_ARGS (split like shlex.split). */
#include "config/table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define USAGE "usage: cunicorn [OPTIONS] [APP_MODULE]\n"

static cu_config_file_cb file_loader;
static void *file_loader_ctx;

void cu_config_set_file_loader(cu_config_file_cb cb, void *ctx)
{
    file_loader = cb;
    file_loader_ctx = ctx;
}

/* What one source (argv or GUNICORN_CMD_ARGS) gave, before any value is applied: like
 * argparse, the last value of an option wins and repeatable options collect a list. */
typedef struct pass_s {
    char **val;          /* per setting: owned value, NULL = not given */
    cu_strlist_t *lists; /* per setting, for CU__A_APPEND */
    char *app;           /* first positional argument */
    cu_strlist_t unknown;
} pass_t;

static void pass_init(pass_t *p)
{
    p->val = cu_xcalloc(cu__nsettings, sizeof(*p->val));
    p->lists = cu_xcalloc(cu__nsettings, sizeof(*p->lists));
    p->app = NULL;
    memset(&p->unknown, 0, sizeof(p->unknown));
}

static void list_free(cu_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cu_free(l->v[i]);
    }
    cu_free(l->v);
    l->n = 0;
}

static void list_push(cu_strlist_t *l, char *owned)
{
    l->v = cu_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = owned;
}

static void pass_free(pass_t *p)
{
    for (size_t i = 0; i < cu__nsettings; i++) {
        cu_free(p->val[i]);
        list_free(&p->lists[i]);
    }
    cu_free(p->val);
    cu_free(p->lists);
    cu_free(p->app);
    list_free(&p->unknown);
}

/* ---- shlex.split (POSIX mode, no comments) ---- */

static int shlex_split(const char *s, cu_strlist_t *out, const char **why)
{
    size_t cap = strlen(s) + 1;
    char *tok = cu_xmalloc(cap);
    size_t n = 0;
    int in_tok = 0;
    for (;;) {
        char c = *s;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (in_tok)
                list_push(out, cu_xstrndup(tok, n));
            in_tok = 0;
            n = 0;
            if (c == '\0')
                break;
            s++;
        } else if (c == '\\') {
            if (s[1] == '\0') {
                *why = "No escaped character";
                goto fail;
            }
            tok[n++] = s[1];
            in_tok = 1;
            s += 2;
        } else if (c == '\'' || c == '"') {
            in_tok = 1;
            for (s++; *s != c; s++) {
                if (*s == '\0') {
                    *why = "No closing quotation";
                    goto fail;
                }
                if (c == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                tok[n++] = *s;
            }
            s++;
        } else {
            tok[n++] = c;
            in_tok = 1;
            s++;
        }
    }
    cu_free(tok);
    return CU_OK;
fail:
    cu_free(tok);
    return CU_ERROR;
}

/* ---- option lookup ---- */

enum { OPT_SETTING, OPT_HELP, OPT_VERSION, OPT_DOC, OPT_MAN, OPT_BASH };

typedef struct opt_s {
    int what;
    const cu__setting_t *s;
    const char *flag; /* the spelling matched */
} opt_t;

static const char *const builtin_flags[] = {"-h", "--help", "-v", "--version"};

/* Exact spelling (len bytes of name). */
static int find_exact(const char *name, size_t len, opt_t *o)
{
    for (size_t i = 0; i < CU_NELEM(builtin_flags); i++) {
        if (strlen(builtin_flags[i]) == len && memcmp(builtin_flags[i], name, len) == 0) {
            o->what = i < 2 ? OPT_HELP : OPT_VERSION;
            o->s = NULL;
            o->flag = builtin_flags[i];
            return 1;
        }
    }
    if (len == strlen("--print-settings-doc") && memcmp(name, "--print-settings-doc", len) == 0) {
        o->what = OPT_DOC;
        o->s = NULL;
        o->flag = "--print-settings-doc";
        return 1;
    }
    /* hidden, for make install: documents generated from the table (config/gen.c) */
    static const char *const gen_flags[] = {"--print-man-page", "--print-bash-completion"};
    for (size_t i = 0; i < CU_NELEM(gen_flags); i++) {
        if (len == strlen(gen_flags[i]) && memcmp(name, gen_flags[i], len) == 0) {
            o->what = i == 0 ? OPT_MAN : OPT_BASH;
            o->s = NULL;
            o->flag = gen_flags[i];
            return 1;
        }
    }
    for (size_t i = 0; i < cu__nsettings; i++) {
        for (int f = 0; cu__settings[i].flags[f]; f++) {
            const char *fl = cu__settings[i].flags[f];
            if (strlen(fl) == len && memcmp(fl, name, len) == 0) {
                o->what = OPT_SETTING;
                o->s = &cu__settings[i];
                o->flag = fl;
                return 1;
            }
        }
    }
    return 0;
}

/* Long options that start with name[0..len): count, first match in *o, all in `list`. */
static int find_prefix(const char *name, size_t len, opt_t *o, char *list, size_t cap)
{
    int count = 0;
    size_t used = 0;
    list[0] = '\0';
#define CONSIDER(fl, WHAT, S)                                                                      \
    do {                                                                                           \
        if (strncmp((fl), "--", 2) == 0 && strncmp((fl), name, len) == 0) {                        \
            if (count++ == 0) {                                                                    \
                o->what = (WHAT);                                                                  \
                o->s = (S);                                                                        \
                o->flag = (fl);                                                                    \
            }                                                                                      \
            int w = snprintf(list + used, cap - used, "%s%s", used ? ", " : "", (fl));             \
            if (w > 0 && (size_t)w < cap - used)                                                   \
                used += (size_t)w;                                                                 \
        }                                                                                          \
    } while (0)
    CONSIDER("--version", OPT_VERSION, NULL);
    CONSIDER("--help", OPT_HELP, NULL);
    for (size_t i = 0; i < cu__nsettings; i++)
        for (int f = 0; cu__settings[i].flags[f]; f++)
            CONSIDER(cu__settings[i].flags[f], OPT_SETTING, &cu__settings[i]);
#undef CONSIDER
    return count;
}

static int is_negative_number(const char *a)
{
    /* argparse: ^-\d+$|^-\d*\.\d+$ */
    const char *p = a + 1;
    const char *dig = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '\0')
        return p > dig;
    if (*p != '.')
        return 0;
    const char *frac = ++p;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == '\0' && p > frac;
}

/* Would argparse read this token as an option (rather than a value)? */
static int looks_like_option(const char *a)
{
    opt_t o;
    char list[8];
    if (a[0] != '-' || a[1] == '\0')
        return 0;
    if (find_exact(a, strlen(a), &o))
        return 1;
    const char *eq = strchr(a, '=');
    if (eq && find_exact(a, (size_t)(eq - a), &o))
        return 1;
    if (a[1] == '-') {
        if (find_prefix(a, eq ? (size_t)(eq - a) : strlen(a), &o, list, sizeof(list)))
            return 1;
    } else if (find_exact(a, 2, &o)) {
        return 1;
    }
    if (is_negative_number(a))
        return 0;
    if (strchr(a, ' '))
        return 0;
    return 1;
}

/* ---- errors ---- */

static void flag_names(const cu__setting_t *s, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int f = 0; s->flags[f]; f++) {
        int w = snprintf(buf + n, cap - n, "%s%s", f ? "/" : "", s->flags[f]);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(USAGE "cunicorn: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static int error_exit(int code, const char *msg)
{
    fprintf(stderr, "cunicorn: error: %s\n", msg);
    return code;
}

/* Python's int(str) as argparse's type=int applies it. */
static int py_int10(const char *s, long long *out)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    long long v = 0;
    int nd = 0;
    for (; isdigit((unsigned char)*s) || *s == '_'; s++) {
        if (*s == '_') {
            if (nd == 0 || !isdigit((unsigned char)s[1]))
                return CU_ERROR;
            continue;
        }
        if (v > (LLONG_MAX - (*s - '0')) / 10)
            return CU_ERROR;
        v = v * 10 + (*s - '0');
        nd++;
    }
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (*s || nd == 0)
        return CU_ERROR;
    *out = neg ? -v : v;
    return CU_OK;
}

/* Python's int(x, 0) after gunicorn's auto_int turns a leading "0d" into "0od". */
static int py_auto_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end)
        return CU_ERROR;
    *out = v;
    return CU_OK;
}

/* ---- one source ---- */

/* Store a value for the option in the pass, converting as argparse's `type` would. */
static int store_value(pass_t *p, const cu__setting_t *s, const char *value)
{
    size_t idx = (size_t)(s - cu__settings);
    char *v;
    if (s->argtype != CU__T_STR) {
        long long n;
        int ok = s->argtype == CU__T_INT ? py_int10(value, &n) : py_auto_int(value, &n);
        if (ok != CU_OK) {
            char names[128];
            flag_names(s, names, sizeof(names));
            char *mem = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&mem, &len);
            if (f) {
                cu__py_repr(f, value);
                fclose(f);
            }
            usage_error("argument %s: invalid %s value: %s", names,
                        s->argtype == CU__T_INT ? "int" : "auto_int", mem ? mem : value);
            cu_free(mem);
            return 2;
        }
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", n);
        v = cu_xstrdup(buf);
    } else {
        v = cu_xstrdup(value);
    }
    if (s->action == CU__A_APPEND) {
        list_push(&p->lists[idx], v);
    } else {
        cu_free(p->val[idx]);
        p->val[idx] = v;
    }
    return CU_OK;
}

static int not_supported(const opt_t *o, const char *origin)
{
    fprintf(stderr,
            "cunicorn: error: %s (%s)%s is a gunicorn setting cunicorn does not support yet\n",
            o->flag, o->s->name, origin);
    return 2;
}

/* Parse tokens into the pass. Returns CU_OK, CU_DONE (help/version printed), or 2. */
static int parse_tokens(char *const *tok, size_t n, pass_t *p, const char *origin)
{
    int only_positional = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a = tok[i];
        if (only_positional || !looks_like_option(a)) {
            if (!p->app)
                p->app = cu_xstrdup(a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }

        opt_t o;
        const char *explicit_arg = NULL;
        const char *eq = strchr(a, '=');
        if (find_exact(a, strlen(a), &o)) {
            /* as is */
        } else if (eq && find_exact(a, (size_t)(eq - a), &o)) {
            explicit_arg = eq + 1;
        } else if (a[1] == '-') {
            char list[2048];
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            int count = find_prefix(a, len, &o, list, sizeof(list));
            if (count > 1)
                return usage_error("ambiguous option: %.*s could match %s", (int)len, a, list);
            if (count == 0) {
                list_push(&p->unknown, cu_xstrdup(a));
                continue;
            }
            if (eq)
                explicit_arg = eq + 1;
        } else if (find_exact(a, 2, &o)) {
            explicit_arg = a + 2;
        } else {
            list_push(&p->unknown, cu_xstrdup(a));
            continue;
        }

        /* combined short flags: -DR is -D -R */
        for (;;) {
            if (o.what == OPT_HELP) {
                cu_config_print_help(stdout);
                return CU_DONE;
            }
            if (o.what == OPT_VERSION) {
                printf("cunicorn (version %s)\n", CU_VERSION);
                return CU_DONE;
            }
            if (o.what == OPT_DOC) {
                cu_config_print_doc(stdout);
                return CU_DONE;
            }
            if (o.what == OPT_MAN || o.what == OPT_BASH) {
                (o.what == OPT_MAN ? cu_config_print_man : cu_config_print_bash_completion)(stdout);
                return CU_DONE;
            }
            const cu__setting_t *s = o.s;
            if (s->status == CU__NOT_YET && s->kind != CU__K_CONFIG)
                return not_supported(&o, origin);
            char names[128];
            flag_names(s, names, sizeof(names));

            if (s->action == CU__A_TRUE || s->action == CU__A_CONST) {
                if (explicit_arg && o.flag[1] != '-' && *explicit_arg) {
                    char next[3] = {'-', explicit_arg[0], '\0'};
                    int rc = store_value(p, s, s->action == CU__A_TRUE ? "true" : s->konst);
                    if (rc != CU_OK)
                        return rc;
                    if (!find_exact(next, 2, &o))
                        return usage_error("argument %s: ignored explicit argument '%s'", names,
                                           explicit_arg);
                    explicit_arg = explicit_arg[1] ? explicit_arg + 1 : NULL;
                    continue;
                }
                if (explicit_arg && (o.flag[1] == '-' || eq))
                    return usage_error("argument %s: ignored explicit argument '%s'", names,
                                       explicit_arg);
                int rc = store_value(p, s, s->action == CU__A_TRUE ? "true" : s->konst);
                if (rc != CU_OK)
                    return rc;
                break;
            }

            const char *value = explicit_arg;
            if (!value && i + 1 < n && strcmp(tok[i + 1], "--") != 0 &&
                !looks_like_option(tok[i + 1]))
                value = tok[++i];
            if (!value) {
                if (s->action != CU__A_OPTIONAL)
                    return usage_error("argument %s: expected one argument", names);
                value = s->konst;
            }
            int rc = store_value(p, s, value);
            if (rc != CU_OK)
                return rc;
            break;
        }
    }
    return CU_OK;
}

static int report_unknown(const pass_t *p)
{
    if (p->unknown.n == 0)
        return CU_OK;
    fputs(USAGE "cunicorn: error: unrecognized arguments:", stderr);
    for (size_t i = 0; i < p->unknown.n; i++)
        fprintf(stderr, " %s", p->unknown.v[i]);
    fputc('\n', stderr);
    return 2;
}

/* Apply what a pass gave, in table order (as gunicorn sets them). */
static int apply_pass(cu_config_t *cfg, const pass_t *p)
{
    char err[512];
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        int rc = CU_OK;
        if (s->kind == CU__K_CONFIG)
            continue;
        if (s->action == CU__A_APPEND && p->lists[i].n)
            rc = cu__setting_apply_list(cfg, s, (const char *const *)p->lists[i].v, p->lists[i].n,
                                        err, sizeof(err));
        else if (p->val[i])
            rc = cu__setting_apply(cfg, s, p->val[i], err, sizeof(err));
        if (rc != CU_OK)
            return error_exit(rc, err);
    }
    return CU_OK;
}

static int given(const pass_t *p, const char *name)
{
    const cu__setting_t *s = cu__setting_find(name);
    size_t i = (size_t)(s - cu__settings);
    return p->val[i] || p->lists[i].n;
}

int cu_config_parse_argv(cu_config_t *cfg, int argc, char **argv)
{
    pass_t args, env;
    cu_strlist_t env_tok = {0};
    char err[512];
    int rc;
    pass_init(&args);
    pass_init(&env);

    /* like gunicorn: argv is parsed first (so its -h/-v/errors come first), then
     * GUNICORN_CMD_ARGS; values are applied env first, argv last */
    rc = parse_tokens(argc > 1 ? argv + 1 : argv, argc > 1 ? (size_t)argc - 1 : 0, &args, "");
    if (rc == CU_OK)
        rc = report_unknown(&args);
    if (rc != CU_OK)
        goto done;

    const char *cmd_args = getenv("GUNICORN_CMD_ARGS");
    if (cmd_args) {
        const char *why = NULL;
        if (shlex_split(cmd_args, &env_tok, &why) != CU_OK) {
            snprintf(err, sizeof(err), "GUNICORN_CMD_ARGS: %s", why);
            rc = error_exit(2, err);
            goto done;
        }
        rc = parse_tokens(env_tok.v, env_tok.n, &env, " in GUNICORN_CMD_ARGS");
        if (rc == CU_OK)
            rc = report_unknown(&env);
        if (rc != CU_OK)
            goto done;
    }

    /* an invalid $FORWARDED_ALLOW_IPS is an error unless the command line replaces it */
    const char *fwd = getenv("FORWARDED_ALLOW_IPS");
    if (fwd && !given(&args, "forwarded_allow_ips") && !given(&env, "forwarded_allow_ips")) {
        cu_cidrlist_t tmp = {0};
        char why[300];
        if (cu_cidrlist_parse(&tmp, fwd, why, sizeof(why)) != CU_OK) {
            snprintf(err, sizeof(err), "FORWARDED_ALLOW_IPS (forwarded_allow_ips): %s", why);
            rc = error_exit(1, err);
            goto done;
        }
        cu_cidrlist_free(&tmp);
    }

    /* the config file: -c from argv, else from GUNICORN_CMD_ARGS, else ./gunicorn.conf.py */
    size_t ci = (size_t)(cu__setting_find("config") - cu__settings);
    const char *cfile = args.val[ci] ? args.val[ci] : env.val[ci];
    char *found = NULL;
    if (!cfile) {
        struct stat st;
        if (stat("gunicorn.conf.py", &st) == 0) {
            size_t len = strlen(cfg->chdir) + sizeof("/gunicorn.conf.py");
            found = cu_xmalloc(len);
            snprintf(found, len, "%s/gunicorn.conf.py", cfg->chdir);
            cfile = found;
        }
    }
    if (cfile) {
        /* --print-config shows -c as given; the file found by default leaves the default */
        cu_free(cfg->config);
        if (!found)
            cfg->config = cu_xstrdup(cfile);
        if (!file_loader) {
            if (found)
                snprintf(err, sizeof(err),
                         "%s exists, but config files are not supported yet (rename it, or "
                         "give its settings on the command line)",
                         found);
            else
                snprintf(err, sizeof(err), "-c/--config %s: config files are not supported yet",
                         cfile);
            cu_free(found);
            rc = error_exit(2, err);
            goto done;
        }
        rc = file_loader(cfg, cfile, found ? "gunicorn.conf.py" : cfile, file_loader_ctx);
        cu_free(found);
        if (rc != CU_OK)
            goto done;
    }

    rc = apply_pass(cfg, &env);
    if (rc == CU_OK)
        rc = apply_pass(cfg, &args);
    if (rc != CU_OK)
        goto done;

    /* GUNICORN_CMD_ARGS positionals are ignored, as in gunicorn */
    if (args.app) {
        cu_free(cfg->app_uri);
        cfg->app_uri = cu_xstrdup(args.app);
        cfg->app_from_args = 1;
    }
    rc = cu__config_finish(cfg, err, sizeof(err));
    if (rc != CU_OK)
        rc = error_exit(rc, err);

done:
    pass_free(&args);
    pass_free(&env);
    list_free(&env_tok);
    return rc;
}
