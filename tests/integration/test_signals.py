"""Master and worker signal handling, worker supervision, heartbeat timeout."""
import json
import os
import signal
import threading

import pytest

import server as srv
from server import HTTPReader, build_request


def _slow_request(server, seconds, result):
    try:
        s = server.connect(timeout=30)
        s.sendall(build_request("GET", "/sleep?s=%s" % seconds, [("Connection", "close")]))
        result["resp"] = HTTPReader(s, timeout=30).read_response()
        s.close()
    except Exception as e:  # noqa: BLE001 - reported by the test
        result["error"] = e


def _start_slow(server, seconds):
    result = {}
    t = threading.Thread(target=_slow_request, args=(server, seconds, result), daemon=True)
    off = server.log_offset()
    t.start()
    return t, result, off


def test_graceful_stop_finishes_inflight_request(make_server):
    # gunicorn: TERM is the graceful stop (QUIT and INT are quick)
    sig = signal.SIGTERM
    s = make_server("testapp:app", ["--graceful-timeout", "10"])
    t, result, off = _start_slow(s, 1.5)
    # make sure the request reached the app before signalling
    s.wait_for_log(r"sleep-start", since=off, timeout=5)
    s.signal(sig)
    t.join(15)
    assert "error" not in result, "in-flight request failed: %r\n%s" % (result.get("error"),
                                                                       s.describe())
    assert result["resp"].status == 200
    assert result["resp"].body == b"slept 1.5"
    code = s.wait_exit(15)
    assert code == 0, "exit code %r\n%s" % (code, s.describe())


def test_term_stops_accepting(make_server):
    s = make_server("testapp:app")
    port = s.port
    assert s.stop(signal.SIGTERM) == 0
    try:
        c = srv.socket.create_connection(("127.0.0.1", port), timeout=1)
        c.close()
        refused = False
    except OSError:
        refused = True
    assert refused


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_quick_shutdown(make_server, sig):
    # gunicorn 27: INT and QUIT both stop at once (workers get QUIT)
    s = make_server("testapp:app", ["--graceful-timeout", "30"])
    t, result, off = _start_slow(s, 20)
    s.wait_for_log(r"sleep-start", since=off, timeout=5)
    # Quick means: without waiting for the in-flight request (20 s) or the graceful
    # timeout (30 s). Both are far beyond the bound, which is scaled for this build.
    s.signal(sig)
    code = s.wait_exit(5)  # x TIME_SCALE: 5 s, 15 s for a sanitizer build
    assert code == 0, "the signal did not stop the server quickly\n" + s.describe()
    t.join(10)
    # the slow request was cut off
    assert "resp" not in result or result["resp"].body != b"slept 20"


def test_ttin_ttou(make_server):
    s = make_server("testapp:app", workers=2)
    first = s.wait_workers(2)
    s.signal(signal.SIGTTIN)
    three = s.wait_workers(3)
    assert set(first) < set(three)
    s.signal(signal.SIGTTOU)
    two = s.wait_workers(2)
    assert len(two) == 2
    s.signal(signal.SIGTTOU)
    one = s.wait_workers(1)
    assert len(one) == 1
    assert s.request("GET", "/").status == 200


def test_worker_kill9_respawned(make_server):
    s = make_server("testapp:app", workers=1)
    (old,) = s.wait_workers(1)
    os.kill(old, signal.SIGKILL)
    (new,) = s.wait_workers(1, exclude=[old])
    assert new != old
    srv.wait_until(lambda: s._can_connect(), 5)
    r = s.request("GET", "/pid")
    assert r.status == 200
    assert int(r.body) == new


def test_heartbeat_timeout_kills_stuck_worker(make_server):
    s = make_server("testapp:app", ["--timeout", "2", "--graceful-timeout", "1"])
    (old,) = s.wait_workers(1)
    t, result, off = _start_slow(s, 30)
    s.wait_for_log(r"WORKER TIMEOUT \(pid:%d\)" % old, timeout=15, since=off)
    (new,) = s.wait_workers(1, exclude=[old], timeout=15)
    r = s.request("GET", "/pid")
    assert r.status == 200 and int(r.body) == new
    t.join(10)
    assert "resp" not in result or result["resp"].body != b"slept 30"


def test_usr1_reopens_access_log(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = make_server("testapp:app", ["--access-logfile", str(log)])
    assert s.request("GET", "/before").status == 404
    assert srv.wait_until(lambda: log.exists() and "/before" in log.read_text(), 5)
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    off = s.log_offset()
    s.signal(signal.SIGUSR1)
    # the new file appears once the workers have reopened; poll with requests
    def reopened():
        s.request("GET", "/after")
        return log.exists() and "/after" in log.read_text()
    assert srv.wait_until(reopened, 10, interval=0.2), s.describe()
    assert "/before" in rotated.read_text()
    assert off >= 0


def test_hup_reloads_workers(make_server):
    s = make_server("testapp:app", workers=1)
    (old,) = s.wait_workers(1)
    s.signal(signal.SIGHUP)
    (new,) = s.wait_workers(1, exclude=[old], timeout=15)
    assert new != old
    assert srv.wait_until(lambda: s.request("GET", "/").status == 200, 5)


@pytest.mark.parametrize("back_to_back", [False, True], ids=["later", "back-to-back"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_quick_signal_during_graceful_stop(make_server, sig, back_to_back):
    # gunicorn's Arbiter.stop: INT or QUIT while waiting for a graceful stop sends QUIT to
    # the workers and leaves them 2 s, instead of the rest of graceful_timeout. Sent right
    # after TERM (both bytes read in one wakeup), it must not be lost either.
    s = make_server("testapp:app", ["--graceful-timeout", "60"])
    t, result, off = _start_slow(s, 30)
    s.wait_for_log(r"sleep-start", since=off, timeout=5)
    s.signal(signal.SIGTERM)
    if not back_to_back:
        s.wait_for_log(r"Handling signal: term", since=off, timeout=5)
        assert s.proc.poll() is None  # graceful: waiting for the 30 s request
    s.signal(sig)
    s.wait_for_log(r"Quick shutdown requested", since=off, timeout=10)
    code = s.wait_exit(15)
    assert code == 0, s.describe()
    t.join(10)
    assert "resp" not in result or result["resp"].body != b"slept 30"


# ---- every hook recorded on TERM, INT and QUIT, compared with gunicorn 27 in the same run

HOOK_RECORDER = r"""
import json, os

def rec(name, who):
    with open(os.environ["HOOK_RECORD"], "a") as f:
        f.write(json.dumps([name, os.getpid(), who]) + "\n")

def on_starting(server): rec("on_starting", "m")
def when_ready(server): rec("when_ready", "m")
def pre_fork(server, worker): rec("pre_fork", "m")
def post_fork(server, worker): rec("post_fork", "w")
def post_worker_init(worker): rec("post_worker_init", "w")
def worker_int(worker): rec("worker_int", "w")
def worker_abort(worker): rec("worker_abort", "w")
def worker_exit(server, worker): rec("worker_exit", "w")
def child_exit(server, worker): rec("child_exit", "m")
def nworkers_changed(server, new, old): rec("nworkers_changed", "m")
def on_exit(server): rec("on_exit", "m")
"""


class GunicornServer(srv.Server):
    """The same server setup, run by gunicorn 27 (the reference)."""

    def command(self):
        import sys
        cmd = super().command()
        return [sys.executable, "-m", "gunicorn"] + cmd[1:]


def _stop_with_hooks(tmp_path, cls, sig, inflight):
    conf = tmp_path / ("hooks_%s.py" % cls.__name__)
    conf.write_text(HOOK_RECORDER)
    rec = tmp_path / ("rec_%s.jsonl" % cls.__name__)
    s = cls("testapp:app", ["-c", str(conf), "--no-control-socket", "--graceful-timeout", "20"],
            env={"HOOK_RECORD": str(rec)}, workers=2)
    s.start()
    try:
        assert srv.wait_until(lambda: rec.exists() and
                              rec.read_text().count("post_worker_init") == 2, 10)
        t = None
        if inflight:
            t, result, off = _start_slow(s, 3)
            s.wait_for_log(r"sleep-start", since=off, timeout=5)
        s.signal(sig)
        code = s.wait_exit(30)
        if t:
            t.join(10)
    finally:
        s.close()
    recs = [json.loads(line) for line in rec.read_text().splitlines()]
    master = [name for name, pid, who in recs if who == "m"]
    workers = {}
    for name, pid, who in recs:
        if who == "w":
            workers.setdefault(pid, []).append(name)
    return code, master, sorted(workers.values())


@pytest.mark.parametrize("inflight", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT],
                         ids=["TERM", "INT", "QUIT"])
def test_stop_signals_run_the_hooks_gunicorn_runs(tmp_path, sig, inflight):
    g = _stop_with_hooks(tmp_path, GunicornServer, sig, inflight)
    c = _stop_with_hooks(tmp_path, srv.Server, sig, inflight)
    assert c == g, "gunicorn: %r\ncunicorn: %r" % (g, c)
    # what that means, spelled out: the quick stops call worker_int in every worker
    quick = sig != signal.SIGTERM
    for hooks in c[2]:
        assert ("worker_int" in hooks) == quick
        assert hooks[:2] == ["post_fork", "post_worker_init"] and hooks[-1] == "worker_exit"
    assert c[1][-3:] == ["child_exit", "child_exit", "on_exit"]
