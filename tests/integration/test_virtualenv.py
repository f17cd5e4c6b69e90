"""A virtualenv's packages, as gunicorn gives them: the binary installed in VENV/bin and run
by path without activating anything (containers, systemd units), or any binary pointed at a
venv with VIRTUAL_ENV or --pythonpath. The venv holds a module and a .pth-added directory
that the interpreter the server links does not have."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import server as srv

PYVER = "python%d.%d" % sys.version_info[:2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    d = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d)], check=True,
                   timeout=300)
    site = d / "lib" / PYVER / "site-packages"
    (site / "only_in_venv.py").write_text("WHERE = 'venv'\n")
    extra = d / "extra"
    extra.mkdir()
    (extra / "via_pth.py").write_text("")
    (site / "extra.pth").write_text(str(extra) + "\n")
    return d


def info(binary=srv.BIN, args=(), env=None):
    """Run `binary` on the pkginfo app with no virtualenv active and nothing of ours on PATH
    (plus `env`); return what the app saw and the server's log."""
    class S(srv.Server):
        def command(self):
            return [binary] + super().command()[1:]

    s = S("pkginfo:app", ["--no-control-socket"] + list(args))
    s.env.pop("VIRTUAL_ENV", None)
    s.env["PATH"] = "/usr/bin:/bin"
    s.env.update(env or {})
    try:
        s.start()
        r = s.request("GET", "/?module=only_in_venv&module=via_pth&exe=only_in_venv")
        assert r.status == 200, r
        return json.loads(r.body), s.log()
    finally:
        s.close()


def assert_in_venv(got, venv):
    assert got["only_in_venv"] == str(venv / "lib" / PYVER / "site-packages" /
                                      "only_in_venv.py")
    assert got["via_pth"] == str(venv / "extra" / "via_pth.py")  # site ran on the venv
    assert os.path.realpath(got["prefix"]) == os.path.realpath(str(venv))
    assert got["executable"] == str(venv / "bin" / PYVER)
    assert got["exe:only_in_venv"] == 0


def test_without_a_venv_the_module_is_missing(venv):
    got, _ = info()
    assert got["only_in_venv"].startswith("ImportError")
    assert got["prefix"] == sys.base_prefix


def test_binary_installed_in_venv_bin_uses_the_venv(venv):
    installed = venv / "bin" / "cunicorn"
    shutil.copy2(srv.BIN, installed)
    try:
        got, _ = info(str(installed))
    finally:
        installed.unlink()
    assert_in_venv(got, venv)


def test_binary_symlinked_into_venv_bin_uses_the_venv(venv):
    # `ln -s /usr/local/bin/cunicorn VENV/bin/`: the path it is run by counts, as for python
    link = venv / "bin" / "cunicorn"
    os.symlink(srv.BIN, link)
    try:
        got, _ = info(str(link))
    finally:
        link.unlink()
    assert_in_venv(got, venv)
    # and the package is the one beside the real binary
    assert got["package"] == os.path.join(srv.REPO, "python", "cunicorn", "__init__.py")


def test_virtual_env_variable(venv):
    got, _ = info(env={"VIRTUAL_ENV": str(venv)})
    assert_in_venv(got, venv)
    # the build tree's package still comes first
    assert got["package"] == os.path.join(srv.REPO, "python", "cunicorn", "__init__.py")


def test_pythonpath_to_site_packages(venv):
    got, _ = info(args=["--pythonpath", str(venv / "lib" / PYVER / "site-packages")])
    assert got["only_in_venv"] == str(venv / "lib" / PYVER / "site-packages" /
                                      "only_in_venv.py")


def test_venv_for_another_python_is_refused_with_a_warning(tmp_path):
    other = tmp_path / "other"
    (other / "bin").mkdir(parents=True)
    (other / "pyvenv.cfg").write_text("home = /nonexistent/bin\nversion = 3.99.0\n")
    os.symlink("/nonexistent/bin/python3.99", other / "bin" / "python3.99")
    got, log = info(env={"VIRTUAL_ENV": str(other)})
    assert "Ignoring the virtualenv %s (VIRTUAL_ENV)" % other in log
    assert got["prefix"] == sys.base_prefix  # the server ran on the base interpreter
