"""--print-config parity with gunicorn: the same config files and command lines, run under
gunicorn (installed in python3) and cunicorn, must print the same names and values."""
import os
import subprocess
import sys

import pytest

import server as srv

GUNICORN = [sys.executable, "-m", "gunicorn"]


def _have_gunicorn():
    try:
        return subprocess.run(GUNICORN + ["--version"], capture_output=True).returncode == 0
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _have_gunicorn(), reason="gunicorn is not installed")

APP = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'']\n"


def run(cmd, cwd, env=None):
    e = dict(os.environ)
    e.pop("GUNICORN_CMD_ARGS", None)
    e.pop("WEB_CONCURRENCY", None)
    e.pop("PORT", None)
    e.pop("FORWARDED_ALLOW_IPS", None)
    e["PWD"] = str(cwd)
    e.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=30)


def both(tmp_path, args, env=None):
    (tmp_path / "cfapp.py").write_text(APP)
    g = run(GUNICORN + ["--print-config"] + args, tmp_path, env)
    c = run([srv.BIN, "--print-config"] + args, tmp_path, env)
    return g, c


# cunicorn-only settings (extensions gunicorn does not have)
EXTENSIONS = {"max_worker_memory"}


def assert_same(g, c):
    assert g.returncode == 0, g.stderr
    assert c.returncode == 0, c.stderr
    gl = g.stdout.splitlines()
    cl = [l for l in c.stdout.splitlines() if l.split(" ")[0] not in EXTENSIONS]
    assert [l.split("=")[0] for l in gl] == [l.split("=")[0] for l in cl]
    diff = [(a, b) for a, b in zip(gl, cl) if a != b]
    assert not diff, "\n".join("gunicorn: %s\ncunicorn: %s" % d for d in diff)


FULL = '''
import os
workers = 3
threads = 2
bind = ["127.0.0.1:9911", "unix:/tmp/x.sock"]
backlog = 64
timeout = "0x20"
graceful_timeout = 0o17
keepalive = True
max_requests = 100
max_requests_jitter = 10
limit_request_line = 0
limit_request_fields = 50
limit_request_field_size = 0
preload_app = "true"
reuse_port = False
raw_env = ["A=1", " B=2 "]
proc_name = "  myproc  "
pidfile = None
accesslog = "-"
errorlog = "-"
loglevel = "debug"
access_log_format = '%(h)s "%(r)s"'
forwarded_allow_ips = "10.0.0.0/8, 127.0.0.1"
proxy_protocol = True
proxy_allow_ips = "*"
protocol = " uwsgi "
uwsgi_allow_ips = "10.0.0.0/8, ::1"
header_map = "refuse"
permit_obsolete_folding = True
casefold_http_method = "True"
worker_class = "gthread"
some_other_name = 5
Workers = 9
reload = False
keyfile = None
def on_starting(server): pass
def when_ready(server): pass
def pre_fork(server, worker): pass
def post_fork(server, worker): pass
def post_worker_init(worker): pass
def worker_int(worker): pass
def worker_abort(worker): pass
def pre_exec(server): pass
def pre_request(worker, req): pass
def post_request(worker, req): pass
def child_exit(server, worker): pass
def worker_exit(server, worker): pass
def nworkers_changed(server, new, old): pass
def on_exit(server): pass
def on_reload(server): pass
'''


def test_defaults(tmp_path):
    assert_same(*both(tmp_path, ["cfapp:app"]))


def test_every_supported_kind_from_a_file(tmp_path):
    (tmp_path / "conf.py").write_text(FULL)
    assert_same(*both(tmp_path, ["-c", "conf.py", "cfapp:app"]))


def test_default_config_file_is_read(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text("workers = 5\nbind = '127.0.0.1:9'\n")
    g, c = both(tmp_path, ["cfapp:app"])
    assert_same(g, c)
    assert "\nworkers                            = 5\n" in c.stdout
    assert "config                             = ./gunicorn.conf.py" in c.stdout


def test_precedence_file_env_cli(tmp_path):
    (tmp_path / "conf.py").write_text("workers = 2\ntimeout = 5\nkeepalive = 9\n")
    env = {"GUNICORN_CMD_ARGS": "-w 3 -t 6"}
    g, c = both(tmp_path, ["-c", "conf.py", "-w", "4", "cfapp:app"], env)
    assert_same(g, c)
    assert "\nworkers                            = 4\n" in c.stdout   # argv
    assert "\ntimeout                            = 6\n" in c.stdout   # GUNICORN_CMD_ARGS
    assert "\nkeepalive                          = 9\n" in c.stdout   # file


def test_config_named_in_gunicorn_cmd_args(tmp_path):
    (tmp_path / "conf.py").write_text("workers = 6\n")
    assert_same(*both(tmp_path, ["cfapp:app"], {"GUNICORN_CMD_ARGS": "-c conf.py"}))


def test_python_and_file_locations(tmp_path):
    (tmp_path / "modconf.py").write_text("workers = 7\n")
    (tmp_path / "conf.txt").write_text("workers = 8\n")
    assert_same(*both(tmp_path, ["-c", "python:modconf", "cfapp:app"]))
    g, c = both(tmp_path, ["-c", "file:conf.txt", "cfapp:app"])
    assert_same(g, c)
    assert "WARNING: configuration file should have a valid Python extension" in c.stderr


def test_wsgi_app_from_file(tmp_path):
    (tmp_path / "conf.py").write_text("wsgi_app = 'cfapp:app'\n")
    assert_same(*both(tmp_path, ["-c", "conf.py"]))


def test_hook_forms(tmp_path):
    (tmp_path / "hookmod.py").write_text("def starting(server):\n    pass\n")
    (tmp_path / "conf.py").write_text(
        "on_starting = 'hookmod.starting'\n"
        "class C:\n    def when_ready(self, server): pass\n"
        "when_ready = C().when_ready\n"
        "def post_request(worker, req, environ, resp): pass\n")
    assert_same(*both(tmp_path, ["-c", "conf.py", "cfapp:app"]))


def test_http2_settings_print_like_gunicorn(tmp_path):
    """gunicorn 27's HTTP/2 settings are accepted and print as gunicorn prints them."""
    g, c = both(tmp_path, ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge",
                           "--http2-max-concurrent-streams", "7",
                           "--http2-initial-window-size", "1048576",
                           "--http2-max-frame-size", "32768",
                           "--http2-max-header-list-size", "0", "cfapp:app"])
    assert_same(g, c)
    assert "http_protocols                     = ['h2', 'h1']" in c.stdout


def test_http2_settings_from_a_config_file(tmp_path):
    (tmp_path / "h2.conf.py").write_text(
        "http_protocols = 'h1, H2'\nhttp2_cleartext = True\nhttp2_max_frame_size = 65536\n")
    g, c = both(tmp_path, ["-c", "h2.conf.py", "cfapp:app"])
    assert_same(g, c)
    assert "http2_cleartext                    = prior-knowledge" in c.stdout


@pytest.mark.parametrize("args,why", [
    (["--http-protocols", "h1,h3"], "Invalid protocol 'h3'"),
    (["--http-protocols", "h2,h2"], "Duplicate protocols"),
    (["--http2-max-frame-size", "1000"], "between 16384 and 16777215"),
    (["--http2-cleartext", "maybe"], "Invalid http2_cleartext"),
])
def test_http2_settings_refused_like_gunicorn(tmp_path, args, why):
    g, c = both(tmp_path, args + ["cfapp:app"])
    assert g.returncode != 0 and c.returncode != 0
    assert why in c.stderr
