"""App for the HTTP/2 tests: echo, environ, sleeps, streaming, file_wrapper, large bodies."""
import hashlib
import json
import os
import tempfile
import threading
import time

_FILE = None
_lock = threading.Lock()


def _data_file():
    global _FILE
    with _lock:
        if _FILE is None:
            fd, path = tempfile.mkstemp(prefix="h2app-")
            os.write(fd, bytes(range(256)) * 4096)  # 1 MiB
            os.close(fd)
            _FILE = path
    return _FILE


def app(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "0.5"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if p == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Body-Length", str(len(body)))])
        return [body]
    if p == "/body-and-head":
        # what the app got: the body's length and digest, and every HTTP_* key
        body = environ["wsgi.input"].read()
        out = {"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
               "http": sorted(k for k in environ if k.startswith("HTTP_"))}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(out).encode()]
    if p == "/echo-lines":
        n = 0
        for line in environ["wsgi.input"]:
            n += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d lines" % n]
    if p == "/env":
        keys = ["SERVER_PROTOCOL", "HTTP_VERSION", "HTTP_HOST", "QUERY_STRING", "REQUEST_METHOD",
                "PATH_INFO", "CONTENT_LENGTH", "HTTP_X_CUSTOM", "wsgi.url_scheme"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["\n".join("%s=%s" % (k, environ.get(k)) for k in keys).encode()]
    if p == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            for i in range(int(environ.get("QUERY_STRING") or "5")):
                yield b"chunk %d\n" % i
        return gen()
    if p == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * (int(environ.get("QUERY_STRING") or "1048576"))]
    if p == "/file":
        f = open(_data_file(), "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 65536)
    if p == "/hints":
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
        environ["wsgi.early_hints"]([(b"Link", b"</app.js>; rel=preload; as=script")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"after hints"]
    if p == "/trailers":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"body "
            environ["gunicorn.http2.send_trailers"]([("X-Checksum", "abc123"),
                                                     ("Grpc-Status", "0")])
            yield b"done"
        return gen()
    if p == "/priority":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d %d" % (environ["gunicorn.http2.priority_weight"],
                            environ["gunicorn.http2.priority_depends_on"])]
    if p == "/has-trailers":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str("gunicorn.http2.send_trailers" in environ).encode()]
    if p == "/error":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + p.encode()]
