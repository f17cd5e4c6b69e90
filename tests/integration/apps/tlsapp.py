"""App for the TLS tests: what a request sees of its connection, as JSON; a large body."""
import json
import os

SSL_KEYS = ("SSL_PROTOCOL", "SSL_CIPHER", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN",
            "SSL_CLIENT_CERT")


def _socket_facts(sock):
    der = sock.getpeercert(binary_form=True)
    return {"peercert": sock.getpeercert(), "der": der.hex() if der else None,
            "cipher": sock.cipher(), "version": sock.version(),
            "alpn": sock.selected_alpn_protocol()}


def _environ(environ):
    """Every key: strings as they are, numbers and tuples by repr, other objects by type (the
    TLS socket by what it tells)."""
    out = {}
    for k, v in environ.items():
        if type(v).__name__ == "TLSSocket":  # cunicorn._tls: do not touch other sockets
            out[k] = _socket_facts(v)
        elif isinstance(v, str):
            out[k] = v
        elif isinstance(v, (bool, int, float, tuple)):
            out[k] = repr(v)
        else:
            out[k] = "<%s>" % type(v).__name__
    return out


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/big":
        body = b"0123456789abcdef" * (64 * 1024)  # 1 MiB
    elif path == "/file":
        f = open(os.path.join(os.path.dirname(__file__), "tlsapp.py"), "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f)
    elif path == "/environ":
        body = json.dumps(_environ(environ)).encode()
    else:
        out = {"url_scheme": environ["wsgi.url_scheme"], "pid": os.getpid()}
        for k in SSL_KEYS:
            out[k] = environ.get(k)
        sock = environ.get("gunicorn.socket")
        if sock is not None and hasattr(sock, "getpeercert"):
            out["peercert"] = sock.getpeercert()
            der = sock.getpeercert(binary_form=True)
            out["peercert_der_len"] = len(der) if der else None
            out["cipher"] = sock.cipher()
            out["version"] = sock.version()
            out["alpn"] = sock.selected_alpn_protocol()
        body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
