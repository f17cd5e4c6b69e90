"""_hooks: the objects hooks receive — the logger's formatting and the read-only cfg."""
import pytest

import _hooks


def test_log_formats_like_logging():
    got = []
    log = _hooks.Log(lambda lvl, text: got.append((lvl, text)))
    log.info("a %s b %d", "x", 2)
    log.warning("%(k)s!", {"k": "v"})
    log.error("no args %s")
    log.debug("bad %d", "str")  # a failed format keeps the message and the args
    log.critical("c")
    assert got == [(20, "a x b 2"), (30, "v!"), (40, "no args %s"),
                   (10, "bad %d ('str',)"), (50, "c")]
    assert log.warn == log.warning


def test_log_exception_appends_the_traceback():
    got = []
    log = _hooks.Log(lambda lvl, text: got.append((lvl, text)))
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed %s", 1)
    lvl, text = got[0]
    assert lvl == 40 and text.startswith("failed 1\nTraceback") and "ValueError: boom" in text


def _cfg(**over):
    values = {"proc_name": None, "default_proc_name": "app:app", "worker_class": "sync",
              "threads": 1, "bind": ["127.0.0.1:8000"], "raw_env": ["A=1", "B=x=y"],
              "certfile": None, "keyfile": None}
    values.update(over)
    return _hooks.Config(values)


def test_config_reads_like_gunicorns():
    c = _cfg()
    assert c.proc_name == "app:app" and _cfg(proc_name="p").proc_name == "p"
    assert c.worker_class_str == "sync" and _cfg(threads=3).worker_class_str == "gthread"
    assert c.env == {"A": "1", "B": "x=y"}
    assert not c.is_ssl and _cfg(certfile="c.pem").is_ssl
    assert c.settings["threads"].get() == 1
    with pytest.raises(AttributeError, match="No configuration setting for: nope"):
        c.nope
    with pytest.raises(AttributeError, match="Invalid access!"):
        c.threads = 2
    assert "threads" in str(c) and "worker_class" in str(c)


def test_lit():
    assert _hooks.lit("(1, 'a')") == (1, "a") and _hooks.lit("not python") == "not python"
