"""APP_MODULE forms and import failures."""
import re

import pytest

import server as srv


@pytest.mark.parametrize("uri,body", [
    ("testapp:app", b"Hello, World!"),
    ("testapp", b"from application"),
    ("testapp:application", b"from application"),
    ("testapp:create_app()", b"factory"),
    ("testapp:create_app('hi', times=3)", b"hihihi"),
])
def test_app_uri_forms(make_server, uri, body):
    s = make_server(uri)
    r = s.request("GET", "/")
    assert r.status == 200
    assert r.body == body


def test_import_error_exits_nonzero_with_traceback(make_server):
    s = make_server("broken:app", ready=False)
    code = s.wait_exit(timeout=15)
    assert code is not None, "master still running 15s after an import error (respawn loop?)\n" \
        + s.describe()
    assert code != 0
    log = s.log()
    assert "Traceback" in log
    assert re.search(r"ModuleNotFoundError: No module named "
                     r"'this_module_does_not_exist_cunicorn'", log), log
    # bounded respawning: a handful of boot attempts at most
    assert len(re.findall(r"Booting worker", log)) <= 5, log


def test_missing_module_exits_nonzero(make_server):
    s = make_server("no_such_module_xyz:app", ready=False)
    code = s.wait_exit(timeout=15)
    assert code is not None and code != 0, s.describe()
    assert "no_such_module_xyz" in s.log()


def test_missing_attribute_exits_nonzero(make_server):
    s = make_server("testapp:does_not_exist", ready=False)
    code = s.wait_exit(timeout=15)
    assert code is not None and code != 0, s.describe()
    assert "does_not_exist" in s.log()


def test_chdir_option(make_server):
    s = make_server("hello:app", ["--chdir", srv.EXAMPLES], pythonpath=None, cwd="/")
    assert s.request("GET", "/").body == b"Hello, World!"
