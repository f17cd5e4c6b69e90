"""HUP re-reads the config file and applies raw_env again, as gunicorn's reload does."""
import signal

import server as srv

APP = '''
import os

def app(environ, start_response):
    body = os.environ.get("CU_HUP_VALUE", "unset").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def test_hup_applies_new_raw_env(make_server, tmp_path):
    (tmp_path / "hupenv.py").write_text(APP)
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("raw_env = ['CU_HUP_VALUE=first']\n")
    s = make_server("hupenv:app", ["-c", str(conf)], cwd=str(tmp_path), pythonpath=str(tmp_path))
    assert s.request("GET", "/").body == b"first"
    (old,) = s.wait_workers(1)
    conf.write_text("raw_env = ['CU_HUP_VALUE=second']\n")
    s.signal(signal.SIGHUP)
    (new,) = s.wait_workers(1, exclude=[old], timeout=15)
    assert srv.wait_until(lambda: s.request("GET", "/").body == b"second", 10)
