"""Process options: --daemon with a pidfile, --max-worker-memory recycling, --reuse-port,
and exit codes."""
import os
import signal
import subprocess
import time

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
