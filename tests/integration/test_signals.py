"""Master and worker signal handling, worker supervision, heartbeat timeout."""
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGQUIT], ids=["TERM", "QUIT"])
def test_graceful_stop_finishes_inflight_request(make_server, sig):
    # gunicorn: TERM is graceful; QUIT is graceful too in cunicorn's brief
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


def test_int_quick_shutdown(make_server):
    s = make_server("testapp:app", ["--graceful-timeout", "30"])
    t, result, off = _start_slow(s, 20)
    s.wait_for_log(r"sleep-start", since=off, timeout=5)
    # Quick means: without waiting for the in-flight request (20 s) or the graceful
    # timeout (30 s). Both are far beyond the bound, which is scaled for this build.
    s.signal(signal.SIGINT)
    code = s.wait_exit(5)  # x TIME_SCALE: 5 s, 15 s for a sanitizer build
    assert code is not None, "SIGINT did not stop the server quickly\n" + s.describe()
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
