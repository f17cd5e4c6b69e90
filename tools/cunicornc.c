/* cunicornc: client for the control socket (gunicorn's protocol: 4-byte big-endian length +
 * JSON). `cunicornc [-s PATH] COMMAND [ARG...]` sends one command and prints the reply's
 * data as JSON; without a command it reads commands from stdin, one per line.
 * Exit status: 0 ok, 1 the server answered an error, 2 usage or connection failure. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void default_path(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg && *xdg && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, cap, "%s/gunicorn.ctl", xdg);
    else
        snprintf(out, cap, "%s/.gunicorn/gunicorn.ctl", getenv("HOME") ? getenv("HOME") : "");
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Append s to the JSON string being built in buf (escaped). */
static size_t put_json_str(char *buf, size_t o, size_t cap, const char *s)
{
    for (; *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\%c", c);
        else if (c < 0x20)
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return o;
}

/* Find "key": in a flat reply and return a pointer to its value (good enough for the
 * server's fixed reply shape: id, status, then data or error). */
static const char *find_key(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    const char *p = strstr(json, pat);
    return p ? p + strlen(pat) : NULL;
}

static int run(const char *path, const char *command, int id)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "cunicornc: socket path too long: %s\n", path);
        return 2;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "cunicornc: can't connect to %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 2;
    }
    char req[8192];
    size_t o = (size_t)snprintf(req + 4, sizeof(req) - 4, "{\"id\": %d, \"command\": \"", id);
    o = put_json_str(req + 4, o, sizeof(req) - 4 - 32, command);
    o += (size_t)snprintf(req + 4 + o, sizeof(req) - 4 - o, "\", \"args\": []}");
    uint32_t len = (uint32_t)o;
    req[0] = (char)(len >> 24);
    req[1] = (char)(len >> 16);
    req[2] = (char)(len >> 8);
    req[3] = (char)len;
    unsigned char hdr[4];
    if (write_all(fd, req, 4 + o) < 0 || read_all(fd, (char *)hdr, 4) < 0) {
        fprintf(stderr, "cunicornc: connection closed by the server\n");
        close(fd);
        return 2;
    }
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (n > 16u * 1024 * 1024) {
        fprintf(stderr, "cunicornc: reply too large (%u bytes)\n", n);
        close(fd);
        return 2;
    }
    char *reply = malloc((size_t)n + 1);
    if (!reply || read_all(fd, reply, n) < 0) {
        fprintf(stderr, "cunicornc: incomplete reply\n");
        free(reply);
        close(fd);
        return 2;
    }
    close(fd);
    reply[n] = '\0';
    int rc = 0;
    const char *status = find_key(reply, "status");
    if (status && strncmp(status, "\"ok\"", 4) == 0) {
        const char *data = find_key(reply, "data");
        size_t dl = data ? strlen(data) : 0;
        if (dl && data[dl - 1] == '}') /* the reply object's closing brace */
            dl--;
        printf("%.*s\n", (int)dl, data ? data : "{}");
    } else {
        const char *err = find_key(reply, "error");
        size_t el = err ? strlen(err) : 0;
        if (el && err[el - 1] == '}')
            el--;
        fprintf(stderr, "Error: %.*s\n", (int)el, err ? err : reply);
        rc = 1;
    }
    free(reply);
    return rc;
}

int main(int argc, char **argv)
{
    char path[PATH_MAX];
    default_path(path, sizeof(path));
    int i = 1;
    for (; i < argc; i++) {
        if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) && i + 1 < argc) {
            snprintf(path, sizeof(path), "%s", argv[++i]);
        } else if (strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0) {
            continue; /* the output is always JSON */
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: cunicornc [-s SOCKET] [COMMAND [ARG...]]\n"
                   "commands: show all|workers|stats|config|listeners|dirty, worker add [N],\n"
                   "          worker remove [N], worker kill PID, reload, reopen,\n"
                   "          shutdown [graceful|quick], help\n");
            return 0;
        } else {
            break;
        }
    }
    if (i < argc) {
        char cmd[4096];
        size_t o = 0;
        cmd[0] = '\0';
        for (; i < argc && o < sizeof(cmd) - 1; i++)
            o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, "%s%s", o ? " " : "", argv[i]);
        return run(path, cmd, 1);
    }
    char line[4096];
    int rc = 0, id = 1;
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (strcmp(line, "quit") == 0 || strcmp(line, "exit") == 0)
            break;
        rc = run(path, line, id++);
    }
    return rc;
}
