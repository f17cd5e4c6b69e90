"""The same app served over the socket vs called in a loop inside the worker.

  cunicorn -w 1 --chdir bench loop_probe:flask_app   (or loop_probe:django_app)
  curl 'http://127.0.0.1:8000/__loop?n=5000&path=/json&qs=k=v'

GET /__loop calls the wrapped app n times with a fresh copy of the environ the server built
for that request (PATH_INFO and QUERY_STRING set to the served request's), consumes each
response like a server (iterate, close) and answers with the calls per second: the app's
own cost, with no HTTP, no socket and no server code in between. Compare it with wrk on
the same path to see what serving costs beyond the app (bench/README.md).

&mode=net does only a loopback TCP round trip of 200 bytes per call (what serving adds in
the kernel), &mode=profile the app's calls under cProfile (&sort=tottime|cumulative),
&mode=app+net both in turn: if app+net costs more CPU than app plus net, the
difference is the two evicting each other from the CPU caches."""
import socket
import time

import bench_app


def _wrap(inner):
    def app(environ, start_response):
        if environ["PATH_INFO"] != "/__loop":
            return inner(environ, start_response)
        q = dict(kv.split("=", 1) for kv in environ["QUERY_STRING"].split("&") if "=" in kv)
        n = int(q.get("n", "2000"))
        base = dict(environ)
        base["PATH_INFO"] = q.get("path", "/json")
        base["QUERY_STRING"] = q.get("qs", "k=v").replace(",", "&")
        base["RAW_URI"] = base["PATH_INFO"] + "?" + base["QUERY_STRING"]

        mode = q.get("mode", "app")  # app | app+net | net

        def sr(status, headers, exc_info=None):
            return lambda data: None
        # net: a loopback TCP round trip of a response-sized message per call, what serving
        # adds in the kernel; app+net interleaves it with the app call like a server does
        a = b = None
        if "net" in mode:
            lst = socket.create_server(("127.0.0.1", 0))
            a = socket.create_connection(lst.getsockname())
            b, _ = lst.accept()
            lst.close()
            msg = b"x" * 200
        prof = None
        if mode == "profile":  # the app's own time by Python function (cProfile)
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        c0 = time.thread_time()
        for _ in range(n):
            if mode != "net":
                env = dict(base)
                it = inner(env, sr)
                try:
                    for _piece in it:
                        pass
                finally:
                    close = getattr(it, "close", None)
                    if close:
                        close()
            if a is not None:
                a.sendall(msg)
                got = 0
                while got < len(msg):
                    got += len(b.recv(4096))
        cpu = time.thread_time() - c0
        dt = time.perf_counter() - t0
        if prof is not None:
            import io
            import pstats
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(q.get("sort", "tottime")).print_stats(30)
            body = out.getvalue().encode()
            start_response("200 OK", [("Content-Type", "text/plain"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if a is not None:
            a.close()
            b.close()
        body = ("%s: %d calls in %.3f s: %.0f calls/s, %.1f us per call, %.1f us CPU per call\n"
                % (mode, n, dt, n / dt, 1e6 * dt / n, 1e6 * cpu / n)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return app


def __getattr__(name):
    if name not in ("flask_app", "django_app", "app"):
        raise AttributeError(name)
    a = _wrap(getattr(bench_app, name))
    globals()[name] = a
    return a
