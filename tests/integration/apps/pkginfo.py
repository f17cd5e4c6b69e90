"""Reports what the app sees of its environment: the cunicorn package, sys.prefix,
sys.executable, and where an optional module came from (?module=NAME)."""
import importlib
import json
import sys
from urllib.parse import parse_qs

import cunicorn


def app(environ, start_response):
    info = {
        "version": cunicorn.__version__,
        "package": cunicorn.__file__,
        "has_exc": hasattr(cunicorn, "InvalidResponseHeader"),
        "exc_is_servers": getattr(cunicorn, "InvalidResponseHeader", None)
        is sys.modules["_cunicorn"].InvalidResponseHeader,
        "prefix": sys.prefix,
        "executable": sys.executable,
        "server_software": environ.get("SERVER_SOFTWARE"),
    }
    for name in parse_qs(environ.get("QUERY_STRING", "")).get("module", []):
        try:
            info[name] = importlib.import_module(name).__file__
        except ImportError as e:
            info[name] = "ImportError: %s" % e
    body = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
