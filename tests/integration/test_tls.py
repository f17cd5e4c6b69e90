"""TLS listeners (certfile/keyfile and the other SSL settings) against real clients: curl,
Python's ssl and requests, openssl s_client, testssl. Certificates (a CA, server and client
certs) are made in the test with the openssl command."""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

import server as srv

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Certs:
    """CA, server (localhost / 127.0.0.1) and client certificates in one directory."""

    def __init__(self, d):
        self.dir = d
        self.p = lambda name: os.path.join(d, name)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/O=cunicorn tests/CN=Test CA", cwd=d)
        with open(self.p("san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.server = self.issue("server", "/CN=localhost", serial=100, ext="san.ext")
        self.renewed = self.issue("renewed", "/CN=localhost", serial=200, ext="san.ext",
                                  key="server.key")
        self.client = self.issue("client", "/O=cunicorn tests/CN=alice", serial=300)
        _openssl("pkey", "-in", "server.key", "-out", "server_enc.key", "-aes128",
                 "-passout", "pass:secret", cwd=d)
        _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", "other.key", cwd=d)

    def issue(self, name, subj, serial, ext=None, key=None):
        key = key or name + ".key"
        if not os.path.exists(self.p(key)):
            _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", key, cwd=self.dir)
        _openssl("req", "-new", "-key", key, "-out", name + ".csr", "-subj", subj, cwd=self.dir)
        args = ["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(serial), "-days", "2", "-out", name + ".pem"]
        if ext:
            args += ["-extfile", ext]
        _openssl(*args, cwd=self.dir)
        return (self.p(name + ".pem"), self.p(key))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(str(tmp_path_factory.mktemp("certs")))


def tls_args(certs, *extra):
    cert, key = certs.server
    return ["--certfile", cert, "--keyfile", key, *extra]


def client_ctx(certs, cert=False, **kw):
    ctx = ssl.create_default_context(cafile=certs.p("ca.pem"))
    if cert:
        ctx.load_cert_chain(*certs.client)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def read_to_eof(t):
    """Everything the server sends until it closes (a reset or a timeout raises)."""
    data = b""
    while True:
        chunk = t.recv(65536)
        if not chunk:
            return data
        data += chunk


def https_get(s, certs, path="/", ctx=None, timeout=srv.IO_TIMEOUT):
    """One request on a new TLS connection; returns (status, body bytes, ssl socket facts)."""
    ctx = ctx or client_ctx(certs)
    with socket.create_connection((s.host, s.port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            peer = t.getpeercert()
            t.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      % path.encode())
            data = read_to_eof(t)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, peer


def start(make_server, certs, *extra, app="tlsapp:app", **kw):
    return make_server(app, tls_args(certs, *extra), **kw)


# --------------------------------------------------------------------------- basics


def test_curl_and_environ(make_server, certs):
    s = start(make_server, certs)
    assert "Listening at: https://127.0.0.1:%d" % s.port in s.log()
    out = subprocess.run(["curl", "-sS", "--cacert", certs.p("ca.pem"), "--http1.1",
                          "https://localhost:%d/" % s.port, "--resolve",
                          "localhost:%d:127.0.0.1" % s.port, "-w", "\n%{http_version}"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    body, _, ver = out.stdout.rpartition(b"\n")
    env = json.loads(body)
    assert ver == b"1.1"
    assert env["url_scheme"] == "https"
    assert env["SSL_PROTOCOL"] == "TLSv1.3" and env["SSL_CIPHER"].startswith("TLS_")
    assert env["SSL_CLIENT_VERIFY"] == "NONE"
    assert env["SSL_CLIENT_S_DN"] is None and env["SSL_CLIENT_CERT"] is None
    assert env["peercert"] is None and env["peercert_der_len"] is None
    assert env["version"] == "TLSv1.3" and env["alpn"] == "http/1.1"
    assert env["cipher"][0] == env["SSL_CIPHER"] and env["cipher"][2] >= 128
    # plain HTTP on the TLS port is not served
    with socket.create_connection((s.host, s.port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        assert b"200 OK" not in got


@pytest.mark.parametrize("threads", [1, 4])
def test_requests_keepalive_and_large_bodies(make_server, certs, threads):
    s = start(make_server, certs, "--keep-alive", "5", "--threads", str(threads),
              "--do-handshake-on-connect")
    with requests.Session() as sess:
        pids = set()
        for _ in range(20):
            r = sess.get("https://127.0.0.1:%d/" % s.port, verify=certs.p("ca.pem"), timeout=10)
            assert r.status_code == 200 and r.json()["url_scheme"] == "https"
            pids.add(r.json()["pid"])
        big = sess.get("https://127.0.0.1:%d/big" % s.port, verify=certs.p("ca.pem"), timeout=30)
        assert big.content == b"0123456789abcdef" * (64 * 1024)
        f = sess.get("https://127.0.0.1:%d/file" % s.port, verify=certs.p("ca.pem"), timeout=30)
        with open(os.path.join(srv.APPS, "tlsapp.py"), "rb") as fh:
            assert f.content == fh.read()
    assert len(pids) == 1


def _s_client(s, *args, stdin=b"Q\n"):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port,
                           "-servername", "localhost", *args], input=stdin,
                          capture_output=True, timeout=30)


def test_s_client_protocols_and_alpn(make_server, certs):
    s = start(make_server, certs)
    for flag in ("-tls1", "-tls1_1"):
        r = _s_client(s, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
        text = r.stdout + r.stderr
        # the server answered the ClientHello with a protocol_version alert
        assert r.returncode != 0, text
        assert b"alert protocol version" in text or b"unsupported protocol" in text, text
        assert b"Cipher is (NONE)" in text or b"Cipher    : 0000" in text or \
            b"no peer certificate available" in text, text
    for flag, proto in (("-tls1_2", b"TLSv1.2"), ("-tls1_3", b"TLSv1.3")):
        r = _s_client(s, flag, "-alpn", "h2,http/1.1")
        text = r.stdout + r.stderr
        assert r.returncode == 0, text
        assert b"Protocol  : " + proto in text or b"New, " + proto in text, text
        assert b"ALPN protocol: http/1.1" in text, text
    # TLS 1.2 suites are forward-secret AEAD/ECDHE ones only
    r = _s_client(s, "-tls1_2", "-cipher", "AES128-SHA")
    assert r.returncode != 0


# --------------------------------------------------------------------------- client certs


def test_client_cert_required(make_server, certs):
    s = start(make_server, certs, "--ca-certs", certs.p("ca.pem"), "--cert-reqs", "2")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(s, certs)
    status, body, _ = https_get(s, certs, ctx=client_ctx(certs, cert=True))
    env = json.loads(body)
    assert status == 200
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert env["SSL_CLIENT_S_DN"] == "CN=alice,O=cunicorn tests"
    with open(certs.client[0]) as f:
        pem = f.read()
    assert ssl.PEM_cert_to_DER_cert(env["SSL_CLIENT_CERT"]) == ssl.PEM_cert_to_DER_cert(pem)
    # the same dict ssl.SSLSocket.getpeercert() gives a gunicorn app
    expect = json.loads(json.dumps(ssl._ssl._test_decode_cert(certs.client[0])))
    assert env["peercert"] == expect
    assert env["peercert"]["subject"] == [[["organizationName", "cunicorn tests"]],
                                          [["commonName", "alice"]]]
    assert env["peercert_der_len"] == len(ssl.PEM_cert_to_DER_cert(pem))
    # the worker survived the refused handshake
    assert len(set(s.worker_pids())) == 1


def test_client_cert_optional(make_server, certs):
    s = start(make_server, certs, "--ca-certs", certs.p("ca.pem"), "--cert-reqs", "1")
    status, body, _ = https_get(s, certs)
    env = json.loads(body)
    assert status == 200 and env["SSL_CLIENT_VERIFY"] == "NONE" and env["peercert"] is None
    status, body, _ = https_get(s, certs, ctx=client_ctx(certs, cert=True))
    env = json.loads(body)
    assert env["SSL_CLIENT_VERIFY"] == "SUCCESS" and env["peercert"]["serialNumber"] == "012C"
    # curl with a client certificate too
    out = subprocess.run(["curl", "-sS", "--cacert", certs.p("ca.pem"), "--cert",
                          certs.client[0], "--key", certs.client[1],
                          "https://127.0.0.1:%d/" % s.port], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["SSL_CLIENT_VERIFY"] == "SUCCESS"


# --------------------------------------------------------------------------- startup errors


@pytest.mark.parametrize("case,setting,words", [
    ("missing_cert", "certfile", "No such file"),
    ("missing_key", "keyfile", "No such file"),
    ("mismatch", "keyfile", "does not match"),
    ("encrypted", "keyfile", "encrypted"),
    ("bad_ciphers", "ciphers", "no cipher"),
    ("missing_ca", "ca_certs", "No such file"),
])
def test_startup_errors(make_server, certs, case, setting, words):
    cert, key = certs.server
    args = {
        "missing_cert": ["--certfile", "/nonexistent.pem", "--keyfile", key],
        "missing_key": ["--certfile", cert, "--keyfile", "/nonexistent.key"],
        "mismatch": ["--certfile", cert, "--keyfile", certs.p("other.key")],
        "encrypted": ["--certfile", cert, "--keyfile", certs.p("server_enc.key")],
        "bad_ciphers": ["--certfile", cert, "--keyfile", key, "--ciphers", "NOPE"],
        "missing_ca": ["--certfile", cert, "--keyfile", key, "--ca-certs", "/nonexistent"],
    }[case]
    s = make_server("tlsapp:app", args, start=False)
    s.start_proc = s.start
    s._ready = False
    s.start()
    assert s.proc.wait(20) == 1
    err = s.log()
    assert re.search(r"Error: %s: .*%s" % (setting, words), err), err
    assert "Booting worker" not in err


def test_cert_reqs_validated(make_server, certs):
    s = make_server("tlsapp:app", tls_args(certs, "--cert-reqs", "3"), start=False)
    s._ready = False
    s.start()
    assert s.proc.wait(20) == 1
    assert "cert_reqs" in s.log()


def test_ssl_version_deprecated_warning(make_server, certs):
    s = start(make_server, certs, "--ssl-version", "TLSv1_2")
    assert "option `ssl_version` is deprecated and it is ignored" in s.log()
    assert https_get(s, certs)[0] == 200


# --------------------------------------------------------------------------- ssl_context hook


def test_ssl_context_hook(make_server, certs, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(conf, default_ssl_context_factory):\n"
        "    ctx = default_ssl_context_factory()\n"
        "    ctx.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return ctx\n")
    s = start(make_server, certs, "-c", str(conf))
    assert _s_client(s, "-tls1_2").returncode != 0
    r = _s_client(s, "-tls1_3", "-alpn", "http/1.1")
    assert r.returncode == 0 and b"ALPN protocol: http/1.1" in r.stdout
    assert json.loads(https_get(s, certs)[1])["SSL_PROTOCOL"] == "TLSv1.3"


def test_ssl_context_hook_refused(make_server, certs, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(
        "def ssl_context(conf, default_ssl_context_factory):\n"
        "    ctx = default_ssl_context_factory()\n"
        "    ctx.sni_callback = lambda *a: None\n"
        "    return ctx\n")
    s = make_server("tlsapp:app", tls_args(certs, "-c", str(conf)), start=False)
    s._ready = False
    s.start()
    assert s.proc.wait(20) == 1
    assert "sni_callback is not supported" in s.log()


# --------------------------------------------------------------------------- robustness


def _serial(s, certs):
    ctx = client_ctx(certs)
    with socket.create_connection((s.host, s.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            return t.getpeercert()["serialNumber"]


@pytest.mark.parametrize("threads", [1, 4])
def test_rotation_under_load(make_server, certs, tmp_path, threads):
    cert = str(tmp_path / "live.pem")
    shutil.copy(certs.server[0], cert)
    s = make_server("tlsapp:app", ["--certfile", cert, "--keyfile", certs.server[1],
                                   "--threads", str(threads), "--keep-alive", "5"])
    assert _serial(s, certs) == "64"  # 100
    stop = threading.Event()
    counts = {"ok": 0, "fail": 0}
    errors = []
    lock = threading.Lock()

    def load():
        ctx = client_ctx(certs)
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and counts["ok"] < 20000:
            try:
                st, _, _ = https_get(s, certs, ctx=ctx)
                ok = st == 200
            except Exception as e:  # noqa: BLE001 -- every failure counts
                ok = False
                errors.append(repr(e))
            with lock:
                counts["ok" if ok else "fail"] += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    assert srv.wait_until(lambda: counts["ok"] > 20, 30)
    # renew as certbot does: new file, renamed over the old one
    tmp = cert + ".new"
    shutil.copy(certs.renewed[0], tmp)
    os.rename(tmp, cert)
    assert srv.wait_until(lambda: _serial(s, certs) == "C8", 20)  # 200
    before = counts["ok"]
    assert srv.wait_until(lambda: counts["ok"] > before + 20, 30)
    stop.set()
    for w in workers:
        w.join(70)
    assert counts["fail"] == 0, errors[:5]
    assert "certificate files changed" in s.log()


def test_hup_rebuilds_context(make_server, certs, tmp_path):
    cert = str(tmp_path / "live.pem")
    shutil.copy(certs.server[0], cert)
    s = make_server("tlsapp:app", ["--certfile", cert, "--keyfile", certs.server[1]])
    shutil.copy(certs.renewed[0], cert)
    s.proc.send_signal(1)  # HUP
    assert srv.wait_until(lambda: _serial(s, certs) == "C8", 20)


def test_idle_handshakes_cost_nothing(make_server, certs):
    """200 connections that never finish a handshake (some send nothing, some half a
    ClientHello) do not stop a sync worker from serving a normal client."""
    s = start(make_server, certs, "--timeout", "60")
    t0 = time.monotonic()
    assert https_get(s, certs)[0] == 200
    baseline = time.monotonic() - t0
    idle = []
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40
    try:
        for i in range(200):
            c = socket.create_connection((s.host, s.port), timeout=10)
            if i % 2:
                c.sendall(hello)
            idle.append(c)
        served = 0
        t0 = time.monotonic()
        for _ in range(10):
            served += https_get(s, certs)[0] == 200
        per_request = (time.monotonic() - t0) / 10
        assert served == 10
        assert per_request < max(baseline, 0.01) * 50 * (3 if srv.SANITIZED else 1)
        assert len(set(s.worker_pids())) == 1
    finally:
        for c in idle:
            c.close()


def test_bad_handshakes_do_not_kill_the_worker(make_server, certs):
    s = start(make_server, certs, "--log-level", "debug")
    pids = set(s.worker_pids())
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello", os.urandom(600),
                 b"\x16\x03\x03\xff\xff" + b"\x01" * 100):
        with socket.create_connection((s.host, s.port), timeout=10) as c:
            c.sendall(junk)
            try:
                c.recv(100)
            except OSError:
                pass
    # a client that vanishes mid-connection (no close_notify)
    ctx = client_ctx(certs)
    raw = socket.create_connection((s.host, s.port), timeout=10)
    t = ctx.wrap_socket(raw, server_hostname="localhost")
    t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    socket.socket.shutdown(t, socket.SHUT_RDWR)  # the fd only: no close_notify
    t.close()
    assert https_get(s, certs)[0] == 200
    assert set(s.worker_pids()) == pids
    assert srv.wait_until(lambda: "ssl handshake failed" in s.log(), 10)
    assert "[DEBUG] ssl handshake failed" in s.log()


# --------------------------------------------------------------------------- testssl


@pytest.mark.skipif(shutil.which("testssl") is None and shutil.which("testssl.sh") is None,
                    reason="needs testssl.sh")
def test_testssl_no_weak_protocols_or_ciphers(make_server, certs, tmp_path):
    s = start(make_server, certs)
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    out = tmp_path / "testssl.json"
    r = subprocess.run([exe, "--quiet", "--color", "0", "--warnings", "off", "--protocols",
                        "--std", "--jsonfile", str(out), "127.0.0.1:%d" % s.port],
                       capture_output=True, timeout=600)
    findings = json.loads(out.read_text())
    bad = [f for f in findings if f.get("severity") in ("MEDIUM", "HIGH", "CRITICAL")]
    assert not bad, bad
    by_id = {f["id"]: f["finding"] for f in findings}
    for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[p].startswith("not offered"), (p, by_id[p])
    assert by_id["TLS1_2"].startswith("offered") and by_id["TLS1_3"].startswith("offered")
    for cat in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                "cipherlist_3DES_IDEA"):
        assert by_id[cat] == "not offered", (cat, by_id[cat], r.stdout[-2000:])
    # Python's default list keeps ECDHE AES-CBC-SHA256/384 suites: testssl's "AVERAGE"
    # category, severity LOW (checked above: nothing worse)
    assert by_id["cipherlist_STRONG"] == "offered"
    assert by_id["ALPN"] == "http/1.1"


def _get_with_session(s, ctx, session=None):
    """GET / over a new TLS connection offering `session`: (the session, whether it was
    resumed, the app's JSON answer)."""
    with socket.create_connection((s.host, s.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = read_to_eof(t)
            return t.session, t.session_reused, json.loads(data.partition(b"\r\n\r\n")[2])


def test_session_resumption_across_workers(make_server, certs):
    """Tickets are on and every worker shares the ticket keys (the context is made in the
    master before fork): a session from one worker resumes on any."""
    s = make_server("tlsapp:app", tls_args(certs), workers=2)
    ctx = client_ctx(certs)

    def one(session=None):
        return _get_with_session(s, ctx, session)

    sess, reused, _ = one()
    assert not reused
    pids, count = set(), 0
    for _ in range(30):
        _, reused, env = one(sess)
        count += reused
        pids.add(env["pid"])
    assert count == 30
    assert len(pids) == 2 or len(set(s.worker_pids())) == 2


def test_sessions_resume_after_hup(make_server, certs):
    s = make_server("tlsapp:app", tls_args(certs))
    ctx = client_ctx(certs)

    def connect(session=None):
        return _get_with_session(s, ctx, session)

    sess, _, env = connect()
    old = env["pid"]
    s.proc.send_signal(1)  # HUP: a new context in the master, new workers
    assert srv.wait_until(lambda: connect()[2]["pid"] != old, 20)
    _, reused, env = connect(sess)
    assert env["pid"] != old and reused


def test_broken_renewal_keeps_serving(make_server, certs, tmp_path):
    """A renewal caught half-done (new certificate, old key) is logged and the working
    certificate keeps serving, after a file change and after HUP alike."""
    cert = str(tmp_path / "live.pem")
    shutil.copy(certs.server[0], cert)
    s = make_server("tlsapp:app", ["--certfile", cert, "--keyfile", certs.server[1]])
    # a certificate for another key
    with open(certs.client[0], "rb") as f:
        other = f.read()
    with open(cert, "wb") as f:
        f.write(other)
    assert srv.wait_until(lambda: "cannot be built" in s.log() or https_get(s, certs)[0] != 200,
                          20)
    assert "does not match" in s.log()
    assert _serial(s, certs) == "64"
    s.proc.send_signal(1)  # HUP
    assert srv.wait_until(lambda: "Reload: TLS: keyfile" in s.log(), 20)
    assert srv.wait_until(lambda: len(s.worker_pids()) == 1, 20)
    assert _serial(s, certs) == "64" and https_get(s, certs)[0] == 200
    shutil.copy(certs.renewed[0], cert)  # the renewal completes
    assert srv.wait_until(lambda: _serial(s, certs) == "C8", 20)


def test_unix_socket_listener_speaks_tls(make_server, certs, tmp_path):
    path = str(tmp_path / "tls.sock")
    make_server("tlsapp:app", tls_args(certs), binds=["unix:" + path])
    out = subprocess.run(["curl", "-sS", "--cacert", certs.p("ca.pem"), "--unix-socket", path,
                          "https://localhost/"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert env["url_scheme"] == "https" and env["SSL_PROTOCOL"] == "TLSv1.3"


def test_ktls_via_hook_serves_files(make_server, certs, tmp_path):
    """Kernel TLS asked for by the hook: wsgi.file_wrapper responses arrive intact, through
    SSL_sendfile where the kernel takes the keys, through SSL_write where it does not."""
    conf = tmp_path / "ktls.conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(conf, default_ssl_context_factory):\n"
        "    ctx = default_ssl_context_factory()\n"
        "    ctx.options |= getattr(ssl, 'OP_ENABLE_KTLS', 1 << 3)\n"
        "    return ctx\n")
    s = start(make_server, certs, "-c", str(conf))
    with open(os.path.join(srv.APPS, "tlsapp.py"), "rb") as fh:
        want = fh.read()
    with requests.Session() as sess:
        for _ in range(3):
            r = sess.get("https://127.0.0.1:%d/file" % s.port, verify=certs.p("ca.pem"),
                         timeout=30)
            assert r.status_code == 200 and r.content == want
