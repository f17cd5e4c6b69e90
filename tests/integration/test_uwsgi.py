"""--protocol uwsgi behind real nginx (uwsgi_pass over TCP and over a unix socket) and with
packets written by the test itself: bodies, large headers, keep-alive, the uwsgi vars that
become the environ, uwsgi_allow_ips, a plain HTTP request on a uwsgi port, malformed
packets. Every test runs under sync and gthread."""
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import threading

import pytest

import server as srv

NGINX = shutil.which("nginx")
# gunicorn 27, the reference, run as a separate process
HAVE_GUNICORN = importlib.util.find_spec("gunicorn") is not None
MiB = 1024 * 1024

WORKERS = {"sync": ["-k", "sync"], "gthread": ["-k", "gthread", "--threads", "4"]}

# What the stock uwsgi_params file of nginx sends (Debian's /etc/nginx/uwsgi_params),
# written out so that the test does not depend on the distribution's copy.
UWSGI_PARAMS = """
uwsgi_param QUERY_STRING $query_string;
uwsgi_param REQUEST_METHOD $request_method;
uwsgi_param CONTENT_TYPE $content_type;
uwsgi_param CONTENT_LENGTH $content_length;
uwsgi_param REQUEST_URI $request_uri;
uwsgi_param PATH_INFO $document_uri;
uwsgi_param DOCUMENT_ROOT $document_root;
uwsgi_param SERVER_PROTOCOL $server_protocol;
uwsgi_param REQUEST_SCHEME $scheme;
uwsgi_param HTTPS $https if_not_empty;
uwsgi_param REMOTE_ADDR $remote_addr;
uwsgi_param REMOTE_PORT $remote_port;
uwsgi_param SERVER_PORT $server_port;
uwsgi_param SERVER_NAME $server_name;
uwsgi_param HTTP_HOST $host;
"""


@pytest.fixture(params=sorted(WORKERS))
def worker(request):
    return WORKERS[request.param]


@pytest.fixture
def sockdir():
    # unix socket paths must stay short (108 bytes): not under pytest's tmp_path
    d = tempfile.mkdtemp(prefix="cu-uwsgi-")
    os.chmod(d, 0o755)  # nginx's workers run as another user when started by root
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def nginx(tmp_path, spawn):
    """start(upstream) -> port of an nginx that passes every request to `upstream`
    ("127.0.0.1:PORT" or "unix:/path") with uwsgi_pass and the stock uwsgi_params. A
    request header X-Test-Https: on becomes the HTTPS var, as a TLS server block would
    send it."""
    def start(upstream):
        port = srv.free_port()
        d = tmp_path / ("nginx-%d" % port)
        d.mkdir()
        (d / "uwsgi_params").write_text(UWSGI_PARAMS)
        temps = "".join("  %s_temp_path %s;\n" % (t, d / t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = d / "nginx.conf"
        # as root, nginx's workers would run as nobody: no access to the test's temp dirs
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            user +
            "worker_processes 1;\n"
            "pid %s;\n"
            "error_log %s;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "  access_log off;\n%s"
            "  client_max_body_size 64m;\n"
            "  large_client_header_buffers 4 16k;\n"
            "  upstream cunicorn { server %s; }\n"
            "  server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    keepalive_requests 1000;\n"
            "    location / {\n"
            "      include %s;\n"
            "      uwsgi_param HTTPS $http_x_test_https if_not_empty;\n"
            "      uwsgi_pass cunicorn;\n"
            "    }\n"
            "  }\n"
            "}\n" % (d / "nginx.pid", d / "error.log", temps, upstream, port,
                     d / "uwsgi_params"))
        return spawn([NGINX, "-p", str(d), "-c", str(conf), "-g", "daemon off;"], port, "nginx")

    return start


needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def uwsgi_server(make_server, worker, args=(), **kw):
    return make_server(args=["--protocol", "uwsgi"] + list(worker) + list(args), **kw)


def http(port, method="GET", path="/", headers=None, body=b"", source=None, timeout=20):
    """One request to nginx on a fresh connection; returns the final Response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=source)
    try:
        s.sendall(srv.build_request(method, path, headers, body))
        resp, _ = srv.HTTPReader(s, timeout).read_final_response(head_request=method == "HEAD")
        return resp
    finally:
        s.close()


def packet(pairs, modifier1=0, modifier2=0, datasize=None):
    """A uwsgi request packet: header, then LE16-length-prefixed key/value pairs."""
    block = b"".join(len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
                     for k, v in pairs)
    ds = len(block) if datasize is None else datasize
    return bytes([modifier1]) + ds.to_bytes(2, "little") + bytes([modifier2]) + block


def request_vars(method=b"GET", path=b"/", query=b"", body=b"", extra=()):
    v = [(b"REQUEST_METHOD", method), (b"PATH_INFO", path), (b"QUERY_STRING", query),
         (b"REQUEST_URI", path + (b"?" + query if query else b"")),
         (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"SERVER_NAME", b"localhost"),
         (b"SERVER_PORT", b"80"), (b"HTTP_HOST", b"localhost"),
         (b"CONTENT_LENGTH", str(len(body)).encode() if body else b"")]
    return v + list(extra)


def raw_exchange(server, data, timeout=10):
    """Send raw bytes on a fresh connection; return (bytes received, closed)."""
    s = server.connect(timeout)
    try:
        s.sendall(data)
        return srv.read_all_until_close(s, timeout)
    finally:
        s.close()


def parse_response(data):
    """Parse one close-delimited or length-delimited response from raw bytes."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:300]
    lines = head.split(b"\r\n")
    version, status = lines[0].split(b" ")[:2]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
    return version.decode(), int(status), headers, body


def assert_serving(server):
    """The worker still answers a well-formed packet."""
    data, _ = raw_exchange(server, packet(request_vars()))
    _, status, _, body = parse_response(data)
    assert status == 200 and body == b"Hello, World!"


# ---------------------------------------------------------------------------- via nginx

@needs_nginx
def test_get_through_nginx_over_tcp(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    r = http(port, path="/")
    assert r.status == 200 and r.body == b"Hello, World!", r
    # nginx makes its own framing for the client: the body is not chunk-marked by us
    r = http(port, path="/stream?n=100000")
    assert r.status == 200 and r.body == b"x" * 100000


@needs_nginx
def test_get_through_nginx_over_unix_socket(make_server, nginx, worker, sockdir):
    path = os.path.join(sockdir, "cu.sock")
    # unix peers are always allowed, whatever uwsgi_allow_ips says (as in gunicorn)
    uwsgi_server(make_server, worker, args=["--uwsgi-allow-from", "10.9.9.9"],
                 binds=["unix:" + path])
    port = nginx("unix:" + path)
    r = http(port, path="/environ/u?k=v", source=("127.0.0.3", 0))
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["PATH_INFO"] == "/environ/u" and env["QUERY_STRING"] == "k=v"
    assert env["REMOTE_ADDR"] == "127.0.0.3"


@needs_nginx
def test_uwsgi_vars_become_the_environ(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    c = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=("127.0.0.2", 0))
    try:
        client_port = c.getsockname()[1]
        c.sendall(srv.build_request("GET", "/environ/a%20b/%2541?x=1&y=%20",
                                    headers=[("X-Custom-Thing", "v1"), ("Cookie", "a=b")]))
        r, _ = srv.HTTPReader(c, 10).read_final_response()
    finally:
        c.close()
    assert r.status == 200, r
    env = json.loads(r.body)
    # beyond gunicorn (which reports the proxy): the client, from the uwsgi vars
    assert env["REMOTE_ADDR"] == "127.0.0.2"
    assert env["REMOTE_PORT"] == str(client_port)
    assert env["REQUEST_URI"] == "/environ/a%20b/%2541?x=1&y=%20"
    # PATH_INFO is what nginx decoded and routed on, not decoded a second time
    assert env["PATH_INFO"] == "/environ/a b/%41"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"] == "localhost"
    assert env["HTTP_X_CUSTOM_THING"] == "v1" and env["HTTP_COOKIE"] == "a=b"
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env


@needs_nginx
def test_repeated_header_fields_are_joined(make_server, nginx, worker):
    """nginx sends a repeated field as repeated HTTP_* vars; they are joined with ',' as
    for HTTP (gunicorn's uwsgi parser keeps only the last)."""
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    r = http(port, path="/environ", headers=[("X-Dup", "a"), ("X-Dup", "b")])
    assert r.status == 200, r
    assert json.loads(r.body)["HTTP_X_DUP"] == "a,b"


@pytest.fixture
def gunicorn_uwsgi(spawn):
    """gunicorn 27 itself with --protocol uwsgi on a free port (the reference)."""
    def start():
        port = srv.free_port()
        return spawn([sys.executable, "-m", "gunicorn", "--protocol", "uwsgi", "-b",
                      "127.0.0.1:%d" % port, "--chdir", srv.APPS, "testapp:app"], port,
                     "gunicorn")

    return start


# What may differ from gunicorn, on purpose (docs/uwsgi.md): the client's address instead of
# nginx's, REQUEST_URI (gunicorn has none) and RAW_URI (gunicorn: the decoded path), a
# PATH_INFO not decoded twice; and what differs between any two servers: the name, the
# listening port. Only the CGI keys are compared (the wsgi.* objects are the servers' own).
DIFFERENT = {"REMOTE_ADDR", "REMOTE_PORT", "REQUEST_URI", "RAW_URI", "PATH_INFO",
             "SERVER_SOFTWARE", "SERVER_PORT"}


@needs_nginx
@pytest.mark.skipif(not HAVE_GUNICORN, reason="gunicorn is not installed")
def test_environ_matches_gunicorn(make_server, nginx, gunicorn_uwsgi, worker):
    s = uwsgi_server(make_server, worker)
    gunicorn_port = gunicorn_uwsgi()
    ours, theirs = nginx("127.0.0.1:%d" % s.port), nginx("127.0.0.1:%d" % gunicorn_port)
    req = dict(method="POST", path="/environ/a%20b?x=1&y=%20",
               headers=[("X-Custom", "v"), ("Content-Type", "text/plain"), ("Cookie", "c=d"),
                        ("X-Test-Https", "on")], body=b"payload")
    env = [json.loads(http(port, **req).body) for port in (ours, theirs)]
    cgi = [{k: v for k, v in e.items() if k.isupper() and k not in DIFFERENT} for e in env]
    assert cgi[0] == cgi[1]
    assert {"REQUEST_METHOD", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME",
            "SERVER_PROTOCOL", "SCRIPT_NAME", "HTTP_HOST", "HTTP_X_CUSTOM",
            "HTTP_COOKIE"} <= set(cgi[0])
    assert env[0]["wsgi.url_scheme"] == env[1]["wsgi.url_scheme"]
    assert env[0]["PATH_INFO"] == env[1]["PATH_INFO"] == "/environ/a b"
    assert env[0]["wsgi.url_scheme"] == "https" and env[0]["_body"] == "payload"
    # the same response on the uwsgi side, for a streamed body of unknown length
    got = []
    for port in (s.port, gunicorn_port):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(packet(request_vars(path=b"/stream", query=b"n=10")))
        data, closed = srv.read_all_until_close(c, 10)
        c.close()
        version, status, headers, body = parse_response(data)
        assert closed
        got.append((version, status, body, headers.get("connection"),
                    headers.get("transfer-encoding"), headers.get("content-length")))
    assert got[0] == got[1] == ("HTTP/1.1", 200, b"x" * 10, "close", None, None)


@needs_nginx
def test_https_var_sets_url_scheme(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    for value, scheme in (("on", "https"), ("1", "https"), ("off", "http")):
        r = http(port, path="/environ", headers=[("X-Test-Https", value)])
        assert r.status == 200, r
        assert json.loads(r.body)["wsgi.url_scheme"] == scheme, value


@needs_nginx
def test_forwarded_proto_from_the_client_is_not_trusted(make_server, nginx, worker):
    """On a uwsgi hop X-Forwarded-Proto is whatever the client sent (nginx passes it as
    HTTP_X_FORWARDED_PROTO): only the HTTPS var decides, though nginx is a trusted
    forwarder (127.0.0.1 is in forwarded_allow_ips by default)."""
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    r = http(port, path="/environ", headers=[("X-Forwarded-Proto", "https"),
                                             ("X-Forwarded-Ssl", "on")])
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["HTTP_X_FORWARDED_PROTO"] == "https" and env["wsgi.url_scheme"] == "http"


@needs_nginx
def test_bodies_through_nginx(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker, args=["--timeout", "60"])
    port = nginx("127.0.0.1:%d" % s.port)
    r = http(port, "POST", "/echo", body=b"hello uwsgi")
    assert r.status == 200 and r.body == b"hello uwsgi", r

    big = bytes(range(256)) * (5 * MiB // 256)
    r = http(port, "POST", "/md5", body=big, timeout=60)
    assert r.status == 200, r
    assert r.body.decode() == "%s %d" % (hashlib.md5(big).hexdigest(), len(big))

    # chunked from the client: nginx buffers it and sends CONTENT_LENGTH
    body = b"0123456789" * 5000
    r = http(port, "POST", "/environ", headers=[("Transfer-Encoding", "chunked")],
             body=srv.chunked(body, 999))
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["_body"] == body.decode() and env["CONTENT_LENGTH"] == str(len(body))

    # a 5 MB response without a Content-Length: close-delimited on the uwsgi side
    r = http(port, "GET", "/stream?n=%d" % (5 * MiB), timeout=60)
    assert r.status == 200 and len(r.body) == 5 * MiB


@needs_nginx
def test_large_headers_through_nginx(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker)
    port = nginx("127.0.0.1:%d" % s.port)
    big = "v" * 8000  # "X-Big: " + 8000 + CRLF = 8009 bytes, under 8190
    r = http(port, path="/environ", headers=[("X-Big", big)])
    assert r.status == 200, r
    assert json.loads(r.body)["HTTP_X_BIG"] == big
    many = [("X-H%d" % i, "x") for i in range(90)]
    r = http(port, path="/environ", headers=many)
    assert r.status == 200 and json.loads(r.body)["HTTP_X_H89"] == "x"


@needs_nginx
def test_header_limits_apply_to_uwsgi_vars(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker,
                     args=["--limit-request-field_size", "1000", "--limit-request-fields", "20"])
    port = nginx("127.0.0.1:%d" % s.port)
    assert http(port, path="/", headers=[("X-Big", "v" * 900)]).status == 200
    assert http(port, path="/", headers=[("X-Big", "v" * 1100)]).status == 431
    assert http(port, path="/", headers=[("X-H%d" % i, "x") for i in range(18)]).status == 200
    assert http(port, path="/", headers=[("X-H%d" % i, "x") for i in range(25)]).status == 431
    assert http(port, path="/").status == 200


class ConnCounter:
    """A TCP relay between nginx and cunicorn that counts the connections nginx opens."""

    def __init__(self, backend_port):
        self.backend = backend_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.count = 0
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.count += 1
            u = socket.create_connection(("127.0.0.1", self.backend))
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def close(self):
        self.lsock.close()


@needs_nginx
def test_keep_alive_through_nginx(make_server, nginx, worker):
    s = uwsgi_server(make_server, worker, args=["--keep-alive", "5"])
    relay = ConnCounter(s.port)
    try:
        port = nginx("127.0.0.1:%d" % relay.port)
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        rd = srv.HTTPReader(c, 10)
        try:
            for i in range(5):
                c.sendall(srv.build_request("POST", "/echo", body=b"n%d" % i))
                r, _ = rd.read_final_response()
                assert r.status == 200 and r.body == b"n%d" % i, r
                assert (r.header("connection") or "keep-alive").lower() == "keep-alive"
        finally:
            c.close()
        # the client kept one connection; nginx's uwsgi module has no upstream keep-alive
        # and opened one connection to us per request
        assert relay.count == 5
    finally:
        relay.close()


@needs_nginx
@pytest.mark.parametrize("allow,ok", [("127.0.0.0/8", True), ("*", True), ("10.0.0.0/8", False),
                                      ("127.0.0.2", False)])
def test_allowed_and_refused_peers(make_server, nginx, worker, allow, ok):
    s = uwsgi_server(make_server, worker, args=["--uwsgi-allow-from", allow])
    port = nginx("127.0.0.1:%d" % s.port)
    r = http(port, path="/environ", source=("127.0.0.5", 0))
    if ok:
        assert r.status == 200, r
        assert json.loads(r.body)["REMOTE_ADDR"] == "127.0.0.5"
    else:
        # nginx connects from 127.0.0.1; cunicorn refuses it with 403 (gunicorn's
        # ForbiddenUWSGIRequest code), which nginx passes on
        assert r.status == 403, r
        assert s.wait_for_log(
            r"Invalid request from ip=127\.0\.0\.1: uWSGI request not allowed")


# ------------------------------------------------------------------- raw packets and bytes

def test_raw_packet_get_and_keep_alive(make_server, worker):
    s = uwsgi_server(make_server, worker, args=["--keep-alive", "5"])
    c = s.connect(10)
    rd = srv.HTTPReader(c, 10)
    try:
        # two packets on one connection: each response has a length, so it stays open
        for i in range(2):
            body = b"body-%d" % i
            c.sendall(packet(request_vars(b"POST", b"/echo", body=body)) + body)
            r = rd.read_response()
            assert r.version == "HTTP/1.1" and r.status == 200 and r.body == body, r
            assert r.header("transfer-encoding") is None
        # a response without a length is close-delimited, never chunked
        c.sendall(packet(request_vars(path=b"/stream", query=b"n=70000")))
        r = rd.read_response()
        assert r.status == 200 and len(r.body) == 70000 and r.header("content-length") is None
        assert r.header("transfer-encoding") is None
    finally:
        c.close()


def test_head_and_204_need_no_close(make_server, worker):
    s = uwsgi_server(make_server, worker, args=["--keep-alive", "5"])
    c = s.connect(10)
    rd = srv.HTTPReader(c, 10)
    try:
        c.sendall(packet(request_vars(b"HEAD", b"/stream", query=b"n=5000")))
        r = rd.read_response(head_request=True)
        assert r.status == 200 and r.header("transfer-encoding") is None
        c.sendall(packet(request_vars(path=b"/status", query=b"code=204")))
        r = rd.read_response()
        assert r.status == 204 and r.body == b""
        c.sendall(packet(request_vars()))
        r = rd.read_response()
        assert r.status == 200 and r.body == b"Hello, World!"
        assert rd.buf == b""  # nothing of the HEAD's body was sent
    finally:
        c.close()


def test_raw_packet_split_and_pipelined_body(make_server, worker):
    s = uwsgi_server(make_server, worker)
    body = b"z" * 100000
    data = packet(request_vars(b"POST", b"/md5", body=body)) + body
    c = s.connect(10)
    try:
        for i in range(0, len(data), 7777):  # header, vars and body cut anywhere
            c.sendall(data[i:i + 7777])
        r = srv.HTTPReader(c, 10).read_response()
    finally:
        c.close()
    assert r.status == 200 and r.body.decode() == "%s %d" % (hashlib.md5(body).hexdigest(),
                                                           len(body))


def test_plain_http_on_uwsgi_port_is_400(make_server, worker):
    s = uwsgi_server(make_server, worker)
    r = s.request("GET", "/")
    assert r.status == 400, r
    assert "Server Error" not in r.body.decode("latin-1")
    r = s.request("POST", "/echo", body=b"x" * 1000)
    assert r.status == 400, r
    assert "Traceback" not in s.log()
    assert_serving(s)


@pytest.mark.parametrize("name,data,status", [
    ("modifier1", packet([(b"A", b"b")], modifier1=5), 501),
    ("truncated var", packet([(b"AAAA", b"bbbb")], datasize=8) + b"\0\0\0\0", 400),
    ("length past block", packet([])[:1] + b"\x06\x00\x00" + b"\x05\x00AB\x00\x00", 400),
    ("bad content length", packet(request_vars(extra=[(b"CONTENT_LENGTH", b"-1")])), 400),
    ("sign in content length", packet(request_vars(extra=[(b"CONTENT_LENGTH", b"+5")])), 400),
    ("too many header vars", packet(request_vars(
        extra=[(b"HTTP_X_%d" % i, b"v") for i in range(101)])), 431),
    ("header var too large", packet(request_vars(extra=[(b"HTTP_X_BIG", b"v" * 9000)])), 431),
])
def test_malformed_packets_get_a_status_and_close(make_server, worker, name, data, status):
    s = uwsgi_server(make_server, worker)
    out, closed = raw_exchange(s, data)
    assert closed, name
    _, got, headers, _ = parse_response(out)
    assert got == status, (name, out[:200])
    assert headers.get("connection") == "close"
    assert "Traceback" not in s.log()
    assert_serving(s)


def test_truncated_packet_then_close_is_dropped(make_server, worker):
    s = uwsgi_server(make_server, worker)
    full = packet(request_vars(b"POST", b"/echo", body=b"abc"))
    for cut in (1, 3, 10, len(full) - 1):
        c = s.connect(5)
        c.sendall(full[:cut])
        c.shutdown(socket.SHUT_WR)
        out, closed = srv.read_all_until_close(c, 5)
        c.close()
        assert closed and out == b"", (cut, out[:200])
    # the body promised by CONTENT_LENGTH never comes: no response to a half request
    c = s.connect(5)
    c.sendall(full + b"a")
    c.shutdown(socket.SHUT_WR)
    out, closed = srv.read_all_until_close(c, 5)
    c.close()
    assert closed and b" 200 " not in out
    assert_serving(s)


def test_refused_peer_raw(make_server, worker):
    s = uwsgi_server(make_server, worker, args=["--uwsgi-allow-from", "10.0.0.0/8,::1"])
    out, closed = raw_exchange(s, packet(request_vars()))
    assert closed
    _, status, headers, _ = parse_response(out)
    assert status == 403 and headers.get("connection") == "close"


def test_uwsgi_settings_change_nothing_on_http(make_server, worker):
    """On an http listener the uwsgi settings change nothing (gunicorn accepts them)."""
    s = make_server(args=list(worker) + ["--uwsgi-allow-from", "*"])
    r = s.request("GET", "/environ")
    assert r.status == 200 and json.loads(r.body)["REMOTE_ADDR"] == "127.0.0.1"


def test_access_log_shows_the_client(make_server, worker):
    s = uwsgi_server(make_server, worker, args=["--access-logfile", "-"])
    extra = [(b"REMOTE_ADDR", b"198.51.100.4"), (b"REMOTE_PORT", b"4242")]
    out, _ = raw_exchange(s, packet(request_vars(path=b"/", extra=extra)))
    assert parse_response(out)[1] == 200
    assert s.wait_for_log(r'^198\.51\.100\.4 - - \[.*\] "GET / HTTP/1\.1" 200 13 ',
                          source="stdout")
