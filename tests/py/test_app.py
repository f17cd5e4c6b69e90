"""_app.resolve: APP_MODULE resolution, message for message against gunicorn 27's
util.import_app run in the same test."""
import sys
import textwrap

import pytest

import _app
from gunicorn import util as gutil
from gunicorn.errors import AppImportError as GAppImportError

MODULE = textwrap.dedent("""
    def application(environ, start_response):
        return []
    def app(environ, start_response):
        return []
    class Box:
        inner = staticmethod(app)
    def create_app(greeting="hi", times=1):
        return app
    def needs_one(x):
        return app
    def returns_none():
        return None
    def broken_factory():
        raise TypeError("inside the factory")
    not_callable = 42
    nothing = None
""")


@pytest.fixture(scope="module", autouse=True)
def appmod(tmp_path_factory):
    d = tmp_path_factory.mktemp("apps")
    (d / "uapp.py").write_text(MODULE)
    sys.path.insert(0, str(d))
    yield d
    sys.path.remove(str(d))
    sys.modules.pop("uapp", None)


def outcome(fn, uri):
    try:
        return ("ok", fn(uri).__name__)
    except (GAppImportError, _app.AppImportError) as e:
        return ("AppImportError", str(e))
    except Exception as e:  # noqa: BLE001 - the type and message are the result
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("uri", [
    "uapp", "uapp:app", "uapp:create_app()", "uapp:create_app('x', times=2)",
    "uapp:missing", "uapp:not_callable", "uapp:nothing",
    "uapp:returns_none()", "uapp:app(", "uapp:needs_one()", "uapp:create_app(x)",
    "uapp:(lambda: 1)()", "uapp:1+1", "nosuchmodule_xyz:app",
])
def test_resolve_matches_gunicorn(uri):
    assert outcome(_app.resolve, uri) == outcome(gutil.import_app, uri)


def test_type_error_raised_inside_a_factory_propagates():
    # the factory's own TypeError is the app's error (a traceback), not a usage message
    with pytest.raises(TypeError, match="inside the factory"):
        _app.resolve("uapp:broken_factory()")


def test_a_py_path_gets_a_hint(appmod, monkeypatch):
    monkeypatch.chdir(appmod)
    with pytest.raises(ImportError, match=r"did you mean 'uapp:application'\?"):
        _app.resolve("uapp.py")


def test_where_cunicorn_departs_on_purpose():
    # dotted attributes are an extension (gunicorn: "Failed to parse ... attribute name")
    assert outcome(_app.resolve, "uapp:Box.inner") == ("ok", "app")
    assert outcome(gutil.import_app, "uapp:Box.inner")[0] == "AppImportError"
    # **{...} is refused as a non-literal argument list (gunicorn leaks a TypeError text)
    assert outcome(_app.resolve, "uapp:create_app(**{})") == \
        ("AppImportError", "Failed to parse arguments as literal values: 'create_app(**{})'")
