"""WSGI-layer test app: one route per PEP 3333 behaviour the server must get right.

The route is PATH_INFO; options come from the query string. Used by test_wsgi_*.py.
"""
import hashlib
import io
import json
import sys
import tempfile
from urllib.parse import parse_qs


def _qs(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def environ_view(environ, start_response):
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, bool)):
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = "<%s>" % type(v).__name__
    out["has_file_wrapper_callable"] = callable(environ.get("wsgi.file_wrapper"))
    return _json(start_response, out)


def read(environ, start_response):
    """Read the body with the method in ?mode=; answer its length, md5 and piece count."""
    q = _qs(environ)
    mode = q.get("mode", "all")
    size = int(q.get("size", "8192"))
    inp = environ["wsgi.input"]
    h = hashlib.md5()
    n = pieces = 0
    if mode == "all":
        data = inp.read()
        h.update(data)
        n, pieces = len(data), 1
    elif mode == "none":
        data = inp.read(None)
        h.update(data)
        n, pieces = len(data), 1
    elif mode == "n":
        while True:
            data = inp.read(size)
            if not data:
                break
            assert len(data) <= size
            h.update(data)
            n += len(data)
            pieces += 1
    elif mode == "line":
        while True:
            data = inp.readline(size) if "size" in q else inp.readline()
            if not data:
                break
            h.update(data)
            n += len(data)
            pieces += 1
    elif mode == "lines":
        lines = inp.readlines()
        for data in lines:
            h.update(data)
            n += len(data)
        pieces = len(lines)
    elif mode == "iter":
        for data in inp:
            h.update(data)
            n += len(data)
            pieces += 1
    elif mode == "mixed":
        first = inp.readline()
        rest = inp.read(3)
        tail = inp.read()
        for data in (first, rest, tail):
            h.update(data)
            n += len(data)
        pieces = 3
    eof = inp.read(1)
    return _json(start_response, {"len": n, "md5": h.hexdigest(), "pieces": pieces,
                                  "eof": eof.decode("latin-1")})


def filewrapper(environ, start_response):
    q = _qs(environ)
    size = int(q.get("size", "100000"))
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    if q.get("kind") == "bytesio":
        f = io.BytesIO(data)
    else:
        f = tempfile.TemporaryFile()
        f.write(data)
        f.seek(int(q.get("offset", "0")))
    headers = [("Content-Type", "application/octet-stream")]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 4096)


def legacy_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"hello ")
    write(b"")
    write(b"world")
    return [b"!"]


def generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(int(_qs(environ).get("n", "5"))):
        yield b"chunk%d;" % i


class Closing:
    """An iterable whose close() leaves a mark on disk."""

    def __init__(self, path, items, fail_at=None):
        self.path = path
        self.items = items
        self.fail_at = fail_at

    def __iter__(self):
        for i, item in enumerate(self.items):
            if i == self.fail_at:
                raise RuntimeError("iteration failed on purpose")
            yield item

    def close(self):
        with open(self.path, "a") as f:
            f.write("closed\n")


def close_called(environ, start_response):
    q = _qs(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    fail_at = int(q["fail_at"]) if "fail_at" in q else None
    return Closing(q["path"], [b"a", b"b", b"c"], fail_at)


def error_before(environ, start_response):
    raise RuntimeError("boom before start_response")


def error_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"x" * 100000
    raise RuntimeError("boom after the head")


def not_bytes(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str is not bytes"]


def bad_header_name(environ, start_response):
    start_response("200 OK", [("Bad Name", "x")])
    return [b"x"]


def bad_header_value(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
    return [b"x"]


def bad_status(environ, start_response):
    start_response("200OK", [])
    return [b"x"]


def non_str_header(environ, start_response):
    start_response("200 OK", [("X-Num", 1)])
    return [b"x"]


def twice(environ, start_response):
    start_response("200 OK", [])
    start_response("404 Not Found", [])
    return [b"x"]


def exc_info_before(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("app-level failure")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                       sys.exc_info())
    return [b"replaced"]


def exc_info_after(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"x" * 100000)
    try:
        raise ValueError("too late")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())
    return [b"never"]


def no_start_response(environ, start_response):
    return [b"nobody called start_response"]


def system_exit(environ, start_response):
    raise SystemExit(3)


def errors_stream(environ, start_response):
    err = environ["wsgi.errors"]
    err.write("wsgi-errors-marker %s\n" % _qs(environ).get("tag", ""))
    err.writelines(["line-a\n", "line-b\n"])
    err.flush()
    return _json(start_response, {"ok": True})


def leak_input(environ, start_response):
    """Keep wsgi.input past the request: a later read must fail cleanly, not crash."""
    leak_input.kept = environ["wsgi.input"], start_response
    return _json(start_response, {"ok": True})


def use_leaked(environ, start_response):
    inp, sr = getattr(leak_input, "kept", (None, None))
    out = {}
    for name, fn in (("read", lambda: inp.read()), ("start_response", lambda: sr("200 OK", []))):
        try:
            fn()
            out[name] = "no error"
        except Exception as e:  # noqa: BLE001
            out[name] = type(e).__name__
    return _json(start_response, out)


def head_or_204(environ, start_response):
    start_response("204 No Content", [])
    return [b""]


def app(environ, start_response):
    route = environ.get("PATH_INFO", "/").strip("/").split("/")[0] or "environ"
    fn = ROUTES.get(route)
    if fn is None:
        return _json(start_response, {"error": "no route %r" % route}, "404 Not Found")
    return fn(environ, start_response)


ROUTES = {
    "environ": environ_view,
    "read": read,
    "filewrapper": filewrapper,
    "write": legacy_write,
    "gen": generator,
    "close": close_called,
    "error_before": error_before,
    "error_after": error_after,
    "not_bytes": not_bytes,
    "bad_header_name": bad_header_name,
    "bad_header_value": bad_header_value,
    "bad_status": bad_status,
    "non_str_header": non_str_header,
    "twice": twice,
    "exc_info_before": exc_info_before,
    "exc_info_after": exc_info_after,
    "no_start": no_start_response,
    "system_exit": system_exit,
    "errors": errors_stream,
    "leak_input": leak_input,
    "use_leaked": use_leaked,
    "no_content": head_or_204,
}


# App-loading fixtures (test_wsgi_app_loading.py).
def factory(greeting="hello", times=1):
    body = (greeting * times).encode()

    def inner(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    return inner


class Holder:
    class inner:
        @staticmethod
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"dotted"]


application = factory("default-application")
not_callable = 42
