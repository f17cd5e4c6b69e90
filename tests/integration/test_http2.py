"""HTTP/2 over cleartext (h2c with prior knowledge) with real clients: curl, httpx, and the
h2 library for several streams on one connection."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import server as srv
from h2client import H2Conn

H2C = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
SCALE = 3 if srv.SANITIZED else 1


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--http2-prior-knowledge"] + list(args),
                          capture_output=True, timeout=timeout)


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


@pytest.fixture(params=["sync", "gthread"])
def h2server(request, make_server):
    return make_server("h2app:app", H2C + ["--worker-class", request.param, "--threads", "12",
                                           "--access-logfile", "-"])


@needs_curl
def test_curl_prior_knowledge_get_environ_and_access_log(h2server):
    r = curl("-i", "http://127.0.0.1:%d/env?a=1&b=2" % h2server.port, "-H", "X-Custom: yes")
    out = r.stdout.decode()
    assert out.startswith("HTTP/2 200"), out
    assert "server: cunicorn" in out and re.search(r"(?m)^date: ", out)
    body = out.split("\r\n\r\n", 1)[1]
    env = dict(l.split("=", 1) for l in body.splitlines())
    assert env["SERVER_PROTOCOL"] == "HTTP/2.0"
    assert env["HTTP_VERSION"] == "2"
    assert env["HTTP_HOST"] == "127.0.0.1:%d" % h2server.port
    assert env["QUERY_STRING"] == "a=1&b=2" and env["HTTP_X_CUSTOM"] == "yes"
    assert env["wsgi.url_scheme"] == "http"
    srv.wait_until(lambda: "GET /env?a=1&b=2 HTTP/2.0" in h2server.stdout(), 5)
    line = [l for l in h2server.stdout().splitlines() if "/env?a=1" in l][0]
    assert re.match(r'^127\.0\.0\.1 - - \[.*\] "GET /env\?a=1&b=2 HTTP/2\.0" 200 \d+ "-" "curl/',
                    line), line


@needs_curl
def test_curl_request_body_into_wsgi_input(h2server, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    r = curl("--data-binary", "@%s" % f, "http://127.0.0.1:%d/echo" % h2server.port)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    # no content-length: curl sends the body as it reads it from a pipe (stdin)
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-T", "-", "-X", "POST",
                        "http://127.0.0.1:%d/echo-lines" % h2server.port],
                       input=b"line\n" * 10000, capture_output=True, timeout=30)
    assert p.stdout == b"10000 lines", p


def test_wsgi_input_read_of_a_body_without_content_length(h2server):
    """A request body that ends with its stream (no content-length, as gRPC clients send):
    read() returns it whole (it raised OverflowError: the unknown length was taken for a
    huge known one)."""
    data = os.urandom(300000)
    c = H2Conn("127.0.0.1", h2server.port)
    try:
        [r] = c.wait([c.request("POST", "/echo", body=data)])
        [r2] = c.wait([c.request("POST", "/echo-lines", body=b"a\nb\nc")])
    finally:
        c.close()
    assert r["status"] == 200 and r["body"] == data
    assert dict(r["headers"])["x-body-length"] == str(len(data))
    assert r2["status"] == 200 and r2["body"] == b"3 lines"


@needs_curl
def test_curl_streaming_large_and_file_wrapper(h2server):
    r = curl("http://127.0.0.1:%d/stream?7" % h2server.port)
    assert r.stdout == b"".join(b"chunk %d\n" % i for i in range(7))
    r = curl("http://127.0.0.1:%d/big?5000000" % h2server.port)
    assert r.stdout == b"x" * 5000000
    r = curl("http://127.0.0.1:%d/file" % h2server.port)
    assert r.stdout == bytes(range(256)) * 4096
    r = curl("-I", "http://127.0.0.1:%d/big?100" % h2server.port)
    assert r.stdout.startswith(b"HTTP/2 200")


@needs_curl
def test_app_error_is_a_500_on_its_stream(h2server):
    r = curl("-i", "http://127.0.0.1:%d/error" % h2server.port)
    assert r.stdout.startswith(b"HTTP/2 500"), r
    r = curl("http://127.0.0.1:%d/after" % h2server.port)
    assert r.stdout == b"hello /after"


def test_httpx_http2_client(h2server):
    httpx = pytest.importorskip("httpx")
    with httpx.Client(http1=False, http2=True, timeout=20) as c:
        for i in range(20):
            r = c.post("http://127.0.0.1:%d/echo" % h2server.port, content=b"z" * (i * 1000))
            assert r.http_version == "HTTP/2" and r.status_code == 200
            assert r.content == b"z" * (i * 1000)


def _parallel_ratio(port, n):
    c = H2Conn("127.0.0.1", port)
    try:
        t0 = time.monotonic()
        [r] = c.wait([c.request("GET", "/sleep?0.5")])
        one = time.monotonic() - t0
        assert r["status"] == 200 and r["body"] == b"slept"
        t0 = time.monotonic()
        sids = [c.request("GET", "/sleep?0.5") for _ in range(n)]
        rs = c.wait(sids, timeout=60)
        many = time.monotonic() - t0
        assert all(r["status"] == 200 and r["body"] == b"slept" for r in rs), rs
        return one, many, rs, sids
    finally:
        c.close()


def test_gthread_serves_the_streams_of_one_connection_in_parallel(make_server):
    s = make_server("h2app:app", H2C + ["--worker-class", "gthread", "--threads", "12"])
    one, many, _, _ = _parallel_ratio(s.port, 10)
    # 10 streams sleeping 0.5 s each on one connection: about the time of one, far from ten
    assert many < one * 3, (one, many)


@pytest.mark.parametrize("slow_first", [True, False])
def test_gthread_a_quick_stream_is_not_held_behind_a_slow_one(make_server, slow_first):
    """The thread that reads a connection's frames runs its streams one after another and
    sends their responses in one write (workers/h2.c sess_run_inline); a stream whose app
    takes long hands the others to free threads, and what finished before it is sent. So a
    quick stream next to a slow one, before or after it, is answered long before the slow
    one ends."""
    s = make_server("h2app:app", H2C + ["--worker-class", "gthread", "--threads", "4"])
    slow = 2.0 * srv.TIME_SCALE
    c = H2Conn("127.0.0.1", s.port)
    try:
        c.wait([c.request("GET", "/env")])  # the worker is up
        order = [("GET", "/sleep?%g" % slow), ("GET", "/env")]
        if not slow_first:
            order.reverse()
        t0 = time.monotonic()
        sids = [c.request(m, p) for m, p in order]
        rs = dict(zip(sids, c.wait(sids, timeout=60)))
    finally:
        c.close()
    quick = rs[sids[1] if slow_first else sids[0]]
    late = rs[sids[0] if slow_first else sids[1]]
    assert quick["status"] == 200 and late["status"] == 200 and late["body"] == b"slept"
    assert late["done_at"] - t0 >= slow
    # answered while the slow one still slept, with most of its time to spare
    assert quick["done_at"] < late["done_at"] - slow / 2, (quick["done_at"] - t0,
                                                            late["done_at"] - t0)


def test_sync_serves_the_streams_of_one_connection_in_order(make_server):
    s = make_server("h2app:app", H2C + ["--worker-class", "sync"])
    one, many, rs, sids = _parallel_ratio(s.port, 4)
    assert many > one * 3, (one, many)
    done = [r["done_at"] for r in rs]
    assert done == sorted(done)


def test_untrusted_peers_get_http1(make_server):
    # forwarded_allow_ips excludes 127.0.0.1: h2c is not offered to this peer
    s = make_server("h2app:app", H2C + ["--forwarded-allow-ips", "10.9.9.9"])
    sock = s.connect()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 200 and resp.body == b"hello /x"
    sock.close()
    sock = s.connect()
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 400
    sock.close()


def test_trusted_http1_on_a_prior_knowledge_port_is_a_400(make_server):
    s = make_server("h2app:app", H2C)
    sock = s.connect()
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 400
    sock.close()
    srv.wait_until(lambda: "Expected the HTTP/2 connection preface" in s.log(), 5)


def test_h2_off_by_default_serves_http1(make_server):
    s = make_server("h2app:app", [])
    sock = s.connect()
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 400
    sock.close()


def test_unix_socket_peers_may_use_h2c(make_server, tmp_path):
    path = str(tmp_path / "h2.sock")
    make_server("h2app:app", H2C + ["--forwarded-allow-ips", "10.9.9.9"],
                binds=["unix:" + path])
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--unix-socket", path,
                        "http://localhost/u"], capture_output=True, timeout=20)
    assert r.stdout == b"hello /u", r


# ---- HTTP/2 over TLS, chosen by ALPN

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("h2certs"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)
    return os.path.join(d, "c.pem"), os.path.join(d, "k.pem")


@needs_curl
@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_tls_alpn_h2_with_curl_and_httpx(make_server, cert, worker):
    s = make_server("h2app:app", ["--http-protocols", "h2,h1", "--certfile", cert[0],
                                  "--keyfile", cert[1], "--worker-class", worker,
                                  "--threads", "4", "--access-logfile", "-"])
    url = "https://127.0.0.1:%d" % s.port
    r = subprocess.run(["curl", "-sSk", "--http2", "-i", url + "/env"], capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    assert out.startswith("HTTP/2 200"), r
    assert "SERVER_PROTOCOL=HTTP/2.0" in out and "wsgi.url_scheme=https" in out
    data = os.urandom(200000)
    r = subprocess.run(["curl", "-sSk", "--http2", "--data-binary", "@-", url + "/echo"],
                       input=data, capture_output=True, timeout=30)
    assert r.stdout == data
    # a client that offers only HTTP/1.1 gets it
    r = subprocess.run(["curl", "-sSk", "--http1.1", "-i", url + "/x"], capture_output=True,
                       timeout=30)
    assert r.stdout.startswith(b"HTTP/1.1 200") and r.stdout.endswith(b"hello /x")
    httpx = pytest.importorskip("httpx")
    with httpx.Client(http2=True, verify=False, timeout=20) as c:
        for i in range(5):
            resp = c.get(url + "/stream?3")
            assert resp.http_version == "HTTP/2"
            assert resp.content == b"chunk 0\nchunk 1\nchunk 2\n"
    srv.wait_until(lambda: '"GET /env HTTP/2.0" 200' in s.stdout(), 5)


@needs_curl
def test_tls_h1_only_never_speaks_h2(make_server, cert):
    s = make_server("h2app:app", ["--certfile", cert[0], "--keyfile", cert[1]])
    r = subprocess.run(["curl", "-sSk", "--http2", "-i", "https://127.0.0.1:%d/x" % s.port],
                       capture_output=True, timeout=30)
    assert r.stdout.startswith(b"HTTP/1.1 200"), r


# ---- Upgrade: h2c (http2_cleartext upgrade / both)

@needs_curl
@pytest.mark.parametrize("mode", ["upgrade", "both"])
def test_upgrade_h2c_with_curl(make_server, mode):
    s = make_server("h2app:app", ["--http-protocols", "h2,h1", "--http2-cleartext", mode,
                                  "--worker-class", "gthread", "--threads", "4",
                                  "--access-logfile", "-"])
    url = "http://127.0.0.1:%d" % s.port
    r = subprocess.run(["curl", "-sS", "--http2", "-i", url + "/env?u=1"], capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    assert out.startswith("HTTP/1.1 101 Switching Protocols\r\n"), out
    assert "\r\nHTTP/2 200" in out and "SERVER_PROTOCOL=HTTP/2.0" in out and "QUERY_STRING=u=1" in out
    # a request body travels with the upgrade request
    data = os.urandom(30000)
    r = subprocess.run(["curl", "-sS", "--http2", "--data-binary", "@-", url + "/echo"],
                       input=data, capture_output=True, timeout=30)
    assert r.stdout == data
    # plain HTTP/1.1 from the same trusted peer is served (it is how an upgrade begins)
    sock = s.connect()
    sock.sendall(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 200 and resp.body == b"hello /plain"
    sock.close()
    r = curl(url + "/pk")  # --http2-prior-knowledge
    if mode == "both":
        assert r.stdout == b"hello /pk"
    else:
        assert r.stdout != b"hello /pk"  # prior knowledge is a separate mechanism
    srv.wait_until(lambda: '"GET /env?u=1 HTTP/2.0" 200' in s.stdout(), 5)


def test_upgrade_h2c_refused_cases_are_served_as_http1(make_server):
    s = make_server("h2app:app", ["--http-protocols", "h2,h1", "--http2-cleartext", "upgrade"])
    cases = [
        # HTTP2-Settings not named in Connection
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        # two HTTP2-Settings
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABk\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
        # unusable settings (ENABLE_PUSH = 7)
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAIAAAAH\r\n\r\n",
        # HTTP/1.0
        b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABk\r\n\r\n",
    ]
    for raw in cases:
        sock = s.connect()
        sock.sendall(raw)
        resp = srv.HTTPReader(sock).read_response()
        assert resp.status == 200 and resp.body == b"hello /a", raw
        sock.close()
    # untrusted peers are never upgraded
    s2 = make_server("h2app:app", ["--http-protocols", "h2,h1", "--http2-cleartext", "upgrade",
                                   "--forwarded-allow-ips", "10.1.1.1"])
    sock = s2.connect()
    sock.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n\r\n")
    resp = srv.HTTPReader(sock).read_response()
    assert resp.status == 200 and resp.body == b"hello /a"
    sock.close()


# ---- wsgi.early_hints and gunicorn.http2.send_trailers (as gunicorn 27 exposes them)

@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_early_hints_and_trailers_over_http2(make_server, worker):
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "4"])
    c = H2Conn("127.0.0.1", s.port)
    try:
        sid = c.request("GET", "/hints")
        [r] = c.wait([sid])
        assert r["status"] == 200 and r["body"] == b"after hints"
        import h2.events
        info = [e for e in c.events if isinstance(e, h2.events.InformationalResponseReceived)
                and e.stream_id == sid]
        assert [dict(e.headers)[":status"] for e in info] == ["103", "103"]
        assert dict(info[0].headers)["link"] == "</style.css>; rel=preload; as=style"
        assert dict(info[1].headers)["link"] == "</app.js>; rel=preload; as=script"
        sid = c.request("GET", "/trailers")
        [r] = c.wait([sid])
        assert r["status"] == 200 and r["body"] == b"body done"
        tr = [e for e in c.events if isinstance(e, h2.events.TrailersReceived)
              and e.stream_id == sid]
        assert len(tr) == 1 and dict(tr[0].headers) == {"x-checksum": "abc123",
                                                         "grpc-status": "0"}
    finally:
        c.close()


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_request_trailers_are_accepted_and_not_taken_for_headers(make_server, worker):
    """Request trailers (a HEADERS frame with END_STREAM after the DATA, as gRPC clients
    send): the body reaches the app whole and the response is 200; the trailer fields are
    not in the environ (gunicorn 27 gives WSGI apps no request trailers either)."""
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "4"])
    data = os.urandom(200000)
    digest = hashlib.sha256(data).hexdigest()
    c = H2Conn("127.0.0.1", s.port)
    try:
        sids = []
        for length in (True, False):
            head = [("content-type", "application/grpc"), ("te", "trailers")]
            if length:
                head.append(("content-length", str(len(data))))
            sid = c.request("POST", "/body-and-head", head, body=data, end=False)
            c.conn.send_headers(sid, [("x-checksum", digest), ("grpc-status", "0")],
                                end_stream=True)
            c.flush()
            sids.append(sid)
        # trailers and no body at all
        sid = c.request("POST", "/body-and-head", [("te", "trailers")], end=False)
        c.conn.send_headers(sid, [("x-late", "1")], end_stream=True)
        c.flush()
        sids.append(sid)
        got = c.wait(sids)
        # the connection goes on
        [after] = c.wait([c.request("GET", "/x")])
    finally:
        c.close()
    for r in got:
        assert r["status"] == 200 and r["reset"] is None, r
    bodies = [json.loads(r["body"]) for r in got]
    assert [(b["len"], b["sha256"]) for b in bodies[:2]] == [(len(data), digest)] * 2
    assert bodies[2]["len"] == 0
    for b in bodies:
        assert "HTTP_TE" in b["http"]
        assert not {"HTTP_X_CHECKSUM", "HTTP_GRPC_STATUS", "HTTP_X_LATE"} & set(b["http"]), b
    assert after["status"] == 200 and after["body"] == b"hello /x"


def test_early_hints_over_http11_and_no_trailers_there(make_server):
    s = make_server("h2app:app", [])
    sock = s.connect()
    sock.sendall(b"GET /hints HTTP/1.1\r\nHost: a\r\n\r\n")
    rd = srv.HTTPReader(sock)
    first = rd.read_response()
    assert first.status == 103 and first.header("Link") == "</style.css>; rel=preload; as=style"
    second = rd.read_response()
    assert second.status == 103
    final = rd.read_response()
    assert final.status == 200 and final.body == b"after hints"
    sock.sendall(b"GET /has-trailers HTTP/1.1\r\nHost: a\r\n\r\n")
    assert rd.read_response().body == b"False"
    sock.close()
    # HTTP/1.0 clients get no 1xx
    sock = s.connect()
    sock.sendall(b"GET /hints HTTP/1.0\r\n\r\n")
    r = srv.HTTPReader(sock).read_response()
    assert r.status == 200 and r.body == b"after hints"
    sock.close()


def test_priority_environ_keys(make_server):
    s = make_server("h2app:app", H2C)
    c = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c.wait([c.request("GET", "/priority")])
        assert r["body"] == b"16 0"  # no priority sent: RFC 7540 defaults
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "GET"), (":path", "/priority"), (":scheme", "http"),
                                  (":authority", "x")], end_stream=True, priority_weight=201,
                            priority_depends_on=1, priority_exclusive=False)
        c.flush()
        c.responses[sid] = {"status": None, "headers": [], "body": b"", "ended": False,
                            "reset": None, "done_at": None}
        [r] = c.wait([sid])
        assert r["body"] == b"201 1"
    finally:
        c.close()


@pytest.mark.parametrize("args,what", [
    (["--worker-class", "gevent"], "the gevent worker"),
    (["--protocol", "uwsgi"], "--protocol uwsgi"),
])
def test_h2_refused_where_streams_cannot_be_served(tmp_path, args, what):
    # workers/h2.c serves streams through the sync, gthread and asgi classes: any other
    # combination is refused at startup, never silently served as HTTP/1
    p = subprocess.run([srv.BIN, "-b", "127.0.0.1:%d" % srv.free_port()] + H2C + args +
                       ["h2app:app"], capture_output=True, text=True, timeout=30,
                       cwd=str(tmp_path))
    assert p.returncode != 0
    assert "HTTP/2 (h2) with %s is a combination cunicorn does not support yet" % what in p.stderr
