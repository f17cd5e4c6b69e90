"""gthread worker: slow clients cost no thread, thread state persists, limits and recycling."""
import json
import socket
import threading

import pytest

import server as srv


def get(s, path="/", timeout=5):
    sock = s.connect(timeout=timeout)
    try:
        sock.sendall(srv.build_request("GET", path))
        return srv.HTTPReader(sock, timeout=timeout).read_response()
    finally:
        sock.close()


def open_idle(s, n):
    socks = []
    for _ in range(n):
        socks.append(s.connect(timeout=5))
    return socks


def _worker_holds(s, n):
    """A predicate: the one worker holds at least n more descriptors than now (call it
    while the worker is idle)."""
    (pid,) = s.worker_pids()
    base = srv.open_fds(pid)

    def holds():
        return (srv.open_fds(pid) or 0) >= base + n
    holds.state = lambda: "worker %d: %s fds, %d at the start" % (pid, srv.open_fds(pid), base)
    return holds


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
@pytest.mark.parametrize("mode", ["idle", "trickle"])
def test_slow_clients_do_not_block_others(make_server, worker_class, mode):
    # A server that let a slow client hold its app thread would keep every other request
    # waiting for that client: --timeout 30 s for an idle one, and a trickling head never
    # completes. Each request below has a client timeout of scaled(5) s, far below that, so
    # such a server fails on the first request whatever the machine's speed. The median,
    # compared with the same server's median before the slow clients came, catches a server
    # that is merely slowed down by them (work per held connection on every request).
    s = make_server("threadapp:app", ["-k", worker_class, "--threads", "4", "--timeout", "30"])
    limit = srv.scaled(5)
    accepted = _worker_holds(s, 300)  # counted from the idle worker's descriptors
    baseline = srv.median(srv.timed(lambda: get(s, "/", timeout=limit), 20))
    slow = open_idle(s, 300)
    stop = threading.Event()
    sent = threading.Event()

    def trickle():
        for sk in slow:
            sk.sendall(b"GET / HTTP/1.1\r\n")
        sent.set()
        i = 0
        while not stop.wait(0.5):
            i += 1
            for sk in slow:
                try:
                    sk.sendall(b"X-Slow-%d: y\r\n" % i)
                except OSError:
                    pass

    t = None
    if mode == "trickle":
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        assert sent.wait(limit)
    try:
        # readiness: the worker has accepted the slow connections (it holds their fds)
        assert srv.wait_until(accepted, limit), "the worker did not accept the slow clients: %s" % accepted.state()
        bodies = []

        def one():
            r = get(s, "/", timeout=limit)
            bodies.append((r.status, r.body))
        times = srv.timed(one, 50)
        assert bodies == [(200, b"ok")] * 50
        bound = srv.latency_bound(baseline, 10, 0.1)
        assert srv.median(times) <= bound, (
            "median %.4fs with %d %s clients, %.4fs without (bound %.3fs)"
            % (srv.median(times), len(slow), mode, baseline, bound))
    finally:
        stop.set()
        if t:
            t.join(2)
        for sk in slow:
            sk.close()


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_stalled_body_gets_408_and_frees_the_worker(make_server, worker_class):
    # --timeout bounds the stall: scaled so that a loaded machine answers the other client
    # well inside it; the assertion is on order, not time.
    timeout = int(srv.scaled(2))
    s = make_server("threadapp:app", ["-k", worker_class, "--threads", "1",
                                      "--timeout", str(timeout)])
    sock = s.connect(timeout=timeout * 5)
    try:
        # Promise 100 bytes, send 10, stall.
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        # Meanwhile the only app thread must still serve others: this answer comes before
        # the stalled request's 408 (a worker held by the stalled body would answer it
        # only after the 408).
        r = get(s, "/", timeout=timeout * 5)
        assert r.status == 200
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1, socket.MSG_PEEK)
        sock.settimeout(timeout * 5)
        resp = srv.HTTPReader(sock, timeout=timeout * 5).read_response()
        assert resp.status == 408
        assert srv.HTTPReader(sock, timeout=timeout * 2).is_closed()
    finally:
        sock.close()
    assert get(s, "/").status == 200


def test_large_stalled_body_gets_408(make_server):
    """Past the loop's pre-read threshold the app streams the body; a stall still ends in 408."""
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "2", "--timeout", "2"])
    sock = s.connect(timeout=10)
    try:
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" +
                     b"x" * 200000)
        resp = srv.HTTPReader(sock, timeout=10).read_response()
        assert resp.status == 408
    finally:
        sock.close()
    assert get(s, "/").status == 200


def test_threading_local_persists_per_thread(make_server):
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "2"])
    seen = {}
    sock = s.connect(timeout=5)
    reader = srv.HTTPReader(sock, timeout=5)
    try:
        for _ in range(40):
            sock.sendall(srv.build_request("GET", "/local"))
            d = json.loads(reader.read_response().body)
            prev = seen.get(d["thread"], 0)
            # Each thread's counter only grows by one per request it served.
            assert d["count"] == prev + 1, (d, seen)
            seen[d["thread"]] = d["count"]
    finally:
        sock.close()
    assert 1 <= len(seen) <= 2
    assert sum(seen.values()) == 40


def test_threads_serve_concurrently(make_server):
    # /barrier?4 answers only once 4 requests are inside the app together: a worker that
    # served them one after another breaks the barrier (20 s) and answers "broken".
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "4"])
    results = []

    def one():
        r = get(s, "/barrier?4", timeout=30)
        results.append((r.status, r.body))

    ts = [threading.Thread(target=one) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results == [(200, b"met")] * 4


def test_worker_connections_cap_sheds_oldest_idle_keepalive(make_server):
    """At the cap, a new client with a request gets in: the oldest idle keep-alive
    connection is closed to make room (issue 10's overload policy; test_overload.py)."""
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "2",
                                      "--worker-connections", "5", "--keep-alive", "30"])
    held = open_idle(s, 5)
    for sk in held:
        sk.sendall(srv.build_request("GET", "/"))
        assert srv.HTTPReader(sk, timeout=5).read_response().status == 200
    extra = s.connect(timeout=5)
    extra.sendall(srv.build_request("GET", "/"))
    r = srv.HTTPReader(extra, timeout=5).read_response()
    assert r.status == 200
    extra.close()
    # The oldest idle connection was the one given up; the others are still served.
    held[0].settimeout(5)
    assert held[0].recv(1) == b""
    for sk in held[1:]:
        sk.sendall(srv.build_request("GET", "/"))
        assert srv.HTTPReader(sk, timeout=5).read_response().status == 200
    for sk in held:
        sk.close()
    assert "worker_connections (5) reached" in s.log() or srv.wait_until(
        lambda: "worker_connections (5) reached" in s.log(), 5)


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_max_requests_recycles_without_failed_request(make_server, worker_class):
    s = make_server("threadapp:app", ["-k", worker_class, "--threads", "2",
                                      "--max-requests", "20"])
    pids = set()
    failures = 0
    for i in range(100):
        try:
            r = get(s, "/local", timeout=5)
            assert r.status == 200
            pids.add(json.loads(r.body)["pid"])
        except (OSError, srv.ConnectionClosed):
            failures += 1
    assert failures == 0
    assert len(pids) >= 4, "worker was not recycled: pids %s" % pids


def test_max_requests_answers_pipelined_requests_before_exit(make_server):
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "2", "--max-requests", "3"])
    sock = s.connect(timeout=5)
    try:
        sock.sendall(srv.build_request("GET", "/local") * 6)
        reader = srv.HTTPReader(sock, timeout=5)
        got = [reader.read_response() for _ in range(6)]
        assert [r.status for r in got] == [200] * 6
        assert got[-1].header("Connection") == "close"
    finally:
        sock.close()
