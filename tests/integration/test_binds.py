"""Listening on unix sockets, IPv6 loopback, several addresses at once."""
import os
import socket

import pytest

import server as srv
from server import HTTPReader, build_request


def _get_over(sock):
    sock.sendall(build_request("GET", "/"))
    return HTTPReader(sock).read_response()


def test_unix_socket(make_server, tmp_path):
    path = str(tmp_path / "cunicorn.sock")
    s = make_server("testapp:app", binds=["unix:" + path])
    c = s.connect()
    try:
        r = _get_over(c)
    finally:
        c.close()
    assert r.status == 200 and r.body == b"Hello, World!"
    import stat
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert s.stop() == 0
    assert not os.path.exists(path), "unix socket not removed on exit"


@pytest.mark.skipif(not srv.ipv6_loopback_works(), reason="no IPv6 loopback")
def test_ipv6_loopback(make_server):
    port = srv.free_port(socket.AF_INET6, "::1")
    s = make_server("testapp:app", binds=["[::1]:%d" % port])
    c = socket.create_connection(("::1", port), timeout=5)
    try:
        r = _get_over(c)
    finally:
        c.close()
    assert r.status == 200 and r.body == b"Hello, World!"
    import json
    env = json.loads(s.request("GET", "/environ").body)
    assert env["REMOTE_ADDR"] == "::1"
    assert env["SERVER_NAME"] in ("::1", "[::1]")


def test_several_binds(make_server, tmp_path):
    p1 = srv.free_port()
    p2 = srv.free_port()
    path = str(tmp_path / "multi.sock")
    s = make_server("testapp:app", binds=["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2,
                                          "unix:" + path])
    for port in (p1, p2):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            assert _get_over(c).body == b"Hello, World!"
        finally:
            c.close()
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(5)
    try:
        u.connect(path)
        assert _get_over(u).body == b"Hello, World!"
    finally:
        u.close()
    log = s.log()
    assert "http://127.0.0.1:%d" % p1 in log and "http://127.0.0.1:%d" % p2 in log
    assert "unix:%s" % path in log


def test_unix_socket_environ(make_server, tmp_path):
    import json
    path = str(tmp_path / "env.sock")
    s = make_server("testapp:app", binds=["unix:" + path])
    c = s.connect()
    try:
        c.sendall(build_request("GET", "/environ", host="myhost:1234"))
        r = HTTPReader(c).read_response()
    finally:
        c.close()
    env = json.loads(r.body)
    assert env["SERVER_NAME"] == "myhost"
    assert env["SERVER_PORT"] == "1234"
