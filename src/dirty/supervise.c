/* The master's side of the dirty arbiter: its socket path, exported to the HTTP workers in
 * GUNICORN_DIRTY_SOCKET. (Spawning, restarting and signalling it is proc/kind_dirty.c, a
 * kind of child.) */
#include "dirty/dirty.h"

#include "core/log.h"
#include "py/dirty.h"
#include "py/py.h"

#include <errno.h>
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
