"""The integration test app: one WSGI callable, behaviour chosen by PATH_INFO."""
import hashlib
import json
import os
import sys
import time
from urllib.parse import parse_qs

CHUNK = 64 * 1024


def _qs(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _jsonable_environ(environ):
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, int) for x in v):
            out[k] = list(v)
        else:
            out[k] = "<%s>" % type(v).__name__
    return out


def _reply(start_response, body, status="200 OK", ctype="text/plain", extra=()):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))]
                   + list(extra))
    return [body]


class Recorded:
    """An iterable whose close() appends a line to a file."""

    def __init__(self, parts, path, tag, fail_at=None):
        self.parts = parts
        self.path = path
        self.tag = tag
        self.fail_at = fail_at

    def __iter__(self):
        for i, p in enumerate(self.parts):
            if self.fail_at is not None and i == self.fail_at:
                raise RuntimeError("iteration failed on purpose")
            yield p

    def close(self):
        with open(self.path, "a") as f:
            f.write("closed %s\n" % self.tag)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = _qs(environ)
    inp = environ["wsgi.input"]

    if path == "/":
        return _reply(start_response, "Hello, World!")

    if path == "/pid":
        return _reply(start_response, str(os.getpid()))

    if path == "/echo":
        body = inp.read()
        return _reply(start_response, body, ctype="application/octet-stream",
                      extra=[("X-MD5", hashlib.md5(body).hexdigest())])

    if path == "/md5":
        # streaming digest of the request body: bounded memory in the app
        h = hashlib.md5()
        n = 0
        while True:
            b = inp.read(CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
        return _reply(start_response, "%s %d" % (h.hexdigest(), n))

    if path == "/stream":
        total = int(q.get("n", "1048576"))
        with_cl = q.get("cl") == "1"
        piece = b"x" * CHUNK
        headers = [("Content-Type", "application/octet-stream")]
        if with_cl:
            headers.append(("Content-Length", str(total)))
        start_response("200 OK", headers)

        def gen():
            left = total
            while left > 0:
                n = min(left, CHUNK)
                yield piece[:n]
                left -= n
        return gen()

    if path == "/environ" or path.startswith("/environ/"):
        body = inp.read()
        env = _jsonable_environ(environ)
        env["_body"] = body.decode("latin-1")
        return _reply(start_response, json.dumps(env), ctype="application/json")

    if path == "/input":
        mode = q.get("mode", "read")
        if mode == "readn":
            n = int(q.get("n", "3"))
            parts = []
            while True:
                b = inp.read(n)
                if not b:
                    break
                parts.append(b.decode("latin-1"))
            out = parts
        elif mode == "readline":
            out = []
            while True:
                line = inp.readline()
                if not line:
                    break
                out.append(line.decode("latin-1"))
        elif mode == "readline_size":
            out = []
            while True:
                line = inp.readline(int(q.get("n", "4")))
                if not line:
                    break
                out.append(line.decode("latin-1"))
        elif mode == "readlines":
            out = [x.decode("latin-1") for x in inp.readlines()]
        elif mode == "iter":
            out = [x.decode("latin-1") for x in inp]
        else:
            out = [inp.read().decode("latin-1")]
        return _reply(start_response, json.dumps(out), ctype="application/json")

    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        write(b"by-write-")
        return [b"and-returned"]

    if path == "/close":
        rec = Recorded([b"a", b"b", b"c"], q["file"], q.get("tag", "ok"),
                       fail_at=int(q["fail_at"]) if "fail_at" in q else None)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return rec

    if path == "/file_wrapper":
        f = open(q["file"], "rb")
        headers = [("Content-Type", "application/octet-stream")]
        if q.get("cl") == "1":
            headers.append(("Content-Length", str(os.path.getsize(q["file"]))))
        start_response("200 OK", headers)
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(f, 8192)

    if path == "/exc_before":
        raise RuntimeError("boom before start_response")

    if path == "/exc_after":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first part"
            raise RuntimeError("boom after body started")
        return gen()

    if path == "/exc_info":
        # start_response called, then an error before any body: the app may call it again
        # with exc_info and replace the status (PEP 3333).
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("replaced")
        except ValueError:
            body = b"error page"
            start_response("503 Service Unavailable",
                           [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                           sys.exc_info())
        return [body]

    if path == "/exc_info_after":
        # exc_info after headers were sent: start_response must re-raise
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"sent")
        try:
            raise ValueError("too late")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"unreachable"]

    if path == "/sleep":
        print("sleep-start pid=%d s=%s" % (os.getpid(), q.get("s", "1")), file=sys.stderr,
              flush=True)
        time.sleep(float(q.get("s", "1")))
        return _reply(start_response, "slept %s" % q.get("s", "1"))

    if path == "/gate":
        # Streams "first", then waits (at most 30 s) for the client to create the file named
        # by ?f= before it sends "second": a client that sees "first" before it creates the
        # file proves the body was not held back, whatever the machine's speed.
        gate = q["f"]
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gated():
            yield b"first\n"
            deadline = time.monotonic() + 30
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
            yield b"second\n" if os.path.exists(gate) else b"gate never opened\n"
        return gated()

    if path == "/noread":
        return _reply(start_response, "did not read the body")

    if path == "/status":
        code = q.get("code", "200")
        body = b"" if code in ("204", "304") else b"status body"
        if body:
            return _reply(start_response, body, status="%s Whatever" % code)
        start_response("%s Whatever" % code, [])
        return []

    if path == "/print":
        print("printed by app", flush=True)
        return _reply(start_response, "ok")

    return _reply(start_response, "not found: %s" % path, status="404 Not Found")


def create_app(greeting="factory", times=1):
    """Factory: testapp:create_app() / testapp:create_app('hi', times=2)."""
    body = (str(greeting) * int(times)).encode()

    def factory_app(environ, start_response):
        return _reply(start_response, body)
    return factory_app


# `module` form: cunicorn testapp resolves `application`
def application(environ, start_response):
    return _reply(start_response, "from application")
