"""Graceful stops that lose no request: HUP, TTOU, max-requests and TERM under keep-alive load.

No retries anywhere: a request that gets no complete, correct response is a failure, whatever
the reason (an idle keep-alive connection closed under the client, a reset of a connection
the kernel had queued). The only thing not counted as a failure is a connection *refused*
once TERM closed the listeners (nothing listens any more). Clients: wrk, nginx with upstream
keep-alive (POSTs, which nginx never retries), and a Python client on keep-alive and fresh
connections. Counts are printed (pytest -s) and recorded in docs/operations.md.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import server as srv

WRK = shutil.which("wrk")
NGINX = shutil.which("nginx")
BODY = b"Hello, World!"


def wait_log(s, pattern, count=1, timeout=20):
    return srv.wait_until(lambda: len(re.findall(pattern, s.log())) >= count, timeout)


class Client:
    """`keepalive` threads on persistent connections (reconnecting only after a response
    that says Connection: close) and `fresh` threads with a new connection per request.
    GET / (body checked) or POST /echo (echo checked), via host:port. Bounded in time by
    the caller (stop()) and in count by max_requests."""

    def __init__(self, port, keepalive=8, fresh=0, post=False, max_requests=10 ** 6):
        self.port = port
        self.post = post
        self.max_requests = max_requests
        self.stop_evt = threading.Event()
        self.listening = True  # cleared when the test closes the listeners (TERM)
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "reconnects": 0, "refused_after_stop": 0, "failed": 0}
        self.status = {}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(True, i), daemon=True)
                        for i in range(keepalive)]
        self.threads += [threading.Thread(target=self._run, args=(False, i), daemon=True)
                         for i in range(fresh)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_evt.set()
        for t in self.threads:
            t.join(20)

    def _count(self, key, err=None):
        with self.lock:
            self.counts[key] += 1
            if err is not None and len(self.errors) < 20:
                self.errors.append(err)

    def _request(self, sock, keepalive, n):
        if self.post:
            payload = b"post-%d-" % n + b"x" * 200
            req = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: %d\r\n%s\r\n" % (len(payload),
                                                      b"" if keepalive else
                                                      b"Connection: close\r\n")) + payload
            want = payload
        else:
            req = b"GET / HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
                b"" if keepalive else b"Connection: close\r\n")
            want = BODY
        sock.sendall(req)
        resp = srv.HTTPReader(sock, timeout=15).read_response()
        with self.lock:
            self.status[resp.status] = self.status.get(resp.status, 0) + 1
        if resp.status != 200 or resp.body != want:
            raise AssertionError("bad response %r" % resp)
        return (resp.header("connection") or "").lower() == "close"

    def _run(self, keepalive, idx):
        sock = None
        n = 0
        while not self.stop_evt.is_set() and n < self.max_requests:
            n += 1
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                closing = self._request(sock, keepalive, n)
                self._count("ok")
                if closing or not keepalive:
                    if keepalive:
                        self._count("reconnects")
                    sock.close()
                    sock = None
            except ConnectionRefusedError as e:
                sock = None
                if not self.listening:
                    self._count("refused_after_stop")
                    time.sleep(0.01)
                else:
                    self._count("failed", repr(e))
            except Exception as e:  # noqa: BLE001 - every other outcome is a failure
                if sock is not None:
                    sock.close()
                sock = None
                self._count("failed", repr(e))
        if sock is not None:
            sock.close()


def hup_n(s, n, gap):
    for i in range(n):
        os.kill(s.proc.pid, signal.SIGHUP)
        assert wait_log(s, r"Hang up: Master", i + 1)
        time.sleep(gap)


GTHREAD = ["-k", "gthread", "--threads", "4", "--keep-alive", "5", "--graceful-timeout", "15",
           "--no-control-socket"]


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_wrk_keepalive_20_hups_no_errors(make_server):
    s = make_server(workers=2, args=GTHREAD)
    wrk = subprocess.Popen([WRK, "-t2", "-c32", "-d13s", "--timeout", "10s",
                            "http://127.0.0.1:%d/" % s.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        hup_n(s, 20, 0.5)
        out = wrk.communicate(timeout=60)[0].decode()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    print("\n[wrk, 20 x HUP]\n" + out)
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 1000, out
    # wrk prints these lines only when something failed.
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert s.stop() == 0


@pytest.fixture
def nginx_keepalive(tmp_path, spawn):
    def start(backend_port):
        port = srv.free_port()
        d = tmp_path / "nginx"
        d.mkdir(exist_ok=True)
        conf = d / "nginx.conf"
        temps = "".join("  %s_temp_path %s;\n" % (t, d / t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf.write_text(
            "worker_processes 1;\ndaemon off;\npid %s;\nerror_log %s;\n"
            "events { worker_connections 256; }\n"
            "http {\n  access_log off;\n%s"
            "  upstream app { server 127.0.0.1:%d; keepalive 16; }\n"
            "  server {\n    listen 127.0.0.1:%d;\n    keepalive_requests 100000;\n"
            "    location / {\n      proxy_pass http://app;\n"
            "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
            "    }\n  }\n}\n" % (d / "nginx.pid", d / "error.log", temps, backend_port, port))
        return spawn([NGINX, "-p", str(d), "-c", str(conf)], port, "nginx"), d / "error.log"

    return start


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_nginx_upstream_keepalive_posts_10_hups_no_502(make_server, nginx_keepalive):
    s = make_server(workers=2, args=GTHREAD)
    port, errlog = nginx_keepalive(s.port)
    with Client(port, keepalive=12, post=True) as cl:
        assert srv.wait_until(lambda: cl.counts["ok"] > 50, 15)
        hup_n(s, 10, 0.5)
        time.sleep(0.5)
    print("\n[nginx upstream keep-alive POSTs, 10 x HUP] %s %s" % (cl.counts, cl.status))
    assert cl.counts["failed"] == 0, (cl.errors, cl.status, errlog.read_text()[-2000:])
    assert cl.status.get(502, 0) == 0
    assert cl.counts["ok"] > 500
    assert s.stop() == 0


def test_ttou_under_keepalive_load_no_errors(make_server):
    s = make_server(workers=4, args=GTHREAD)
    with Client(s.port, keepalive=12, fresh=4) as cl:
        assert srv.wait_until(lambda: cl.counts["ok"] > 100, 15)
        for n in (3, 2, 1):
            os.kill(s.proc.pid, signal.SIGTTOU)
            assert srv.wait_until(lambda: len(s.worker_pids()) == n, 20)
            before = cl.counts["ok"]
            assert srv.wait_until(lambda: cl.counts["ok"] > before + 100, 15)
    print("\n[TTOU 4 -> 1] %s" % cl.counts)
    assert cl.counts["failed"] == 0, cl.errors
    assert s.stop() == 0


def test_reuse_port_hups_refuse_and_reset_nobody(make_server):
    """--reuse-port: each worker listens on a socket of its own, which closes with it on
    a reload. Sealed first (new SYNs hashed to it are dropped and sent again after 1 s to
    a socket that stays), then drained: before that, a HUP refused the new connections
    the kernel hashed to the closing sockets (141 in 15 HUPs)."""
    if not _sock_diag_works():
        pytest.skip("the kernel answers no NETLINK_SOCK_DIAG dump: an old worker cannot see "
                    "the new worker's socket (docs/operations.md)")
    s = make_server(workers=2, args=GTHREAD + ["--reuse-port"])
    with Client(s.port, keepalive=4, fresh=8) as cl:
        assert srv.wait_until(lambda: cl.counts["ok"] > 100, 15)
        hup_n(s, 8, 0.4)
        before = cl.counts["ok"]
        assert srv.wait_until(lambda: cl.counts["ok"] > before + 100, 15)
    print("\n[--reuse-port, 8 x HUP] %s" % cl.counts)
    assert cl.counts["failed"] == 0, cl.errors
    assert s.stop() == 0


def test_max_requests_under_keepalive_load_no_errors(make_server):
    s = make_server(workers=2, args=GTHREAD + ["--max-requests", "200"])
    with Client(s.port, keepalive=12, fresh=4) as cl:
        assert srv.wait_until(lambda: s.log().count("Autorestarting worker") >= 10, 60)
    print("\n[max-requests 200] %s, %d restarts" % (cl.counts,
                                                    s.log().count("Autorestarting worker")))
    assert cl.counts["failed"] == 0, cl.errors
    assert s.stop() == 0


def test_graceful_term_under_load_answers_every_accepted_connection(make_server):
    s = make_server(workers=2, args=GTHREAD)
    cl = Client(s.port, keepalive=8, fresh=8)
    with cl:
        assert srv.wait_until(lambda: cl.counts["ok"] > 300, 15)
        cl.listening = False  # from here a refusal is expected: the listeners close
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(30) == 0
        ok_at_exit = cl.counts["ok"]
        # Keep trying for a moment after the exit: every attempt must be refused cleanly.
        srv.wait_until(lambda: cl.counts["refused_after_stop"] > 50, 10)
    print("\n[graceful TERM] %s" % cl.counts)
    assert cl.counts["failed"] == 0, cl.errors
    assert cl.counts["refused_after_stop"] > 0
    assert cl.counts["ok"] == ok_at_exit


def _sock_diag_works():
    """Whether the kernel answers NETLINK_SOCK_DIAG dumps of TCP sockets (the workers'
    wait for handshakes in progress needs it; without it they close after the drain)."""
    import struct
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
    except OSError:
        return False
    with nl:
        # nlmsghdr (SOCK_DIAG_BY_FAMILY, REQUEST|DUMP) + inet_diag_req_v2 (AF_INET, TCP, LISTEN)
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << 10)
        req += b"\0" * 48
        nl.sendall(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req)
        nl.settimeout(5)
        try:
            reply = nl.recv(65536)
        except OSError:
            return False
        return len(reply) >= 16 and struct.unpack("=IH", reply[:6])[1] != 2  # not NLMSG_ERROR


def _listener_dup(pid, port):
    """A duplicate of process pid's TCP listening socket on port (pidfd_getfd), or None
    where the kernel or permissions do not allow it."""
    import ctypes
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(name).read().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f[9])
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            try:
                pidfd = os.pidfd_open(pid)
            except (AttributeError, OSError):
                return None
            try:
                got = libc.syscall(438, pidfd, int(fd), 0)  # SYS_pidfd_getfd
            finally:
                os.close(pidfd)
            return socket.socket(fileno=got) if got >= 0 else None
    return None


def test_term_answers_a_client_whose_handshake_was_in_progress(make_server):
    """The race a drain alone cannot close: a client whose handshake is still in progress
    when the workers stop. Its final ACK is held back (a socket filter keeping only SYNs on
    the server's listener, attached through a duplicate of the socket), TERM arrives, and
    the ACK gets through only when the server sends its SYN-ACK again (after ~1 s). The
    master's seal replaces that filter; the workers wait for the handshake, accept it and
    answer. Without the wait the listener closes first and the client is reset."""
    import struct
    import ctypes
    if not _sock_diag_works():
        pytest.skip("the kernel answers no NETLINK_SOCK_DIAG dump: workers cannot see "
                    "handshakes in progress (docs/operations.md)")
    s = make_server(workers=2, args=GTHREAD)
    dup = _listener_dup(s.proc.pid, s.port)
    if dup is None:
        pytest.skip("cannot duplicate the server's listening socket (pidfd_getfd)")
    only_syn = [(0x30, 0, 0, 13), (0x45, 0, 1, 0x02), (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in only_syn))
    dup.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", 4, ctypes.addressof(buf)))
    dup.close()  # the filter stays with the socket
    c = socket.create_connection(("127.0.0.1", s.port), timeout=srv.scaled(10))
    # the client is connected (it had the SYN-ACK); the server holds the handshake
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # dropped too, sent again later
    s.proc.send_signal(signal.SIGTERM)
    resp = srv.HTTPReader(c, timeout=srv.scaled(15)).read_response()
    assert resp.status == 200 and resp.body == BODY
    c.close()
    assert s.proc.wait(srv.scaled(30)) == 0


def test_term_answers_connections_queued_past_the_cap(make_server):
    """Every slot busy in the app (nothing to shed), more clients queued in the backlog:
    a graceful TERM answers them all instead of leaving them to be reset."""
    s = make_server("testapp:app", workers=1, args=["--worker-connections", "1",
                                                    "--graceful-timeout", "20",
                                                    "--no-control-socket"])
    busy = s.connect(timeout=30)
    busy.sendall(b"GET /sleep?s=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.wait_for_log(r"sleep-start", timeout=10)
    queued = []
    for i in range(3):
        c = s.connect(timeout=30)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        queued.append(c)
    s.proc.send_signal(signal.SIGTERM)
    r = srv.HTTPReader(busy, timeout=30).read_response()
    assert r.status == 200 and r.body == b"slept 2"
    for c in queued:
        r = srv.HTTPReader(c, timeout=30).read_response()
        assert r.status == 200 and r.body == BODY
        assert (r.header("connection") or "").lower() == "close"
        c.close()
    busy.close()
    assert s.proc.wait(30) == 0
