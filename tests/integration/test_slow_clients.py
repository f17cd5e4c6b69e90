"""Slow clients with slowhttptest (Debian package `slowhttptest`): slowloris (slow
headers), slow POST (slow body) and slow read, each ~8 s and a few hundred connections,
against a sync and a gthread (--threads 4) server at the same time. A probe thread per
server does GET / on a fresh connection every 0.2 s during the attack; every probe must be
answered within 1 s.

Set CUNICORN_SLOW_REPORT=path to append each run's numbers as JSON lines
(docs/security.md)."""
import csv
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

import server as srv
from server import HTTPReader, build_request

SLOWHTTPTEST = shutil.which("slowhttptest")
pytestmark = pytest.mark.skipif(
    SLOWHTTPTEST is None,
    reason="slowhttptest is not installed (Debian package slowhttptest; "
           "tools/ensure-deps.sh test installs it)")

DURATION = 8         # seconds of attack (slowhttptest -l)
CONNECTIONS = 200    # per server (slowhttptest -c)
PROBE_EVERY = 0.2
PROBE_LIMIT = 1.0

ATTACKS = {
    # slowloris: a header line every second, never the end of the head
    "slowloris": ["-H", "-i", "1", "-x", "10"],
    # R-U-Dead-Yet: a complete head with Content-Length 8192, the body a few bytes a second
    "slow_post": ["-B", "-i", "1", "-x", "10", "-s", "8192"],
    # slow read: 4 pipelined requests per connection, a 1..32 byte receive window, 16
    # bytes read per second
    "slow_read": ["-X", "-k", "4", "-n", "1", "-w", "1", "-y", "32", "-z", "16"],
}


class Probe:
    """GET / on a fresh connection every PROBE_EVERY seconds; records latencies."""

    def __init__(self, server):
        self.server = server
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                s = self.server.connect(timeout=PROBE_LIMIT)
                try:
                    s.sendall(build_request("GET", "/"))
                    r = HTTPReader(s, timeout=PROBE_LIMIT).read_response()
                finally:
                    s.close()
                dt = time.monotonic() - t0
                if r.status != 200 or r.body != b"Hello, World!":
                    self.failures.append((round(dt, 3), "bad response %r" % r))
                elif dt > PROBE_LIMIT:
                    self.failures.append((round(dt, 3), "slow"))
                self.latencies.append(dt)
            except Exception as e:  # noqa: BLE001 - any failure is a failed probe
                self.failures.append((round(time.monotonic() - t0, 3), repr(e)))
            self._stop.wait(PROBE_EVERY)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(10)


def run_attack(server, attack, path, prefix):
    cmd = [SLOWHTTPTEST] + ATTACKS[attack] + [
        "-c", str(CONNECTIONS), "-r", "200", "-l", str(DURATION), "-p", "2",
        "-g", "-o", prefix, "-u", server.url + path]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=DURATION + 30)
    rows = []
    try:
        with open(prefix + ".csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        pass
    return p.returncode, rows, p.stdout.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def servers():
    started = {}
    for worker in ("sync", "gthread"):
        args = ["--keep-alive", "5"]
        if worker == "gthread":
            args += ["-k", "gthread", "--threads", "4"]
        s = srv.Server("testapp:app", args)
        s.start()
        started[worker] = s
    yield started
    for s in started.values():
        s.close()


def attack_both(servers, attack, path, tmp_path):
    """Attack the sync and the gthread server at the same time, probing both."""
    pids = {w: int(s.request("GET", "/pid").body) for w, s in servers.items()}
    probes = {w: Probe(s).start() for w, s in servers.items()}
    results = {}
    threads = []
    for w, s in servers.items():
        def go(w=w, s=s):
            results[w] = run_attack(s, attack, path, str(tmp_path / ("%s-%s" % (attack, w))))
        t = threading.Thread(target=go, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(DURATION + 40)
    for p in probes.values():
        p.stop()

    report = os.environ.get("CUNICORN_SLOW_REPORT")
    for w, s in servers.items():
        rc, rows, out = results[w]
        peak = max((int(r.get("Connected", 0) or 0) for r in rows), default=0)
        pr = probes[w]
        line = {"attack": attack, "worker": w, "path": path, "slowhttptest_rc": rc,
                "peak_connected": peak, "probes": len(pr.latencies),
                "probe_max_s": round(max(pr.latencies, default=0), 3),
                "probe_failures": len(pr.failures)}
        if report:
            with open(report, "a") as f:
                f.write(json.dumps(line) + "\n")
        results[w] = (line, pr, out, pids[w], s)
    return results


def check(results):
    for w, (line, pr, out, pid, s) in results.items():
        detail = "%s: %s\nprobe failures: %s\nslowhttptest said:\n%s\n%s" % (
            w, line, pr.failures[:10], out[-1500:], s.describe()[-2000:])
        # the attack really held connections open
        assert line["peak_connected"] >= CONNECTIONS // 2, "attack did not connect " + detail
        assert len(pr.latencies) >= DURATION / (PROBE_LIMIT + PROBE_EVERY), detail
        assert not pr.failures, "probe not answered within %.1fs " % PROBE_LIMIT + detail
        assert int(s.request("GET", "/pid").body) == pid, "worker changed " + detail


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_slow_client_attack(servers, attack, tmp_path):
    check(attack_both(servers, attack, "/", tmp_path))


def test_slow_read_large_response(servers, tmp_path):
    # 256 KiB per response: far more than a reader with a 1-32 byte window drains, so the
    # writes would block an app thread if the server did not keep the backlog for the
    # loop. (1 MiB x 200 simultaneous requests is a CPU burst for one sync thread, which
    # measures generation speed, not slow-reader handling.)
    check(attack_both(servers, "slow_read", "/stream?n=262144&cl=1", tmp_path))
