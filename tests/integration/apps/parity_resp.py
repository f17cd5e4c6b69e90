"""Response-path parity (HEAD, 204/304 bodies, early hints), run under cunicorn and gunicorn."""


def app(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/204":
        start_response("204 No Content", [])
        return [b"should not be sent"]
    if p == "/304":
        start_response("304 Not Modified", [("Content-Length", "18")])
        return [b"should not be sent"]
    if p == "/hints":
        eh = environ.get("wsgi.early_hints")
        if eh:
            eh([("Link", "</style.css>; rel=preload; as=style")])
            eh([("Link", "</app.js>; rel=preload; as=script")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hints: %s" % str(eh is not None).encode()]
    if p == "/hints_bad":
        out = []
        for h in ([("Bad Name", "x")], [("Link", "a\r\nInjected: 1")]):
            try:
                environ["wsgi.early_hints"](h)
            except Exception as e:  # the classes are the server's; the texts are gunicorn's
                out.append("%s: %s" % (type(e).__name__, e))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["\n".join(out).encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello head body"]
