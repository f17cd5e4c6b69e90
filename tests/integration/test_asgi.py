"""The asgi worker (-k asgi) with a raw ASGI 3 app: scope, bodies, streaming, keep-alive,
pipelining, 100-continue, errors, disconnects, lifespan, worker class names, settings."""
import hashlib
import http.client
import json
import os
import socket
import time

import pytest

import server as srv


def asgi_server(make_server, args=(), app="asgiapp:app", record=None, env=None, **kw):
    env = dict(env or {})
    if record:
        env["ASGI_RECORD"] = record
    return make_server(app, ["-k", "asgi"] + list(args), env=env, **kw)


def request(s, method="GET", path="/", body=None, headers=None):
    conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def records(path, lifespan=False):
    lines = srv.read_lines(path)
    return lines if lifespan else [x for x in lines if x not in ("startup", "shutdown")]


def test_scope_as_gunicorn_fills_it(make_server, tmp_path):
    s = asgi_server(make_server, ["--root-path", "/api"])
    st, _, body = request(s, "POST", "/scope/caf%C3%A9%2Fx?a=1&b=%20", body=b"hi",
                          headers={"X-Custom-Thing": "Value One", "Content-Type": "text/x"})
    assert st == 200
    sc = json.loads(body)
    assert sc["type"] == "http"
    assert sc["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert sc["http_version"] == "1.1"
    assert sc["method"] == "POST"
    assert sc["scheme"] == "http"
    assert sc["path"] == "/scope/café/x"  # percent-decoded, UTF-8
    assert sc["raw_path"] == "/scope/caf%C3%A9%2Fx"
    assert sc["query_string"] == "a=1&b=%20"
    assert sc["root_path"] == "/api"
    assert ["x-custom-thing", "Value One"] in sc["headers"]  # names lower-cased, values kept
    assert ["content-type", "text/x"] in sc["headers"]
    assert sc["header_types"] == ["bytes/bytes"]
    assert sc["client"][0] == "127.0.0.1" and isinstance(sc["client"][1], int)
    assert sc["server"] == ["127.0.0.1", s.port]
    # lifespan state: a shallow copy per request (a request's change does not leak)
    assert sc["state"]["answer"] == 42
    st, _, body = request(s, "GET", "/scope")
    assert json.loads(body)["state"]["answer"] == 42


def test_early_hints_over_http11_not_http10(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(b"GET /early-hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, closed = srv.read_all_until_close(sock)
    assert closed
    first, second, final = data.split(b"\r\n\r\n", 2)
    assert first.split(b"\r\n") == [b"HTTP/1.1 103 Early Hints",
                                     b"link: </style.css>; rel=preload; as=style"]
    assert second.split(b"\r\n") == [b"HTTP/1.1 103 Early Hints",
                                      b"link: </app.js>; rel=preload; as=script"]
    assert final.startswith(b"HTTP/1.1 200 OK\r\n") and final.endswith(b"after hints")
    # HTTP/1.0 knows no interim responses: only the final one
    sock = s.connect(timeout=10)
    sock.sendall(b"GET /early-hints HTTP/1.0\r\nHost: x\r\n\r\n")
    data, _ = srv.read_all_until_close(sock)
    assert data.count(b"HTTP/1.") == 1 and data.endswith(b"after hints")


def test_informational_status_must_be_1xx(make_server):
    s = asgi_server(make_server)
    st, _, _ = request(s, "GET", "/bad-informational")
    assert st == 500
    assert srv.wait_until(lambda: "1xx status other than 101, got 200" in s.log(), 10)
    assert request(s, "GET", "/scope")[0] == 200  # the worker goes on


def test_trailers_not_offered_on_http1_and_ignored(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    st, _, body = request(s, "GET", "/scope")
    assert "extensions" not in json.loads(body) or json.loads(body)["extensions"] is None
    st, h, body = request(s, "GET", "/trailers?70000")
    assert st == 200 and body == b"t" * 70000
    st, _, body = request(s, "GET", "/trailers-early")
    assert st == 200 and body == b"part rest"
    lines = records(rec)
    assert lines == ["trailers offered False", "trailers sent"], lines
    assert "Traceback" not in s.log()


def test_http10_scope_and_close(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(b"GET /scope HTTP/1.0\r\nHost: x\r\n\r\n")
    data, closed = srv.read_all_until_close(sock)
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["http_version"] == "1.0"


@pytest.mark.parametrize("size", [0, 10, 70000, 5 * 1024 * 1024])
def test_request_body_streamed_to_the_app(make_server, size):
    s = asgi_server(make_server)
    data = os.urandom(size)
    st, _, body = request(s, "POST", "/echo", body=data)
    out = json.loads(body)
    assert st == 200 and out["len"] == size
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    if size > 1024 * 1024:
        assert out["messages"] > 1  # streamed in pieces, not buffered whole


def test_chunked_request_body(make_server):
    s = asgi_server(make_server)
    data = os.urandom(300000)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                 + srv.chunked(data, size=7000))
    r = srv.HTTPReader(sock).read_response()
    out = json.loads(r.body)
    assert r.status == 200 and out["len"] == len(data)
    assert out["sha256"] == hashlib.sha256(data).hexdigest()


def test_expect_100_continue(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    sock.settimeout(5)
    first = sock.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"hello")
    r = srv.HTTPReader(sock).read_response()
    assert json.loads(r.body)["len"] == 5


def test_streaming_response_is_chunked_and_in_order(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/stream?6"))
    r = srv.HTTPReader(sock).read_response()
    assert r.status == 200
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == b"".join(b"chunk%d\n" % i for i in range(6))


def test_single_body_gets_content_length(make_server):
    s = asgi_server(make_server)
    st, h, body = request(s, "GET", "/echo")
    assert st == 200 and int(h["Content-Length"]) == len(body)


def test_large_response_with_slow_reader(make_server):
    s = asgi_server(make_server)
    n = 8 * 1024 * 1024
    sock = s.connect(timeout=20)
    sock.sendall(srv.build_request("GET", "/big?%d" % n))
    time.sleep(0.3)  # let the server fill the socket; the app must wait, not fail
    got = srv.HTTPReader(sock, timeout=20).read_response()
    assert got.status == 200 and len(got.body) == n


def test_keepalive_and_pipelining_in_order(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    reqs = b"".join(srv.build_request("GET", "/scope/%d" % i) for i in range(5))
    reqs += srv.build_request("POST", "/echo", body=b"abc")
    sock.sendall(reqs)
    rd = srv.HTTPReader(sock)
    for i in range(5):
        r = rd.read_response()
        assert r.status == 200 and json.loads(r.body)["path"] == "/scope/%d" % i
    r = rd.read_response()
    assert json.loads(r.body)["len"] == 3
    # the connection stays open for more
    sock.sendall(srv.build_request("GET", "/scope/again"))
    assert json.loads(rd.read_response().body)["path"] == "/scope/again"


def test_connection_close_announced(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/scope", headers=[("Connection", "close")]))
    rd = srv.HTTPReader(sock)
    r = rd.read_response()
    assert r.status == 200 and r.header("connection", "").lower() == "close"
    assert rd.is_closed()


def test_app_error_before_start_is_500_and_logged(make_server):
    s = asgi_server(make_server)
    st, _, _ = request(s, "GET", "/error")
    assert st == 500
    assert srv.wait_until(lambda: "boom before the response" in s.log(), 5)
    assert "Exception in ASGI application" in s.log()
    st, _, _ = request(s, "GET", "/no-response")
    assert st == 500
    st, _, _ = request(s, "GET", "/scope")  # the worker goes on serving
    assert st == 200


def test_app_error_after_start_truncates(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/error-after-start"))
    data, closed = srv.read_all_until_close(sock)
    assert closed and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client sees it cut


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(make_server, status):
    s = asgi_server(make_server)
    st, h, body = request(s, "GET", "/status?%d" % status)
    assert st == status and body == b""


def test_head_request_has_no_body(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("HEAD", "/echo") + srv.build_request("GET", "/echo"))
    rd = srv.HTTPReader(sock)
    r = rd.read_response(head_request=True)
    assert r.status == 200 and r.body == b""
    assert rd.read_response().status == 200


def test_disconnect_reaches_the_app(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/wait-disconnect"))
    time.sleep(0.2)
    sock.close()
    assert srv.wait_until(lambda: "wait-disconnect:http.disconnect" in records(rec), 5)


def test_disconnect_mid_body(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    sock = s.connect(timeout=10)
    sock.sendall(b"POST /body-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                 + b"x" * 100000)
    sock.close()
    assert srv.wait_until(lambda: any(r.startswith("body-disconnect") for r in records(rec)), 5)
    got = [r for r in records(rec) if r.startswith("body-")]
    assert len(got) == 1 and int(got[0].split()[2]) <= 100000
    assert request(s, "GET", "/scope")[0] == 200  # the worker is fine


def test_send_after_client_left_raises_oserror(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/send-after-disconnect"))
    sock.recv(10)
    sock.close()
    assert srv.wait_until(lambda: len(records(rec)) >= 2, 10), records(rec)
    assert records(rec) == ["receive:http.disconnect", "send raised OSError:ClientDisconnected"]


def test_app_ignoring_disconnect_is_cancelled_after_grace(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, ["--asgi-disconnect-grace-period", "1"], record=rec)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/cancelled"))
    time.sleep(0.2)
    sock.close()
    assert srv.wait_until(lambda: "cancelled" in records(rec), 10)


def test_work_after_the_response_does_not_hold_the_client(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/after-response") + srv.build_request("GET", "/scope"))
    rd = srv.HTTPReader(sock)
    assert rd.read_response().status == 200
    assert rd.read_response().status == 200
    assert "after-response done" not in records(rec)  # both answered while it still ran
    assert srv.wait_until(lambda: "after-response done" in records(rec), 5)


def test_slow_clients_cost_nothing(make_server):
    s = asgi_server(make_server, ["--timeout", "30"])
    idle = [s.connect(timeout=5) for _ in range(100)]
    for k in idle[:50]:
        k.sendall(b"GET /scope HTTP/1.1\r\nHost")  # an incomplete head: never reaches the app
    try:
        for _ in range(5):
            st, _, _ = request(s, "GET", "/scope")
            assert st == 200
    finally:
        for k in idle:
            k.close()


def test_worker_connections_cap_sheds_oldest_idle_keepalive(make_server):
    """At the cap a new client with a request gets in: the engine closes the oldest idle
    keep-alive connection to make room (issue 10's overload policy, as for WSGI)."""
    s = asgi_server(make_server, ["--worker-connections", "5", "--keep-alive", "30"])
    held = [s.connect(timeout=5) for _ in range(5)]
    for k in held:
        k.sendall(srv.build_request("GET", "/scope"))
        assert srv.HTTPReader(k).read_response().status == 200
    extra = s.connect(timeout=5)
    extra.sendall(srv.build_request("GET", "/scope"))
    extra.settimeout(10)
    assert srv.HTTPReader(extra).read_response().status == 200
    extra.close()
    held[0].settimeout(5)
    assert held[0].recv(1) == b""  # the oldest idle one was given up
    for k in held[1:]:
        k.sendall(srv.build_request("GET", "/scope"))
        assert srv.HTTPReader(k).read_response().status == 200
    for k in held:
        k.close()
    assert srv.wait_until(lambda: "worker_connections (5) reached" in s.log(), 5)


# ---- lifespan ----

def test_lifespan_startup_before_serving_and_shutdown_on_term(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    assert request(s, "GET", "/scope")[0] == 200  # served only once startup completed
    assert records(rec, lifespan=True) == ["startup"]
    assert s.stop() == 0
    assert records(rec, lifespan=True) == ["startup", "shutdown"]


def test_lifespan_off(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, ["--asgi-lifespan", "off"], record=rec)
    st, _, body = request(s, "GET", "/scope")
    assert st == 200 and json.loads(body)["state"] == {}
    s.stop()
    assert records(rec, lifespan=True) == []


@pytest.mark.parametrize("case,mode", [("failed", "auto"), ("failed", "on"), ("raise", "on"),
                                       ("unsupported", "on")])
def test_lifespan_failure_stops_the_server(make_server, case, mode):
    s = asgi_server(make_server, ["--asgi-lifespan", mode], app="asgilife:app",
                    env={"LIFESPAN_CASE": case}, ready=False)
    assert srv.wait_until(lambda: s.proc.poll() is not None, 20), s.describe()
    log = s.log()
    assert s.proc.returncode != 0
    assert "ASGI lifespan startup failed" in log
    if case == "failed":
        assert "database unreachable" in log
    assert log.count("Booting worker") == 1  # no respawn loop


@pytest.mark.parametrize("case", ["unsupported", "raise"])
def test_lifespan_auto_serves_an_app_without_lifespan(make_server, case):
    s = asgi_server(make_server, app="asgilife:app", env={"LIFESPAN_CASE": case})
    assert request(s, "GET", "/")[2] == b"served"


# ---- worker class names, loops, settings ----

@pytest.mark.parametrize("name", ["uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker",
                                  "egg:gunicorn#asgi"])
def test_other_servers_worker_names_run_asgi(make_server, name):
    s = make_server("asgiapp:app", ["-k", name])
    assert request(s, "GET", "/scope")[0] == 200
    s.stop()
    if "uvicorn" in name:
        assert s.log().count("runs as cunicorn's asgi worker") == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto"])
def test_asgi_loop(make_server, loop):
    pytest.importorskip("uvloop")
    s = asgi_server(make_server, ["--asgi-loop", loop, "--log-level", "debug"])
    assert request(s, "GET", "/scope")[0] == 200
    want = "asyncio" if loop == "asyncio" else "uvloop"
    assert "ASGI worker event loop: %s" % want in s.log()


@pytest.mark.parametrize("args,msg", [
    (["--asgi-loop", "tornado"], "Invalid ASGI loop: tornado"),
    (["--asgi-lifespan", "maybe"], "Invalid ASGI lifespan: maybe"),
    (["--asgi-disconnect-grace-period", "-1"], "Value must be positive"),
    (["--websocket-max-message-size", "x"], "invalid int value"),
    (["--http-parser", "pico"], "http_parser must be one of"),
])
def test_asgi_settings_validated(make_server, args, msg):
    s = asgi_server(make_server, args, ready=False)
    assert srv.wait_until(lambda: s.proc.poll() is not None, 10)
    assert s.proc.returncode != 0 and msg in s.log()


def test_graceful_stop_finishes_inflight_request(make_server):
    s = asgi_server(make_server)
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/stream?30"))
    time.sleep(0.05)
    s.proc.send_signal(15)
    r = srv.HTTPReader(sock, timeout=10).read_response()
    assert r.body == b"".join(b"chunk%d\n" % i for i in range(30))
    assert s.stop() == 0


# ---- signals and process management ----

def test_max_requests_recycles_and_drops_nothing(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, ["--max-requests", "5"], record=rec)
    first = s.worker_pids()
    for i in range(12):
        st, _, _ = request(s, "GET", "/scope")
        assert st == 200, i
    assert srv.wait_until(lambda: not set(s.worker_pids()) & set(first), 10)
    # each worker that retired (after requests 5 and 10) ran its lifespan shutdown
    assert srv.wait_until(lambda: records(rec, lifespan=True).count("shutdown") >= 2, 10)


def test_hup_replaces_workers_without_dropping(make_server):
    import signal as _signal
    s = asgi_server(make_server)
    first = s.worker_pids()
    sock = s.connect(timeout=10)
    sock.sendall(srv.build_request("GET", "/stream?40"))  # in flight across the HUP
    s.proc.send_signal(_signal.SIGHUP)
    r = srv.HTTPReader(sock, timeout=10).read_response()
    assert r.body == b"".join(b"chunk%d\n" % i for i in range(40))
    assert srv.wait_until(lambda: s.worker_pids() and not set(s.worker_pids()) & set(first), 10)
    assert request(s, "GET", "/scope")[0] == 200


def test_int_is_quick_and_skips_lifespan_shutdown(make_server, tmp_path):
    import signal as _signal
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    assert request(s, "GET", "/scope")[0] == 200
    assert s.stop(sig=_signal.SIGINT) == 0
    assert records(rec, lifespan=True) == ["startup"]


# ---- proxies ----

def test_scheme_from_trusted_forwarder_only(make_server):
    s = asgi_server(make_server)  # 127.0.0.1 is in forwarded_allow_ips by default
    st, _, body = request(s, "GET", "/scope", headers={"X-Forwarded-Proto": "https"})
    assert json.loads(body)["scheme"] == "https"
    st, _, body = request(s, "GET", "/scope", headers={"X-Forwarded-Proto": "http"})
    assert json.loads(body)["scheme"] == "http"
    st, _, _ = request(s, "GET", "/scope", headers={"X-Forwarded-Proto": "https",
                                                    "X-Forwarded-Ssl": "off"})
    assert st == 400  # contradictory, as gunicorn answers
    s2 = asgi_server(make_server, ["--forwarded-allow-ips", "10.1.2.3"])
    st, _, body = request(s2, "GET", "/scope", headers={"X-Forwarded-Proto": "https"})
    assert json.loads(body)["scheme"] == "http"


def test_underscore_headers_dropped_as_gunicorn(make_server):
    s = asgi_server(make_server)
    st, _, body = request(s, "GET", "/scope", headers={"X_Evil": "1", "X-Good": "2"})
    names = [n for n, _ in json.loads(body)["headers"]]
    assert "x-good" in names and "x_evil" not in names


def test_proxy_protocol_client_address(make_server):
    s = asgi_server(make_server, ["--proxy-protocol", "v1"])
    sock = s.connect(timeout=10)
    sock.sendall(b"PROXY TCP4 198.51.100.7 203.0.113.9 40000 443\r\n" +
                 srv.build_request("GET", "/scope"))
    r = srv.HTTPReader(sock).read_response()
    assert json.loads(r.body)["client"] == ["198.51.100.7", 40000]


def hooks_conf(tmp_path):
    """A config file whose pre_request/post_request hooks append to $ASGI_RECORD."""
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(
        "import os\n"
        "def pre_request(worker, req):\n"
        "    open(os.environ['ASGI_RECORD'], 'a').write('pre %s %s\\n' % (req.method, req.path))\n"
        "def post_request(worker, req, environ, resp):\n"
        "    open(os.environ['ASGI_RECORD'], 'a').write('post %s %s\\n' % (req.path, resp.status))\n")
    return conf


def test_pre_and_post_request_hooks(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    conf = hooks_conf(tmp_path)
    s = asgi_server(make_server, ["-c", str(conf)], record=rec)
    assert request(s, "POST", "/echo", body=b"abc")[0] == 200
    assert request(s, "GET", "/error")[0] == 500
    assert srv.wait_until(lambda: len(records(rec)) >= 4, 5)
    got = records(rec)
    assert got[0] == "pre POST /echo" and got[1].startswith("post /echo 200")
    assert got[2] == "pre GET /error" and got[3].startswith("post /error")


def test_chunked_body_split_inside_a_chunk_header_after_the_preread(make_server):
    """The loop's 64 KiB pre-read ends inside a chunk-size line; the rest comes later."""
    s = asgi_server(make_server)
    piece = b"y" * 4096
    chunk = b"1000\r\n" + piece + b"\r\n"
    first = chunk * 16 + b"10"  # > 64 KiB, ends in the middle of "1000\r\n"
    rest = b"00\r\n" + piece + b"\r\n" + chunk * 3 + b"0\r\n\r\n"
    sock = s.connect(timeout=15)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + first)
    time.sleep(0.5)
    sock.sendall(rest)
    r = srv.HTTPReader(sock, timeout=15).read_response()
    out = json.loads(r.body)
    assert out["len"] == 20 * 4096
    assert out["sha256"] == hashlib.sha256(piece * 20).hexdigest()


def test_client_stalling_mid_body_gets_408(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, ["--timeout", "2"], record=rec)
    sock = s.connect(timeout=15)
    sock.sendall(b"POST /body-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                 + b"x" * 100000)  # past the loop's pre-read: the app reads the rest
    r = srv.HTTPReader(sock, timeout=15).read_response()  # the io timeout (2 s) answers
    assert r.status == 408
    assert srv.wait_until(lambda: any(x.startswith("body-disconnect") for x in records(rec)), 5)
    assert request(s, "GET", "/scope")[0] == 200


def test_one_huge_send_does_not_hold_the_loop(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_server(make_server, record=rec)
    n = 24 * 1024 * 1024
    big = s.connect(timeout=20)
    big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    big.sendall(srv.build_request("GET", "/one-big?%d" % n))
    # While that response sits unread, the worker serves others.
    for _ in range(3):
        assert request(s, "GET", "/scope")[0] == 200
    # (Whether the app's send() has returned by now depends on the worker's unsent-output
    # budget: past --max-unsent-output the rest waits in a spill file, not in the app.)
    r = srv.HTTPReader(big, timeout=30).read_response()
    assert r.status == 200 and len(r.body) == n and r.body[:1] == b"z"
    assert srv.wait_until(lambda: "one-big sent" in records(rec), 5)


# ---- over TLS ----

def test_asgi_over_tls_scope_scheme_https(make_server, tmp_path):
    """The ASGI worker serves HTTPS through the same TLS transport as WSGI: the scope says
    https and the body arrives intact."""
    import shutil
    import ssl
    import subprocess
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    s = asgi_server(make_server, ["--certfile", cert, "--keyfile", key])
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection(s.host, s.port, context=ctx, timeout=30)
    conn.request("GET", "/scope")
    r = conn.getresponse()
    scope = json.loads(r.read())
    assert r.status == 200 and scope["scheme"] == "https"
    body = os.urandom(200000)
    conn.request("POST", "/echo", body=body)
    r = conn.getresponse()
    echo = json.loads(r.read())
    assert r.status == 200 and echo["len"] == len(body)
    assert echo["sha256"] == hashlib.sha256(body).hexdigest()
    conn.close()
