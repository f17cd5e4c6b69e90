"""Reports what the app sees of its environment: the cunicorn package, sys.prefix,
sys.executable, where an optional module came from (?module=NAME), and whether
sys.executable imports it too (?exe=NAME: what multiprocessing and subprocess rely on)."""
import importlib
import json
import subprocess
import sys
from urllib.parse import parse_qs

try:
    import cunicorn
except ImportError:  # a binary with no package beside it and none in its environment
    cunicorn = None


def app(environ, start_response):
    info = {
        "version": getattr(cunicorn, "__version__", None),
        "package": getattr(cunicorn, "__file__", None),
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
    for name in parse_qs(environ.get("QUERY_STRING", "")).get("exe", []):
        r = subprocess.run([sys.executable, "-c", "import %s" % name], capture_output=True,
                           timeout=60)
        info["exe:" + name] = r.returncode
    body = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
