"""Dirty-arbiter benchmark app (bench/dirty_bench.py): a trivial dirty app, and a WSGI
endpoint that times back-to-back execute() calls from inside one HTTP worker.

GET /loop?seconds=S&max=N&lib=gunicorn|cunicorn -> {"calls", "elapsed", "p50_us", "p99_us"}"""
import json
import time
from urllib.parse import parse_qs


class Trivial:
    workers = None

    def init(self):
        pass

    def close(self):
        pass

    def __call__(self, action, *args, **kwargs):
        return args[0] if args else None


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if q.get("lib") == "cunicorn":
        from cunicorn.dirty import get_dirty_client
    else:
        from gunicorn.dirty import get_dirty_client
    client = get_dirty_client()
    seconds, limit = float(q.get("seconds", "3")), int(q.get("max", "500000"))
    client.execute("dirty_app:Trivial", "echo", 1)  # connect, warm up
    lat = []
    start = time.perf_counter()
    end = start + seconds
    n = 0
    while n < limit:
        t0 = time.perf_counter()
        client.execute("dirty_app:Trivial", "echo", n)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        n += 1
        if t1 >= end:
            break
    elapsed = time.perf_counter() - start
    lat.sort()
    body = json.dumps({"calls": n, "elapsed": elapsed,
                       "p50_us": lat[len(lat) // 2] * 1e6,
                       "p99_us": lat[int(len(lat) * 0.99)] * 1e6}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
