"""Apps for the gunicorn-parity tests (test_parity.py), run under cunicorn and gunicorn."""
import io
import os
import tempfile

_FILE = os.path.join(tempfile.gettempdir(), "cunicorn-parity-%d.txt" % os.getpid())


class UpperOnRead(io.FileIO):
    """A real file whose read() upper-cases: sendfile(2) bypasses read(), iteration uses it,
    so the body tells which path the server took."""

    def read(self, n=-1):
        return super().read(n).upper()


def file_app(environ, start_response):
    with open(_FILE, "wb") as f:
        f.write(b"sent by sendfile\n" * 100)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](UpperOnRead(_FILE, "r"), 512)


# logger_class: a JSON-writing subclass of gunicorn's Logger, as structlog/JSON setups use
try:
    import json as _json

    from gunicorn import glogging as _glogging

    class JsonLogger(_glogging.Logger):
        """Every error-log call and every access() as one JSON object per line in
        $JSONLOG."""

        def __init__(self, cfg):
            super().__init__(cfg)
            self._out = open(os.environ["JSONLOG"], "a", buffering=1)

        def _w(self, level, msg, args, exc_info=None):
            rec = {"level": level, "msg": (msg % args) if args else str(msg)}
            if exc_info:
                rec["exc"] = exc_info[0].__name__ if isinstance(exc_info, tuple) else "info"
            self._out.write(_json.dumps(rec) + "\n")

        def critical(self, msg, *args, **kw):
            self._w("critical", msg, args)

        def error(self, msg, *args, **kw):
            self._w("error", msg, args, kw.get("exc_info"))

        def warning(self, msg, *args, **kw):
            self._w("warning", msg, args)

        def info(self, msg, *args, **kw):
            self._w("info", msg, args)

        def debug(self, msg, *args, **kw):
            self._w("debug", msg, args)

        def exception(self, msg, *args, **kw):
            import sys
            self._w("error", msg, args, sys.exc_info())

        def log(self, lvl, msg, *args, **kw):
            self._w({50: "critical", 40: "error", 30: "warning"}.get(lvl, "info"), msg, args,
                    kw.get("exc_info"))

        def access(self, resp, req, environ, request_time):
            atoms = self.atoms(resp, req, environ, request_time)
            self._out.write(_json.dumps({
                "access": True, "status": resp.status, "method": req.method,
                "path": req.path, "query": req.query, "version": list(req.version),
                "sent": resp.sent, "r": atoms["r"], "b": atoms["b"], "ua": atoms["a"],
                "ms_ok": request_time.total_seconds() >= 0,
                "ctype": dict((k.lower(), v) for k, v in resp.headers).get("content-type"),
            }) + "\n")
except ImportError:  # gunicorn not installed: the test that uses it is skipped
    pass
