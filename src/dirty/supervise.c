/* The master's side of the dirty arbiter: its socket path, exported to the HTTP workers in
 * GUNICORN_DIRTY_SOCKET. (Spawning, restarting and signalling it is proc/kind_dirty.c, a
 * kind of child.) */
#include "dirty/dirty.h"

#include "core/log.h"
#include "ctl/ctl.h"
#include "dirty/proto.h"
#include "py/dirty.h"
#include "py/py.h"

#include <errno.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char g_dir[256];
static char g_path[300];

int cu_dirty_enabled(const cu_config_t *cfg)
{
    return cfg->dirty_workers > 0 && cfg->dirty_apps.n > 0;
}

int cu_dirty_master_init(const cu_config_t *cfg)
{
    if (!cu_dirty_enabled(cfg) || g_path[0])
        return CU_OK;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/cunicorn-dirty-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        cu_log_error("Can't create the dirty arbiter's directory %s: %s", g_dir, strerror(errno));
        g_dir[0] = '\0';
        return CU_ERROR;
    }
    snprintf(g_path, sizeof(g_path), "%s/arbiter.sock", g_dir);
    return cu_py_dirty_export_socket(g_path);
}

const char *cu_dirty_socket_path(void)
{
    return g_path[0] ? g_path : NULL;
}

void cu_dirty_master_cleanup(void)
{
    if (g_path[0])
        unlink(g_path);
    if (g_dir[0])
        rmdir(g_dir);
}

/* ---- control socket: ask the arbiter (STATUS, MANAGE) and answer in JSON ---- */

/* A TLV value as JSON (bytes as a string of their hex digits; NaN/inf as null). */
static void tlv_json(cu_buf_t *o, const cu_tlv_t *v)
{
    switch (v->type) {
    case CU_TLV_NONE: cu_ctl_printf(o, "null"); break;
    case CU_TLV_BOOL: cu_ctl_printf(o, v->b ? "true" : "false"); break;
    case CU_TLV_INT: cu_ctl_printf(o, "%lld", (long long)v->i); break;
    case CU_TLV_FLOAT:
        if (isfinite(v->f))
            cu_ctl_printf(o, "%.6g", v->f);
        else
            cu_ctl_printf(o, "null");
        break;
    case CU_TLV_STR: {
        char *s = cu_xmalloc(v->len + 1);
        memcpy(s, v->p, v->len);
        s[v->len] = '\0';
        cu_ctl_json_str(o, s);
        cu_free(s);
        break;
    }
    case CU_TLV_BYTES:
        cu_ctl_printf(o, "\"");
        for (size_t i = 0; i < v->len; i++)
            cu_ctl_printf(o, "%02x", v->p[i]);
        cu_ctl_printf(o, "\"");
        break;
    case CU_TLV_LIST:
    case CU_TLV_DICT: {
        int dict = v->type == CU_TLV_DICT;
        cu_ctl_printf(o, dict ? "{" : "[");
        size_t off = 0;
        cu_tlv_t item;
        for (uint32_t n = 0; cu_tlv_next(v, &off, &item); n++) {
            if (n)
                cu_ctl_printf(o, dict && n % 2 ? ": " : ", ");
            tlv_json(o, &item);
        }
        cu_ctl_printf(o, dict ? "}" : "]");
        break;
    }
    }
}

/* One request to the arbiter; the reply's payload in *reply (malloc'd) and its type.
 * CU_OK, or CU_ERROR with a reason in err. */
static int ask(uint8_t type, const cu_buf_t *payload, uint8_t *rtype, uint8_t **reply, size_t *rlen,
               char *err, size_t errlen)
{
    int rc = CU_ERROR, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t pl = strlen(g_path);
    if (pl >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path too long");
        if (fd >= 0)
            close(fd);
        return CU_ERROR;
    }
    memcpy(sa.sun_path, g_path, pl + 1);
    struct timeval tv = {.tv_sec = 5};
    uint8_t hdr[CU_DIRTY_HDR_SIZE];
    size_t plen = payload ? cu_buf_unread(payload) : 0;
    cu_dirty_hdr_encode(hdr, type, (uint32_t)plen, 1);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
        (plen && write(fd, cu_buf_head(payload), plen) != (ssize_t)plen)) {
        snprintf(err, errlen, "%s", strerror(errno));
        goto done;
    }
    size_t got = 0;
    while (got < sizeof(hdr)) {
        ssize_t n = read(fd, hdr + got, sizeof(hdr) - got);
        if (n <= 0) {
            snprintf(err, errlen, "no answer from the dirty arbiter");
            goto done;
        }
        got += (size_t)n;
    }
    cu_dirty_hdr_t h;
    if (cu_dirty_hdr_decode(hdr, sizeof(hdr), &h) < 0 || h.len > 16 * 1024 * 1024) {
        snprintf(err, errlen, "bad answer from the dirty arbiter");
        goto done;
    }
    *reply = cu_xmalloc(h.len ? h.len : 1);
    for (got = 0; got < h.len;) {
        ssize_t n = read(fd, *reply + got, h.len - got);
        if (n <= 0) {
            cu_free(*reply);
            snprintf(err, errlen, "no answer from the dirty arbiter");
            goto done;
        }
        got += (size_t)n;
    }
    *rtype = h.type;
    *rlen = h.len;
    rc = CU_OK;
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

void cu_dirty_ctl_show(cu_buf_t *o, pid_t arbiter_pid)
{
    uint8_t t = 0, *r = NULL;
    size_t n = 0;
    char err[256];
    cu_tlv_t d, res, workers, apps;
    if (!arbiter_pid || !g_path[0]) {
        cu_ctl_printf(o, "{\"enabled\": false, \"pid\": null, \"workers\": [], \"apps\": []}");
        return;
    }
    cu_ctl_printf(o, "{\"enabled\": true, \"pid\": %d, \"workers\": ", (int)arbiter_pid);
    if (ask(CU_DIRTY_STATUS, NULL, &t, &r, &n, err, sizeof(err)) != CU_OK ||
        t != CU_DIRTY_RESPONSE || cu_tlv_read_full(r, n, &d) != CU_OK ||
        !cu_tlv_dict_get(&d, "result", &res) || !cu_tlv_dict_get(&res, "workers", &workers) ||
        !cu_tlv_dict_get(&res, "apps", &apps)) {
        cu_ctl_printf(o, "[], \"apps\": []}");
        cu_free(r);
        return;
    }
    tlv_json(o, &workers);
    /* gunicorn's app entries: which workers hold each app */
    cu_ctl_printf(o, ", \"apps\": [");
    size_t aoff = 0;
    cu_tlv_t app;
    for (int i = 0; cu_tlv_next(&apps, &aoff, &app); i++) {
        cu_ctl_printf(o, "%s{\"import_path\": ", i ? ", " : "");
        tlv_json(o, &app);
        cu_ctl_printf(o, ", \"worker_pids\": [");
        size_t woff = 0;
        cu_tlv_t w, wapps, pid, x;
        int count = 0;
        while (cu_tlv_next(&workers, &woff, &w)) {
            if (!cu_tlv_dict_get(&w, "apps", &wapps) || !cu_tlv_dict_get(&w, "pid", &pid))
                continue;
            size_t xoff = 0;
            while (cu_tlv_next(&wapps, &xoff, &x))
                if (x.len == app.len && memcmp(x.p, app.p, app.len) == 0)
                    cu_ctl_printf(o, "%s%lld", count++ ? ", " : "", (long long)pid.i);
        }
        cu_ctl_printf(o, "], \"current_workers\": %d}", count);
    }
    cu_ctl_printf(o, "]}");
    cu_free(r);
}

void cu_dirty_ctl_manage(cu_buf_t *o, pid_t arbiter_pid, int op, int count)
{
    uint8_t t = 0, *r = NULL;
    size_t n = 0;
    char err[256];
    cu_tlv_t d, res;
    if (!arbiter_pid || !g_path[0]) {
        cu_ctl_printf(o, "{\"success\": false, \"error\": \"Dirty arbiter not running\"}");
        return;
    }
    cu_buf_t p;
    cu_buf_init(&p, 64, 4096);
    cu_tlv_put_dict(&p, 2);
    cu_tlv_put_cstr(&p, "op");
    cu_tlv_put_int(&p, op);
    cu_tlv_put_cstr(&p, "count");
    cu_tlv_put_int(&p, count < 1 ? 1 : count);
    int rc = ask(CU_DIRTY_MANAGE, &p, &t, &r, &n, err, sizeof(err));
    cu_buf_free(&p);
    if (rc != CU_OK) {
        cu_ctl_printf(o, "{\"success\": false, \"error\": ");
        cu_ctl_json_str(o, err);
        cu_ctl_printf(o, "}");
    } else if (cu_tlv_read_full(r, n, &d) == CU_OK &&
               cu_tlv_dict_get(&d, t == CU_DIRTY_RESPONSE ? "result" : "error", &res)) {
        if (t == CU_DIRTY_RESPONSE) {
            tlv_json(o, &res);
        } else {
            cu_tlv_t m;
            cu_ctl_printf(o, "{\"success\": false, \"error\": ");
            if (cu_tlv_dict_get(&res, "message", &m))
                tlv_json(o, &m);
            else
                cu_ctl_printf(o, "\"error\"");
            cu_ctl_printf(o, "}");
        }
    } else {
        cu_ctl_printf(o, "{\"success\": false, \"error\": \"bad answer from the dirty arbiter\"}");
    }
    cu_free(r);
}

size_t cu_dirty_ctl_workers(cu_buf_t *o, pid_t arbiter_pid)
{
    uint8_t t = 0, *r = NULL;
    size_t n = 0, count = 0;
    char err[256];
    cu_tlv_t d, res, workers;
    if (arbiter_pid && g_path[0] &&
        ask(CU_DIRTY_STATUS, NULL, &t, &r, &n, err, sizeof(err)) == CU_OK &&
        t == CU_DIRTY_RESPONSE && cu_tlv_read_full(r, n, &d) == CU_OK &&
        cu_tlv_dict_get(&d, "result", &res) && cu_tlv_dict_get(&res, "workers", &workers)) {
        tlv_json(o, &workers);
        count = workers.count;
    } else {
        cu_ctl_printf(o, "[]");
    }
    cu_free(r);
    return count;
}
