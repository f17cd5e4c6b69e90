"""WSGI (PEP 3333) details as an application sees them."""
import json
import os

import pytest

from server import HTTPReader, build_request, chunked


def _environ(server, path="/environ", method="GET", headers=None, body=b"", raw=None):
    r = server.request(method, path, headers=headers, body=body, raw=raw)
    assert r.status == 200, r
    return json.loads(r.body)


def test_environ_basic_keys(app_server):
    env = _environ(app_server, "/environ?a=1&b=%20x", method="POST",
                   headers=[("Content-Type", "text/x-test"), ("X-Custom-Thing", "v1")],
                   body=b"payload")
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["RAW_URI"] == "/environ?a=1&b=%20x"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(app_server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multiprocess"] in (True, False)
    assert env["wsgi.run_once"] is False
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_X_CUSTOM_THING"] == "v1"
    assert env["HTTP_HOST"] == "localhost"
    assert env["_body"] == "payload"
    assert env["wsgi.errors"] != "<NoneType>"
    assert env["wsgi.input"] != "<NoneType>"
    assert env["SERVER_SOFTWARE"]


def test_environ_chunked_input_terminated(app_server):
    raw = build_request("POST", "/environ", [("Transfer-Encoding", "chunked")]) + \
        chunked(b"abcdef", 2)
    env = _environ(app_server, raw=raw)
    assert env["wsgi.input_terminated"] is True
    assert env["_body"] == "abcdef"
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", None)
    assert env["HTTP_TRANSFER_ENCODING"] == "chunked"


def test_path_info_percent_decoded_latin1(app_server):
    # %C3%A9 is UTF-8 'e-acute': PEP 3333 wants the raw bytes as latin-1 code points
    env = _environ(app_server, raw=build_request("GET", "/environ/caf%C3%A9/a%2Fb%20c?x=%C3%A9"))
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9/a/b c"
    assert env["QUERY_STRING"] == "x=%C3%A9"
    assert env["RAW_URI"] == "/environ/caf%C3%A9/a%2Fb%20c?x=%C3%A9"


def test_absolute_form_uri(app_server):
    env = _environ(app_server, raw=build_request("GET", "http://example.com/environ?z=9"))
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "z=9"


def test_fragment_not_in_path(app_server):
    env = _environ(app_server, raw=build_request("GET", "/environ?a=b#frag"))
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=b"


def test_repeated_headers_joined(app_server):
    env = _environ(app_server, headers=[("X-Multi", "a"), ("X-Multi", "b"),
                                        ("x-multi", "c")])
    assert env["HTTP_X_MULTI"] == "a,b,c"


def test_underscore_headers_dropped_by_default(app_server):
    env = _environ(app_server, headers=[("X_Forwarded_Evil", "1"), ("X-Good", "2")])
    assert env["HTTP_X_GOOD"] == "2"
    assert "HTTP_X_FORWARDED_EVIL" not in env


def test_script_name_from_env(make_server):
    s = make_server("testapp:app", env={"SCRIPT_NAME": "/mount"})
    r = s.request("GET", "/mount/environ?q=1")
    assert r.status == 200
    env = json.loads(r.body)
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/environ"
    assert env["RAW_URI"] == "/mount/environ?q=1"


def test_http10_protocol(app_server):
    env = _environ(app_server, raw=build_request("GET", "/environ", version="HTTP/1.0"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


BODY = b"line one\nline two\n\nlast line without newline"


@pytest.mark.parametrize("framing", ["cl", "chunked"])
@pytest.mark.parametrize("mode,expected", [
    ("read", [BODY.decode()]),
    ("readn", None),
    ("readline", ["line one\n", "line two\n", "\n", "last line without newline"]),
    ("readlines", ["line one\n", "line two\n", "\n", "last line without newline"]),
    ("iter", ["line one\n", "line two\n", "\n", "last line without newline"]),
    ("readline_size", None),
])
def test_wsgi_input_methods(app_server, framing, mode, expected):
    if framing == "cl":
        raw = build_request("POST", "/input?mode=%s&n=4" % mode, body=BODY)
    else:
        raw = build_request("POST", "/input?mode=%s&n=4" % mode,
                            [("Transfer-Encoding", "chunked")]) + chunked(BODY, 5)
    r = app_server.request(raw=raw)
    assert r.status == 200, r
    got = json.loads(r.body)
    if mode == "readn":
        assert all(len(p) == 4 for p in got[:-1]) and 0 < len(got[-1]) <= 4
        assert "".join(got) == BODY.decode()
    elif mode == "readline_size":
        assert all(len(p) <= 4 for p in got)
        assert "".join(got) == BODY.decode()
        # a size-limited readline still stops at newlines
        assert "line one\n" == "".join(got[:3])
    else:
        assert got == expected


def test_write_callable(app_server):
    r = app_server.request("GET", "/write")
    assert r.status == 200
    assert r.body == b"written-by-write-and-returned"


def test_iterable_close_called(app_server, tmp_file):
    r = app_server.request("GET", "/close?file=%s&tag=normal" % tmp_file)
    assert r.status == 200 and r.body == b"abc"
    # close() runs after the response is sent; poll for it
    from server import wait_until
    assert wait_until(lambda: os.path.exists(tmp_file)
                      and "closed normal" in open(tmp_file).read(), 5)


def test_iterable_close_called_on_iteration_error(app_server, tmp_file):
    s = app_server.connect()
    try:
        s.sendall(build_request("GET", "/close?file=%s&tag=failed&fail_at=1" % tmp_file))
        from server import read_all_until_close
        read_all_until_close(s, 5)
    finally:
        s.close()
    from server import wait_until
    assert wait_until(lambda: os.path.exists(tmp_file)
                      and "closed failed" in open(tmp_file).read(), 5)


def test_iterable_close_called_on_head(app_server, tmp_file):
    r = app_server.request("HEAD", "/close?file=%s&tag=head" % tmp_file)
    assert r.status == 200
    from server import wait_until
    assert wait_until(lambda: os.path.exists(tmp_file)
                      and "closed head" in open(tmp_file).read(), 5)


def test_iterable_close_called_on_client_disconnect(app_server, tmp_file):
    s = app_server.connect()
    s.sendall(build_request("GET", "/close?file=%s&tag=gone" % tmp_file))
    s.close()
    from server import wait_until
    assert wait_until(lambda: os.path.exists(tmp_file)
                      and "closed gone" in open(tmp_file).read(), 5)


@pytest.mark.parametrize("cl", ["0", "1"])
@pytest.mark.parametrize("size", [0, 1, 100000, 3 * 1024 * 1024 + 17])
def test_file_wrapper_serves_exact_bytes(app_server, tmp_path, cl, size):
    p = tmp_path / "payload.bin"
    data = os.urandom(size)
    p.write_bytes(data)
    s = app_server.connect()
    try:
        rd = HTTPReader(s)
        s.sendall(build_request("GET", "/file_wrapper?file=%s&cl=%s" % (p, cl)))
        r = rd.read_response()
        assert r.status == 200
        assert r.body == data
        # connection still usable: framing was right
        s.sendall(build_request("GET", "/"))
        if cl == "1" or (r.header("Transfer-Encoding") or "").lower() == "chunked":
            assert rd.read_response().body == b"Hello, World!"
    finally:
        s.close()


def test_wsgi_errors_and_stdout_reach_logs(app_server):
    off = app_server.log_offset()
    r = app_server.request("GET", "/print")
    assert r.status == 200
    # print() goes to the process stdout (gunicorn leaves sys.stdout alone)
    app_server.wait_for_log(r"printed by app", source="stdout", timeout=5)
    assert off >= 0
