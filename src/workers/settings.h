/* Settings resolved once per worker: the one place that turns cu_config_t into what the
 * engine and the protocol drivers read on the hot path (nginx's merge step). Every gunicorn
 * rule that maps a setting to an effective value is applied here or in config.h's
 * cu_config_eff_* helpers, nowhere else. */
#ifndef CU_SETTINGS_H
#define CU_SETTINGS_H

#include "config/config.h"
#include "http/conn.h"
#include "net/listen.h"

/* Engine-wide settings beside the per-connection ones. */
typedef struct cu_engine_settings_s {
    size_t max_conns;      /* worker_connections (1000 when <= 0) */
    uint64_t max_requests; /* max_requests plus this worker's jitter; 0 = unlimited */
    uint64_t max_rss_kb;   /* --max-worker-memory in KiB, checked after every request; 0 = off */
    enum cu_proxy_protocol proxy_protocol;
    const cu_cidrlist_t *forwarded_allow_ips; /* peers trusted for forwarder headers (in cfg) */
    const cu_cidrlist_t *proxy_allow_ips;     /* peers allowed to send a PROXY header (in cfg) */
    cu_str_t *fwd_names; /* forwarder_headers as slices (owned; h1_trusted points here) */
    const struct cu_proto_s *proto; /* every listener's protocol driver (--protocol); NULL =
                                     * HTTP/1 */
    /* HTTP/2 (workers/h2.c): h2c_prior when http_protocols has h2 and http2_cleartext is
     * prior-knowledge or both (its enum cu_h2c value; 0 = off); the four numbers of the server's
     * SETTINGS frame. */
    int h2c_prior;
    int h2_tls;      /* http_protocols has h2: TLS listeners serve HTTP/2 when ALPN picks it */
    int h2c_upgrade; /* h2 and http2_cleartext upgrade or both: honour Upgrade: h2c */
    uint32_t h2_max_streams, h2_window, h2_max_frame, h2_max_header_list; /* 0 = unlimited */
} cu_engine_settings_t;

/* Fill *s and *es from cfg for the worker with process id `pid` (the max_requests jitter
 * is derived from it). The forwarder names, uwsgi_allow and the address lists point into
 * cfg: cfg must outlive them. Free with cu_settings_free. */
void cu_settings_resolve(const cu_config_t *cfg, unsigned pid, cu_conn_settings_t *s,
                         cu_engine_settings_t *es);
void cu_settings_free(cu_engine_settings_t *es);

/* The listener options in cfg (bind list, backlog, umask, reuse_port), into *out; returns
 * out. out->bind points into cfg. */
const cu_listen_opts_t *cu_settings_listen(const cu_config_t *cfg, cu_listen_opts_t *out);

#endif
