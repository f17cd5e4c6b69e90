"""gunicorn.conf.py under cunicorn: sources and precedence, gunicorn's validation errors
(compared with gunicorn itself), settings not supported yet, and values that change what
the running server does (raw_env, proc_name, preload_app, bind, wsgi_app)."""
import os
import re
import subprocess
import sys

import pytest

import server as srv

GUNICORN = [sys.executable, "-m", "gunicorn"]
APP = ("import os\n"
       "def app(environ, start_response):\n"
       "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
       "    return [('%s|%s' % (os.environ.get('CF_A'), os.environ.get('CF_B'))).encode()]\n")


def run(cmd, cwd, env=None):
    e = dict(os.environ)
    for k in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT", "FORWARDED_ALLOW_IPS"):
        e.pop(k, None)
    e["PWD"] = str(cwd)
    e.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=30)


def check_both(tmp_path, conf):
    """--check-config with conf.py under gunicorn and cunicorn: (gunicorn, cunicorn)."""
    (tmp_path / "cfapp.py").write_text(APP)
    (tmp_path / "conf.py").write_text(conf)
    args = ["--check-config", "-c", "conf.py", "cfapp:app"]
    return run(GUNICORN + args, tmp_path), run([srv.BIN] + args, tmp_path)


@pytest.mark.parametrize("conf, message", [
    ("workers = 'abc'\n", "Error: invalid literal for int() with base 0: 'abc'"),
    ("workers = -1\n", "Error: Value must be positive: -1"),
    ("workers = 1.5\n", "Error: int() can't convert non-string with explicit base"),
    ("preload_app = 'maybe'\n", "Error: Invalid boolean: maybe"),
    ("preload_app = 3\n", "Error: Invalid type for casting: 3"),
    ("proc_name = 5\n", "Error: Not a string: 5"),
    ("bind = [1]\n", "Error: Not a string: 1"),
    ("forwarded_allow_ips = '10.0.0.1/8'\n", "has host bits set"),
    ("header_map = 'x'\n", "Error: Invalid header map behaviour: x"),
    ("http_parser = 'pico'\n", "Error: http_parser must be one of: auto, fast, python"),
    ("sendfile = 'maybe'\n", "Error: Invalid boolean: maybe"),
    ("tmp_upload_dir = 5\n", "Error: Not a string: 5"),
    ("def on_starting(a, b): pass\n", "Error: Value must have an arity of: 1"),
    ("on_starting = 5\n", "Error: Value is not callable: 5"),
    ("on_starting = 'nodots'\n", "is not import string"),
    ("def post_request(a): pass\n", "Error: Value must have an arity of: 4"),
    ("x = 1/0\n", "ZeroDivisionError: division by zero"),
])
def test_invalid_values_fail_like_gunicorn(tmp_path, conf, message):
    g, c = check_both(tmp_path, conf)
    assert g.returncode == 1 and c.returncode == 1, (g.stderr, c.stderr)
    assert message in g.stderr
    assert message in c.stderr
    first = g.stderr.splitlines()[0]
    if first.startswith("Invalid value for"):
        # "Invalid value for NAME: VALUE" (function reprs carry addresses)
        assert c.stderr.splitlines()[0].split(" at 0x")[0] == first.split(" at 0x")[0]


def test_valid_file_checks_ok(tmp_path):
    g, c = check_both(tmp_path, "workers = 2\nbind = '127.0.0.1:0'\n")
    assert g.returncode == 0 and c.returncode == 0, c.stderr


def test_missing_file(tmp_path):
    (tmp_path / "cfapp.py").write_text(APP)
    c = run([srv.BIN, "-c", "nope.py", "cfapp:app"], tmp_path)
    assert c.returncode == 1
    assert "Error: 'nope.py' doesn't exist" in c.stderr


def test_unknown_names_are_ignored(tmp_path):
    g, c = check_both(tmp_path, "import os\nfoo = 1\nWORKERS = 'x'\n_private = object()\n")
    assert g.returncode == 0 and c.returncode == 0, c.stderr


def not_yet_settings():
    """(name, a value other than its default) for up to three settings the settings table
    marks "not yet", read from the binary so the test follows the table."""
    doc = subprocess.run([srv.BIN, "--print-settings-doc"], capture_output=True, text=True,
                         timeout=30).stdout
    out = []
    for name, flag, default in re.findall(
            r"^\| `(\w+)` \| `?([^|`]*)`? \| `([^|`]*)` \| not yet \|", doc, re.M):
        if flag.endswith(" INT"):
            value = repr(int(default) + 1 if default.lstrip("-").isdigit() else 7)
        elif flag.endswith(" STRING") or "config file only" in flag:
            value = repr("not-the-default")
        else:
            value = "True" if default in ("False", "None") else "False"
        out.append((name, value))
    return out[:3]


def test_not_yet_settings_are_named(tmp_path):
    settings = not_yet_settings()
    if not settings:
        pytest.skip("every gunicorn setting is supported")
    (tmp_path / "cfapp.py").write_text(APP)
    (tmp_path / "gunicorn.conf.py").write_text("".join("%s = %s\n" % nv for nv in settings))
    c = run([srv.BIN, "cfapp:app"], tmp_path)
    assert c.returncode == 1
    for name, _ in settings:
        assert ("cunicorn: setting '%s' (from gunicorn.conf.py) is not supported yet" % name
                in c.stderr)


def test_not_yet_settings_at_their_default_are_fine(tmp_path):
    g, c = check_both(tmp_path, "daemon = False\nkeyfile = None\nreload_extra_files = []\n"
                                "umask = 0\nforwarder_headers = 'SCRIPT_NAME,PATH_INFO'\n")
    assert c.returncode == 0, c.stderr


def test_not_yet_path_given_with_c(tmp_path):
    settings = not_yet_settings()
    if not settings:
        pytest.skip("every gunicorn setting is supported")
    (tmp_path / "cfapp.py").write_text(APP)
    (tmp_path / "my.conf.py").write_text("%s = %s\n" % settings[0])
    c = run([srv.BIN, "-c", "my.conf.py", "cfapp:app"], tmp_path)
    assert c.returncode == 1
    assert ("cunicorn: setting '%s' (from my.conf.py) is not supported yet" % settings[0][0]
            in c.stderr)


def test_runtime_values_from_file(make_server, tmp_path):
    (tmp_path / "cfapp.py").write_text(APP)
    port = srv.free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        "bind = '127.0.0.1:%d'\n"
        "raw_env = ['CF_A=from-file', 'CF_B=x=y']\n"
        "proc_name = 'cfproc'\n"
        "preload_app = True\n"
        "wsgi_app = 'cfapp:app'\n" % port)
    s = make_server(app=None, binds=[], cwd=str(tmp_path), pythonpath=None, start=False)
    s.binds = []
    s.port = port
    s.start()
    r = s.request(path="/")
    assert r.status == 200 and r.body == b"from-file|x=y"
    assert "cfproc" in (srv.cmdline(s.pid) or "")
    for w in s.worker_pids():
        assert "cfproc" in (srv.cmdline(w) or "")


def test_cli_beats_file(make_server, tmp_path):
    (tmp_path / "cfapp.py").write_text(APP)
    (tmp_path / "conf.py").write_text("bind = '127.0.0.1:1'\nraw_env = ['CF_A=file']\n")
    s = make_server(app="cfapp:app", cwd=str(tmp_path), pythonpath=None,
                    args=["-c", "conf.py", "-e", "CF_A=cli"])
    r = s.request(path="/")
    assert r.status == 200 and r.body.startswith(b"cli|")
