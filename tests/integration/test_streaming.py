"""A streaming response reaches the client while the app is still producing it."""
import os
import socket

import pytest

import server as srv

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples")


def _recv_until(sock, got, marker):
    while marker not in got:
        data = sock.recv(65536)
        assert data, "connection closed before %r: %r" % (marker, got)
        got += data
    return got


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_first_piece_arrives_before_app_finishes(make_server, worker_class, tmp_path):
    # The app sends "first", then waits until this client creates the gate file before it
    # sends "second" and ends. Receiving "first" before the gate is opened proves the body
    # was not held back; a server that held it would never send it (the app waits 30 s,
    # the client times out first): an order, not a time.
    gate = tmp_path / "gate"
    s = make_server("testapp:app", ["-k", worker_class])
    sock = socket.create_connection((s.host, s.port), timeout=srv.scaled(10))
    try:
        sock.sendall(b"GET /gate?f=%s HTTP/1.1\r\nHost: t\r\n\r\n" % str(gate).encode())
        got = _recv_until(sock, b"", b"first\n")
        assert b"second" not in got
        gate.write_text("open")
        got = _recv_until(sock, got, b"0\r\n\r\n")
        assert b"second\n" in got
        assert b"Transfer-Encoding: chunked" in got
    finally:
        sock.close()


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_streaming_example(make_server, worker_class):
    s = make_server("streaming:app", ["-k", worker_class], cwd=EXAMPLES, pythonpath=EXAMPLES)
    r = s.request("GET", "/?count=4&delay=0.05")
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == b"".join(b"line %d\n" % i for i in range(4))
