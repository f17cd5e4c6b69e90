"""h2spec (https://github.com/summerwind/h2spec) against cunicorn's HTTP/2: every case must
pass. h2spec is installed by tools/ensure-deps.sh test into build/tools (or found on PATH /
in ~/go/bin / $H2SPEC)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import server as srv  # noqa: E402


def find_h2spec():
    cands = [os.environ.get("H2SPEC"), os.path.join(srv.REPO, "build", "tools", "h2spec"),
             shutil.which("h2spec"), os.path.expanduser("~/go/bin/h2spec")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    return None


H2SPEC = find_h2spec()
pytestmark = pytest.mark.skipif(H2SPEC is None, reason="h2spec is not installed "
                                "(tools/ensure-deps.sh test installs it)")


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)
    return os.path.join(d, "c.pem"), os.path.join(d, "k.pem")


def run_h2spec(port, extra=()):
    timeout = 6 if srv.SANITIZED else 3
    p = subprocess.run([H2SPEC, "-h", "127.0.0.1", "-p", str(port), "-o", str(timeout)]
                       + list(extra), capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    m = re.search(r"(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed", out)
    assert m, out[-3000:]
    return [int(x) for x in m.groups()], out


# the asgi worker serves streams as asyncio tasks (a raw ASGI app); the others a WSGI app
WORKERS = ["sync", "gthread", "asgi"]


def app_for(worker):
    return "asgiapp:app" if worker == "asgi" else "h2app:app"


@pytest.mark.parametrize("worker", WORKERS)
def test_h2spec_h2c_prior_knowledge_every_case_passes(worker):
    args = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge",
            "--worker-class", worker, "--threads", "4"]
    with srv.Server(app_for(worker), args) as s:
        (total, passed, skipped, failed), out = run_h2spec(s.port)
        assert total >= 145 and failed == 0 and skipped == 0 and passed == total, \
            out[out.find("Failures:"):][:6000]
        assert s.proc.poll() is None  # the server survived every case


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
@pytest.mark.parametrize("worker", WORKERS)
def test_h2spec_tls_alpn_every_case_passes(worker, tmp_path):
    cert, key = make_cert(str(tmp_path))
    args = ["--http-protocols", "h2,h1", "--certfile", cert, "--keyfile", key,
            "--worker-class", worker, "--threads", "4"]
    with srv.Server(app_for(worker), args) as s:
        (total, passed, skipped, failed), out = run_h2spec(s.port, ["-t", "-k"])
        assert total >= 145 and failed == 0 and skipped == 0 and passed == total, \
            out[out.find("Failures:"):][:6000]
        assert s.proc.poll() is None
