"""--reload (inotify and polling): a worker restarts when an imported module or a
reload_extra_files match changes; --paste loads a PasteDeploy application."""
import os
import subprocess
import sys
import time

import pytest

import server as srv

APP_V = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s"]
'''


def write_app(path, version, n=0):
    path.write_text(APP_V % version)
    # a clearly newer mtime even on coarse-grained file systems (n: a later rewrite)
    t = time.time() + 2 + n
    os.utime(path, (t, t))


def change_until_reload(change, s, off, regex, tries=20):
    """Readiness by polling: change(n) until the log shows regex after offset off."""
    import re
    for n in range(tries):
        change(n)
        if srv.wait_until(lambda: re.search(regex, s.log()[off:]), 1.5):
            return
    s.wait_for_log(regex, since=off, timeout=1)  # fails with the log shown


@pytest.mark.parametrize("engine", ["auto", "poll"])
def test_reload_restarts_worker_on_module_change(make_server, tmp_path, engine):
    mod = tmp_path / "reloadme.py"
    write_app(mod, "one")
    s = make_server(app="reloadme:app", args=["--reload", "--reload-engine", engine],
                    pythonpath=str(tmp_path), cwd=str(tmp_path))
    assert s.request("GET", "/").body == b"one"
    s.wait_for_log(r"\[WARNING\] Reloader is on\. Use in development only!")
    off = s.log_offset()
    # The watcher takes its first look at some point after boot: a change made before that
    # is its starting state. Change the file again, each time newer, until it reports.
    change_until_reload(lambda n: write_app(mod, "two", n), s, off,
                        r"Worker reloading: .*reloadme\.py modified")
    s.wait_for_log(r"Booting worker", since=off)

    def new_body():
        try:
            return s.request("GET", "/").body == b"two"
        except OSError:
            return False
    assert srv.wait_until(new_body, 10)


def test_reload_extra_files_glob(make_server, tmp_path):
    mod = tmp_path / "reloadme2.py"
    write_app(mod, "x")
    tpl = tmp_path / "templates"
    tpl.mkdir()
    (tpl / "page.html").write_text("a")
    s = make_server(app="reloadme2:app",
                    args=["--reload", "--reload-extra-file", str(tpl / "*.html")],
                    pythonpath=str(tmp_path), cwd=str(tmp_path))
    off = s.log_offset()

    def change(n):
        (tpl / "page.html").write_text("b%d" % n)
        t = time.time() + 2 + n
        os.utime(tpl / "page.html", (t, t))
    change_until_reload(change, s, off, r"Worker reloading: .*page\.html modified")


def test_reload_engine_is_validated():
    r = subprocess.run([srv.BIN, "--reload-engine", "magic", "x:app"], capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "reload_engine" in r.stderr


def _have_pastedeploy():
    # no install from a test (it may have no network): tools/ensure-deps.sh test does it
    code = "import paste.deploy"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_paste_app_with_global_conf(make_server, tmp_path):
    if not _have_pastedeploy():
        pytest.skip("PasteDeploy is not installed (tools/ensure-deps.sh test installs it)")
    (tmp_path / "pasteapp.py").write_text(
        "def make_app(global_conf, greeting='hi'):\n"
        "    who = global_conf.get('who', 'nobody')\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "        return [('%s %s' % (greeting, who)).encode()]\n"
        "    return app\n")
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\npaste.app_factory = pasteapp:make_app\ngreeting = hello\n\n"
                   "[app:other]\npaste.app_factory = pasteapp:make_app\ngreeting = other\n")
    s = make_server(app=None, args=["--paste", str(ini), "--paste-global", "who=world"],
                    pythonpath=str(tmp_path), cwd=str(tmp_path))
    assert s.request("GET", "/").body == b"hello world"
    s2 = make_server(app=None, args=["--paste", "%s#other" % ini],
                     pythonpath=str(tmp_path), cwd=str(tmp_path))
    assert s2.request("GET", "/").body == b"other nobody"


def test_paste_missing_file_is_a_clear_error(make_server, tmp_path):
    s = make_server(app=None, args=["--paste", str(tmp_path / "nope.ini")], ready=False,
                    cwd=str(tmp_path))
    assert s.wait_exit(10) != 0
    assert "nope.ini' not found" in s.log()


def test_paste_without_pastedeploy_names_the_package(make_server, tmp_path):
    # the config file runs in the master: blocking the import stands in for a missing package
    conf = tmp_path / "conf.py"
    conf.write_text("import sys\nsys.modules['paste.deploy'] = None\n")
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:nothing\n")
    s = make_server(app=None, args=["-c", str(conf), "--paste", str(ini)], ready=False,
                    cwd=str(tmp_path))
    assert s.wait_exit(10) != 0
    assert "needs the PasteDeploy package, which is not installed" in s.log()
