"""Logging and metrics beyond the log files: syslog and statsd received by local UDP
listeners, logconfig_dict / logconfig routing access lines through Python logging,
capture_output, and --spew."""
import os
import re
import socket
import time

import pytest

import server as srv


class UDPListener:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []

    def collect(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.got.append(self.sock.recv(65536))
            except socket.timeout:
                pass
            if pred(self.got):
                return self.got
        raise AssertionError("never received what was expected; got %r" % self.got[-20:])

    def close(self):
        self.sock.close()


@pytest.fixture
def udp():
    made = []

    def make():
        u = UDPListener()
        made.append(u)
        return u
    yield make
    for u in made:
        u.close()


def test_statsd_metrics(make_server, udp):
    u = udp()
    s = make_server(args=["--statsd-host", "127.0.0.1:%d" % u.port, "--statsd-prefix", "myapp",
                          "--dogstatsd-tags", "env:test,team:web"])
    assert s.request("GET", "/").status == 200
    assert s.request("GET", "/status?code=404").status == 404
    tags = b"|#env:test,team:web"

    def done(got):
        return (b"myapp.gunicorn.request.status.404:1|c|@1.0" + tags) in got
    got = u.collect(done)
    assert (b"myapp.gunicorn.requests:1|c|@1.0" + tags) in got
    assert (b"myapp.gunicorn.request.status.200:1|c|@1.0" + tags) in got
    durations = [g for g in got if g.startswith(b"myapp.gunicorn.request.duration:")]
    assert durations and all(re.match(rb"^myapp\.gunicorn\.request\.duration:\d+\.\d+\|ms\|#",
                                      d) for d in durations), durations


def test_statsd_counts_error_log_lines(make_server, udp):
    u = udp()
    s = make_server(args=["--statsd-host", "127.0.0.1:%d" % u.port])
    # an app exception is logged at ERROR with its traceback
    assert s.request("GET", "/exc_before").status == 500
    u.collect(lambda got: any(g.startswith(b"gunicorn.log.exception:1|c") or
                              g.startswith(b"gunicorn.log.error:1|c") for g in got))


def test_syslog_udp_error_and_access_lines(make_server, udp):
    u = udp()
    s = make_server(args=["--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % u.port,
                          "--log-syslog-prefix", "myprefix", "--access-logfile", "-"])
    assert s.request("GET", "/").status == 200
    got = u.collect(lambda got: any(b"gunicorn.myprefix.access:" in g for g in got))
    text = [g.decode("utf-8", "replace") for g in got]
    # facility user (1), info (6): <14>; a NUL ends each message as SysLogHandler sends it
    acc = [t for t in text if "gunicorn.myprefix.access:" in t]
    assert re.match(r'^<14>gunicorn\.myprefix\.access: \[\d+\] 127\.0\.0\.1 - - \[.*\] "GET / '
                    r'HTTP/1\.1" 200 ', acc[0]), acc
    assert acc[0].endswith("\x00")
    assert any(re.match(r"^<14>gunicorn\.myprefix\.error: \[\d+\] Booting worker with pid", t)
               for t in text), text
    # the files still get their lines too
    assert "Booting worker" in s.log()
    assert srv.wait_until(lambda: '"GET / HTTP/1.1" 200' in s.stdout(), 5)


def test_syslog_facility_and_no_access_redirect(make_server, udp):
    u = udp()
    s = make_server(args=["--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % u.port,
                          "--log-syslog-facility", "local0",
                          "--disable-redirect-access-to-syslog"])
    assert s.request("GET", "/").status == 200
    got = u.collect(lambda got: any(b"Booting worker" in g for g in got))
    time.sleep(0.3)
    try:
        got.append(u.sock.recv(65536))
    except socket.timeout:
        pass
    # local0 (16) * 8 + info (6); the proc name (APP_MODULE) with ':' as '.'
    assert any(g.startswith(b"<134>gunicorn.testapp.app.error: [") for g in got), got
    assert not any(b".access:" in g for g in got)


def test_logconfig_dict_routes_access_lines_to_file(make_server, tmp_path):
    acc = tmp_path / "access.log"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "logconfig_dict = {\n"
        "    'root': {'level': 'WARNING', 'handlers': []},\n"
        "    'formatters': {'plain': {'format': 'ACCESS|%%(name)s|%%(message)s'}},\n"
        "    'handlers': {'f': {'class': 'logging.FileHandler', 'filename': %r,\n"
        "                       'formatter': 'plain'}},\n"
        "    'loggers': {'gunicorn.access': {'handlers': ['f'], 'level': 'INFO',\n"
        "                                    'propagate': False}},\n"
        "}\n" % str(acc))
    s = make_server(args=["-c", str(conf)])
    assert s.request("GET", "/echo").status == 200
    assert srv.wait_until(lambda: acc.exists() and "GET /echo" in acc.read_text(), 5)
    line = acc.read_text().splitlines()[0]
    assert re.match(r'^ACCESS\|gunicorn\.access\|127\.0\.0\.1 - - \[.*\] "GET /echo HTTP/1\.1" '
                    r'200 ', line), line
    # the error log keeps gunicorn's format through Python logging
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] "
                     r"Booting worker", s.log(), re.M)


def test_logconfig_file(make_server, tmp_path):
    err = tmp_path / "err.log"
    ini = tmp_path / "log.ini"
    ini.write_text(
        "[loggers]\nkeys=root,error\n\n"
        "[handlers]\nkeys=f\n\n"
        "[formatters]\nkeys=x\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_error]\nlevel=INFO\nhandlers=f\npropagate=0\nqualname=gunicorn.error\n\n"
        "[handler_f]\nclass=FileHandler\nformatter=x\nargs=(%r,)\n\n"
        "[formatter_x]\nformat=ERR %%(levelname)s %%(message)s\n" % str(err))
    # the error log goes to the file only, so readiness is read there
    s = make_server(args=["--log-config", str(ini)], ready=False)
    assert srv.wait_until(lambda: err.exists() and "ERR INFO Booting worker" in err.read_text(),
                          10)
    assert srv.wait_until(s._can_connect, 5)
    assert s.request("GET", "/").status == 200
    assert "Booting worker" not in s.log()


def test_bad_logconfig_dict_refuses_to_start(make_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("logconfig_dict = {'handlers': {'h': {'class': 'no.such.Handler'}}}\n")
    s = make_server(args=["-c", str(conf)], ready=False)
    assert s.wait_exit(10) != 0
    assert "logging" in s.log()


def test_capture_output_into_error_log(make_server, tmp_path):
    errlog = tmp_path / "error.log"
    s = make_server(args=["--capture-output", "--error-logfile", str(errlog)], ready=False)
    assert srv.wait_until(lambda: errlog.exists() and "Booting worker" in errlog.read_text(), 10)
    srv.wait_until(s._can_connect, 5)
    assert s.request("GET", "/print").status == 200
    assert srv.wait_until(lambda: "printed by app" in errlog.read_text(), 5)
    assert "printed by app" not in s.stdout()


def test_spew_traces_app_lines(make_server):
    s = make_server(args=["--spew"])
    assert s.request("GET", "/").status == 200
    s.wait_for_log(r"^testapp:\d+: +path = environ\[\"PATH_INFO\"\]", source="stdout")


def test_capture_output_follows_reopened_error_log(make_server, tmp_path):
    """After the error log is rotated and USR1 sent, the app's print() lands in the new file."""
    import signal
    errlog = tmp_path / "error.log"
    s = make_server(args=["--capture-output", "--error-logfile", str(errlog)], ready=False)
    assert srv.wait_until(lambda: errlog.exists() and "Booting worker" in errlog.read_text(), 10)
    srv.wait_until(s._can_connect, 5)
    os.rename(errlog, tmp_path / "error.log.1")
    s.signal(signal.SIGUSR1)
    assert srv.wait_until(lambda: errlog.exists(), 5)
    # The worker reopens on the forwarded USR1: give it a moment by polling the request.
    assert srv.wait_until(lambda: s.request("GET", "/print").status == 200 and
                          "printed by app" in errlog.read_text(), 10)
