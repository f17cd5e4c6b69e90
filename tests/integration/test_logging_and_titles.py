"""Access log format (gunicorn's atoms), error log lines, process titles."""
import os
import re

import server as srv
from server import build_request


DEFAULT_RE = (r'^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
              r'"GET /environ\?x=1 HTTP/1\.1" 200 (\d+) "http://ref\.example/" '
              r'"test-agent/1\.0"$')


def test_access_log_default_format(make_server):
    s = make_server("testapp:app", ["--access-logfile", "-"])
    r = s.request(raw=build_request("GET", "/environ?x=1", [("User-Agent", "test-agent/1.0"),
                                                            ("Referer", "http://ref.example/")]))
    assert r.status == 200
    m = s.wait_for_log(DEFAULT_RE, source="stdout", timeout=5)
    assert int(m.group(1)) == len(r.body)


def test_access_log_default_format_missing_headers(make_server):
    s = make_server("testapp:app", ["--access-logfile", "-"])
    s.request(raw=b"GET /nope HTTP/1.0\r\n\r\n")
    s.wait_for_log(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /nope HTTP/1\.0" 404 \d+ "-" "-"$',
                   source="stdout", timeout=5)


def test_access_log_to_file_custom_format(make_server, tmp_path):
    log = tmp_path / "access.log"
    fmt = ('%(m)s|%(U)s|%(q)s|%(s)s|%(B)s|%(b)s|%(H)s|%({x-trace}i)s|%({content-type}o)s'
           '|%(T)s|%(D)s|%(L)s|%(p)s|%(h)s')
    s = make_server("testapp:app", ["--access-logfile", str(log), "--access-logformat", fmt])
    r = s.request(raw=build_request("POST", "/echo?a=b", [("X-Trace", "abc123")],
                                    body=b"hello"))
    assert r.status == 200
    assert srv.wait_until(lambda: log.exists() and log.read_text().strip(), 5)
    line = log.read_text().strip().splitlines()[-1]
    parts = line.split("|")
    assert parts[:9] == ["POST", "/echo", "a=b", "200", "5", "5", "HTTP/1.1", "abc123",
                         "application/octet-stream"], line
    assert re.fullmatch(r"\d+", parts[9]), line
    assert re.fullmatch(r"\d+", parts[10]), line
    assert re.fullmatch(r"\d+\.\d+", parts[11]), line
    (wpid,) = s.wait_workers(1)
    assert parts[12] == "<%d>" % wpid, line
    assert parts[13] == "127.0.0.1", line


def test_access_log_disabled_by_default(make_server):
    s = make_server("testapp:app")
    s.request("GET", "/quiet")
    s.request("GET", "/")  # a second request: the first one's line would be written by now
    assert "/quiet" not in s.stdout()
    assert "/quiet" not in s.log()


def test_error_log_format_and_boot_lines(make_server):
    s = make_server("testapp:app")
    log = s.log()
    line_re = r"^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[%d\] \[INFO\] %s"
    assert re.search(line_re % (s.pid, r"Starting \w+ \d"), log, re.M), log
    assert re.search(line_re % (s.pid, r"Listening at: http://127\.0\.0\.1:%d \(%d\)"
                                % (s.port, s.pid)), log, re.M), log
    (w,) = s.wait_workers(1)
    assert re.search(r"\[INFO\] Booting worker with pid: %d" % w, log), log


def test_error_logfile_option(make_server, tmp_path):
    path = tmp_path / "error.log"
    # Not waiting for readiness here: with --error-logfile the log is in the file.
    s = make_server("testapp:app", ["--error-logfile", str(path)], ready=False)
    assert srv.wait_until(lambda: path.exists() and "Booting worker" in path.read_text(), 10)
    assert s.request("GET", "/").status == 200


def test_process_titles(make_server):
    s = make_server("testapp:app", workers=2)
    assert srv.wait_until(lambda: (srv.cmdline(s.pid) or "").startswith("cunicorn: master"), 5)
    assert re.match(r"^cunicorn: master \[testapp:app\]", srv.cmdline(s.pid)), \
        srv.cmdline(s.pid)
    for w in s.wait_workers(2):
        assert srv.wait_until(lambda: (srv.cmdline(w) or "").startswith("cunicorn: worker"), 5)
        assert re.match(r"^cunicorn: worker \[testapp:app\]", srv.cmdline(w)), srv.cmdline(w)


def test_process_titles_custom_name(make_server):
    s = make_server("testapp:app", ["--name", "myservice"])
    assert srv.wait_until(
        lambda: re.match(r"^cunicorn: master \[myservice\]", srv.cmdline(s.pid) or ""), 5), \
        srv.cmdline(s.pid)
    (w,) = s.wait_workers(1)
    assert srv.wait_until(
        lambda: re.match(r"^cunicorn: worker \[myservice\]", srv.cmdline(w) or ""), 5), \
        srv.cmdline(w)
    assert os.getpid() != s.pid
