"""App for the gevent worker tests (tests/integration/test_gevent.py).

Module-level: whether the socket module was already patched when the app was imported
(gunicorn patches in the worker before it imports the app, unless --preload).
"""
import hashlib
import json
import os
import socket
import time
import urllib.request

import gevent
import gevent.monkey

PATCHED_AT_IMPORT = gevent.monkey.is_module_patched("socket")
inflight = 0


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    global inflight
    path = environ["PATH_INFO"]
    qs = environ.get("QUERY_STRING", "")
    if path == "/sleep":
        inflight += 1
        try:
            time.sleep(float(qs or "1"))  # patched: yields to the hub
        finally:
            inflight -= 1
        return _json(start_response, {"pid": os.getpid(), "slept": float(qs or "1")})
    if path == "/inflight":
        return _json(start_response, {"inflight": inflight})
    if path == "/outbound":  # urllib over the patched socket module
        with urllib.request.urlopen(qs, timeout=30) as r:
            data = r.read()
        return _json(start_response, {"pid": os.getpid(), "got": data.decode()})
    if path == "/requests":
        import requests
        data = requests.get(qs, timeout=30).text
        return _json(start_response, {"pid": os.getpid(), "got": data})
    if path == "/patched":
        return _json(start_response, {
            "at_import": PATCHED_AT_IMPORT,
            "now": gevent.monkey.is_module_patched("socket"),
            "socket_is_gevent": socket.socket is gevent.socket.socket,
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "pid": os.getpid()})
    if path == "/raise":
        raise RuntimeError("boom from a greenlet")
    if path in ("/block", "/yieldblock"):  # a call that never yields to the hub
        if path == "/yieldblock":
            time.sleep(0.2)  # yields first: another greenlet runs meanwhile
        gevent.monkey.get_original("time", "sleep")(float(qs or "30"))
        return _json(start_response, {"blocked": True})
    if path == "/echo":  # wsgi.input read in pieces: may wait for the client
        h = hashlib.sha256()
        n = 0
        inp = environ["wsgi.input"]
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return _json(start_response, {"len": n, "sha256": h.hexdigest()})
    if path == "/big":  # a response larger than the socket takes at once
        n = int(qs or "8388608")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n))])
        block = b"x" * 65536

        def gen():
            left = n
            while left > 0:
                k = min(left, len(block))
                yield block[:k]
                left -= k
        return gen()
    if path == "/file":
        f = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/environ":
        keys = ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_X_FORWARDED_FOR", "SERVER_PROTOCOL",
                "REQUEST_METHOD", "PATH_INFO")
        return _json(start_response, {k: environ.get(k) for k in keys})
    return _json(start_response, {"pid": os.getpid(), "hello": True})
