/* Documents generated from the settings table for `make install`: the man page
 * (`cunicorn --print-man-page`) and the bash completion (`cunicorn --print-bash-completion`).
 * docs/settings.md and --help come from the same rows (config.c). */
#include "config/table.h"

#include <string.h>

/* Text for roff: backslashes, hyphens (so that flags copy-paste as ASCII), and a control
 * character at the start of a line. */
static void roff(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

static void man_setting(FILE *out, const cu__setting_t *s)
{
    char syn[256];
    cu__option_synopsis(s, syn, sizeof(syn));
    fputs(".TP\n.B ", out);
    roff(out, syn);
    fputc('\n', out);
    roff(out, s->doc);
    if (s->status == CU__SUPPORTED && s->def != NULL) {
        fputs(" Default: ", out);
        roff(out, s->def);
        fputc('.', out);
    }
    fprintf(out, " (setting \\fB%s\\fR)\n", s->name);
}

void cu_config_print_man(FILE *out)
{
    fprintf(
        out,
        ".\\\" Generated from src/config/table.c by `cunicorn --print-man-page`.\n"
        ".TH CUNICORN 1 \"\" \"cunicorn %s\" \"User Commands\"\n"
        ".SH NAME\n"
        "cunicorn \\- a pre\\-fork WSGI HTTP server for UNIX with gunicorn's interface\n"
        ".SH SYNOPSIS\n"
        ".B cunicorn\n"
        "[\\fIOPTIONS\\fR] [\\fIAPP_MODULE\\fR]\n"
        ".SH DESCRIPTION\n"
        "cunicorn serves the WSGI application \\fIAPP_MODULE\\fR (\\fIMODULE\\fR:\\fIVARIABLE\\fR) "
        "with a master process and pre\\-forked workers. It takes gunicorn's command line, "
        "\\fBGUNICORN_CMD_ARGS\\fR, config file (\\fBgunicorn.conf.py\\fR), server hooks, "
        "signals and log formats. Precedence, lowest first: defaults, the config file, "
        "\\fBGUNICORN_CMD_ARGS\\fR, the command line.\n"
        ".SH OPTIONS\n"
        ".TP\n.B \\-h, \\-\\-help\nshow the options and exit\n"
        ".TP\n.B \\-v, \\-\\-version\nshow the version and exit\n",
        CU_VERSION);
    const char *section = NULL;
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status != CU__SUPPORTED || !s->flags[0])
            continue;
        if (!section || strcmp(section, s->section) != 0) {
            fputs(".SS \"", out);
            roff(out, section = s->section);
            fputs("\"\n", out);
        }
        man_setting(out, s);
    }
    fputs(".SH \"CONFIG FILE ONLY\"\n"
          "Settings without a flag, given in the config file (server hooks are described in "
          "docs/hooks.md):\n",
          out);
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status != CU__SUPPORTED || s->flags[0])
            continue;
        fprintf(out, ".TP\n.B %s\n", s->name);
        roff(out, s->doc);
        fputc('\n', out);
    }
    size_t not_yet = 0;
    for (size_t i = 0; i < cu__nsettings; i++)
        not_yet += cu__settings[i].status != CU__SUPPORTED;
    if (not_yet)
        fputs(".SH \"NOT SUPPORTED YET\"\n"
              "gunicorn settings that cunicorn refuses (giving one is an error, exit status 2 "
              "on the command line; never ignored):\n",
              out);
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status == CU__SUPPORTED)
            continue;
        fprintf(out, ".TP\n.B %s\n", s->name);
        roff(out, s->doc);
        fputc('\n', out);
    }
    fputs(".SH SIGNALS\n"
          ".TP\n.B HUP\nreload: re\\-read the config, start new workers, stop the old ones "
          "gracefully\n"
          ".TP\n.B TERM\ngraceful stop (waits up to graceful_timeout)\n"
          ".TP\n.B INT\nquick stop\n"
          ".TP\n.B QUIT\nstop (gunicorn: quick stop)\n"
          ".TP\n.B USR2\nstart a new master from the binary on disk, sharing the listeners "
          "(binary upgrade)\n"
          ".TP\n.B WINCH\nstop the workers gracefully, keep the master (after USR2)\n"
          ".TP\n.B TTIN, TTOU\none worker more, one worker less\n"
          ".TP\n.B USR1\nreopen the log files\n"
          ".SH ENVIRONMENT\n"
          ".TP\n.B GUNICORN_CMD_ARGS\nmore options, parsed before the command line's\n"
          ".TP\n.B WEB_CONCURRENCY\nthe default number of workers\n"
          ".TP\n.B VIRTUAL_ENV\nthe virtualenv whose packages the app imports, when the "
          "binary is not installed in one (a binary in \\fIVENV\\fR/bin uses \\fIVENV\\fR)\n"
          ".SH FILES\n"
          ".TP\n.B ./gunicorn.conf.py\nthe config file read when \\-c is not given\n"
          ".SH \"SEE ALSO\"\n"
          "\\fBcunicornc\\fR, the control socket client (docs/operations.md); "
          "docs/settings.md, docs/deployment.md and docs/migrating.md in the source "
          "distribution.\n",
          out);
}

/* A flag whose value is a path: the shell completes file names after it. */
static int takes_path(const cu__setting_t *s)
{
    static const char *const metas[] = {"FILE", "FILES", "DIR", "PATH", "CONFIG", "CONF"};
    if (s->kind == CU__K_CHDIR || s->kind == CU__K_PYPATH)
        return 1;
    if (s->meta == NULL)
        return 0;
    for (size_t i = 0; i < CU_NELEM(metas); i++)
        if (strcmp(s->meta, metas[i]) == 0)
            return 1;
    return 0;
}

static int takes_value(const cu__setting_t *s)
{
    return s->action == CU__A_STORE || s->action == CU__A_APPEND;
}

/* The flags of supported settings that match pred, separated by '|' (a bash case pattern). */
static void case_pattern(FILE *out, int (*pred)(const cu__setting_t *))
{
    const char *sep = "";
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status != CU__SUPPORTED || !pred(s))
            continue;
        for (int f = 0; s->flags[f]; f++) {
            fprintf(out, "%s%s", sep, s->flags[f]);
            sep = "|";
        }
    }
}

static int is_worker_class(const cu__setting_t *s)
{
    return s->kind == CU__K_WORKER;
}
static int is_loglevel(const cu__setting_t *s)
{
    return strcmp(s->name, "loglevel") == 0;
}
static int is_other_value(const cu__setting_t *s)
{
    return takes_value(s) && !takes_path(s) && !is_worker_class(s) && !is_loglevel(s);
}

void cu_config_print_bash_completion(FILE *out)
{
    fprintf(out,
            "# bash completion for cunicorn %s: generated from src/config/table.c by "
            "`cunicorn --print-bash-completion`.\n"
            "_cunicorn()\n"
            "{\n"
            "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
            "    case $prev in\n"
            "    ",
            CU_VERSION);
    case_pattern(out, takes_path);
    fputs(")\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "        return ;;\n    ",
          out);
    case_pattern(out, is_worker_class);
    fputs(")\n"
          "        COMPREPLY=($(compgen -W 'sync gthread' -- \"$cur\"))\n"
          "        return ;;\n    ",
          out);
    case_pattern(out, is_loglevel);
    fputs(")\n"
          "        COMPREPLY=($(compgen -W 'debug info warning error critical' -- \"$cur\"))\n"
          "        return ;;\n    ",
          out);
    case_pattern(out, is_other_value);
    fputs(")\n"
          "        return ;;\n"
          "    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W '-h --help -v --version",
          out);
    for (size_t i = 0; i < cu__nsettings; i++) {
        const cu__setting_t *s = &cu__settings[i];
        if (s->status != CU__SUPPORTED)
            continue;
        for (int f = 0; s->flags[f]; f++)
            fprintf(out, " %s", s->flags[f]);
    }
    fputs("' -- \"$cur\"))\n"
          "    fi\n"
          "}\n"
          "complete -F _cunicorn cunicorn\n",
          out);
}
