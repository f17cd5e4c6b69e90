/* The control socket server on a real loop and a real unix socket: gunicorn's framing (a
 * 4-byte big-endian length, then JSON), requests split across writes and several in one
 * write, the command split like shlex with "args" appended, error replies, the size limit,
 * and the socket file's life (mode, stale file replaced, unlinked only while ours). */
#include "core/log.h"
#include "ctl/ctl.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int ncalls;

/* Echo the words as a JSON list; the command "fail" answers an error. */
static int echo_cb(void *ctx, int argc, char **argv, cu_buf_t *out)
{
    ncalls++;
    if (strcmp(argv[0], "fail") == 0) {
        cu_ctl_printf(out, "it failed: \"%s\"", argc > 1 ? argv[1] : "");
        return CU_ERROR;
    }
    cu_ctl_printf(out, "{\"ctx\": %d, \"words\": [", *(int *)ctx);
    for (int i = 0; i < argc; i++) {
        if (i)
            cu_ctl_printf(out, ", ");
        cu_ctl_json_str(out, argv[i]);
    }
    cu_ctl_printf(out, "]}");
    return CU_OK;
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_frame(int fd, const char *json, size_t split)
{
    uint32_t n = (uint32_t)strlen(json);
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    char *all = malloc(4 + n);
    memcpy(all, h, 4);
    memcpy(all + 4, json, n);
    if (split == 0 || split > 4 + n)
        split = 4 + n;
    CHECK(write(fd, all, split) == (ssize_t)split);
    if (split < 4 + n)
        CHECK(write(fd, all + split, 4 + n - split) == (ssize_t)(4 + n - split));
    free(all);
}

/* Drive the loop until one whole reply frame is read (bounded); returns it or NULL when the
 * server closed the connection first. Bytes of a following frame are kept for the next
 * call (reset when the fd changes). */
static const char *recv_frame(cu_loop_t *loop, int fd)
{
    static char buf[65536], out[65536];
    static size_t have;
    static int last_fd = -1;
    if (fd != last_fd)
        have = 0;
    last_fd = fd;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 400; i++) {
        if (have >= 4) {
            const unsigned char *h = (const unsigned char *)buf;
            size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
            if (have >= 4 + n) {
                memcpy(out, buf + 4, n);
                out[n] = '\0';
                memmove(buf, buf + 4 + n, have - 4 - n);
                have -= 4 + n;
                return out;
            }
        }
        (void)cu_loop_run_once(loop, 10);
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r == 0)
            return NULL;
        if (r > 0)
            have += (size_t)r;
    }
    return NULL;
}

static int has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static void test_protocol(const char *path, cu_loop_t *loop)
{
    int fd = connect_to(path);
    CHECK(fd >= 0);

    send_frame(fd, "{\"id\": 7, \"command\": \"show workers\"}", 0);
    const char *r = recv_frame(loop, fd);
    CHECK(has(r, "\"id\": 7") && has(r, "\"status\": \"ok\""));
    CHECK(has(r, "\"data\": {\"ctx\": 42, \"words\": [\"show\", \"workers\"]}"));

    /* quoting and escapes as shlex, then "args" appended (strings and bare JSON values) */
    send_frame(fd,
               "{\"command\": \"worker  'a b' \\\"c\\\\\\\"d\\\"\", \"args\": [\"x y\", 3], "
               "\"id\": \"s\"}",
               2);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"id\": \"s\""));
    CHECK(has(r, "[\"worker\", \"a b\", \"c\\\"d\", \"x y\", \"3\"]"));

    /* a frame split inside its length prefix, then a body split in two */
    send_frame(fd, "{\"id\": 1, \"command\": \"one\"}", 3);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"words\": [\"one\"]"));

    /* an error from the command is a JSON string, quotes escaped */
    send_frame(fd, "{\"id\": 2, \"command\": \"fail x\"}", 0);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"status\": \"error\"") && has(r, "\"error\": \"it failed: \\\"x\\\"\""));

    /* malformed JSON and an empty command are refused without calling the command */
    int before = ncalls;
    send_frame(fd, "{\"id\": 3, \"command\": ", 0);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"error\": \"Invalid request\""));
    send_frame(fd, "{\"id\": 4, \"command\": \"   \"}", 0);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"id\": 4") && has(r, "\"error\": \"Empty command\""));
    send_frame(fd, "{\"id\": 5, \"command\": \"'open\"}", 0);
    r = recv_frame(loop, fd);
    CHECK(has(r, "Invalid argument"));
    CHECK(ncalls == before);

    /* two requests in one write: two replies, in order */
    send_frame(fd, "{\"id\": 10, \"command\": \"a\"}", 0);
    send_frame(fd, "{\"id\": 11, \"command\": \"b\"}", 0);
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"id\": 10"));
    r = recv_frame(loop, fd);
    CHECK(has(r, "\"id\": 11"));
    close(fd);

    /* a length over the limit closes the connection, and the server keeps serving */
    fd = connect_to(path);
    unsigned char huge[4] = {0x7f, 0xff, 0xff, 0xff};
    CHECK(write(fd, huge, 4) == 4);
    CHECK(recv_frame(loop, fd) == NULL);
    close(fd);
    fd = connect_to(path);
    send_frame(fd, "{\"id\": 12, \"command\": \"still\"}", 0);
    CHECK(has(recv_frame(loop, fd), "\"id\": 12"));
    close(fd);
}

static void test_socket_file(const char *dir)
{
    char path[100];
    snprintf(path, sizeof(path), "%.80s/sub/ctl.sock", dir);
    int ctx = 42;
    cu_loop_t *loop = cu_loop_create();

    /* a stale socket file (nobody listening) is replaced; the directory is created */
    mkdir(dir, 0700);
    char sub[100];
    snprintf(sub, sizeof(sub), "%.80s/sub", dir);
    mkdir(sub, 0700);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, strlen(path) + 1);
    CHECK(bind(s, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    close(s); /* the file stays, nobody behind it */

    cu_ctl_t *c = cu_ctl_open(loop, path, 0600, echo_cb, &ctx);
    CHECK(c != NULL);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);

    test_protocol(path, loop);

    /* a live socket (this server's) is never replaced by a second open on the same path */
    struct stat before;
    CHECK(stat(path, &before) == 0);
    cu_ctl_t *second = cu_ctl_open(loop, path, 0600, echo_cb, &ctx);
    CHECK(second == NULL);
    CHECK(stat(path, &st) == 0 && st.st_ino == before.st_ino);
    int probe = connect_to(path);
    send_frame(probe, "{\"id\": 30, \"command\": \"first-still-here\"}", 0);
    CHECK(has(recv_frame(loop, probe), "\"id\": 30"));
    close(probe);

    /* a forked child's close (owner = 0) leaves the file and the server alone */
    pid_t pid = fork();
    if (pid == 0) {
        cu_ctl_close(c, 0);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(stat(path, &st) == 0);
    int fd = connect_to(path);
    send_frame(fd, "{\"id\": 20, \"command\": \"after-fork\"}", 0);
    CHECK(has(recv_frame(loop, fd), "\"id\": 20"));
    close(fd);

    /* the owner unlinks the path on close, but not a file someone else put there since */
    cu_ctl_close(c, 1);
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
    c = cu_ctl_open(loop, path, 0660, echo_cb, &ctx);
    CHECK(c != NULL && stat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
    CHECK(unlink(path) == 0);
    int other = open(path, O_CREAT | O_WRONLY, 0600); /* not ours */
    close(other);
    cu_ctl_close(c, 1);
    CHECK(stat(path, &st) == 0);
    unlink(path);
    rmdir(sub);
    cu_loop_destroy(loop);
}

int main(void)
{
    char dir[] = "/tmp/cu-test-ctl-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    cu_log_level = CU_LOG_ERROR;
    test_socket_file(dir);
    rmdir(dir);
    return t_done("test_ctl");
}
