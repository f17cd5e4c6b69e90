/* Settings resolved once per worker from the configuration (see settings.h). */
#include "workers/settings.h"
#include "http/proto.h"

#include <stdlib.h>

#define BODY_PREREAD (64 * 1024)

/* gunicorn: a timeout of 0 disables the worker timeout, but sockets still need a limit. */
static int timeout_ms(const cu_config_t *cfg)
{
    return cfg->timeout > 0 ? cfg->timeout * 1000 : 30000;
}

void cu_settings_resolve(const cu_config_t *cfg, unsigned pid, cu_conn_settings_t *s,
                         cu_engine_settings_t *es)
{
    memset(s, 0, sizeof(*s));
    memset(es, 0, sizeof(*es));
    size_t line = cu_config_eff_limit_request_line(cfg);
    size_t nfields = cu_config_eff_limit_request_fields(cfg);
    size_t field = cu_config_eff_limit_request_field_size(cfg);

    s->h1.limit_request_line = line;
    s->h1.limit_request_fields = nfields;
    s->h1.limit_request_field_size = field;
    s->h1.header_map = cfg->header_map == CU_HEADER_MAP_REFUSE      ? CU_H1_HMAP_REFUSE
                       : cfg->header_map == CU_HEADER_MAP_DANGEROUS ? CU_H1_HMAP_DANGEROUS
                                                                    : CU_H1_HMAP_DROP;
    s->h1.permit_obsolete_folding = cfg->permit_obsolete_folding != 0;
    s->h1.strip_header_spaces = cfg->strip_header_spaces != 0;
    s->h1.permit_unconventional_http_method = cfg->permit_unconventional_http_method != 0;
    s->h1.permit_unconventional_http_version = cfg->permit_unconventional_http_version != 0;
    s->h1.casefold_http_method = cfg->casefold_http_method != 0;
    s->h1.require_host = cfg->require_host != 0;
    s->h1_trusted = s->h1;
    if (cfg->forwarder_headers.n > 0) {
        es->fwd_names = cu_xcalloc(cfg->forwarder_headers.n, sizeof(*es->fwd_names));
        for (size_t i = 0; i < cfg->forwarder_headers.n; i++)
            es->fwd_names[i] =
                (cu_str_t){cfg->forwarder_headers.v[i], strlen(cfg->forwarder_headers.v[i])};
        s->h1_trusted.forwarder_headers = es->fwd_names;
        s->h1_trusted.n_forwarder_headers = cfg->forwarder_headers.n;
    }

    s->io_timeout_ms = timeout_ms(cfg);
    s->head_timeout_ms = timeout_ms(cfg);
    s->keepalive_ms = cfg->keepalive > 0 ? cfg->keepalive * 1000 : 0;
    /* Room for the largest head the limits allow (plus a PROXY v2 header and slack). */
    s->head_max = line + 4 + (nfields + 1) * (field + 2) + 2 + 1024;
    s->max_headers = nfields + 1;
    s->server_header = "cunicorn";
    s->body_preread = BODY_PREREAD;
    /* uwsgi: the header-field limits apply to the HTTP_* vars; a packet may hold up to the
     * format's 64 KiB of vars, and CONTENT_TYPE/CONTENT_LENGTH become header entries too. */
    s->uwsgi.max_datasize = CU_UWSGI_MAX_DATASIZE;
    s->uwsgi.max_fields = nfields;
    s->uwsgi.max_field_size = field;
    if (cfg->protocol == CU_PROTOCOL_UWSGI) {
        es->proto = &cu_proto_uwsgi;
        s->uwsgi_allow = &cfg->uwsgi_allow_ips;
        s->request_uri = 1;
        s->max_headers = nfields + 2;
        if (s->head_max < CU_UWSGI_MAX_PACKET + 1024)
            s->head_max = CU_UWSGI_MAX_PACKET + 1024;
    }

    es->max_conns = cfg->worker_connections > 0 ? (size_t)cfg->worker_connections : 1000;
    if (cfg->max_requests > 0) {
        uint64_t jitter = 0;
        if (cfg->max_requests_jitter > 0)
            jitter = (uint64_t)(pid * 2654435761u) % ((uint64_t)cfg->max_requests_jitter + 1);
        es->max_requests = (uint64_t)cfg->max_requests + jitter;
    }
    s->out_budget = (size_t)(cfg->max_unsent_output > 0 ? cfg->max_unsent_output : 0) << 20;
    s->spill_dir = cfg->worker_tmp_dir && cfg->worker_tmp_dir[0] ? cfg->worker_tmp_dir
                   : getenv("TMPDIR") && getenv("TMPDIR")[0]     ? getenv("TMPDIR")
                                                                 : "/tmp";
    es->max_rss_kb = cfg->max_worker_memory > 0 ? (uint64_t)cfg->max_worker_memory * 1024 : 0;
    es->proxy_protocol = cfg->proxy_protocol;
    es->forwarded_allow_ips = &cfg->forwarded_allow_ips;
    es->proxy_allow_ips = &cfg->proxy_allow_ips;
    es->h2c_prior = cu_config_h2(cfg) && (cfg->http2_cleartext == CU_H2C_PRIOR ||
                                          cfg->http2_cleartext == CU_H2C_BOTH)
                        ? (int)cfg->http2_cleartext
                        : 0;
    es->h2_tls = cu_config_h2(cfg);
    es->h2c_upgrade = cu_config_h2(cfg) && (cfg->http2_cleartext == CU_H2C_UPGRADE ||
                                            cfg->http2_cleartext == CU_H2C_BOTH);
    es->h2_max_streams = (uint32_t)cfg->http2_max_concurrent_streams;
    es->h2_window = (uint32_t)cfg->http2_initial_window_size;
    es->h2_max_frame = (uint32_t)cfg->http2_max_frame_size;
    es->h2_max_header_list = (uint32_t)cfg->http2_max_header_list_size;
}

void cu_settings_free(cu_engine_settings_t *es)
{
    cu_free(es->fwd_names);
    es->fwd_names = NULL;
}

const cu_listen_opts_t *cu_settings_listen(const cu_config_t *cfg, cu_listen_opts_t *out)
{
    out->bind = cfg->bind.v;
    out->nbind = cfg->bind.n;
    out->backlog = cfg->backlog;
    out->umask = cfg->umask;
    out->reuse_port = cfg->reuse_port;
    return out;
}
