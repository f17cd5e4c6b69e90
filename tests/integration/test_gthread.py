"""gthread worker: slow clients cost no thread, thread state persists, limits and recycling."""
import json
import socket
import threading
import time

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


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
@pytest.mark.parametrize("mode", ["idle", "trickle"])
def test_slow_clients_do_not_block_others(make_server, worker_class, mode):
    s = make_server("threadapp:app", ["-k", worker_class, "--threads", "4", "--timeout", "30"])
    slow = open_idle(s, 300)
    stop = threading.Event()

    def trickle():
        for sk in slow:
            sk.sendall(b"GET / HTTP/1.1\r\n")
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
    try:
        time.sleep(0.3)
        worst = 0.0
        for _ in range(50):
            t0 = time.monotonic()
            r = get(s, "/")
            worst = max(worst, time.monotonic() - t0)
            assert r.status == 200 and r.body == b"ok"
        assert worst < 1.0, "a request took %.2fs with %d %s clients" % (worst, len(slow), mode)
    finally:
        stop.set()
        if t:
            t.join(2)
        for sk in slow:
            sk.close()


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_stalled_body_gets_408_and_frees_the_worker(make_server, worker_class):
    s = make_server("threadapp:app", ["-k", worker_class, "--threads", "1", "--timeout", "2"])
    sock = s.connect(timeout=10)
    try:
        # Promise 100 bytes, send 10, stall.
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        # Meanwhile the only app thread must still serve others.
        t0 = time.monotonic()
        r = get(s, "/")
        assert r.status == 200 and time.monotonic() - t0 < 1.0
        resp = srv.HTTPReader(sock, timeout=10).read_response()
        assert resp.status == 408
        assert srv.HTTPReader(sock, timeout=3).is_closed()
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
    s = make_server("threadapp:app", ["-k", "gthread", "--threads", "4"])
    results = []

    def one():
        results.append(get(s, "/sleep?0.8", timeout=10).status)

    t0 = time.monotonic()
    ts = [threading.Thread(target=one) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    assert results == [200] * 4
    assert time.monotonic() - t0 < 2.0  # 4 x 0.8 s in parallel, not 3.2 s


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
