"""A streaming response reaches the client while the app is still producing it."""
import os
import socket
import time

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples")


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_first_piece_arrives_before_app_finishes(make_server, worker_class):
    s = make_server("streaming:app", ["-k", worker_class], cwd=EXAMPLES, pythonpath=EXAMPLES)
    sock = socket.create_connection((s.host, s.port), timeout=5)
    try:
        # 4 pieces, 0.6 s apart: the whole response takes >= 1.8 s.
        sock.sendall(b"GET /?count=4&delay=0.6 HTTP/1.1\r\nHost: t\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        while b"line 0\n" not in got:
            data = sock.recv(65536)
            assert data, "connection closed before the first piece: %r" % got
            got += data
        first = time.monotonic() - t0
        assert first < 1.0, "first piece took %.2fs: the body was held back" % first
        while not got.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, "connection closed early: %r" % got
            got += data
        assert time.monotonic() - t0 >= 1.5
        for i in range(4):
            assert b"line %d\n" % i in got
        assert b"Transfer-Encoding: chunked" in got
    finally:
        sock.close()
