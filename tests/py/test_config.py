"""_config: gunicorn.conf.py loading and value conversion, against gunicorn 27's own
validators, and the vtype numbering shared with C (config/config.h)."""
import os
import re

import pytest

import _config
from gunicorn import config as gconfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_vtype_numbers_match_config_h():
    with open(os.path.join(REPO, "src", "config", "config.h")) as f:
        text = f.read()
    body = re.search(r"enum cu_config_vtype \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"CU_CV_([A-Z_]+)\s*[,=]", body)
    mine = {n: getattr(_config, n) for n in
            ("INT", "BOOL", "STR", "LIST", "ADDRS", "CHOICE", "CLASS", "HOOK", "FIXED",
             "NOT_YET", "DICT")}
    assert names == sorted(mine, key=mine.get)
    assert [mine[n] for n in names] == list(range(len(names)))


def _gunicorn_hook_error(name, v):
    try:
        gconfig.KNOWN_SETTINGS[[s.name for s in gconfig.KNOWN_SETTINGS].index(name)] \
            .validator(v)
    except TypeError as e:
        return str(e)
    return None


def one(a):
    pass


def two(a, b):
    pass


def three(a, b, c):
    pass


@pytest.mark.parametrize("name, value", [
    ("on_starting", one), ("on_starting", two), ("pre_fork", two), ("pre_fork", one),
    ("nworkers_changed", three), ("post_request", two), ("post_request", three),
    ("post_request", one), ("on_starting", 5), ("on_starting", "nodots"),
    ("on_starting", "os.no_such_attr"), ("on_starting", "no_such_mod_xyz.f"),
    ("worker_exit", "os.path.join"),
])
def test_hook_validation_matches_gunicorn(name, value):
    expected = _gunicorn_hook_error(name, value)
    try:
        got = _config.convert(_config.HOOK, name, value, "None")
        err = None
    except TypeError as e:
        err, got = str(e), None
    assert err == expected
    if expected is None:
        assert got[0] == "hook" and got[1] is not None


@pytest.mark.parametrize("vtype, value, expected", [
    (_config.INT, 3, ("set", "3")), (_config.INT, True, ("set", "1")),
    (_config.INT, "0x10", ("set", "0x10")), (_config.BOOL, None, ("set", "false")),
    (_config.BOOL, True, ("set", "true")), (_config.BOOL, "yes", ("set", "yes")),
    (_config.STR, None, ("none",)), (_config.STR, "x", ("set", "x")),
    (_config.LIST, "a", ("list", ["a"])), (_config.LIST, ["a", "b"], ("list", ["a", "b"])),
    (_config.LIST, [], ("list", [])), (_config.FIXED, "anything", ("skip",)),
])
def test_convert(vtype, value, expected):
    assert _config.convert(vtype, "x", value, "None") == expected


@pytest.mark.parametrize("vtype, value, message", [
    (_config.INT, 1.5, "int() can't convert non-string with explicit base"),
    (_config.BOOL, 3, "Invalid type for casting: 3"),
    (_config.STR, 5, "Not a string: 5"),
    (_config.LIST, [1], "Not a string: 1"),
    (_config.DICT, [], "Value is not a dictionary: [] "),
])
def test_convert_refusals_word_like_gunicorn(vtype, value, message):
    with pytest.raises(TypeError) as e:
        _config.convert(vtype, "x", value, "None")
    assert str(e.value) == message


def test_not_yet_settings_at_their_default_are_fine():
    assert _config.convert(_config.NOT_YET, "x", None, "None") == ("notyet", False)
    assert _config.convert(_config.NOT_YET, "x", "a, b", "['a', 'b']") == ("notyet", False)
    assert _config.convert(_config.NOT_YET, "x", 7, "5") == ("notyet", True)


def test_worker_class_objects_are_refused():
    class MyWorker:
        pass
    with pytest.raises(TypeError, match="not Python worker classes"):
        _config.convert(_config.CLASS, "worker_class", MyWorker, "sync")
    assert _config.convert(_config.CLASS, "worker_class", lambda: "gthread", "sync") == \
        ("set", "gthread")


def test_load_a_file_and_a_missing_one(tmp_path, capsys):
    f = tmp_path / "c.py"
    f.write_text("workers = 3\nbind = ['127.0.0.1:1']\n")
    ns = _config.load(str(f))
    assert ns["workers"] == 3 and ns["bind"] == ["127.0.0.1:1"]
    assert _config.load("file:" + str(f))["workers"] == 3
    with pytest.raises(_config.Fail) as e:
        _config.load(str(tmp_path / "nope.py"))
    assert e.value.args == (1,)
    assert "doesn't exist" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1/0\n")
    with pytest.raises(_config.Fail):
        _config.load(str(bad))
    err = capsys.readouterr().err
    assert "Failed to read config file: %s" % bad in err and "ZeroDivisionError" in err


def test_dict_settings_are_kept_for_the_logging_bridge():
    d = {"version": 1}
    assert _config.convert(_config.DICT, "logconfig_dict", d, "{}") == ("set", str(d))
    assert _config.KEPT["logconfig_dict"] is d
    assert _config.convert(_config.DICT, "logconfig_dict", {}, "{}") == ("none",)
    assert "logconfig_dict" not in _config.KEPT
