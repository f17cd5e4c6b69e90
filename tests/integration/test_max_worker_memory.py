"""--max-worker-memory is checked after every request, not only by the master's periodic
pass: a worker that grows by a fixed step per request is recycled at the first request
that takes it over the limit, so its RSS never exceeds the limit by more than one step, plus at most one request whose connection was already queued
when the worker began its graceful stop (that request is answered, not dropped)."""
import re

import pytest

import server as srv

LIMIT_MB = 80
STEP_MB = 10


def _grow(s):
    r = s.request("GET", "/grow?mb=%d" % STEP_MB, headers=[("Connection", "close")])
    assert r.status == 200, r
    pid, kb = map(int, r.body.split())
    return pid, kb


@pytest.mark.skipif(srv.SANITIZED, reason="under ASan the allocator's quarantine and shadow "
                    "memory decouple RSS from the app's allocations; the release build asserts "
                    "the bound")
def test_recycled_right_after_the_request_that_crossed_the_limit(make_server):
    s = make_server("memapp:app", ["--max-worker-memory", str(LIMIT_MB), "--no-control-socket"])
    (first,) = s.wait_workers(1)
    seen = []
    # Back-to-back requests: far more than a periodic check would see in its interval.
    for _ in range(3 * LIMIT_MB // STEP_MB):
        seen.append(_grow(s))
    by_pid = {}
    for pid, kb in seen:
        by_pid.setdefault(pid, []).append(kb)
    print("\n[max-worker-memory %d MB, +%d MB/request] %s" % (LIMIT_MB, STEP_MB, {
        p: [k // 1024 for k in v] for p, v in by_pid.items()}))
    # Each retired worker served at most one request after the one that crossed the limit.
    for pid, rss in by_pid.items():
        over = [i for i, k in enumerate(rss) if k > LIMIT_MB * 1024]
        if over:
            assert len(rss) - over[0] <= 2, (pid, rss)
    assert any(k > LIMIT_MB * 1024 for k in by_pid[first])
    # So no response came from a worker more than two steps over the limit.
    assert max(kb for _, kb in seen) <= (LIMIT_MB + 2 * STEP_MB) * 1024 + 4096
    assert len(by_pid) >= 2
    assert srv.wait_until(lambda: re.search(
        r"Worker \(pid:%d\) uses \d+ MB, over max_worker_memory \(%d MB\)" % (first, LIMIT_MB),
        s.log()), 10), s.log()
    assert srv.wait_until(lambda: first not in s.worker_pids(), 15)
    assert s.stop() == 0
