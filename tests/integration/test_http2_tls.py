"""HTTP/2 over TLS: a request on a stream sees its connection's TLS facts (wsgi.url_scheme,
the SSL_* keys, the client certificate, gunicorn.socket's ssl.SSLSocket answers) exactly as
the same request over HTTP/1.1 on TLS does. Certificates (a CA, server and client certs) are
made with the openssl command, as in test_tls.py."""
import json
import shutil
import ssl

import pytest

import server as srv
from h2client import H2Conn
from test_tls import Certs, tls_args

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

# What the same client sends both ways (HTTP/2 takes Host from :authority).
HEADERS = [("user-agent", "environ-compare"), ("accept", "*/*"), ("x-custom", "yes")]
# Only on HTTP/2 (gunicorn 27 adds them there too).
H2_ONLY = {"HTTP_VERSION", "gunicorn.http2.send_trailers", "gunicorn.http2.priority_weight",
           "gunicorn.http2.priority_depends_on"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(str(tmp_path_factory.mktemp("certs")))


def client_ctx(certs, alpn, cert):
    ctx = ssl.create_default_context(cafile=certs.p("ca.pem"))
    if cert:
        ctx.load_cert_chain(*certs.client)
    ctx.set_alpn_protocols([alpn])
    return ctx


def environ_h1(s, certs, cert):
    ctx = client_ctx(certs, "http/1.1", cert)
    with ctx.wrap_socket(s.connect(), server_hostname="localhost") as t:
        assert t.selected_alpn_protocol() == "http/1.1"
        head = "GET /environ?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % s.port
        head += "".join("%s: %s\r\n" % h for h in HEADERS)
        t.sendall((head + "\r\n").encode())
        r = srv.HTTPReader(t).read_response()
    assert r.status == 200, r.body
    return json.loads(r.body)


def environ_h2(s, certs, cert):
    c = H2Conn("127.0.0.1", s.port, ssl_context=client_ctx(certs, "h2", cert),
               server_hostname="localhost")
    try:
        assert c.sock.selected_alpn_protocol() == "h2"
        # two streams on the connection: the facts hold for each of them
        [a, b] = c.wait([c.request("GET", "/environ?q=1", HEADERS),
                         c.request("GET", "/environ?q=1", HEADERS)])
    finally:
        c.close()
    assert a["status"] == 200 and b["status"] == 200, (a, b)
    ea, eb = json.loads(a["body"]), json.loads(b["body"])
    assert ea == eb
    return ea


@pytest.mark.parametrize("worker", ["sync", "gthread"])
@pytest.mark.parametrize("cert_reqs", ["0", "2"])
def test_stream_environ_matches_http11_over_tls(make_server, certs, worker, cert_reqs):
    s = make_server("tlsapp:app", tls_args(certs, "--http-protocols", "h2,h1", "--ca-certs",
                                           certs.p("ca.pem"), "--cert-reqs", cert_reqs,
                                           "--worker-class", worker, "--threads", "4"))
    cert = cert_reqs == "2"
    h1 = environ_h1(s, certs, cert)
    h2 = environ_h2(s, certs, cert)

    assert h1["SERVER_PROTOCOL"] == "HTTP/1.1" and h2["SERVER_PROTOCOL"] == "HTTP/2.0"
    assert h2["HTTP_VERSION"] == "2"
    assert set(h2) - set(h1) == H2_ONLY, set(h2) ^ set(h1)
    assert set(h1) - set(h2) == set()
    # the other connection has another port; the sockets negotiated their own protocol
    differ = {"SERVER_PROTOCOL", "REMOTE_PORT", "gunicorn.socket"}
    for k in set(h1) - differ:
        assert h1[k] == h2[k], (k, h1[k], h2[k])
    s1, s2 = h1["gunicorn.socket"], h2["gunicorn.socket"]
    assert s1.pop("alpn") == "http/1.1" and s2.pop("alpn") == "h2"
    assert s1 == s2

    assert h2["wsgi.url_scheme"] == "https"
    assert h2["SSL_PROTOCOL"] == "TLSv1.3" and h2["SSL_CIPHER"].startswith("TLS_")
    assert s2["cipher"][0] == h2["SSL_CIPHER"] and s2["version"] == "TLSv1.3"
    if cert:
        assert h2["SSL_CLIENT_VERIFY"] == "SUCCESS"
        assert h2["SSL_CLIENT_S_DN"] == "CN=alice,O=cunicorn tests"
        with open(certs.client[0]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        assert ssl.PEM_cert_to_DER_cert(h2["SSL_CLIENT_CERT"]) == der
        assert bytes.fromhex(s2["der"]) == der
        assert s2["peercert"]["subject"] == [[["organizationName", "cunicorn tests"]],
                                             [["commonName", "alice"]]]
    else:
        assert h2["SSL_CLIENT_VERIFY"] == "NONE"
        assert "SSL_CLIENT_S_DN" not in h2 and "SSL_CLIENT_CERT" not in h2
        assert s2["peercert"] is None and s2["der"] is None


def test_h2c_streams_have_no_tls_keys(make_server):
    s = make_server("tlsapp:app", ["--http-protocols", "h2,h1",
                                   "--http2-cleartext", "prior-knowledge"])
    c = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c.wait([c.request("GET", "/environ", HEADERS)])
    finally:
        c.close()
    env = json.loads(r["body"])
    assert env["wsgi.url_scheme"] == "http" and env["SERVER_PROTOCOL"] == "HTTP/2.0"
    assert not [k for k in env if k.startswith("SSL_")]
    assert env["gunicorn.socket"].startswith("<")  # not a TLS socket
