"""The examples of docs/deployment.md, read from the page and run with the real peers:
systemd's unit checker and socket activation, nginx, HAProxy, and the Kubernetes container
command line. Only ports, paths and the app name are substituted."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading

import pytest

import server as srv

DOC = os.path.join(srv.REPO, "docs", "deployment.md")
NGINX = shutil.which("nginx")
HAPROXY = shutil.which("haproxy")
ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate")


def block(name):
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"<!-- test: %s -->\n```[a-z]*\n(.*?)```" % re.escape(name), text, re.S)
    assert m, "no block %r in docs/deployment.md" % name
    return m.group(1)


def unix_get(path, target="/", timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
        return srv.HTTPReader(s, timeout).read_response()
    finally:
        s.close()


def tcp_get(port, target="/", source=None, headers="", timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: example.com\r\n%sConnection: close\r\n\r\n"
                   % (target, headers)).encode())
        return srv.HTTPReader(s, timeout).read_response()
    finally:
        s.close()


def server_env():
    return srv.Server(None, ready=False).env  # the harness's environment (sanitizer options)


# ---------------------------------------------------------------- systemd

def systemd_units(tmp_path):
    service = block("systemd-service")
    socket_unit = block("systemd-socket")
    sock = str(tmp_path / "myapp.sock")
    service = (service.replace("/srv/myapp/.venv/bin/cunicorn", srv.BIN)
               .replace("WorkingDirectory=/srv/myapp", "WorkingDirectory=%s" % srv.APPS)
               .replace("myapp.wsgi", "--pythonpath %s --no-control-socket testapp:app"
                        % srv.APPS))
    socket_unit = socket_unit.replace("/run/myapp.sock", sock)
    (tmp_path / "myapp.service").write_text(service)
    (tmp_path / "myapp.socket").write_text(socket_unit)
    return service, sock


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path):
    systemd_units(tmp_path)
    out = subprocess.run([ANALYZE, "verify", "--man=no", str(tmp_path / "myapp.socket"),
                          str(tmp_path / "myapp.service")], capture_output=True, text=True,
                         timeout=60, cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "myapp" not in out.stderr, out.stderr  # no warning about our units


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")
def test_systemd_socket_activation_serves_on_the_given_socket(tmp_path):
    service, sock = systemd_units(tmp_path)
    exec_start = re.search(r"^ExecStart=(.*)$", service, re.M).group(1).split()
    assert exec_start[0] == srv.BIN
    err = open(tmp_path / "err.log", "wb")
    env = server_env()
    # systemd-socket-activate gives the service a clean environment, as systemd does; pass
    # on the sanitizer options of an ASan run
    keep = ["-E%s=%s" % (k, v) for k, v in env.items() if k.endswith("SAN_OPTIONS")]
    p = subprocess.Popen([ACTIVATE, "-l", sock] + keep + exec_start, cwd=srv.APPS, env=env,
                         stdout=subprocess.DEVNULL, stderr=err)
    try:
        log = lambda: (tmp_path / "err.log").read_text()  # noqa: E731
        assert srv.wait_until(lambda: "Listening on" in log(), 10), log()
        # As systemd does, the first connection starts the service; it waits in the
        # socket's backlog meanwhile and is served by the server that inherited the socket.
        r = unix_get(sock, timeout=srv.READY_TIMEOUT + 10)
        assert (r.status, r.body) == (200, b"Hello, World!")
        # systemd-socket-activate execs the server: the pid is the master's
        assert "Listening at: unix:%s (%d)" % (sock, p.pid) in log(), log()
        assert srv.wait_until(lambda: log().count("Booting worker") >= 4, srv.READY_TIMEOUT)
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()


# ---------------------------------------------------------------- nginx

@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_nginx_in_front(make_server, tmp_path):
    sock = str(tmp_path / "myapp.sock")
    make_server("environ_echo:app", binds=["unix:" + sock], pythonpath=srv.EXAMPLES,
                args=["--no-control-socket"])
    static = tmp_path / "static"
    static.mkdir()
    (static / "hello.txt").write_text("static from nginx\n")
    port = srv.free_port()
    site = (block("nginx-http").replace("unix:/run/myapp.sock", "unix:" + sock)
            .replace("listen 80;", "listen 127.0.0.1:%d;" % port)
            .replace("/srv/myapp/static/", str(static) + "/"))
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(
        # as root, nginx's worker would run as nobody: unable to enter pytest's 0700 dirs
        ("user root;\n" if os.geteuid() == 0 else "") +
        "daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
        "events { worker_connections 64; }\n"
        "http {\n  access_log off;\n  client_body_temp_path %s/body;\n"
        "  proxy_temp_path %s/proxy;\n  fastcgi_temp_path %s/fcgi;\n"
        "  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n%s\n}\n"
        % ((tmp,) * 7 + (site,)))
    p = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert srv.wait_until(lambda: _port_open(port), 10), (tmp / "error.log").read_text()
        r = tcp_get(port, "/static/hello.txt")
        assert (r.status, r.body) == (200, b"static from nginx\n")
        for _ in range(3):  # over nginx's kept-alive upstream connections
            r = tcp_get(port, "/app/path?x=1")
            assert r.status == 200, r
            env = json.loads(r.body)
            assert env["PATH_INFO"] == "/app/path" and env["QUERY_STRING"] == "x=1"
            assert env["HTTP_HOST"] == "example.com"
            assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
            assert env["HTTP_X_FORWARDED_PROTO"] == "http"
            assert env["wsgi.url_scheme"] == "http"
    finally:
        p.terminate()
        p.wait(10)


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- HAProxy

@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_haproxy_with_proxy_protocol(make_server, tmp_path):
    cmd = re.search(r"^cunicorn (.*) myapp\.wsgi$", block("haproxy-run"), re.M).group(1).split()
    assert cmd[:2] == ["-b", "0.0.0.0:8000"]
    args = [a.replace("10.0.0.2", "127.0.0.1") for a in cmd[2:]] + ["--no-control-socket"]
    backends = [make_server("environ_echo:app", pythonpath=srv.EXAMPLES, args=args)
                for _ in range(3)]
    port = srv.free_port()
    conf = block("haproxy").replace("bind :80", "bind 127.0.0.1:%d" % port)
    for i, b in enumerate(backends):
        conf = conf.replace("10.0.0.1%d:8000" % (i + 1), "127.0.0.1:%d" % b.port)
    conf = conf.replace("check inter 2s", "check inter 200ms")
    assert "10.0.0." not in conf
    (tmp_path / "haproxy.cfg").write_text(conf)
    p = subprocess.Popen([HAPROXY, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = set()
        assert srv.wait_until(lambda: _port_open(port), 10)
        for _ in range(6):
            r = tcp_get(port, "/", source="127.0.0.2")
            assert r.status == 200, r
            env = json.loads(r.body)
            assert env["REMOTE_ADDR"] == "127.0.0.2"  # the client, from the PROXY header
            seen.add(env["SERVER_PORT"])
        # round robin over the three (health checks with check-send-proxy pass)
        assert len(seen) == 3, seen
    finally:
        p.terminate()
        p.wait(10)


# ---------------------------------------------------------------- Kubernetes

K8S_APP = '''
import time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open("slow-started", "w").close()
        time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok:" + environ["PATH_INFO"].encode()]
'''


def test_kubernetes_manifest_and_container_command(tmp_path):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(block("kubernetes"))
    pod = doc["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = c["args"]
    graceful = int(args[args.index("--graceful-timeout") + 1])
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + graceful
    assert c["readinessProbe"]["httpGet"]["port"] == c["ports"][0]["containerPort"]
    path = c["readinessProbe"]["httpGet"]["path"]
    env = {e["name"]: e["value"] for e in c["env"]}

    (tmp_path / "myapp.py").write_text(K8S_APP)
    port = srv.free_port()
    run_args = [a.replace("0.0.0.0:8000", "127.0.0.1:%d" % port).replace("myapp.wsgi",
                                                                           "myapp:app")
                for a in args]
    penv = server_env()
    penv.update(env)
    err = open(tmp_path / "err.log", "wb")
    p = subprocess.Popen([srv.BIN] + run_args + ["--no-control-socket"], cwd=str(tmp_path),
                         env=penv, stdout=subprocess.DEVNULL, stderr=err)
    try:
        log = lambda: (tmp_path / "err.log").read_text()  # noqa: E731
        n = int(env["WEB_CONCURRENCY"])
        assert srv.wait_until(lambda: log().count("Booting worker") >= n, srv.READY_TIMEOUT)
        assert srv.wait_until(lambda: _port_open(port), 10)
        r = tcp_get(port, path)
        assert (r.status, r.body) == (200, b"ok:" + path.encode())
        assert log().count("Booting worker") == n
        # TERM (what the kubelet sends after preStop) with a request in flight: it completes
        result = {}
        t = threading.Thread(target=lambda: result.update(r=tcp_get(port, "/slow")))
        t.start()
        assert srv.wait_until(lambda: (tmp_path / "slow-started").exists(), 10)
        p.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status == 200 and result["r"].body == b"ok:/slow"
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
