"""gunicorn parity found by real applications (issue 11): what apps that recognise gunicorn
see, the parser's error details in the log, hook objects, settings gunicorn accepts. Where
gunicorn does the same thing, the test runs real gunicorn 27 (GunicornServer) on the same
input and compares."""
import json
import re

import pytest

import server as srv
from server import GunicornServer, HTTPReader

requests = pytest.importorskip("requests")



@pytest.fixture
def gunicorn_server():
    started = []

    def make(app, args=(), **kw):
        s = GunicornServer(app, args, **kw)
        started.append(s)
        s.start()
        return s

    yield make
    for s in started:
        s.close()


# ---------------------------------------------------------------- SERVER_SOFTWARE (item 2)

def test_httpbin_accepts_chunked_upload_as_under_gunicorn(make_server, gunicorn_server):
    """httpbin answers 501 to a chunked POST unless SERVER_SOFTWARE starts with gunicorn/."""
    pytest.importorskip("httpbin")
    body = b"x" * 5000 + b"end"

    def gen():
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    out = {}
    for name, s in (("gunicorn", gunicorn_server("httpbin:app")),
                    ("cunicorn", make_server("httpbin:app"))):
        r = requests.post(s.url + "/post", data=gen(), timeout=10,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        out[name] = r.json()["data"]
    assert out["cunicorn"] == out["gunicorn"] == body.decode()


# ------------------------------------------------- parse errors: status, page, log (3, 4)

BAD = [
    b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /a\x7f'\" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.x\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A\xe9: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nx-a: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nnocolon\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus, chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
]


def _answer(server, raw):
    s = server.connect()
    try:
        s.sendall(raw)
        data, _ = srv.read_all_until_close(s)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def _warnings(server, n):
    rx = r"\[WARNING\] (Invalid request from ip=.*)"
    srv.wait_until(lambda: len(re.findall(rx, server.log())) >= n, 10)
    return re.findall(rx, server.log())


def test_parse_errors_answer_and_log_like_gunicorn(make_server, gunicorn_server):
    g = gunicorn_server("testapp:app")
    c = make_server("testapp:app")
    got = {}
    for name, s in (("gunicorn", g), ("cunicorn", c)):
        got[name] = [_answer(s, raw) for raw in BAD]
        got[name + "-log"] = _warnings(s, len(BAD))
    for i, raw in enumerate(BAD):
        (gs, gb), (cs, cb) = got["gunicorn"][i], got["cunicorn"][i]
        if gs.startswith(b"HTTP/1.1 501"):  # gunicorn keeps the reason "Bad Request" there
            gs = b"HTTP/1.1 501 Not Implemented"
            gb = gb.replace(b"Bad Request", b"Not Implemented")
        assert (cs, cb) == (gs, gb), raw[:60]
        assert got["cunicorn-log"][i] == got["gunicorn-log"][i], raw[:60]
    # the example, word for word
    assert ("Invalid request from ip=127.0.0.1: Request Line is too large (5014 > 4094)"
            in got["cunicorn-log"])


# ------------------------------------------------------- the SCRIPT_NAME error page (7)

def test_script_name_mismatch_page_escapes_the_path(make_server, gunicorn_server):
    """The 500 page for a path outside SCRIPT_NAME quotes the raw path: html-escaped, as
    gunicorn does, so a crafted path is text in the browser, never markup."""
    env = {"SCRIPT_NAME": "/app"}
    raw = b"GET /<script>alert('x')</script>&\"? HTTP/1.1\r\nHost: x\r\n\r\n"
    got = {}
    for name, s in (("gunicorn", gunicorn_server("testapp:app", env=env)),
                    ("cunicorn", make_server("testapp:app", env=env))):
        status, body = _answer(s, raw)
        got[name] = (status.split(b" ")[1], body, _warnings(s, 1))
    status, body, log = got["cunicorn"]
    assert status == b"500"
    assert b"<script>" not in body
    assert b"&lt;script&gt;alert(" in body and b"&lt;/script&gt;&amp;&quot;" in body
    # gunicorn says "500 Bad Request"; the page and the warning are the same
    assert body.replace(b"Internal Server Error", b"Bad Request") == got["gunicorn"][1]
    assert log == got["gunicorn"][2]


# ---------------------------------------------------------------- hook objects (5)

HOOKS_CONF = '''
import json
def _rec(**kw):
    with open(%(out)r, "a") as f:
        f.write(json.dumps(kw) + "\\n")
def when_ready(server):
    _rec(hook="when_ready", address=repr(server.address))
def post_fork(server, worker):
    _rec(hook="post_fork", cls=type(worker).__name__, address=repr(server.address))
'''


@pytest.mark.parametrize("extra", [[], ["--threads", "3"], ["-k", "gthread"],
                                   ["-k", "gunicorn.workers.sync.SyncWorker", "--threads", "2"]])
def test_hook_objects_and_worker_log_as_gunicorn(make_server, gunicorn_server, tmp_path, extra):
    got = {}
    for name in ("gunicorn", "cunicorn"):
        out = tmp_path / (name + ".jsonl")
        conf = tmp_path / (name + ".conf.py")
        conf.write_text(HOOKS_CONF % {"out": str(out)})
        port = srv.free_port()
        sock = str(tmp_path / (name + ".sock"))
        binds = ["127.0.0.1:%d" % port, "unix:" + sock]
        start = gunicorn_server if name == "gunicorn" else make_server
        s = start("testapp:app", ["-c", str(conf)] + extra, binds=binds)
        srv.wait_until(lambda: out.exists() and out.read_text().count("\n") >= 2, 10)
        recs = [json.loads(x) for x in out.read_text().splitlines()]
        text = json.dumps(recs).replace(str(port), "PORT").replace(sock, "SOCK")
        worker = re.search(r"\[INFO\] (Using worker: .*)", s.log()).group(1)
        got[name] = (sorted(json.loads(text), key=lambda r: r["hook"]), worker)
        s.close()
    assert got["cunicorn"] == got["gunicorn"]
    recs, worker = got["cunicorn"]
    assert recs[1]["address"] == "[('127.0.0.1', PORT), 'SOCK']"
    threaded = "--threads" in extra or "gthread" in extra
    assert recs[0]["cls"] == ("ThreadWorker" if threaded else "SyncWorker")
    assert worker == "Using worker: " + ("gthread" if threaded else "sync")


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("args,env,conf,uses_sendfile", [
    ([], {}, "", True),
    (["--no-sendfile"], {}, "", False),
    ([], {"SENDFILE": "0"}, "", False),
    ([], {"SENDFILE": "Yes"}, "", True),
    ([], {}, "sendfile = True\n", False),  # gunicorn: any value given disables it
])
def test_sendfile_setting_as_gunicorn(make_server, gunicorn_server, tmp_path, args, env, conf,
                                      uses_sendfile):
    """wsgi.file_wrapper goes out with sendfile(2) (the file's read() is never called) unless
    the setting or $SENDFILE says otherwise; gunicorn takes the same path in each case."""
    (tmp_path / "c.py").write_text(conf)
    args = args + ["-c", str(tmp_path / "c.py")]
    bodies = {}
    for name, start in (("gunicorn", gunicorn_server), ("cunicorn", make_server)):
        s = start("parityapp:file_app", args, env=env)
        bodies[name] = requests.get(s.url, timeout=10).content
    assert bodies["cunicorn"] == bodies["gunicorn"]
    expect = b"sent by sendfile\n" * 100
    assert bodies["cunicorn"] == (expect if uses_sendfile else expect.upper())


@pytest.mark.parametrize("value", ["auto", "fast", "python", "PYTHON"])
def test_http_parser_values_are_served_by_the_c_parser(make_server, value):
    s = make_server("testapp:app", ["--http-parser", value])
    assert requests.get(s.url, timeout=10).status_code == 200
    if value == "auto":
        assert "http_parser" not in s.log()
    else:
        assert ("http_parser = '%s': requests are parsed by cunicorn's C parser" % value.lower()
                in s.log())


def test_tmp_upload_dir_is_accepted(make_server, tmp_path):
    (tmp_path / "c.py").write_text("tmp_upload_dir = %r\n" % str(tmp_path))
    s = make_server("testapp:app", ["-c", str(tmp_path / "c.py")])
    r = requests.post(s.url + "/echo", data=b"x" * 200000, timeout=10)
    assert r.status_code == 200 and len(r.content) == 200000


def _records(path, pred, n):
    srv.wait_until(lambda: path.exists() and
                   len([x for x in path.read_text().splitlines() if pred(json.loads(x))]) >= n,
                   10)
    return [r for r in map(json.loads, path.read_text().splitlines()) if pred(r)]


@pytest.mark.parametrize("worker", [[], ["--threads", "2"]])
def test_logger_class_gets_error_and_access_calls_like_gunicorn(make_server, gunicorn_server,
                                                                tmp_path, worker):
    """A JSON logger_class (a glogging.Logger subclass) receives the error-log lines and one
    access() per request with gunicorn's objects; cunicorn's records equal gunicorn's."""
    got = {}
    for name, start in (("gunicorn", gunicorn_server), ("cunicorn", make_server)):
        out = tmp_path / (name + ".jsonl")
        # the startup lines go to the JSON file, not stderr: wait for the worker there
        s = start("testapp:app", ["--logger-class", "parityapp.JsonLogger"] + worker,
                  env={"JSONLOG": str(out)}, ready=False)
        _records(out, lambda r: "Booting worker" in r.get("msg", ""), 1)
        assert srv.wait_until(s._can_connect, 10), s.describe()
        sess = requests.Session()
        assert sess.get(s.url + "/?a=1", headers={"User-Agent": "ua/1"}).status_code == 200
        assert sess.get(s.url + "/status?code=404", headers={"User-Agent": "ua/2"}).status_code \
            == 404
        assert sess.get(s.url + "/exc_before", headers={"User-Agent": "ua/3"}).status_code == 500
        assert _answer(s, b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n")[0].startswith(b"HTTP/1.1 400")
        acc = _records(out, lambda r: r.get("access"), 3)
        errs = _records(out, lambda r: r.get("level") in ("warning", "error"), 2)
        infos = _records(out, lambda r: r.get("level") == "info", 1)
        got[name] = (acc, errs, [r["msg"].split(":")[0] for r in infos])
        # nothing went to the C logger's stderr format for the access lines
        s.close()
    g_acc, g_errs, g_info = got["gunicorn"]
    c_acc, c_errs, c_info = got["cunicorn"]
    # gunicorn's error path logs an environ without the request headers (ua '-' for the
    # 500); cunicorn passes the request's environ
    assert g_acc[2]["ua"] == "-"
    g_acc[2]["ua"] = "ua/3"
    assert c_acc == g_acc
    assert [r["ua"] for r in c_acc] == ["ua/1", "ua/2", "ua/3"]
    assert c_errs == g_errs
    assert {"level": "error", "msg": "Error handling request GET /exc_before",
            "exc": "RuntimeError"} in c_errs or any(
        r["msg"] == "Error handling request GET /exc_before" and "exc" in r for r in c_errs)
    assert "Booting worker with pid" in c_info and "Booting worker with pid" in g_info


def test_logger_class_given_as_a_class_in_the_config_file(make_server, tmp_path):
    out = tmp_path / "log.jsonl"
    conf = tmp_path / "c.py"
    conf.write_text("from parityapp import JsonLogger\nlogger_class = JsonLogger\n")
    s = make_server("testapp:app", ["-c", str(conf)], env={"JSONLOG": str(out)}, ready=False)
    _records(out, lambda r: "Booting worker" in r.get("msg", ""), 1)
    assert srv.wait_until(s._can_connect, 10), s.describe()
    assert requests.get(s.url + "/", timeout=10).status_code == 200
    acc = _records(out, lambda r: r.get("access"), 1)
    assert acc[0]["r"] == "GET / HTTP/1.1" and acc[0]["status"] == "200 OK"
    assert "Booting worker" not in s.log()  # the class owns the error log


# ------------------------------------------- connection take-over: WebSockets over WSGI (1)

def _ws_url(s, path):
    return s.url.replace("http://", "ws://") + path


@pytest.mark.parametrize("worker", [[], ["--threads", "4"]])
@pytest.mark.parametrize("ref", ["gunicorn", "cunicorn"])
def test_flask_sock_echo(make_server, gunicorn_server, worker, ref):
    """Flask-Sock takes the connection over through environ['gunicorn.socket'] and runs the
    WebSocket session on it; the server writes nothing on that connection (simple-websocket's
    client fails on any stray byte), and goes on serving."""
    simple_websocket = pytest.importorskip("simple_websocket")
    pytest.importorskip("flask_sock")
    start = gunicorn_server if ref == "gunicorn" else make_server
    s = start("parity_ws:app", worker + ["--access-logfile", "-"])
    for round_ in range(3):
        ws = simple_websocket.Client.connect(_ws_url(s, "/echo"))
        ws.send("hi %d" % round_)
        assert ws.receive(timeout=10) == "echo:hi %d" % round_
        big = "x" * 200000
        ws.send(big)
        assert ws.receive(timeout=10) == "echo:" + big
        ws.send("bye")
        # the app ends the session: a close frame, then the connection ends
        with pytest.raises(simple_websocket.ConnectionClosed):
            ws.receive(timeout=10)
    assert requests.get(s.url + "/plain", timeout=10).text == "plain"
    if ref == "cunicorn":
        # counted and logged, although the server sent no response of its own
        srv.wait_until(lambda: s.stdout().count('"GET /echo HTTP/1.1"') == 3, 10)
        assert s.stdout().count('"GET /echo HTTP/1.1" 101 ') == 3, s.stdout()


@pytest.mark.parametrize("worker", [[], ["--threads", "4"]])
def test_taken_over_connection_gets_no_bytes_from_the_server(make_server, worker):
    """After the handshake the only bytes on the wire are the app's WebSocket frames: no
    error page, no second response, and the close comes from the app."""
    s = make_server("parity_ws:app", worker)
    c = s.connect()
    try:
        c.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101 ")
        rest = head.split(b"\r\n\r\n", 1)[1]
        # a masked text frame "bye" ends the app's loop
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"bye"))
        c.sendall(b"\x81\x83" + mask + payload)
        data = rest
        while len(data) < 2 or len(data) < 2 + (data[1] & 0x7f):
            chunk = c.recv(4096)
            assert chunk, data
            data += chunk
        assert data[:1] == b"\x88", data[:60]  # the app's close frame
        c.sendall(b"\x88\x80" + mask)  # our close reply: the app then ends the connection
        more, closed = srv.read_all_until_close(c, timeout=10)
        data += more
    finally:
        c.close()
    assert closed
    assert data[:1] == b"\x88" and len(data) == 2 + (data[1] & 0x7f), data[:60]  # only that
    assert b"HTTP/" not in data
    assert requests.get(s.url + "/plain", timeout=10).text == "plain"


@pytest.mark.parametrize("worker,transports", [([], ["websocket"]),
                                               (["--threads", "4"], ["websocket"]),
                                               (["--threads", "4"], ["polling", "websocket"])])
@pytest.mark.parametrize("ref", ["gunicorn", "cunicorn"])
def test_python_socketio_threading(make_server, gunicorn_server, worker, transports, ref):
    socketio = pytest.importorskip("socketio")
    start = gunicorn_server if ref == "gunicorn" else make_server
    s = start("parity_ws:sio_app", worker)
    got = []
    import threading
    ev = threading.Event()
    cl = socketio.Client()

    @cl.on("pong")
    def on_pong(data):
        got.append(data)
        if len(got) == 3:
            ev.set()

    cl.connect(s.url, transports=transports, wait_timeout=10)
    try:
        for i in range(3):
            cl.emit("ping", i)
        assert ev.wait(10), got
        assert cl.transport() == "websocket"
    finally:
        cl.disconnect()
    assert [g["got"] for g in got] == [0, 1, 2]
    assert requests.get(s.url + "/plain", timeout=10).text == "plain"


# ------------------------------------ no-body responses (8, 10) and early hints (9)

NO_BODY = [b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"GET /204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"GET /304 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"HEAD /304 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]

FMT = "%(r)s %(s)s %(b)s %(B)s"


def _wire(data):
    """A response as bytes without the headers that differ between servers by design."""
    return re.sub(rb"(?m)^(Server|Date): [^\r]*\r\n", b"", data)


@pytest.mark.parametrize("worker", [[], ["--threads", "2"]])
def test_body_for_head_204_304_is_dropped_logged_and_warned_as_gunicorn(
        make_server, gunicorn_server, worker):
    got = {}
    for name, start in (("gunicorn", gunicorn_server), ("cunicorn", make_server)):
        s = start("parity_resp:app", worker + ["--access-logfile", "-",
                                                "--access-logformat", FMT])
        wire = []
        for raw in NO_BODY:
            c = s.connect()
            c.sendall(raw)
            wire.append(_wire(srv.read_all_until_close(c)[0]))
            c.close()
        srv.wait_until(lambda: s.stdout().count("HTTP/1.1 ") >= len(NO_BODY), 10)
        srv.wait_until(lambda: s.log().count("no-body response") >= 4, 10)
        warn = re.findall(r"(WSGI app sent body bytes on a no-body response .*)", s.log())
        got[name] = (wire, s.stdout().splitlines(), warn)
    # the last one is framed differently by design (docs/design.md): compare the no-body ones
    assert got["cunicorn"][0][:4] == got["gunicorn"][0][:4]
    assert got["cunicorn"][1] == got["gunicorn"][1] == [
        "HEAD / HTTP/1.1 200 0 0", "GET /204 HTTP/1.1 204 0 0", "GET /304 HTTP/1.1 304 0 0",
        "HEAD /304 HTTP/1.1 304 0 0", "GET / HTTP/1.1 200 15 15"]
    assert got["cunicorn"][2] == got["gunicorn"][2]
    assert len(got["cunicorn"][2]) == 4


@pytest.mark.parametrize("worker", [[], ["--threads", "2"]])
def test_early_hints_as_gunicorn(make_server, gunicorn_server, worker):
    """wsgi.early_hints(headers) sends a 103 per call before the response on HTTP/1.1,
    nothing on HTTP/1.0; clients see the same hints and final response as from gunicorn."""
    got = {}
    for name, start in (("gunicorn", gunicorn_server), ("cunicorn", make_server)):
        s = start("parity_resp:app", worker)
        out = []
        for version in (b"HTTP/1.1", b"HTTP/1.0"):
            c = s.connect()
            c.sendall(b"GET /hints " + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            rd = HTTPReader(c, timeout=10)
            hints = []
            while True:
                r = rd.read_response()
                if r.status != 103:
                    break
                hints.append(r.headers)
            c.close()
            out.append((hints, r.status, r.body))
        got[name] = out
    assert got["cunicorn"] == got["gunicorn"]
    (hints11, st, body), (hints10, _, body10) = got["cunicorn"]
    assert [h for hs in hints11 for h in hs] == [
        ("Link", "</style.css>; rel=preload; as=style"),
        ("Link", "</app.js>; rel=preload; as=script")]
    assert st == 200 and body == b"hints: True" and hints10 == [] and body10 == b"hints: True"


def test_early_hints_refuse_bad_headers_as_gunicorn(make_server, gunicorn_server):
    bodies = [requests.get(start("parity_resp:app").url + "/hints_bad", timeout=10).text
              for start in (gunicorn_server, make_server)]
    assert bodies[1] == bodies[0]
    assert bodies[1] == ("InvalidResponseHeaderName: Invalid response header name from the "
                         "application: 'Bad Name'\nInvalidResponseHeader: Invalid response "
                         "header from the application: 'Link'")


# ------------------------------------------------------------ Host is required (12)

@pytest.mark.parametrize("worker", [[], ["--threads", "2"]])
def test_http11_without_host_is_400(make_server, worker):
    """RFC 9112 3.2: an HTTP/1.1 request without Host gets 400 (nginx does this; gunicorn
    serves it, and --no-require-host keeps gunicorn's behaviour)."""
    s = make_server("testapp:app", worker)
    status, body = _answer(s, b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
    assert status == b"HTTP/1.1 400 Bad Request"
    assert b"without a Host header" in body
    s.wait_for_log(r"\[WARNING\] Invalid request from ip=127\.0\.0\.1: HTTP/1\.1 request "
                   r"without a Host header \(RFC 9112 3\.2\)")
    # HTTP/1.0 has no such rule; with Host (even empty) HTTP/1.1 is served
    assert _answer(s, b"GET / HTTP/1.0\r\n\r\n")[0] == b"HTTP/1.0 200 OK"
    assert _answer(s, b"GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")[0] == \
        b"HTTP/1.1 200 OK"
    lax = make_server("testapp:app", worker + ["--no-require-host"])
    assert _answer(lax, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")[0] == b"HTTP/1.1 200 OK"
