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
