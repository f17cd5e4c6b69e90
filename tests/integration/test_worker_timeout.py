"""Worker timeout (WORKER TIMEOUT): the request stuck in the app gets a 500 like gunicorn,
the error log names it (method, path, how long it ran, the thread) and holds the Python
stack of every thread, and the worker is replaced."""
import re
import threading

import server as srv


def _slow(s, path):
    result = {}

    def run():
        sock = s.connect(timeout=60)
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        try:
            result["resp"] = srv.HTTPReader(sock, timeout=60).read_response()
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        sock.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def _check_report(s, old, timeout_s):
    log = s.log()
    m = re.search(r"Worker timeout: request GET /sleep from 127\.0\.0\.1 ran ([0-9.]+) s "
                  r"\(thread (0x[0-9a-f]+)\); answered 500", log)
    assert m, log
    # It ran at least the timeout (the master's check is a lower bound, not a wall limit).
    assert float(m.group(1)) >= timeout_s
    # The stack dump names the stuck thread and where it is stuck.
    dump = log[m.end():]
    assert "Python stacks of worker %d at timeout" % old in dump
    t = re.search(r"Thread %s[^\n]*\n((?:  File [^\n]*\n)+)" % m.group(2), dump)
    assert t, dump
    assert re.search(r'File "[^"]*testapp\.py", line \d+ in app', t.group(1)), t.group(1)


def test_timeout_answers_500_and_logs_request_and_stack(make_server):
    s = make_server("testapp:app", ["--timeout", "2", "--graceful-timeout", "1",
                                    "--no-control-socket"])
    (old,) = s.wait_workers(1)
    t, result = _slow(s, "/sleep?s=60")
    s.wait_for_log(r"WORKER TIMEOUT \(pid:%d\)" % old, timeout=30)
    t.join(30)
    assert "resp" in result, result
    assert result["resp"].status == 500
    assert b"Internal Server Error" in result["resp"].body
    assert srv.wait_until(lambda: "Python stacks of worker" in s.log(), 10)
    _check_report(s, old, 2)
    (new,) = s.wait_workers(1, exclude=[old], timeout=15)
    r = s.request("GET", "/pid")
    assert r.status == 200 and int(r.body) == new


def test_timeout_with_worker_abort_hook(make_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("def worker_abort(worker):\n"
                    "    worker.log.info('worker_abort hook ran in %d' % worker.pid)\n")
    s = make_server("testapp:app", ["--timeout", "2", "--graceful-timeout", "1",
                                    "--no-control-socket", "-c", str(conf)])
    (old,) = s.wait_workers(1)
    t, result = _slow(s, "/sleep?s=60")
    t.join(40)
    assert "resp" in result, result
    assert result["resp"].status == 500
    assert srv.wait_until(lambda: "worker_abort hook ran in %d" % old in s.log(), 10), s.log()
    _check_report(s, old, 2)
    s.wait_workers(1, exclude=[old], timeout=15)
