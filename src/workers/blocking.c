/* The sync/gthread blocking wait (see blocking.h). */
#include "workers/blocking.h"
#include "workers/engine.h"

static void stall(void *arg)
{
    cu_engine_t *e = arg;
    if (e->report.stamp)
        e->report.stamp(e->report.arg);
}

int cu_blocking_wait(cu_conn_t *c, int events)
{
    return cu_transport_wait(&c->t, events, c->settings->io_timeout_ms, stall, c->worker);
}
