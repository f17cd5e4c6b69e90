"""HUP reloads, TTIN/TTOU, kill -9 of a worker and max-requests recycling under load.

A load generator keeps requests flowing on new connections and on keep-alive connections
while the test drives the master. Every request must get a complete, correct response. Nothing is
retried: a keep-alive connection closed under a request is a failure. Only under kill -9 of
a worker are the connections that worker held counted apart (`lost_to_kill9`), since
SIGKILL loses them by definition. Counts are printed (pytest -s) and documented in docs/operations.md.
"""
import os
import signal
import socket
import threading
import time


import server as srv

# Kept as a no-op marker: the engine's graceful stop now serves connections whose request
# is still unread in the kernel (issue_engine_stop_reset_fresh_connections), so these
# tests must pass outright.
def ENGINE_DRAIN(f):
    return f


BODY = b"Hello, World!"


class LoadGen:
    """Threads sending GET / (fresh connection per request) and GET / on keep-alive
    connections. Results in .counts."""

    def __init__(self, server, fresh=3, keepalive=3, path="/", retry_fresh=False):
        self.server = server
        self.retry_fresh = retry_fresh  # kill -9: a connection may lose its worker
        self.path = path
        self.stop_evt = threading.Event()
        self.stopping = False  # the server is being stopped: refusals are expected
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "lost_to_kill9": 0, "refused_after_stop": 0, "failed": 0}
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(False,), daemon=True)
                        for _ in range(fresh)]
        self.threads += [threading.Thread(target=self._run, args=(True,), daemon=True)
                         for _ in range(keepalive)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.finish()

    def finish(self):
        self.stop_evt.set()
        for t in self.threads:
            t.join(15)

    def _count(self, key, err=None):
        with self.lock:
            self.counts[key] += 1
            if err is not None and len(self.errors) < 20:
                self.errors.append(err)

    def _connect(self):
        s = socket.create_connection((self.server.host, self.server.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _one(self, sock, keepalive):
        req = ("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
               % (self.path, "" if keepalive else "Connection: close\r\n")).encode()
        sock.sendall(req)
        reader = srv.HTTPReader(sock, timeout=10)
        resp = reader.read_response()
        if resp.status != 200 or resp.body != BODY:
            raise AssertionError("bad response %r" % resp)
        closing = (resp.header("connection") or "").lower() == "close"
        return reader, closing

    def _run(self, keepalive):
        sock = None
        while not self.stop_evt.is_set():
            try:
                if sock is None:
                    sock = self._connect()
                _, closing = self._one(sock, keepalive)
                self._count("ok")
                if closing or not keepalive:
                    sock.close()
                    sock = None
            except (ConnectionRefusedError,) as e:
                sock = None
                if self.stopping:
                    self._count("refused_after_stop")
                    time.sleep(0.01)
                else:
                    self._count("failed", repr(e))
            except (srv.ConnectionClosed, ConnectionResetError, BrokenPipeError) as e:
                partial = getattr(e, "partial", b"")
                if sock is not None:
                    sock.close()
                sock = None
                if not partial and self.retry_fresh:
                    # kill -9 of a worker loses what it had accepted: count it, then check
                    # that a new connection is served.
                    try:
                        s2 = self._connect()
                        try:
                            self._one(s2, False)
                        finally:
                            s2.close()
                        self._count("lost_to_kill9")
                    except ConnectionRefusedError as e2:
                        self._count("refused_after_stop" if self.stopping else "failed",
                                    None if self.stopping else repr(e2))
                    except Exception as e2:  # noqa: BLE001
                        self._count("failed", "retry: " + repr(e2))
                else:
                    self._count("failed", repr(e))
            except Exception as e:  # noqa: BLE001
                if sock is not None:
                    sock.close()
                sock = None
                self._count("failed", repr(e))
        if sock is not None:
            sock.close()

    def wait_served(self, more=1, timeout=20):
        """Poll until `more` further requests have succeeded (readiness of the load, and
        proof that it is still served)."""
        with self.lock:
            target = self.counts["ok"] + more
        ok = srv.wait_until(lambda: self.counts["ok"] >= target, timeout)
        assert ok, "load not served: %s %s" % (dict(self.counts), self.errors[:5])

    def report(self, label):
        print("\n[%s] %s" % (label, self.counts))
        return self.counts


def wait_log(s, pattern, count=1, timeout=20):
    import re
    return srv.wait_until(lambda: len(re.findall(pattern, s.log())) >= count, timeout)


@ENGINE_DRAIN
def test_hup_10_times_under_load(make_server):
    s = make_server(workers=2, args=["--keep-alive", "5", "--graceful-timeout", "10",
                                     "--no-control-socket"])
    before = set(s.worker_pids())
    with LoadGen(s) as lg:
        lg.wait_served(10)
        for i in range(10):
            os.kill(s.proc.pid, signal.SIGHUP)
            assert wait_log(s, r"Hang up: Master", i + 1)
            time.sleep(0.35)  # pacing, not synchronisation
            lg.wait_served(10)  # served between every two HUPs
        lg.wait_served(10)
    c = lg.report("10 x HUP")
    assert c["failed"] == 0, lg.errors
    assert srv.wait_until(lambda: len(s.worker_pids()) == 2, 15)
    assert not before & set(s.worker_pids())
    assert s.stop() == 0


def test_ttin_ttou_kill9_under_load(make_server):
    s = make_server(workers=2, args=["--keep-alive", "5", "--no-control-socket"])
    with LoadGen(s, retry_fresh=True) as lg:
        lg.wait_served(10)
        os.kill(s.proc.pid, signal.SIGTTIN)
        assert srv.wait_until(lambda: len(s.worker_pids()) == 3, 15)
        lg.wait_served(10)
        os.kill(s.proc.pid, signal.SIGTTOU)
        assert srv.wait_until(lambda: len(s.worker_pids()) == 2, 15)
        lg.wait_served(10)
        victim = s.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert srv.wait_until(lambda: victim not in s.worker_pids()
                              and len(s.worker_pids()) == 2, 15)
        lg.wait_served(20)
    c = lg.report("TTIN/TTOU/kill -9")
    assert c["failed"] == 0, lg.errors
    assert s.stop() == 0


@ENGINE_DRAIN
def test_max_requests_50_under_load(make_server):
    s = make_server(workers=2, args=["--keep-alive", "5", "--max-requests", "50",
                                     "--no-control-socket"])
    with LoadGen(s) as lg:
        # a count, not a duration: at least 3 recycles under load
        assert srv.wait_until(lambda: s.log().count("Autorestarting worker") >= 3, 60), \
            (dict(lg.counts), s.describe())
        lg.wait_served(10)
    c = lg.report("max-requests 50")
    assert c["failed"] == 0, lg.errors
    assert s.stop() == 0


def test_reload_rereads_command_line_env(make_server, tmp_path):
    """HUP parses GUNICORN_CMD_ARGS/argv again; a broken config keeps the old one."""
    s = make_server(workers=1, args=["--no-control-socket"])
    first = s.worker_pids()
    os.kill(s.proc.pid, signal.SIGHUP)
    assert srv.wait_until(lambda: s.worker_pids() and s.worker_pids() != first, 15)
    r = s.request("GET", "/")
    assert r.status == 200
    assert s.stop() == 0
