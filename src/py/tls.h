/* TLS in the embedded runtime: the server's TLS context, made through the ssl_context hook
 * when the config file sets one. Plain C interface (no Python.h). */
#ifndef CU_PY_TLS_H
#define CU_PY_TLS_H

#include "config/config.h"
#include "net/tls.h"

/* The server's TLS state for cfg (call only when cu_tls_enabled(cfg)): with an
 * ssl_context hook, the hook is called with gunicorn's default_ssl_context_factory and the
 * context it returns serves (refused with a message when Python's _ssl does not share
 * cunicorn's libssl, or when the context uses what cunicorn cannot honour: sni_callback,
 * keylog_filename); without one, net/tls.c's default context. Called without the GIL (it
 * takes it). Returns NULL with a message naming the setting in err. Certificate rotation
 * calls the hook again (taking the GIL) from the worker that notices the change. */
cu_tls_t *cu_py_tls_new(const cu_config_t *cfg, char *err, size_t errlen);

#ifdef Py_PYTHON_H
#include "http/conn.h"
/* The TLS keys of a request on a TLS connection, or on an HTTP/2 stream of one (the facts its
 * session copied when it opened: c->tls_facts) (environ.c calls it; GIL held):
 * SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_VERIFY and, with a client certificate,
 * SSL_CLIENT_S_DN (RFC 2253) and SSL_CLIENT_CERT (PEM), as mod_ssl names them; and
 * gunicorn.socket, an object with ssl.SSLSocket's getpeercert(binary_form=False), cipher(),
 * version() and selected_alpn_protocol(). 0, or -1 with an exception set. */
int cu__tls_environ(PyObject *env, cu_conn_t *c);
#endif

#endif
