"""Echo the request body back.  Run:  cunicorn echo:app

    curl --data-binary @file http://127.0.0.1:8000/
"""


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [
        ("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
