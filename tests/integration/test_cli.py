"""Command-line behaviour outside of serving."""
import os
import re
import subprocess

import server as srv


def _run(args, timeout=10):
    return subprocess.run([srv.BIN] + args, capture_output=True, timeout=timeout,
                          cwd=srv.APPS)


def test_unknown_option_exit_2():
    p = _run(["--definitely-not-an-option", "testapp:app"])
    assert p.returncode == 2, p
    assert b"--definitely-not-an-option" in p.stderr, p.stderr


def test_version():
    p = _run(["-v"])
    assert p.returncode == 0, p
    out = (p.stdout + p.stderr).decode()
    assert re.search(r"\d+\.\d+", out), out


def test_help():
    p = _run(["-h"])
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert "usage" in out.lower()
    for opt in ("--bind", "--workers", "--timeout", "--access-logfile"):
        assert opt in out, opt


def test_bad_option_value_exit_2():
    p = _run(["--workers", "notanumber", "testapp:app"])
    assert p.returncode == 2, p
    assert b"workers" in p.stderr


def test_pidfile_written_and_removed(make_server, tmp_path):
    pidfile = str(tmp_path / "cunicorn.pid")
    s = make_server("testapp:app", ["--pid", pidfile])
    assert srv.wait_until(lambda: os.path.exists(pidfile), 5)
    with open(pidfile) as f:
        assert int(f.read().strip()) == s.pid
    assert s.stop() == 0
    assert not os.path.exists(pidfile)


def test_gunicorn_cmd_args_env(make_server):
    s = make_server("testapp:app", env={"GUNICORN_CMD_ARGS": "--workers 2"}, workers=2,
                    start=False)
    # --workers on the command line wins over GUNICORN_CMD_ARGS: drop ours
    s.command = lambda: [srv.BIN, "-b", "127.0.0.1:%d" % s.port, "testapp:app"]
    s.env["GUNICORN_CMD_ARGS"] = "--workers 2"
    s.start()
    assert len(s.wait_workers(2)) == 2


def test_worker_tmp_dir_must_be_writable(tmp_path):
    """Heartbeats live in shared memory, but a bad worker_tmp_dir is still refused (gunicorn's
    workers would fail to start), never silently accepted."""
    bad = subprocess.run([srv.BIN, "--worker-tmp-dir", str(tmp_path / "missing"), "x:app"],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 1
    assert "worker_tmp_dir" in bad.stderr
