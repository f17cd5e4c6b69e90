"""HTTP/2 on the asgi worker (-k asgi): each stream is a task of the worker's asyncio loop.
Over h2c prior knowledge and over TLS (ALPN): the scope, request bodies streamed through
receive(), responses larger than the flow-control window, streams of one connection served
in parallel, RST_STREAM and a dropped connection heard as http.disconnect, real clients
(curl, httpx with FastAPI), hooks, max_requests and graceful stop with streams in flight."""
import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import server as srv
from h2client import H2Conn
from test_asgi import hooks_conf, records
import test_http2
from test_http2 import H2C, _parallel_ratio, curl, needs_curl

cert = test_http2.cert  # its module-scoped certificate fixture, shared

ASGI = ["-k", "asgi"]


def asgi_h2(make_server, args=(), app="asgiapp:app", record=None, tls=None, **kw):
    env = {"ASGI_RECORD": record} if record else {}
    proto = (["--http-protocols", "h2,h1", "--certfile", tls[0], "--keyfile", tls[1]]
             if tls else H2C)
    s = make_server(app, ASGI + proto + list(args), env=env, **kw)
    # "Booting worker" is logged before the app is imported and its lifespan started: the
    # tests below measure and time streams, so wait until the worker answers one
    if kw.get("start", True):
        c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10), tls=bool(tls))
        try:
            [r] = c.wait([c.request("GET", "/")], timeout=srv.scaled(30))
            assert r["status"] is not None and r["ended"], (r, s.describe())
        finally:
            c.close()
    return s


@pytest.fixture(params=["h2c", "tls"])
def mode(request, cert):
    return cert if request.param == "tls" else None


def conn(s, tls):
    return H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10), tls=bool(tls))


def test_get_scope_http_version_2_and_access_log(make_server, mode):
    s = asgi_h2(make_server, ["--access-logfile", "-"], tls=mode)
    c = conn(s, mode)
    try:
        [r] = c.wait([c.request("GET", "/scope?a=1", headers=[("x-thing", "v")])])
    finally:
        c.close()
    assert r["status"] == 200, r
    sc = json.loads(r["body"])
    assert sc["http_version"] == "2" and sc["type"] == "http" and sc["method"] == "GET"
    assert sc["scheme"] == ("https" if mode else "http")
    assert sc["path"] == "/scope" and sc["query_string"] == "a=1"
    hdrs = dict((n, v) for n, v in sc["headers"])
    assert hdrs["host"] == "127.0.0.1:%d" % s.port  # :authority
    assert hdrs["x-thing"] == "v" and "version" not in hdrs  # only what the client sent
    assert sc["state"] == {"answer": 42, "items": ["from-startup"]}  # lifespan ran
    assert srv.wait_until(lambda: '"GET /scope?a=1 HTTP/2.0" 200' in s.stdout(), 5)


def get_one(s, mode, path):
    """One GET on a connection of its own: the response dict (h2client.H2Conn)."""
    c = conn(s, mode)
    try:
        [r] = c.wait([c.request("GET", path)])
    finally:
        c.close()
    return r


def test_scope_extensions_trailers_and_priority_as_gunicorn(make_server, mode):
    r = get_one(asgi_h2(make_server, tls=mode), mode, "/scope")
    ext = json.loads(r["body"])["extensions"]
    assert ext == {"http.response.trailers": {},
                   "http.response.priority": {"weight": 16, "depends_on": 0}}


def test_response_trailers_after_a_body_larger_than_the_window(make_server, mode, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec, tls=mode)
    c = conn(s, mode)
    try:
        # 10 bytes, then 300,000: past the client's 65,535-byte window, so the trailers
        # wait for the body to drain; more_trailers gathers both messages
        small, big = c.wait([c.request("GET", "/trailers?10"),
                             c.request("GET", "/trailers?300000")], timeout=60)
        none, early = c.wait([c.request("GET", "/trailers-none"),
                              c.request("GET", "/trailers-early")])
        plain, late, bare = c.wait([c.request("GET", "/trailers-unannounced"),
                                    c.request("GET", "/trailers-late"),
                                    c.request("GET", "/trailers-bare")])
    finally:
        c.close()
    for r, n in ((small, 10), (big, 300000)):
        assert r["status"] == 200 and r["ended"] and r["body"] == b"t" * n, r["status"]
        assert dict(r["trailers"]) == {"x-sha256": hashlib.sha256(b"t" * n).hexdigest(),
                                       "x-count": str(n)}
    # announced, never sent: the response still ends, without trailers
    assert none["ended"] and none["body"] == b"no trailers after all" and "trailers" not in none
    # trailers before the body's end are refused (RuntimeError in the app), the body goes on
    assert early["ended"] and early["body"] == b"part rest" and "trailers" not in early
    # gunicorn's documented use: trailers right after the body, without "trailers": True
    assert plain["body"] == b"data" and dict(plain["trailers"]) == {"grpc-status": "0",
                                                                      "grpc-message": "OK"}
    # announced by a Trailer field only, sent after a pause: the response ended meanwhile,
    # they are refused; announced nowhere: ignored (the response ended with its body)
    assert late["ended"] and late["body"] == b"ended" and "trailers" not in late
    assert bare["ended"] and bare["body"] == b"bare" and "trailers" not in bare
    lines = records(rec)
    assert lines.count("trailers offered True") == 2 and lines.count("trailers sent") == 2
    assert srv.wait_until(lambda: "trailers-bare returned" in records(rec), 10)
    # (recorded after the 0.2 s pause: the client had the whole response before it)
    assert srv.wait_until(lambda: any(x.startswith("trailers-late refused: Unexpected ASGI")
                                      for x in records(rec)), 10)
    assert any(x.startswith("trailers-early refused: http.response.trailers sent before")
               for x in lines), lines
    assert "returned without completing" not in s.log() and "Traceback" not in s.log()


def test_early_hints_informational_before_the_response(make_server, mode):
    r = get_one(asgi_h2(make_server, tls=mode), mode, "/early-hints")
    assert r["status"] == 200 and r["body"] == b"after hints"
    hints = [dict(h) for h in r["informational"]]
    assert [h[":status"] for h in hints] == ["103", "103"]
    assert [h["link"] for h in hints] == ["</style.css>; rel=preload; as=style",
                                          "</app.js>; rel=preload; as=script"]


def test_request_bodies_stream_through_receive(make_server, mode):
    s = asgi_h2(make_server, tls=mode)
    c = conn(s, mode)
    try:
        for n in (0, 1, 65535, 65536 + 7, 1024 * 1024 + 3, 3 * 1024 * 1024 + 17):
            data = os.urandom(n)
            [r] = c.wait([c.request("POST", "/echo", body=data,
                                    headers=[("content-length", str(n))])], timeout=60)
            assert r["status"] == 200, (n, r)
            out = json.loads(r["body"])
            assert out["len"] == n and out["sha256"] == hashlib.sha256(data).hexdigest()
            if n > 1024 * 1024:
                assert out["messages"] > 2  # streamed in pieces, not read whole first
        # no content-length: the body ends with END_STREAM, not a disconnect
        data = os.urandom(200000)
        [r] = c.wait([c.request("POST", "/echo", body=data)], timeout=60)
        out = json.loads(r["body"])
        assert out["len"] == len(data) and out["sha256"] == hashlib.sha256(data).hexdigest()
    finally:
        c.close()


def test_responses_larger_than_the_flow_control_window(make_server, mode):
    s = asgi_h2(make_server, tls=mode)
    c = conn(s, mode)
    try:
        # the client's windows are 65535 bytes: the server sends as they open
        sids = [c.request("GET", "/big?5000000"), c.request("GET", "/one-big?3000000"),
                c.request("GET", "/stream?20")]
        big, one, stream = c.wait(sids, timeout=120)
    finally:
        c.close()
    assert big["status"] == 200 and big["body"] == b"x" * 5000000
    assert one["status"] == 200 and one["body"] == b"z" * 3000000
    assert stream["body"] == b"".join(b"chunk%d\n" % i for i in range(20))


def test_slow_reader_back_pressure_holds_the_task(make_server, tmp_path):
    # A client that never opens its window: the app's send() waits (a few 64 KiB pieces
    # are queued, not the 12.5 MB it wants to send) and hears the reset as ClientDisconnected;
    # another stream on the same connection is served meanwhile.
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec)
    c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10))
    try:
        c.conn.update_settings({0x4: 0})  # SETTINGS_INITIAL_WINDOW_SIZE = 0 for new streams
        c.flush()
        c.pump(0.5)
        big = c.request("GET", "/pieces?200")
        for _ in range(int(srv.scaled(5))):
            c.pump(0.2)
        assert c.responses[big]["body"] == b"" and not records(rec)  # nothing sent, waiting
        probe = c.request("GET", "/scope")
        c.conn.increment_flow_control_window(65535, stream_id=probe)  # this one may go
        c.flush()
        [r] = c.wait([probe])
        assert r["status"] == 200 and json.loads(r["body"])["http_version"] == "2"
        assert c.responses[big]["body"] == b""
        c.conn.reset_stream(big)
        c.flush()
        assert srv.wait_until(lambda: [x for x in records(rec) if x.startswith("pieces")],
                              srv.scaled(5))
        [line] = records(rec)
        assert line.startswith("pieces stopped after "), line
        assert int(line.split()[-1]) < 20, line  # about (64 KiB + 256 KiB) / 64 KiB queued
    finally:
        c.close()


def test_streams_of_one_connection_run_in_parallel(make_server, mode):
    s = asgi_h2(make_server, tls=mode)
    if mode:
        # the same measure over TLS: one connection, ALPN h2
        c = conn(s, mode)
        try:
            t0 = time.monotonic()
            [r] = c.wait([c.request("GET", "/sleep?0.5")])
            one = time.monotonic() - t0
            t0 = time.monotonic()
            rs = c.wait([c.request("GET", "/sleep?0.5") for _ in range(10)], timeout=60)
            many = time.monotonic() - t0
        finally:
            c.close()
        assert all(x["status"] == 200 and x["body"] == b"slept" for x in rs + [r])
    else:
        one, many, rs, _ = _parallel_ratio(s.port, 10)
    # 10 streams sleeping 0.5 s each: about the time of one, far from ten
    assert many < one * 4, (one, many)


def test_rst_stream_mid_body_is_a_disconnect_and_the_worker_goes_on(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec)
    c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10))
    try:
        sid = c.request("POST", "/body-disconnect", headers=[("content-length", "100000")],
                        body=b"a" * 20000, end=False)
        [r] = c.wait([c.request("GET", "/scope")])  # the loop went past the body's DATA
        assert r["status"] == 200 and r["ended"]
        c.conn.reset_stream(sid)
        c.flush()
        assert srv.wait_until(lambda: "body-disconnect after 20000 bytes" in records(rec),
                              srv.scaled(5)), records(rec)
        # the same connection and a new one are served
        [r] = c.wait([c.request("GET", "/scope")])
        assert r["status"] == 200 and json.loads(r["body"])["http_version"] == "2"
    finally:
        c.close()
    c2 = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c2.wait([c2.request("POST", "/echo", body=b"abc")])
        assert json.loads(r["body"])["len"] == 3
    finally:
        c2.close()


def test_end_stream_is_not_a_disconnect_rst_is(make_server, tmp_path):
    # GET ends the request at once (END_STREAM): the app waiting on receive() after its body
    # must not hear http.disconnect for it, only for the client's RST_STREAM.
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec)
    c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10))
    try:
        sid = c.request("GET", "/wait-disconnect")
        probe = c.request("GET", "/scope")  # answered after the first began waiting
        c.wait([probe])
        for _ in range(5):
            c.pump(0.1)
        assert not [x for x in records(rec) if x.startswith("wait-disconnect")]
        c.conn.reset_stream(sid)
        c.flush()
        assert srv.wait_until(lambda: "wait-disconnect:http.disconnect" in records(rec),
                              srv.scaled(5)), records(rec)
    finally:
        c.close()


def test_connection_drop_disconnects_every_stream(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec)
    c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10))
    for _ in range(3):
        c.request("GET", "/wait-disconnect")
    c.request("POST", "/body-disconnect", body=b"b" * 1000, end=False)
    for _ in range(3):
        c.pump(0.1)
    c.close()
    assert srv.wait_until(
        lambda: records(rec).count("wait-disconnect:http.disconnect") == 3 and
        "body-disconnect after 1000 bytes" in records(rec), srv.scaled(5)), records(rec)
    c2 = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c2.wait([c2.request("GET", "/scope")])
        assert r["status"] == 200
    finally:
        c2.close()


def test_app_error_is_a_500_on_its_stream_only(make_server):
    s = asgi_h2(make_server)
    c = H2Conn("127.0.0.1", s.port)
    try:
        err, ok = c.wait([c.request("GET", "/error"), c.request("GET", "/stream?3")])
        assert err["status"] == 500
        assert ok["status"] == 200 and ok["body"] == b"chunk0\nchunk1\nchunk2\n"
        # an app that fails after it started its response: the stream is cut
        [cut] = c.wait([c.request("GET", "/error-after-start")])
        assert cut["status"] == 200 and cut["reset"] is not None and not cut["ended"]
    finally:
        c.close()
    assert "boom before the response" in s.log()


@needs_curl
def test_curl_prior_knowledge_and_tls(make_server, cert):
    s = asgi_h2(make_server)
    r = curl("-i", "http://127.0.0.1:%d/scope" % s.port)
    assert r.stdout.startswith(b"HTTP/2 200"), r
    data = os.urandom(2 * 1024 * 1024 + 5)
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@-",
                        "http://127.0.0.1:%d/echo" % s.port], input=data,
                       capture_output=True, timeout=60)
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(data).hexdigest()
    t = asgi_h2(make_server, tls=cert)
    r = subprocess.run(["curl", "-sSk", "--http2", "-i", "https://127.0.0.1:%d/scope" % t.port],
                       capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert out.startswith("HTTP/2 200"), r
    sc = json.loads(out.split("\r\n\r\n", 1)[1])
    assert sc["scheme"] == "https" and sc["http_version"] == "2"


@needs_curl
def test_upgrade_h2c_request_becomes_stream_1_of_a_task(make_server):
    s = make_server("asgiapp:app", ASGI + ["--http-protocols", "h2,h1",
                                           "--http2-cleartext", "upgrade"])
    url = "http://127.0.0.1:%d" % s.port
    r = subprocess.run(["curl", "-sS", "--http2", "-i", url + "/scope?u=1"],
                       capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert out.startswith("HTTP/1.1 101 Switching Protocols\r\n") and "\r\nHTTP/2 200" in out, r
    sc = json.loads(out.split("\r\n\r\n", 2)[2])
    assert sc["http_version"] == "2" and sc["query_string"] == "u=1"
    data = os.urandom(30000)  # the body travels with the upgrade request
    r = subprocess.run(["curl", "-sS", "--http2", "--data-binary", "@-", url + "/echo"],
                       input=data, capture_output=True, timeout=30)
    assert json.loads(r.stdout)["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("tls", [False, True])
def test_httpx_http2_against_fastapi(make_server, cert, tmp_path, tls):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, app="fastapi_app:app", record=rec, tls=cert if tls else None)
    base = "%s://127.0.0.1:%d" % ("https" if tls else "http", s.port)
    with httpx.Client(http1=tls, http2=True, verify=False, timeout=30) as cl:
        r = cl.get(base + "/items/42?q=abc&limit=3")
        assert r.http_version == "HTTP/2"
        assert r.json() == {"item_id": 42, "q": "abc", "limit": 3}
        r = cl.post(base + "/items", json={"name": "pen", "price": 1.5})
        assert r.json() == {"item": {"name": "pen", "price": 1.5, "tags": []}, "db": "connected"}
        with cl.stream("GET", base + "/stream?n=8") as st:
            assert b"".join(st.iter_bytes()) == b"".join(b"part %d\n" % i for i in range(8))
        data = os.urandom(3 * 1024 * 1024)
        r = cl.post(base + "/upload", files={"file": ("big.bin", data)})
        assert r.json() == {"filename": "big.bin", "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}
        assert cl.get(base + "/sync").json() == {"sync": True}

    async def parallel():
        async with httpx.AsyncClient(http1=tls, http2=True, verify=False, timeout=30) as ac:
            rs = await asyncio.gather(*[ac.get(base + "/items/%d" % i) for i in range(20)])
            return [x.json()["item_id"] for x in rs], {x.http_version for x in rs}

    ids, versions = asyncio.run(parallel())
    assert ids == list(range(20)) and versions == {"HTTP/2"}


def test_hooks_and_max_requests_count_streams(make_server, tmp_path):
    rec = str(tmp_path / "rec")
    conf = hooks_conf(tmp_path)
    s = asgi_h2(make_server, ["-c", str(conf), "--max-requests", "5"], record=rec)
    first = s.worker_pids()
    c = H2Conn("127.0.0.1", s.port, timeout=srv.scaled(10))
    try:
        rs = c.wait([c.request("POST", "/echo", body=b"x" * i) for i in range(1, 5)],
                    timeout=30)
        assert [json.loads(r["body"])["len"] for r in rs] == [1, 2, 3, 4]
    finally:
        c.close()
    assert srv.wait_until(lambda: len([x for x in records(rec) if x.startswith("post /echo")])
                          == 4, srv.scaled(5))
    got = records(rec)
    assert got.count("pre POST /echo") == 4
    assert len([x for x in got if x.startswith("post /echo 200")]) == 4
    # the fifth request (asgi_h2's probe, then these four streams) retired the worker
    assert srv.wait_until(lambda: s.worker_pids() and not set(s.worker_pids()) & set(first),
                          srv.scaled(10))
    c = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c.wait([c.request("GET", "/scope")])
        assert r["status"] == 200
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) missing")
def test_graceful_stop_finishes_streams_in_flight(make_server, tmp_path, mode):
    # nghttp sends the five requests on one connection and, unlike the h2 library, goes on
    # reading the streams in flight after the server's GOAWAY
    rec = str(tmp_path / "rec")
    s = asgi_h2(make_server, record=rec, tls=mode)
    body = tmp_path / "body"
    body.write_bytes(b"q" * 1000)
    url = "%s://127.0.0.1:%d/sleep?1.0" % ("https" if mode else "http", s.port)
    p = subprocess.Popen(["nghttp", "-s", "-m", "5", "-d", str(body), url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # all five are running (their bodies read) before the stop
        assert srv.wait_until(lambda: records(rec).count("sleeping") == 5, srv.scaled(10)), \
            records(rec)
        s.proc.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=srv.scaled(20))
    finally:
        if p.poll() is None:
            p.kill()
    out = out.decode()
    assert p.returncode == 0 and out.startswith("slept" * 5), (out, err)
    assert len(re.findall(r"(?m)^ *\d+ .* 200 +5 /sleep\?1\.0$", out)) == 5, out
    assert s.proc.wait(srv.scaled(20)) == 0
    assert records(rec, lifespan=True)[-1] == "shutdown"


def test_websocket_is_never_served_on_a_stream(make_server):
    # RFC 8441 (extended CONNECT) is not offered: an h2 stream always gets an http scope
    s = asgi_h2(make_server)
    c = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c.wait([c.request("GET", "/scope")])
        # SETTINGS_ENABLE_CONNECT_PROTOCOL (8) not sent
        assert c.conn.remote_settings.get(0x8, 0) == 0
        assert json.loads(r["body"])["type"] == "http"
    finally:
        c.close()
