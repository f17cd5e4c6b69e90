"""200 MiB uploads and downloads stream through the worker with bounded memory."""
import hashlib
import threading

import pytest

from server import SANITIZED, HTTPReader, build_request, vmrss_kib

MiB = 1024 * 1024
TOTAL = 200 * MiB
# 64 MiB; under ASan add its 256 MiB free-memory quarantine
MAX_GROWTH_KIB = (64 + (300 if SANITIZED else 0)) * 1024


class RssSampler:
    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = vmrss_kib(self.pid)
            if v:
                self.peak = max(self.peak, v)
            self._stop.wait(0.01)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        v = vmrss_kib(self.pid)
        if v:
            self.peak = max(self.peak, v)


def _block(i):
    # deterministic, not all one byte (so nothing can cheat with compression)
    return (b"%08d" % i) * (MiB // 8)


@pytest.fixture(scope="module")
def big_server():
    import server as srv
    s = srv.Server("testapp:app", ["--timeout", "120"])
    s.start()
    yield s
    s.close()


def _worker_baseline(server):
    (pid,) = server.wait_workers(1)
    # warm up: one of each request kind so lazy allocations happen before the baseline
    server.request("POST", "/md5", body=b"x" * MiB)
    server.request("GET", "/stream?n=%d" % MiB)
    return pid, vmrss_kib(pid)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_upload_bounded_memory(big_server, framing):
    pid, base = _worker_baseline(big_server)
    h = hashlib.md5()
    s = big_server.connect(timeout=60)
    try:
        if framing == "chunked":
            s.sendall(build_request("POST", "/md5", [("Transfer-Encoding", "chunked")]))
        else:
            s.sendall(build_request("POST", "/md5", [("Content-Length", str(TOTAL))]))
        with RssSampler(pid) as rss:
            for i in range(TOTAL // MiB):
                b = _block(i)
                h.update(b)
                if framing == "chunked":
                    s.sendall(b"%x\r\n" % len(b) + b + b"\r\n")
                else:
                    s.sendall(b)
            if framing == "chunked":
                s.sendall(b"0\r\n\r\n")
            r = HTTPReader(s, timeout=60).read_response()
    finally:
        s.close()
    assert r.status == 200
    assert r.body.decode() == "%s %d" % (h.hexdigest(), TOTAL)
    growth = rss.peak - base
    assert growth < MAX_GROWTH_KIB, "worker RSS grew by %d KiB during a %s upload" % (
        growth, framing)


@pytest.mark.parametrize("cl", ["0", "1"], ids=["chunked", "content-length"])
def test_large_download_bounded_memory(big_server, cl):
    pid, base = _worker_baseline(big_server)
    got = [0]

    def sink(b):
        got[0] += len(b)
    s = big_server.connect(timeout=60)
    try:
        s.sendall(build_request("GET", "/stream?n=%d&cl=%s" % (TOTAL, cl)))
        with RssSampler(pid) as rss:
            r = HTTPReader(s, timeout=60).read_response(sink=sink)
    finally:
        s.close()
    assert r.status == 200
    if cl == "1":
        assert r.header("Content-Length") == str(TOTAL)
    else:
        assert (r.header("Transfer-Encoding") or "").lower() == "chunked"
    assert got[0] == TOTAL
    growth = rss.peak - base
    assert growth < MAX_GROWTH_KIB, "worker RSS grew by %d KiB during a download" % growth


def test_slow_reader_download_bounded_memory(big_server):
    """A client that stops reading must not make the worker buffer the whole body."""
    pid, base = _worker_baseline(big_server)
    s = big_server.connect(timeout=60)
    try:
        s.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
        s.sendall(build_request("GET", "/stream?n=%d" % (100 * MiB)))
        with RssSampler(pid) as rss:
            s.recv(1024)
            threading.Event().wait(1.5)  # client stalls; the server must apply backpressure
        growth = rss.peak - base
    finally:
        s.close()
    assert growth < MAX_GROWTH_KIB, "worker RSS grew by %d KiB for a stalled client" % growth
    assert big_server.request("GET", "/").status == 200
