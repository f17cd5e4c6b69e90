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


# Real frameworks as the workload: a Flask JSON endpoint and a Django view, built on first
# use (bench_app:flask_app, bench_app:django_app), so that hello runs without either.
def _flask_app():
    from flask import Flask, jsonify, request

    fapp = Flask("bench_flask")

    @fapp.get("/json")
    def as_json():
        return jsonify(server="bench", items=[1, 2, 3], args=request.args.to_dict())
    return fapp


def _django_app():
    import django
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import path

    def info(request):
        return JsonResponse({"server": "bench", "items": [1, 2, 3],
                             "args": request.GET.dict()})

    globals()["urlpatterns"] = [path("json/", info)]
    # the middleware a new project keeps that needs no database
    settings.configure(DEBUG=False, SECRET_KEY="bench-only", ALLOWED_HOSTS=["*"],
                       ROOT_URLCONF=__name__, USE_TZ=True,
                       MIDDLEWARE=["django.middleware.security.SecurityMiddleware",
                                   "django.middleware.common.CommonMiddleware",
                                   "django.middleware.clickjacking.XFrameOptionsMiddleware"])
    django.setup()
    from django.core.wsgi import get_wsgi_application
    return get_wsgi_application()


def __getattr__(name):
    builders = {"flask_app": _flask_app, "django_app": _django_app}
    if name not in builders:
        raise AttributeError(name)
    app_ = builders[name]()
    globals()[name] = app_
    return app_
