"""Proxies and scheme with real peers: HAProxy sending PROXY v1/v2 to --proxy-protocol, nginx
passing X-Forwarded-* (wsgi.url_scheme only from a peer in forwarded_allow_ips), and
secure_scheme_headers from a config file."""
import json
import shutil
import socket
import subprocess

import pytest

import server as srv

HAPROXY = shutil.which("haproxy")
NGINX = shutil.which("nginx")


def get_environ(host, port, headers=None, source=None, path="/environ"):
    s = socket.create_connection((host, port), timeout=5, source_address=source)
    try:
        s.sendall(srv.build_request("GET", path, headers=headers))
        resp, _ = srv.HTTPReader(s, 5).read_final_response()
    finally:
        s.close()
    return resp


@pytest.fixture
def haproxy(tmp_path, spawn):
    def start(backend_port, send):
        port = srv.free_port()
        cfg = tmp_path / ("haproxy-%s.cfg" % send)
        cfg.write_text(
            "defaults\n"
            "  mode tcp\n"
            "  timeout connect 2s\n"
            "  timeout client 10s\n"
            "  timeout server 10s\n"
            "frontend fe\n"
            "  bind 127.0.0.1:%d\n"
            "  default_backend be\n"
            "backend be\n"
            "  server s1 127.0.0.1:%d %s\n" % (port, backend_port, send))
        return spawn([HAPROXY, "-db", "-f", str(cfg)], port, "haproxy")

    return start


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("send,mode", [("send-proxy", "v1"), ("send-proxy-v2", "v2"),
                                       ("send-proxy-v2", "auto")])
def test_haproxy_proxy_protocol_gives_real_client(make_server, haproxy, send, mode):
    s = make_server(args=["--proxy-protocol", mode])
    port = haproxy(s.port, send)
    # the client comes from 127.0.0.2; haproxy reaches cunicorn from 127.0.0.1
    src = socket.socket()
    src.bind(("127.0.0.2", 0))
    client_port = src.getsockname()[1]
    src.close()
    r = get_environ("127.0.0.1", port, source=("127.0.0.2", client_port))
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["REMOTE_ADDR"] == "127.0.0.2"
    assert env["REMOTE_PORT"] == str(client_port)


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_haproxy_peer_not_in_proxy_allow_ips_is_refused(make_server, haproxy):
    s = make_server(args=["--proxy-protocol", "v2", "--proxy-allow-from", "10.9.9.9"])
    port = haproxy(s.port, "send-proxy-v2")
    try:
        r = get_environ("127.0.0.1", port, source=("127.0.0.2", 0))
    except (srv.ConnectionClosed, OSError):
        return  # closed without an answer: refused as well
    assert r.status == 403, r


@pytest.fixture
def nginx(tmp_path, spawn):
    def start(backend_port):
        port = srv.free_port()
        d = tmp_path / "nginx"
        d.mkdir(exist_ok=True)
        conf = d / "nginx.conf"
        temps = "".join("  %s_temp_path %s;\n" % (t, d / t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf.write_text(
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s;\n"
            "error_log %s;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "  access_log off;\n%s"
            "  server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    location / {\n"
            "      proxy_pass http://127.0.0.1:%d;\n"
            "      proxy_set_header Host $host;\n"
            "      proxy_set_header X-Forwarded-Proto https;\n"
            "      proxy_set_header X-Forwarded-For $remote_addr;\n"
            "    }\n"
            "  }\n"
            "}\n" % (d / "nginx.pid", d / "error.log", temps, port, backend_port))
        return spawn([NGINX, "-p", str(d), "-c", str(conf)], port, "nginx")

    return start


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("allow,scheme", [(None, "https"), ("127.0.0.1", "https"),
                                          ("10.0.0.0/8", "http"), ("*", "https")])
def test_nginx_forwarded_proto_needs_trusted_peer(make_server, nginx, allow, scheme):
    args = [] if allow is None else ["--forwarded-allow-ips", allow]
    s = make_server(args=args)
    port = nginx(s.port)
    r = get_environ("127.0.0.1", port, source=("127.0.0.2", 0))
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["wsgi.url_scheme"] == scheme
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.2"
    # gunicorn never takes REMOTE_ADDR from X-Forwarded-For: it is the proxy
    assert env["REMOTE_ADDR"] == "127.0.0.1"


def test_secure_scheme_headers_from_config_file(make_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("secure_scheme_headers = {'X-SCHEME': 'https', 'X-TLS': 'yes'}\n")
    s = make_server(args=["-c", str(conf)])

    def scheme(headers):
        r = s.request("GET", "/environ", headers=headers)
        assert r.status == 200, r
        return json.loads(r.body)["wsgi.url_scheme"]

    assert scheme([("X-Scheme", "https")]) == "https"
    assert scheme([("X-TLS", "yes")]) == "https"
    assert scheme([("X-Scheme", "HTTPS")]) == "http"  # values are case-sensitive
    # the defaults are replaced, not extended
    assert scheme([("X-Forwarded-Proto", "https")]) == "http"
    # contradicting headers are a bad request, as in gunicorn
    r = s.request("GET", "/environ", headers=[("X-Scheme", "https"), ("X-TLS", "no")])
    assert r.status == 400


def test_secure_scheme_headers_ignored_from_untrusted_peer(make_server, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("secure_scheme_headers = {'X-SCHEME': 'https'}\n"
                    "forwarded_allow_ips = '10.1.2.3'\n")
    s = make_server(args=["-c", str(conf)])
    r = s.request("GET", "/environ", headers=[("X-Scheme", "https")])
    assert json.loads(r.body)["wsgi.url_scheme"] == "http"


def test_print_config_shows_proxy_settings(tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("secure_scheme_headers = {'X-SCHEME': 'https'}\n")
    out = subprocess.run([srv.BIN, "-c", str(conf), "--forwarder-headers", "SCRIPT_NAME, REMOTE_USER",
                          "--print-config", "x:app"], capture_output=True, text=True,
                         cwd=str(tmp_path)).stdout
    assert "secure_scheme_headers              = {'X-SCHEME': 'https'}" in out
    assert "forwarder_headers                  = ['SCRIPT_NAME', 'REMOTE_USER']" in out


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarder_headers_only_from_trusted_peers(make_server, trusted):
    """SCRIPT_NAME sent as a header by a peer in forwarded_allow_ips sets the mount point
    (gunicorn's forwarder_headers); from anyone else the '_' header is dropped."""
    allow = "127.0.0.1" if trusted else "10.9.9.9"
    s = make_server("testapp:app", ["--forwarded-allow-ips", allow])
    sock = s.connect(timeout=5)
    try:
        sock.sendall(b"GET /prefix/environ HTTP/1.1\r\nHost: t\r\nSCRIPT_NAME: /prefix\r\n"
                     b"Connection: close\r\n\r\n")
        r = srv.HTTPReader(sock, timeout=5).read_response()
    finally:
        sock.close()
    if trusted:
        env = json.loads(r.body)
        assert env["SCRIPT_NAME"] == "/prefix" and env["PATH_INFO"] == "/environ"
    else:
        # No mount point: the path is routed as is, and /prefix/environ is not a route.
        assert r.status != 200 or json.loads(r.body).get("SCRIPT_NAME", "") == ""
