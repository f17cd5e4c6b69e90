"""App for gthread tests: thread identity, threading.local persistence, slow handlers."""
import json
import os
import threading
import time

local = threading.local()
_barriers = {}
_barriers_lock = threading.Lock()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/local":
        # Count requests seen by this thread's threading.local: it must survive requests.
        local.count = getattr(local, "count", 0) + 1
        body = json.dumps({"thread": threading.get_ident(), "count": local.count,
                           "pid": os.getpid()}).encode()
    elif path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        body = b"slept"
    elif path == "/barrier":
        # Returns only when n requests are inside the app at the same time (at most 20 s):
        # proves concurrency by a count, not by wall time.
        n = int(environ.get("QUERY_STRING") or "2")
        with _barriers_lock:
            b = _barriers.setdefault(n, threading.Barrier(n))
        try:
            b.wait(20)
            body = b"met"
        except threading.BrokenBarrierError:
            body = b"broken"
    elif path == "/body":
        body = environ["wsgi.input"].read()
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
