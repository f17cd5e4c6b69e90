"""Answer every request with its WSGI environ and body as JSON.

Used by the conformance runner (tests/conformance); handy for debugging proxies too.
Run:  cunicorn environ_echo:app   then   curl http://127.0.0.1:8000/some/path?x=1
"""
import base64
import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.input_terminated"] = environ.get("wsgi.input_terminated")
    out["wsgi.url_scheme"] = environ.get("wsgi.url_scheme")
    out["body_base64"] = base64.b64encode(body).decode("ascii")
    data = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
