/* Master signal handlers and the self-pipe they feed. */
#include "proc/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static int sig_pipe[2] = {-1, -1};

static const int handled[] = {SIGHUP,  SIGQUIT, SIGINT,  SIGTERM,  SIGTTIN,
                              SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    /* A full pipe drops the byte: the loop still wakes, and signals do not queue anyway. */
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

int cu_signals_init(void)
{
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    for (size_t i = 0; i < CU_NELEM(handled); i++) {
        sa.sa_flags = SA_RESTART | (handled[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        if (sigaction(handled[i], &sa, NULL) < 0)
            return -errno;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return CU_OK;
}

int cu_signals_fd(void)
{
    return sig_pipe[0];
}

int cu_signals_next(void)
{
    unsigned char b;
    for (;;) {
        ssize_t r = read(sig_pipe[0], &b, 1);
        if (r == 1)
            return b;
        if (r < 0 && errno == EINTR)
            continue;
        return 0;
    }
}

void cu_signals_child_reset(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < CU_NELEM(handled); i++)
        sigaction(handled[i], &sa, NULL);
    /* Signals stay blocked (as they were across fork) until the worker has installed its
     * own handlers: cu_worker_main unblocks them. A TERM in between waits instead of
     * killing a half-started worker with the default action. */
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

static const struct {
    int sig;
    const char *abbrev;
} sig_names[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},   {SIGILL, "SIGILL"},
    {SIGTRAP, "SIGTRAP"},     {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},     {SIGFPE, "SIGFPE"},
    {SIGKILL, "SIGKILL"},     {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"},   {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},   {SIGCHLD, "SIGCHLD"},
    {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},   {SIGTTIN, "SIGTTIN"},
    {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},   {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGIO, "SIGIO"},
    {SIGPWR, "SIGPWR"},       {SIGSYS, "SIGSYS"},
};

const char *cu_signal_abbrev(int sig)
{
    for (size_t i = 0; i < CU_NELEM(sig_names); i++)
        if (sig_names[i].sig == sig)
            return sig_names[i].abbrev;
    return NULL;
}

const char *cu_signal_name(int sig)
{
    static const char *lower[] = {
        [SIGHUP] = "hup",     [SIGQUIT] = "quit", [SIGINT] = "int",   [SIGTERM] = "term",
        [SIGTTIN] = "ttin",   [SIGTTOU] = "ttou", [SIGUSR1] = "usr1", [SIGUSR2] = "usr2",
        [SIGWINCH] = "winch", [SIGCHLD] = "chld",
    };
    if (sig > 0 && (size_t)sig < CU_NELEM(lower) && lower[sig])
        return lower[sig];
    return "unknown";
}
