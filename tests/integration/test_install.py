"""The package as users install it: an sdist built from this tree, installed with pip into a
fresh virtualenv (and with pipx, and with uv, where they are available), each compiling the
server against the interpreter doing the install. The installed command is then run by
path, with nothing activated, and serves an app that imports a module present only in that
virtualenv. The builds are slow: each happens once per module."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile

import pytest

import server as srv

PYVER = "python%d.%d" % sys.version_info[:2]
BUILD_TIMEOUT = 1800


def run(cmd, **kw):
    kw.setdefault("timeout", BUILD_TIMEOUT)
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, "%s failed:\n%s\n%s" % (cmd, out.stdout[-3000:],
                                                        out.stderr[-5000:])
    return out


def expected_version():
    return run([srv.BIN, "--version"], timeout=30).stdout


def clean_env(**extra):
    """No virtualenv active, nothing of ours on PATH: as a systemd unit or a container."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "GUNICORN_CMD_ARGS")}
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


def plant_module(venv):
    site = venv / "lib" / PYVER / "site-packages"
    assert site.is_dir(), site
    (site / "only_in_venv.py").write_text("WHERE = 'venv'\n")
    return site


def serve(binary):
    """Start `binary` (a path), unactivated, on the pkginfo app; return what the app saw."""
    class Installed(srv.Server):
        def command(self):
            return [str(binary)] + super().command()[1:]

    s = Installed("pkginfo:app", ["--no-control-socket"])
    for k in ("VIRTUAL_ENV", "PYTHONPATH"):
        s.env.pop(k, None)
    s.env["PATH"] = "/usr/bin:/bin"
    try:
        s.start()
        r = s.request("GET", "/?module=only_in_venv")
        assert r.status == 200, r
        return json.loads(r.body)
    finally:
        s.close()


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out),
         srv.REPO], cwd=srv.REPO)
    (path,) = out.glob("cunicorn-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def pip_venv(sdist, tmp_path_factory):
    venv = tmp_path_factory.mktemp("pip") / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run(["nice", str(venv / "bin" / "pip"), "install", "-q", str(sdist)], env=clean_env())
    return venv


def test_sdist_has_what_the_build_needs(sdist):
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for f in ("Makefile", "setup.py", "pyproject.toml", "tools/cunicornc.c",
              "python/cunicorn/__init__.py", "python/cunicorn/_version.py", "src/main.c"):
        assert f in names, f
    tracked = run(["git", "ls-files", "src"], cwd=srv.REPO, timeout=60).stdout.split()
    missing = [f for f in tracked if f not in names]
    assert not missing, missing


def test_pip_install_puts_both_commands_in_the_venv_bin(pip_venv):
    for name in ("cunicorn", "cunicornc"):
        path = pip_venv / "bin" / name
        assert path.is_file() and os.access(path, os.X_OK)
    assert run([str(pip_venv / "bin" / "cunicorn"), "--version"],
               env=clean_env()).stdout == expected_version()
    assert (pip_venv / "share" / "man" / "man1" / "cunicorn.1").is_file()
    assert (pip_venv / "share" / "bash-completion" / "completions" / "cunicorn").is_file()


def test_pip_installed_command_uses_its_venv_unactivated(pip_venv):
    site = plant_module(pip_venv)
    got = serve(pip_venv / "bin" / "cunicorn")
    assert got["only_in_venv"] == str(site / "only_in_venv.py")
    assert got["package"] == str(site / "cunicorn" / "__init__.py")
    assert got["executable"] == str(pip_venv / "bin" / PYVER)
    assert "cunicorn (version %s)\n" % got["version"] == expected_version()


def test_python_m_cunicorn_version(pip_venv):
    out = run([str(pip_venv / "bin" / "python"), "-m", "cunicorn", "--version"],
              env=clean_env(), cwd="/")
    assert out.stdout == expected_version()
    out = run([str(pip_venv / "bin" / "python"), "-c",
               "import cunicorn; print(cunicorn.__version__)"], env=clean_env(), cwd="/")
    assert "cunicorn (version %s)\n" % out.stdout.strip() == expected_version()


def test_missing_compiler_is_named_with_the_packages(sdist, tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                          str(tmp_path), str(sdist)],
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                         env=dict(clean_env(), CC="/nonexistent/cc"))
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "no C compiler (`/nonexistent/cc`" in text, text[-3000:]
    assert "apt-get install gcc" in text
    assert "dnf install gcc" in text
    assert "apk add gcc musl-dev" in text
    assert not list(tmp_path.glob("*.whl"))


def test_missing_headers_and_libpython_are_named(monkeypatch):
    """What the build step says on a Python without its development files (checked by
    setup.py before make runs; such a Python cannot be installed on this machine)."""
    spec = importlib.util.spec_from_file_location("cunicorn_setup",
                                                  os.path.join(srv.REPO, "setup.py"))
    setup_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_py)  # not __main__: setup() does not run
    assert setup_py.preflight() is None  # this machine has everything
    paths, var = sysconfig.get_paths, sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_paths",
                        lambda *a, **k: dict(paths(*a, **k), include="/nonexistent/include"))
    monkeypatch.setattr(sysconfig, "get_config_var",
                        lambda n: "libnone.so" if n in ("LDLIBRARY", "LIBRARY") else var(n))
    msg = setup_py.preflight()
    ver = "%d.%d" % sys.version_info[:2]
    assert "no Python.h for Python %s (looked in /nonexistent/include)" % ver in msg
    assert "no libpython%s to link the embedded interpreter" % ver in msg
    assert "Debian/Ubuntu:  apt-get install python%s-dev" % ver in msg
    assert "Fedora/RHEL:    dnf install python3-devel" in msg
    assert "Alpine:         apk add python3-dev" in msg


@pytest.fixture(scope="module")
def pipx_home(sdist, tmp_path_factory):
    pipx = shutil.which("pipx") or (
        [sys.executable, "-m", "pipx"] if run_ok([sys.executable, "-m", "pipx", "--version"])
        else None)
    if pipx is None:
        pytest.skip("pipx is not installed (pip install pipx)")
    home = tmp_path_factory.mktemp("pipx")
    env = clean_env(PIPX_HOME=str(home / "home"), PIPX_BIN_DIR=str(home / "bin"),
                    PIPX_MAN_DIR=str(home / "man"),
                    PIPX_DEFAULT_PYTHON=os.path.realpath(sys.executable))
    cmd = pipx if isinstance(pipx, list) else [pipx]
    run(["nice"] + cmd + ["install", str(sdist)], env=env)
    return home


def run_ok(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def test_pipx_install(pipx_home):
    exposed = pipx_home / "bin" / "cunicorn"
    assert exposed.exists()
    assert run([str(exposed), "--version"], env=clean_env()).stdout == expected_version()
    venv = pipx_home / "home" / "venvs" / "cunicorn"
    site = plant_module(venv)
    got = serve(exposed)  # through pipx's symlink in its bin dir
    assert got["only_in_venv"] == str(site / "only_in_venv.py")
    assert os.path.realpath(got["package"]) == os.path.realpath(
        str(site / "cunicorn" / "__init__.py"))


@pytest.fixture(scope="module")
def uv_venv(sdist, tmp_path_factory):
    uv = shutil.which("uv")
    if uv is None:
        try:
            import uv as uv_mod
            uv = uv_mod.find_uv_bin()
        except Exception:
            pytest.skip("uv is not installed (pip install uv)")
    venv = tmp_path_factory.mktemp("uv") / "venv"
    env = clean_env(UV_CACHE_DIR=str(venv.parent / "cache"))
    run([uv, "venv", "--python", os.path.realpath(sys.executable), str(venv)], env=env)
    run(["nice", uv, "pip", "install", "--python", str(venv / "bin" / "python"),
         str(sdist)], env=env)
    return venv


def test_uv_pip_install(uv_venv):
    site = plant_module(uv_venv)
    assert run([str(uv_venv / "bin" / "cunicorn"), "--version"],
               env=clean_env()).stdout == expected_version()
    got = serve(uv_venv / "bin" / "cunicorn")
    assert got["only_in_venv"] == str(site / "only_in_venv.py")
