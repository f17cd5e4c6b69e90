"""WSGI app for bench/gevent_bench.py: hello, and /sleep (time.sleep(1), patched by gevent)."""
import time

HELLO = b"Hello, World!"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(1.0)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]
