"""Process options: --daemon with a pidfile, --max-worker-memory recycling, --reuse-port,
and exit codes."""
import os
import signal
import subprocess

import server as srv


def test_daemon_pidfile(tmp_path):
    pidfile = str(tmp_path / "d.pid")
    port = srv.free_port()
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    rc = subprocess.run([srv.BIN, "-D", "-b", "127.0.0.1:%d" % port, "--pid", pidfile,
                         "--pythonpath", srv.APPS, "--no-control-socket",
                         "--error-logfile", str(tmp_path / "err.log"), "testapp:app"],
                        env=env, cwd=srv.APPS, timeout=20).returncode
    assert rc == 0
    assert srv.wait_until(lambda: os.path.exists(pidfile), 15)
    pid = int(open(pidfile).read())
    try:
        assert srv.wait_until(lambda: srv.children_of(pid), 15)
        assert srv.proc_ppid(pid) != os.getpid()
    finally:
        os.kill(pid, signal.SIGTERM)
    assert srv.wait_until(lambda: not srv.pid_alive(pid), 15)
    assert not os.path.exists(pidfile)


def _daemon(tmp_path, extra, stdout, stderr):
    """Start `cunicorn -D` with the given stdout/stderr; returns the daemon's pid."""
    pidfile = str(tmp_path / "d.pid")
    port = srv.free_port()
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    env["PYTHONUNBUFFERED"] = "1"
    rc = subprocess.run([srv.BIN, "-D", "-b", "127.0.0.1:%d" % port, "--pid", pidfile,
                         "--pythonpath", srv.APPS, "--no-control-socket"] + extra +
                        ["testapp:app"], env=env, cwd=srv.APPS, timeout=20,
                        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr).returncode
    assert rc == 0
    assert srv.wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 15)
    pid = int(open(pidfile).read())
    assert srv.wait_until(lambda: srv.children_of(pid), 15)
    return pid, port


def _stop_daemon(pid):
    os.kill(pid, signal.SIGTERM)
    assert srv.wait_until(lambda: not srv.pid_alive(pid), 15)


def _fd_target(pid, fd):
    return os.readlink("/proc/%d/fd/%d" % (pid, fd))


def test_daemon_enable_stdio_inheritance_keeps_redirected_output(tmp_path):
    # gunicorn's util.daemonize: with -R, `cunicorn -D -R ... > out.log 2>&1` keeps logging
    # to out.log (stdin still goes to /dev/null); without -R everything goes to /dev/null.
    out = tmp_path / "out.log"
    with open(out, "wb") as f:
        pid, port = _daemon(tmp_path, ["-R"], f, subprocess.STDOUT)
    try:
        assert _fd_target(pid, 0) == "/dev/null"
        assert _fd_target(pid, 1) == str(out) and _fd_target(pid, 2) == str(out)
        assert srv.wait_until(lambda: "Booting worker" in out.read_text(), 10)
        c = srv.socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"GET /print HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        srv.read_all_until_close(c)
        c.close()
        # the app's print() reaches the inherited stdout
        assert srv.wait_until(lambda: "printed by app" in out.read_text(), 10)
    finally:
        _stop_daemon(pid)
    assert "Shutting down: Master" in out.read_text()

    plain = tmp_path / "plain.log"
    with open(plain, "wb") as f:
        pid, _ = _daemon(tmp_path, [], f, subprocess.STDOUT)
    try:
        assert [_fd_target(pid, i) for i in range(3)] == ["/dev/null"] * 3
    finally:
        _stop_daemon(pid)
    assert plain.read_text() == ""


def test_daemon_enable_stdio_inheritance_detaches_a_terminal(tmp_path):
    # a stdout/stderr that is a terminal goes to /dev/null even with -R: the daemon keeps
    # no tty open; a redirected one next to it is kept
    import pty
    master_fd, slave_fd = pty.openpty()
    err = tmp_path / "err.log"
    try:
        with open(err, "wb") as f:
            pid, _ = _daemon(tmp_path, ["-R"], slave_fd, f)
        try:
            assert _fd_target(pid, 1) == "/dev/null"
            assert _fd_target(pid, 2) == str(err)
            assert srv.wait_until(lambda: "Booting worker" in err.read_text(), 10)
        finally:
            _stop_daemon(pid)
    finally:
        os.close(master_fd)
        os.close(slave_fd)


def test_max_worker_memory_recycles(make_server):
    s = make_server(workers=1, args=["--max-worker-memory", "1", "--no-control-socket"])
    first = s.worker_pids()
    assert srv.wait_until(lambda: "over max_worker_memory" in s.log(), 10)
    # Every worker is over 1 MB, so they keep being replaced: a new one is always there.
    assert srv.wait_until(lambda: s.worker_pids() and s.worker_pids() != first, 10)
    assert s.stop() == 0


def test_reuse_port_each_worker_listens(make_server):
    s = make_server(workers=2, args=["--reuse-port", "--no-control-socket"])
    pids = set()
    for _ in range(40):
        pids.add(int(s.request("GET", "/pid", headers=[("Connection", "close")]).body))
    assert pids <= set(s.worker_pids())
    assert s.stop() == 0


def test_term_exit_code_zero(make_server):
    s = make_server(workers=1, args=["--no-control-socket"])
    assert s.stop(signal.SIGTERM) == 0
