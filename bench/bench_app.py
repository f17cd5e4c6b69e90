"""WSGI app the benchmark serves with every server: hello, a 1 MiB body, an upload sink."""

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/1m":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(BIG)))])
        return [BIG]
    if path == "/upload":
        n = 0
        read = environ["wsgi.input"].read
        while True:
            chunk = read(65536)
            if not chunk:
                break
            n += len(chunk)
        body = str(n).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]
