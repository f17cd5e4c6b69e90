"""cunicorn: a pre-fork WSGI HTTP server for UNIX, written in C, with gunicorn's interface.

This package is the Python side of the server: `python -m cunicorn` runs the server binary,
`cunicorn.__version__` is the version the binary reports, and the Python APIs that apps use
(the dirty-arbiter client, ...) live in its submodules.

Inside the server, the names the C core defines for apps (the exceptions raised on a bad
response header) are re-exported here, so `cunicorn.InvalidResponseHeader` is the class the
server raises. Outside the server they are absent.
"""

from cunicorn._version import __version__

try:  # the server's builtin C module: only importable inside a running cunicorn
    from _cunicorn import InvalidResponseHeader, InvalidResponseHeaderName  # noqa: F401
except ImportError:
    pass

__all__ = ["__version__"]
