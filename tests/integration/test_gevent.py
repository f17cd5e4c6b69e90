"""gevent worker (-k gevent): the hub steps the C engine, each request runs in a greenlet.

Concurrency is asserted as a ratio to one request's time measured in the same run (never
a fixed wall-clock limit); ASan builds get 3x the slack."""
import http.server
import json
import os
import signal
import socket
import threading
import time
import urllib.request

import pytest

import server as srv

pytest.importorskip("gevent")

SLACK = 3 if srv.SANITIZED else 1


def url(s, path):
    return "http://%s:%d%s" % (s.host, s.port, path)


def get(s, path, timeout=60):
    with urllib.request.urlopen(url(s, path), timeout=timeout) as r:
        return r.status, r.read()


def get_json(s, path, timeout=60):
    status, body = get(s, path, timeout)
    assert status == 200
    return json.loads(body)


def timed(fn, *a):
    t0 = time.monotonic()
    r = fn(*a)
    return time.monotonic() - t0, r


def concurrent(n, fn, *a):
    """Run fn(*a) on n threads at once: (elapsed, results, errors)."""
    results, errors = [], []
    lock = threading.Lock()
    go = threading.Event()

    def one():
        go.wait()
        try:
            r = fn(*a)
            with lock:
                results.append(r)
        except Exception as e:  # noqa: BLE001 - reported by the assertion
            with lock:
                errors.append(repr(e))

    ts = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    t0 = time.monotonic()
    go.set()
    for t in ts:
        t.join(120)
    return time.monotonic() - t0, results, errors


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.0)
        body = b"slow answer"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def slow_server():
    """A local upstream that answers every GET after one second (threads: 50 at once)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    httpd.daemon_threads = True
    httpd.request_queue_size = 128
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d/" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


_SUPP = None


def sanitizer_env(extra=None):
    """ASan builds: greenlet copies stack slices, redzones included, to the heap and back
    (the worker clears the stack shadow after each switch, src/py/gevent.c; the copy
    itself needs replace_intrin=0), and the ssl module gevent's patch imports keeps
    OpenSSL allocations that LeakSanitizer sees below libcrypto only."""
    global _SUPP
    env = dict(extra or {})
    if not srv.SANITIZED:
        return env
    if _SUPP is None:
        import tempfile
        with open(os.path.join(srv.REPO, "tests", "lsan.supp")) as f:
            base = f.read()
        fd, _SUPP = tempfile.mkstemp(prefix="lsan-gevent-", suffix=".supp")
        with os.fdopen(fd, "w") as f:
            f.write(base + "\n# Python's _ssl (imported by gevent's patch_all)\n"
                    "leak:CRYPTO_zalloc\nleak:CRYPTO_malloc\nleak:CRYPTO_strdup\n"
                    "leak:CRYPTO_strndup\nleak:OPENSSL_sk_deep_copy\nleak:libcrypto.so\n")
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                          "detect_stack_use_after_return=0")
    env["ASAN_OPTIONS"] = asan + ":replace_intrin=0"
    env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % _SUPP
    return env


def gevent_server(make_server, app="geventapp:app", args=(), **kw):
    kw["env"] = sanitizer_env(kw.get("env"))
    return make_server(app, ["-k", "gevent", "--no-control-socket"] + list(args), **kw)


# ---- part 1: names, version, missing gevent ----

@pytest.mark.parametrize("name", ["gevent", "gevent_wsgi", "gevent_pywsgi",
                                  "gunicorn.workers.ggevent.GeventWorker",
                                  "egg:gunicorn#gevent"])
def test_gunicorn_names_run_the_gevent_worker(make_server, name):
    s = make_server("geventapp:app", ["-k", name, "--no-control-socket"], env=sanitizer_env())
    assert "Using worker: %s" % name in s.log()
    info = get_json(s, "/patched")
    assert info["now"] is True and info["socket_is_gevent"] is True


def fake_gevent(tmp_path, body):
    d = tmp_path / "fake"
    d.mkdir()
    (d / "gevent.py").write_text(body)
    return str(d)


@pytest.mark.parametrize("body,found", [
    ("raise ImportError('No module named gevent')\n", "not installed"),
    ("__version__ = '24.2.1'\n", "found 24.2.1"),
])
def test_missing_or_old_gevent_is_a_clear_boot_error(make_server, tmp_path, body, found):
    fake = fake_gevent(tmp_path, body)
    s = make_server("geventapp:app", ["-k", "gevent", "--no-control-socket"], start=False,
                    ready=False, pythonpath=fake + ",", env=sanitizer_env({"PYTHONPATH": fake}))
    s.start()
    rc = s.wait_exit(timeout=20)
    log = s.log()
    assert "gevent worker requires gevent 24.10.1 or higher" in log
    assert found in log
    assert rc != 0


# ---- part 2: patching, the hub, greenlets ----

def test_patched_before_the_app_is_imported(make_server):
    s = gevent_server(make_server)
    info = get_json(s, "/patched")
    assert info["at_import"] is True
    assert info["now"] is True
    assert info["multithread"] is True  # gunicorn's async workers say so too


def test_preload_imports_the_app_before_patching(make_server):
    # gunicorn's documented caveat: with --preload the app is imported in the master,
    # before the worker patches; the patch still applies for requests.
    s = gevent_server(make_server, args=["--preload"])
    info = get_json(s, "/patched")
    assert info["at_import"] is False
    assert info["now"] is True and info["socket_is_gevent"] is True


def test_50_sleeping_requests_run_concurrently_in_one_worker(make_server):
    s = gevent_server(make_server, args=["--timeout", "60"])
    single, one = timed(get_json, s, "/sleep?1")
    assert one["slept"] == 1.0 and single >= 1.0
    total, results, errors = concurrent(50, get_json, s, "/sleep?1")
    assert not errors, errors[:3]
    assert len(results) == 50
    assert {r["pid"] for r in results} == {one["pid"]}  # one worker served them all
    # serially this is 50 x single; concurrently about one single
    assert total < 5 * SLACK * single, "50 x sleep(1): %.2fs vs one: %.2fs" % (total, single)


def test_50_outbound_calls_run_concurrently(make_server, slow_server):
    s = gevent_server(make_server, args=["--timeout", "60"])
    single, one = timed(get_json, s, "/outbound?" + slow_server)
    assert one["got"] == "slow answer"
    total, results, errors = concurrent(50, get_json, s, "/outbound?" + slow_server)
    assert not errors, errors[:3]
    assert len(results) == 50 and all(r["got"] == "slow answer" for r in results)
    assert {r["pid"] for r in results} == {one["pid"]}
    assert total < 10 * SLACK * single, "50 outbound: %.2fs vs one: %.2fs" % (total, single)


def test_50_requests_calls_run_concurrently(make_server, slow_server):
    pytest.importorskip("requests")
    s = gevent_server(make_server, args=["--timeout", "60"])
    single, one = timed(get_json, s, "/requests?" + slow_server)
    assert one["got"] == "slow answer"
    total, results, errors = concurrent(50, get_json, s, "/requests?" + slow_server)
    assert not errors, errors[:3]
    assert len(results) == 50
    assert total < 10 * SLACK * single, "50 requests: %.2fs vs one: %.2fs" % (total, single)


def test_flask_app_using_requests(make_server, slow_server):
    pytest.importorskip("flask")
    pytest.importorskip("requests")
    s = gevent_server(make_server, app="geventflask:app", args=["--timeout", "60"])
    single, one = timed(get_json, s, "/call?url=" + slow_server)
    assert one["got"] == "slow answer" and one["status"] == 200
    total, results, errors = concurrent(20, get_json, s, "/call?url=" + slow_server)
    assert not errors, errors[:3]
    assert len(results) == 20 and {r["pid"] for r in results} == {one["pid"]}
    assert total < 10 * SLACK * single, "20 flask calls: %.2fs vs one: %.2fs" % (total, single)


def test_a_greenlet_that_raises_gets_500_and_the_worker_serves_on(make_server):
    s = gevent_server(make_server)
    pid = get_json(s, "/")["pid"]
    with pytest.raises(urllib.error.HTTPError) as ei:
        get(s, "/raise")
    assert ei.value.code == 500
    s.wait_for_log(r"boom from a greenlet")
    # while another request sleeps in its greenlet, one raises; both answer
    total, results, errors = concurrent(10, get_json, s, "/sleep?0.5")
    assert not errors and len(results) == 10
    assert get_json(s, "/")["pid"] == pid


# ---- part 4: graceful stop, heartbeat, worker timeout ----

def test_graceful_stop_waits_for_greenlets_in_flight(make_server):
    s = gevent_server(make_server, args=["--graceful-timeout", "30", "--timeout", "60"])
    out = {}

    def run():
        out["r"] = concurrent(10, get_json, s, "/sleep?2")

    t = threading.Thread(target=run)
    t.start()
    assert srv.wait_until(lambda: get_json(s, "/inflight")["inflight"] == 10, 20)
    s.signal(signal.SIGTERM)
    t.join(60)
    total, results, errors = out["r"]
    assert not errors, errors[:3]
    assert len(results) == 10 and all(r["slept"] == 2.0 for r in results)
    assert s.wait_exit(timeout=30) == 0


def test_heartbeat_beats_while_greenlets_sleep(make_server):
    # every request sleeps (yielding) longer than the worker timeout: the hub keeps
    # stepping the engine, whose heartbeat keeps the master from killing the worker
    timeout = 2 * SLACK
    s = gevent_server(make_server, args=["--timeout", str(timeout)])
    pid = get_json(s, "/")["pid"]
    total, results, errors = concurrent(10, get_json, s, "/sleep?%g" % (2.5 * timeout))
    assert not errors and len(results) == 10
    assert {r["pid"] for r in results} == {pid}
    assert "WORKER TIMEOUT" not in s.log()


@pytest.mark.parametrize("path", ["/block", "/yieldblock"])
def test_worker_timeout_catches_a_call_that_never_yields(make_server, path):
    # the app blocks the hub (an unpatched sleep), at once or after it yielded once while
    # other greenlets sleep: the heartbeat stops, the master aborts the worker, and the
    # worker's last line names the request that held the hub
    s = gevent_server(make_server, args=["--timeout", "2"])
    pid = get_json(s, "/")["pid"]
    others = threading.Thread(target=concurrent, args=(5, get, s, "/sleep?60", 40),
                              daemon=True)
    others.start()
    assert srv.wait_until(lambda: get_json(s, "/inflight")["inflight"] == 5, 20)
    with pytest.raises(Exception):
        get(s, path + "?60", timeout=40)
    s.wait_for_log(r"WORKER TIMEOUT \(pid:%d\)" % pid, timeout=30)
    s.wait_for_log(r"the hub was blocked by the request GET %s from 127\.0\.0\.1" % path,
                   timeout=10)
    assert srv.wait_until(lambda: get_json(s, "/")["pid"] != pid, 30)


def test_graceful_timeout_ends_greenlets_that_outlive_it(make_server):
    s = gevent_server(make_server, args=["--graceful-timeout", "1", "--timeout", "60"])
    t = threading.Thread(target=concurrent, args=(3, get, s, "/sleep?60", 90), daemon=True)
    t.start()
    assert srv.wait_until(lambda: get_json(s, "/inflight")["inflight"] == 3, 20)
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    s.wait_exit(timeout=50)
    # gone long before the greenlets' 60 s sleeps would have ended
    assert time.monotonic() - t0 < 30


# ---- part 3: the engine's HTTP behaviour under the hub ----

def test_keepalive_and_pipelining_in_order(make_server):
    s = gevent_server(make_server)
    sock = s.connect()
    try:
        # three requests in one write; the first sleeps (its greenlet yields), yet the
        # answers come back in order on the kept-alive connection
        sock.sendall(srv.build_request("GET", "/sleep?0.3") + srv.build_request("GET", "/")
                     + srv.build_request("GET", "/environ"))
        rd = srv.HTTPReader(sock)
        r1, r2, r3 = rd.read_response(), rd.read_response(), rd.read_response()
        assert json.loads(r1.body)["slept"] == 0.3
        assert json.loads(r2.body)["hello"] is True
        assert json.loads(r3.body)["PATH_INFO"] == "/environ"
        sock.sendall(srv.build_request("GET", "/"))  # still open
        assert rd.read_response().status == 200
    finally:
        sock.close()


def test_slow_clients_do_not_hold_the_worker(make_server):
    s = gevent_server(make_server, args=["--timeout", "30"])
    base, _ = timed(get_json, s, "/")
    slow = [s.connect() for _ in range(200)]
    try:
        for sk in slow:
            sk.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # heads that never finish
        worst = 0.0
        for _ in range(30):
            t, r = timed(get_json, s, "/")
            worst = max(worst, t)
            assert r["hello"] is True
        # 200 stalled heads cost the others nothing that scales with them
        assert worst < max(0.5, 50 * base) * SLACK, "worst %.3fs, base %.4fs" % (worst, base)
    finally:
        for sk in slow:
            sk.close()


def test_slow_upload_yields_to_other_requests(make_server):
    # a body past the engine's 64 KiB pre-read, sent slowly: wsgi.input waits for it in
    # the block hook (gevent's wait_read), and other requests are served meanwhile
    s = gevent_server(make_server, args=["--timeout", "30"])
    body = os.urandom(512 * 1024)
    sock = s.connect(timeout=30)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    sent = 0
    served_meanwhile = 0
    while sent < len(body):
        sock.sendall(body[sent:sent + 65536])
        sent += 65536
        time.sleep(0.1)
        if get_json(s, "/")["hello"]:
            served_meanwhile += 1
    r = srv.HTTPReader(sock, timeout=30).read_response()
    sock.close()
    import hashlib
    got = json.loads(r.body)
    assert got == {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert served_meanwhile == 8


def test_slow_reader_of_a_large_response_does_not_block_others(make_server):
    # 64 MiB to a client that does not read yet (more than the socket buffers hold): the
    # app's write waits in the block hook (wait_write) while other requests are served;
    # then the client reads it all
    size = 64 << 20
    s = gevent_server(make_server, args=["--timeout", "30"])
    sock = s.connect(timeout=30)
    sock.sendall(srv.build_request("GET", "/big?%d" % size))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    for _ in range(10):
        assert get_json(s, "/")["hello"] is True
    n = len(head.split(b"\r\n\r\n", 1)[1])
    while n < size:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    sock.close()
    assert n == size


def test_100_continue(make_server):
    s = gevent_server(make_server)
    sock = s.connect()
    try:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        r = srv.HTTPReader(sock).read_response()
        assert json.loads(r.body)["len"] == 5
    finally:
        sock.close()


def test_file_wrapper(make_server):
    s = gevent_server(make_server)
    status, body = get(s, "/file")
    with open(os.path.join(srv.APPS, "geventapp.py"), "rb") as f:
        assert status == 200 and body == f.read()


def test_proxy_headers_and_proxy_protocol(make_server):
    s = gevent_server(make_server, args=["--proxy-protocol", "v1"])
    sock = s.connect()
    try:
        sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n"
                     + srv.build_request("GET", "/environ",
                                         headers=[("X-Forwarded-Proto", "https")]))
        env = json.loads(srv.HTTPReader(sock).read_response().body)
        assert env["REMOTE_ADDR"] == "203.0.113.7"
        assert env["wsgi.url_scheme"] == "https"  # 127.0.0.1 is a trusted forwarder
    finally:
        sock.close()


def test_uwsgi_protocol(make_server):
    s = gevent_server(make_server, args=["--protocol", "uwsgi"])
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/environ"), (b"QUERY_STRING", b""),
             (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"SERVER_NAME", b"localhost"),
             (b"SERVER_PORT", b"80"), (b"REMOTE_ADDR", b"198.51.100.4")]
    block = b"".join(len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
                     for k, v in pairs)
    sock = s.connect()
    try:
        sock.sendall(b"\x00" + len(block).to_bytes(2, "little") + b"\x00" + block)
        data, _ = srv.read_all_until_close(sock, 10)
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["PATH_INFO"] == "/environ"


def test_tls(make_server, tmp_path):
    import ssl
    import subprocess
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    s = gevent_server(make_server, args=["--certfile", cert, "--keyfile", key,
                                         "--timeout", "60"])
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False

    def tls_get(path):
        with socket.create_connection((s.host, s.port), timeout=30) as raw:
            with ctx.wrap_socket(raw) as sk:
                sk.sendall(srv.build_request("GET", path))
                return json.loads(srv.HTTPReader(sk, timeout=30).read_response().body)

    assert tls_get("/environ")["wsgi.url_scheme"] == "https"
    single, _ = timed(tls_get, "/sleep?1")
    total, results, errors = concurrent(20, tls_get, "/sleep?1")
    assert not errors and len(results) == 20
    assert total < 5 * SLACK * single


def test_hooks_run_under_gevent(make_server, tmp_path):
    # pre_request / post_request around each greenlet's request; worker_abort when the
    # hub is blocked past --timeout (the Python-level handler runs in the blocked greenlet)
    rec = tmp_path / "rec.txt"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "def pre_request(worker, req):\n"
        "    open(%r, 'a').write('pre %%s\\n' %% req.path)\n"
        "def post_request(worker, req, environ, resp):\n"
        "    open(%r, 'a').write('post %%s\\n' %% req.path)\n"
        "def worker_abort(worker):\n"
        "    open(%r, 'a').write('abort\\n')\n" % (str(rec), str(rec), str(rec)))
    s = gevent_server(make_server, args=["-c", str(conf), "--timeout", "2"])
    total, results, errors = concurrent(5, get_json, s, "/sleep?0.5")
    assert not errors and len(results) == 5
    # post_request runs after the response went out: poll for the last ones
    assert srv.wait_until(lambda: rec.read_text().split("\n").count("post /sleep") == 5, 10)
    assert rec.read_text().split("\n").count("pre /sleep") == 5
    with pytest.raises(Exception):
        get(s, "/block?60", timeout=40)
    assert srv.wait_until(lambda: "abort" in rec.read_text(), 30)
    s.wait_for_log(r"the hub was blocked by the request GET /block", timeout=10)


def test_max_requests_replaces_the_worker_after_its_greenlets_finish(make_server):
    s = gevent_server(make_server, args=["--max-requests", "10", "--timeout", "60"])
    first = get_json(s, "/")["pid"]
    # 9 more requests in flight at once reach the limit; all are answered
    total, results, errors = concurrent(9, get_json, s, "/sleep?0.5")
    assert not errors and len(results) == 9
    assert {r["pid"] for r in results} == {first}
    assert srv.wait_until(lambda: get_json(s, "/")["pid"] != first, 20)
    s.wait_for_log(r"Autorestarting worker after current request")


def test_quit_leaves_at_once_with_greenlets_in_flight(make_server):
    s = gevent_server(make_server, args=["--graceful-timeout", "60", "--timeout", "60"])
    t = threading.Thread(target=concurrent, args=(3, get, s, "/sleep?60", 90), daemon=True)
    t.start()
    assert srv.wait_until(lambda: get_json(s, "/inflight")["inflight"] == 3, 20)
    t0 = time.monotonic()
    s.signal(signal.SIGQUIT)
    s.wait_exit(timeout=50)
    assert time.monotonic() - t0 < 30  # not the 60 s graceful timeout nor the sleeps
