"""systemd: socket activation (LISTEN_FDS/LISTEN_PID) and sd_notify over NOTIFY_SOCKET."""
import os
import signal
import socket
import subprocess
import sys

import server as srv


def test_socket_activation_and_notify(tmp_path):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    nsock_path = str(tmp_path / "notify")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    nsock.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=nsock_path, LISTEN_FDS="1")
    env.pop("GUNICORN_CMD_ARGS", None)
    # LISTEN_PID must name the exec'd process, and the socket must be fd 3.
    wrapper = ("import os, sys; os.dup2(%d, 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
               "os.execv(sys.argv[1], sys.argv[1:])" % lsock.fileno())
    cmd = [sys.executable, "-c", wrapper, srv.BIN, "--pythonpath", srv.APPS,
           "--no-control-socket", "testapp:app"]
    err = open(str(tmp_path / "err.log"), "wb")
    p = subprocess.Popen(cmd, env=env, cwd=srv.APPS, pass_fds=(lsock.fileno(),),
                         stdout=err, stderr=err)
    try:
        msg = nsock.recv(4096).decode()
        assert "READY=1" in msg
        lsock.close()
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data, _ = srv.read_all_until_close(c)
        assert data.endswith(b"Hello, World!"), data
        p.send_signal(signal.SIGHUP)
        assert "RELOADING=1" in nsock.recv(4096).decode()
        assert "READY=1" in nsock.recv(4096).decode()
        p.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in nsock.recv(4096).decode()
        assert p.wait(20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


SO_GET_FILTER = 26


def test_a_socket_we_were_handed_is_left_unsealed_after_stop(tmp_path):
    """A graceful stop seals the listeners the server owns (net/seal.c: new SYNs dropped,
    so nobody is reset by the final close). A socket handed over by systemd or with
    --bind fd://N lives on with its owner after we stop: it must come back unsealed."""
    for how in ("systemd", "bind"):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        port = lsock.getsockname()[1]
        env = dict(os.environ)
        env.pop("GUNICORN_CMD_ARGS", None)
        if how == "systemd":
            env["LISTEN_FDS"] = "1"
            wrapper = ("import os, sys; os.dup2(%d, 3); os.environ['LISTEN_PID'] = "
                       "str(os.getpid()); os.execv(sys.argv[1], sys.argv[1:])" % lsock.fileno())
            cmd = [sys.executable, "-c", wrapper, srv.BIN]
        else:
            cmd = [srv.BIN, "-b", "fd://%d" % lsock.fileno()]
        cmd += ["-w", "2", "--pythonpath", srv.APPS, "--no-control-socket", "testapp:app"]
        err = open(str(tmp_path / ("err-%s.log" % how)), "wb")
        p = subprocess.Popen(cmd, env=env, cwd=srv.APPS, pass_fds=(lsock.fileno(),),
                             stdout=err, stderr=err)
        try:
            def answers():
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=srv.scaled(5))
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    return srv.read_all_until_close(c)[0].endswith(b"Hello, World!")
                except OSError:
                    return False
            assert srv.wait_until(answers, srv.scaled(20)), open(err.name).read()
            p.send_signal(signal.SIGTERM)
            assert p.wait(srv.scaled(20)) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        # no filter left on it, and a new client is queued on it as before
        assert lsock.getsockopt(socket.SOL_SOCKET, SO_GET_FILTER, 256) == b"", how
        c = socket.create_connection(("127.0.0.1", port), timeout=srv.scaled(5))
        lsock.settimeout(srv.scaled(5))
        a, _ = lsock.accept()
        a.close()
        c.close()
        lsock.close()
