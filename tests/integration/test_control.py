"""Control socket: cunicornc and gunicorn's own client speak to the master."""
import json
import os
import subprocess

import server as srv

CTL = os.path.join(os.path.dirname(srv.BIN), "cunicornc")


def ctl(path, *words):
    p = subprocess.run([CTL, "-s", path] + list(words), capture_output=True, timeout=10)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cunicornc_commands(make_server, tmp_path):
    sock = str(tmp_path / "c.ctl")
    s = make_server(workers=2, args=["--control-socket", sock])
    assert srv.wait_until(lambda: os.path.exists(sock), 5)
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    rc, out, _ = ctl(sock, "show", "workers")
    assert rc == 0
    d = json.loads(out)
    assert d["count"] == 2 and sorted(w["pid"] for w in d["workers"]) == s.worker_pids()
    assert all("requests" in w and w["rss_kb"] > 0 for w in d["workers"])
    s.request("GET", "/")
    d = json.loads(ctl(sock, "show", "stats")[1])
    assert d["workers_target"] == 2 and d["pid"] == s.proc.pid
    d = json.loads(ctl(sock, "worker", "add", "2")[1])
    assert d == {"added": 2, "previous": 2, "total": 4}
    assert srv.wait_until(lambda: len(s.worker_pids()) == 4, 15)
    d = json.loads(ctl(sock, "worker", "remove")[1])
    assert d["total"] == 3
    assert srv.wait_until(lambda: len(s.worker_pids()) == 3, 15)
    victim = s.worker_pids()[0]
    d = json.loads(ctl(sock, "worker", "kill", str(victim))[1])
    assert d == {"success": True, "killed": victim}
    assert srv.wait_until(lambda: victim not in s.worker_pids()
                          and len(s.worker_pids()) == 3, 15)
    rc, _, err = ctl(sock, "bogus")
    assert rc == 1 and "Unknown command" in err
    d = json.loads(ctl(sock, "show", "listeners")[1])
    assert d["listeners"][0]["address"] == "http://127.0.0.1:%d" % s.port
    d = json.loads(ctl(sock, "reload")[1])
    assert d == {"status": "reloading"}
    assert srv.wait_until(lambda: "Hang up: Master" in s.log(), 10)
    d = json.loads(ctl(sock, "shutdown")[1])
    assert d["mode"] == "graceful"
    s.proc.wait(20)
    assert s.proc.returncode == 0
    assert not os.path.exists(sock)


def test_gunicorn_client_works(make_server, tmp_path):
    from gunicorn.ctl.client import ControlClient
    sock = str(tmp_path / "g.ctl")
    s = make_server(workers=1, args=["--control-socket", sock])
    assert srv.wait_until(lambda: os.path.exists(sock), 5)
    with ControlClient(sock) as c:
        d = c.send_command("show all")
        assert d["arbiter"]["pid"] == s.proc.pid
        assert d["web_worker_count"] == 1
        d = c.send_command("show config")
        assert d["workers"] == 1
    assert s.stop() == 0


def test_no_control_socket(make_server, tmp_path):
    sock = str(tmp_path / "n.ctl")
    s = make_server(workers=1, args=["--control-socket", sock, "--no-control-socket"])
    assert not os.path.exists(sock)
    assert s.stop() == 0


def test_second_instance_does_not_steal_a_live_control_socket(make_server, tmp_path):
    # issue 10 item 6: gunicorn unlinks whatever is at the path; here a second server on the
    # same path connects first, finds the first one answering, leaves its socket alone and
    # says what to do
    sock = str(tmp_path / "shared.ctl")
    first = make_server(workers=1, args=["--control-socket", sock])
    assert srv.wait_until(lambda: os.path.exists(sock), 5)
    inode = os.stat(sock).st_ino
    second = make_server(workers=1, args=["--control-socket", sock])
    second.wait_for_log(r"Control socket .*shared\.ctl is in use by another running server; "
                        r"not replacing it\. .*--control-socket PATH", timeout=10)
    assert second.request("GET", "/").status == 200  # it serves all the same
    assert os.stat(sock).st_ino == inode
    d = json.loads(ctl(sock, "show", "stats")[1])
    assert d["pid"] == first.proc.pid
    # stopping the second one does not remove the first one's socket either
    assert second.stop() == 0
    assert os.path.exists(sock) and os.stat(sock).st_ino == inode
    assert json.loads(ctl(sock, "show", "stats")[1])["pid"] == first.proc.pid

    # a stale socket file (its server killed without cleanup) is replaced
    first.proc.kill()
    first.proc.wait(10)
    for pid in first.worker_pids():
        srv.wait_until(lambda: not srv.pid_alive(pid), 10)
    assert os.path.exists(sock)
    third = make_server(workers=1, args=["--control-socket", sock])
    # (the new file may get the freed inode number back: ask who answers instead)
    third.wait_for_log(r"Control socket listening at .*shared\.ctl", timeout=10)
    assert srv.wait_until(lambda: ctl(sock, "show", "stats")[0] == 0, 10)
    assert json.loads(ctl(sock, "show", "stats")[1])["pid"] == third.proc.pid
    assert "in use by another" not in third.log()
