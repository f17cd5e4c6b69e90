"""The `cunicorn` Python package (python/cunicorn/): the version is written once and the
binary reports it; `python -m cunicorn` becomes the server; a server run from the build
tree imports the package that sits beside it."""
import json
import os
import re
import signal
import subprocess
import sys

import server as srv

PKG = os.path.join(srv.REPO, "python")
TREE_BIN = os.path.join(srv.REPO, "build", "cunicorn")


def source_version():
    with open(os.path.join(PKG, "cunicorn", "_version.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M).group(1)


def test_binary_reports_the_package_version():
    out = subprocess.run([srv.BIN, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "cunicorn (version %s)\n" % source_version()


def test_package_version_outside_the_server():
    out = subprocess.run([sys.executable, "-c", "import cunicorn; print(cunicorn.__version__);"
                          "print(hasattr(cunicorn, 'InvalidResponseHeader'))"],
                         env=dict(os.environ, PYTHONPATH=PKG), capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [source_version(), "False"]


def test_python_m_cunicorn_execs_the_server(tmp_path):
    if not os.path.exists(TREE_BIN):
        import pytest
        pytest.skip("python -m cunicorn in a source tree runs build/cunicorn: not built")
    port = srv.free_port()
    env = dict(os.environ, PYTHONPATH=PKG)
    env.pop("GUNICORN_CMD_ARGS", None)
    err = open(tmp_path / "err.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cunicorn", "-b", "127.0.0.1:%d" % port,
                             "--no-control-socket", "--pythonpath", srv.APPS, "pkginfo:app"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        log = lambda: (tmp_path / "err.log").read_text()  # noqa: E731
        assert srv.wait_until(lambda: "Booting worker" in log(), srv.READY_TIMEOUT), log()
        # exec, not a child: the pid python started is the master's
        assert re.search(r"Listening at: http://127\.0\.0\.1:%d \(%d\)" % (port, proc.pid), log())
        assert os.readlink("/proc/%d/exe" % proc.pid) == os.path.realpath(TREE_BIN)
        s = srv.Server(None, binds=["127.0.0.1:%d" % port], ready=False)
        info = json.loads(s.request("GET", "/").body)
        s.close()
        assert info["version"] == source_version()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()


def test_server_from_the_build_tree_imports_the_package(make_server):
    s = make_server("pkginfo:app")
    info = json.loads(s.request("GET", "/").body)
    assert os.path.realpath(info["package"]) == os.path.realpath(
        os.path.join(PKG, "cunicorn", "__init__.py"))
    assert info["version"] == source_version()
    # gunicorn/<its version> first, as apps that recognise gunicorn test for (docs/design.md)
    assert info["server_software"].endswith("(cunicorn %s)" % source_version())
    # the names the C core gives apps are the package's
    assert info["has_exc"] and info["exc_is_servers"]
