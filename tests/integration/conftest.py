import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import server as srv  # noqa: E402


@pytest.fixture(autouse=True)
def _time_limit():
    yield from srv.time_limit_fixture_body()


@pytest.fixture
def make_server():
    """Factory: make_server(app, args=[...], ...) -> started Server, stopped at teardown."""
    started = []

    def make(app="testapp:app", args=(), start=True, **kw):
        s = srv.Server(app, args, **kw)
        started.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in started:
        s.close()


@pytest.fixture(scope="module")
def app_server():
    """One server running the integration test app, shared by a module."""
    s = srv.Server("testapp:app", ["--keep-alive", "5"])
    s.start()
    yield s
    s.close()


@pytest.fixture
def tmp_file(tmp_path):
    return str(tmp_path / "record.txt")


@pytest.fixture
def spawn():
    """spawn(argv, port, what) -> port: start a peer process (nginx, haproxy, gunicorn...)
    that listens on 127.0.0.1:port and wait until it does; all are stopped at teardown."""
    procs = []

    def start(argv, port, what):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        srv.wait_port(port, p, what)
        return port

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)
