"""gunicorn parity found by real applications (issue 11): what apps that recognise gunicorn
see, the parser's error details in the log, hook objects, settings gunicorn accepts. Where
gunicorn does the same thing, the test runs real gunicorn 27 (GunicornServer) on the same
input and compares."""
import json
import os
import re
import socket
import sys

import pytest

import server as srv
from server import GunicornServer, HTTPReader, Server

requests = pytest.importorskip("requests")



@pytest.fixture
def gunicorn_server():
    started = []

    def make(app, args=(), **kw):
        s = GunicornServer(app, args, **kw)
        started.append(s)
        s.start()
        return s

    yield make
    for s in started:
        s.close()


# ---------------------------------------------------------------- SERVER_SOFTWARE (item 2)

def test_httpbin_accepts_chunked_upload_as_under_gunicorn(make_server, gunicorn_server):
    """httpbin answers 501 to a chunked POST unless SERVER_SOFTWARE starts with gunicorn/."""
    pytest.importorskip("httpbin")
    body = b"x" * 5000 + b"end"

    def gen():
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    out = {}
    for name, s in (("gunicorn", gunicorn_server("httpbin:app")),
                    ("cunicorn", make_server("httpbin:app"))):
        r = requests.post(s.url + "/post", data=gen(), timeout=10,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        out[name] = r.json()["data"]
    assert out["cunicorn"] == out["gunicorn"] == body.decode()
