/* cunicorn: argv -> settings -> master. */
#include "config/config.h"
#include "proc/master.h"
#include "proc/proctitle.h"
#include "py/py.h"

/* --check-config / --print-config: gunicorn imports the app and exits 0 or 1. */
static int check_app(const cu_config_t *cfg)
{
    if (cu_py_init(cfg) == CU_OK && cu_py_load_app(cfg) == CU_OK)
        return 0;
    fprintf(stderr, "\nError while loading the application:\n\n");
    return 1;
}

int main(int argc, char **argv)
{
    /* Before anything keeps pointers into argv or the environment. */
    cu_proctitle_init(argc, argv);
    cu_master_set_argv(argc, argv);

    cu_py_config_file_install();
    cu_config_t cfg;
    cu_config_defaults(&cfg);
    int rc = cu_config_parse_argv(&cfg, argc, argv);
    if (rc != CU_OK) {
        cu_config_free(&cfg);
        return rc == CU_DONE ? 0 : rc > 0 ? rc : 2;
    }

    /* gunicorn checks this while loading the config, before --print-config/--check-config,
     * and exits 1 (ConfigError). */
    if (!cfg.app_uri || !cfg.app_uri[0]) {
        fprintf(stderr, "\nError: No application module specified.\n\n");
        cu_config_free(&cfg);
        return 1;
    }

    if (cfg.print_config) {
        cu_config_print(&cfg, stdout);
        fflush(stdout);
    }
    if (cfg.print_config || cfg.check_config)
        rc = check_app(&cfg);
    else if (cu_config_h2(&cfg) &&
             (cfg.worker_class == CU_WORKER_GEVENT || cfg.protocol == CU_PROTOCOL_UWSGI)) {
        /* workers/h2.c serves streams through the sync, gthread and asgi classes */
        fprintf(stderr,
                "\nError: http_protocols: HTTP/2 (h2) with %s is a combination cunicorn does "
                "not support yet (the sync, gthread and asgi workers serve HTTP/2 over "
                "HTTP)\n\n",
                cfg.protocol == CU_PROTOCOL_UWSGI ? "--protocol uwsgi" : "the gevent worker");
        rc = 1;
    } else {
        /* gunicorn's arbiter exports it: apps and subprocesses read it from os.environ */
        setenv("SERVER_SOFTWARE", CU_SERVER_SOFTWARE, 1);
        rc = cu_master_run(&cfg);
    }
    cu_config_free(&cfg);
    return rc;
}
