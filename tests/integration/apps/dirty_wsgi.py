"""WSGI app that calls the dirty pool, with either client library:
GET /call?lib=gunicorn|cunicorn&app=A&action=X&args=<json list>&kwargs=<json dict>
GET /stream?...  (same, streaming)     GET /stash?op=put|get|keys|...&table=&key=&value=<json>
Answers JSON: {"ok": result} or {"error": type name, "message": ..., "traceback": ...}."""
import json
import os
from urllib.parse import parse_qs


def _lib(name):
    if name == "cunicorn":
        import cunicorn.dirty as d
    else:
        import gunicorn.dirty as d
    return d


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ["PATH_INFO"]
    try:
        d = _lib(q.get("lib", "gunicorn"))
        if path == "/socket":
            out = {"ok": os.environ.get("GUNICORN_DIRTY_SOCKET"), "pid": os.getpid()}
        elif path == "/call":
            c = d.get_dirty_client(timeout=float(q.get("timeout", "30")))
            r = c.execute(q["app"], q["action"], *json.loads(q.get("args", "[]")),
                          **json.loads(q.get("kwargs", "{}")))
            out = {"ok": r, "pid": os.getpid()}
        elif path == "/stream":
            c = d.get_dirty_client()
            out = {"ok": list(c.stream(q["app"], q["action"], *json.loads(q.get("args", "[]")))),
                   "pid": os.getpid()}
        elif path == "/stash":
            s = d.stash
            op = q["op"]
            if op == "put":
                r = s.put(q["table"], q["key"], json.loads(q["value"]))
            elif op == "get":
                r = s.get(q["table"], q["key"], "<default>")
            elif op in ("keys",):
                r = s.keys(q["table"], q.get("pattern"))
            elif op in ("delete", "exists"):
                r = getattr(s, op)(q["table"], q.get("key"))
            elif op in ("clear", "info", "ensure", "delete_table"):
                r = getattr(s, op)(q["table"])
            elif op == "tables":
                r = s.tables()
            out = {"ok": r, "pid": os.getpid()}
        else:
            out = {"error": "notfound"}
    except Exception as e:  # the test reads the type the caller saw
        out = {"error": type(e).__name__, "message": str(e),
               "traceback": getattr(e, "traceback", None), "pid": os.getpid()}
    body = json.dumps(out, default=repr).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
