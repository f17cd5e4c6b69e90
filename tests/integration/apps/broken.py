"""Fails at import time: the server must report the traceback and exit."""
import this_module_does_not_exist_cunicorn  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [])
    return [b"unreachable"]
