"""_reload (the files --reload watches, the --spew tracer), _paste (its refusals) and
_pylog (gunicorn's default logging config)."""
import os
import sys

import pytest

import _paste
import _pylog
import _reload


def test_reload_files_lists_loaded_modules_and_extra_globs(tmp_path):
    (tmp_path / "a.html").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text("x")
    files = _reload.files([str(tmp_path / "**" / "*.html"), str(tmp_path / "plain.txt")])
    assert os.path.abspath(_reload.__file__) in files
    assert str(tmp_path / "a.html") in files and str(tmp_path / "sub" / "b.html") in files
    assert str(tmp_path / "plain.txt") in files  # a plain path is watched even if missing
    assert files == sorted(set(files))
    assert not any(f.endswith(".pyc") for f in files)


def test_spew_prints_each_line(capsys):
    def traced():
        x = 1
        return x + 1
    sys.settrace(_reload.spew)
    try:
        traced()
    finally:
        sys.settrace(None)
    out = capsys.readouterr().out
    assert "x = 1" in out and "return x + 1" in out and __name__ in out


def test_paste_refusals(tmp_path):
    import importlib.util
    try:
        have = importlib.util.find_spec("paste.deploy") is not None
    except ImportError:
        have = False
    with pytest.raises(_paste.Missing) as e:
        _paste.load(str(tmp_path / "nope.ini"), [])
    assert ("not found" in str(e.value)) if have else ("PasteDeploy" in str(e.value))


def test_pylog_defaults_are_gunicorns():
    from gunicorn import glogging
    assert _pylog.defaults() == glogging.CONFIG_DEFAULTS
    assert _pylog.DATEFMT == glogging.Logger.datefmt
    assert _pylog.GENERIC == glogging.CONFIG_DEFAULTS["formatters"]["generic"]["format"]


def test_paste_logging_finds_a_loggers_section(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = egg:x\n")
    assert _pylog.paste_logging(str(ini)) is None
    ini.write_text("[app:main]\nuse = egg:x\n[loggers]\nkeys = root\n")
    assert _pylog.paste_logging(str(ini) + "#main") == str(ini)
