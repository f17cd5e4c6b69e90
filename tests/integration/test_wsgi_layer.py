"""The WSGI layer (src/py/): environ, wsgi.input, start_response, write(), iterables,
file_wrapper, close(), error handling and app loading, over real sockets."""
import hashlib
import json
import os
import re

import pytest

from server import HTTPReader, Server, build_request, read_all_until_close, wait_until

APP = "wsgi_app:app"


@pytest.fixture(scope="module")
def wsgi_server():
    s = Server(APP, ["--keep-alive", "5"])
    s.start()
    yield s
    s.close()


def get_json(server, path, **kw):
    r = server.request(path=path, **kw)
    assert r.status == 200, (r.status, r.body[:300], server.log()[-2000:])
    return json.loads(r.body)


# ------------------------------------------------------------------ environ

def test_environ_basics(wsgi_server):
    env = get_json(wsgi_server, "/environ/x%20y?a=1&b=%41",
                   headers=[("X-Foo", "1"), ("X-Foo", "2"), ("Content-Type", "text/x"),
                            ("User-Agent", "ua"), ("X-Custom-Thing", "c")])
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/environ/x y"
    assert env["RAW_URI"] == "/environ/x%20y?a=1&b=%41"
    assert env["QUERY_STRING"] == "a=1&b=%41"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SCRIPT_NAME"] == ""
    assert env["HTTP_X_FOO"] == "1,2"
    assert env["CONTENT_TYPE"] == "text/x"
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_USER_AGENT"] == "ua"
    assert env["HTTP_X_CUSTOM_THING"] == "c"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(wsgi_server.port)
    # gunicorn's prefix (apps test for it), cunicorn named in the comment
    assert re.fullmatch(r"gunicorn/27\.\d+\.\d+ \(cunicorn \S+\)", env["SERVER_SOFTWARE"])
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["has_file_wrapper_callable"] is True


def test_environ_repeated_single_char_values_are_joined(wsgi_server):
    env = get_json(wsgi_server, "/environ", headers=[("X-A", "1"), ("X-A", "1"), ("X-A", "")])
    assert env["HTTP_X_A"] == "1,1,"


def test_environ_latin1_path_and_headers(wsgi_server):
    env = get_json(wsgi_server, "/environ/%C3%A9", headers=[("X-Bin", "caf\xe9")])
    # PEP 3333: the decoded bytes, read as latin-1.
    assert env["PATH_INFO"] == "/environ/\xc3\xa9"
    assert env["HTTP_X_BIN"] == "caf\xe9"


def test_environ_http10_and_lowercase_host(wsgi_server):
    env = get_json(wsgi_server, "/environ", version="HTTP/1.0", headers=[("host", "h:1")])
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["HTTP_HOST"] == "h:1"
    # TCP listener: SERVER_NAME/PORT come from the bound address, not Host (gunicorn).
    assert env["SERVER_NAME"] == "127.0.0.1"


def test_environ_secure_scheme_from_trusted_proxy(wsgi_server):
    env = get_json(wsgi_server, "/environ", headers=[("X-Forwarded-Proto", "https")])
    assert env["wsgi.url_scheme"] == "https"
    env = get_json(wsgi_server, "/environ", headers=[("X-Forwarded-Ssl", "on")])
    assert env["wsgi.url_scheme"] == "https"
    env = get_json(wsgi_server, "/environ", headers=[("X-Forwarded-Proto", "http")])
    assert env["wsgi.url_scheme"] == "http"


def test_contradictory_scheme_headers_400(wsgi_server):
    r = wsgi_server.request(path="/environ", headers=[("X-Forwarded-Proto", "https"),
                                                      ("X-Forwarded-Ssl", "off")])
    assert r.status == 400


def test_untrusted_peer_scheme_headers_ignored(make_server):
    s = make_server(APP, ["--forwarded-allow-ips", "10.9.9.9"])
    env = get_json(s, "/environ", headers=[("X-Forwarded-Proto", "https")])
    assert env["wsgi.url_scheme"] == "http"


def test_script_name_from_environment(make_server):
    s = make_server(APP, env={"SCRIPT_NAME": "/prefix"})
    env = get_json(s, "/prefix/environ/a")
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == "/environ/a"
    r = s.request(path="/other")
    assert r.status == 500


def test_multiprocess_flag(make_server):
    s = make_server(APP, workers=2)
    assert get_json(s, "/environ")["wsgi.multiprocess"] is True


def test_unix_socket_server_name(make_server, tmp_path):
    path = str(tmp_path / "s.sock")
    s = make_server(APP, binds=["unix:" + path])
    env = get_json(s, "/environ", headers=[("Host", "example.com")])
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "80"
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in env
    env = get_json(s, "/environ", headers=[("Host", "example.com:8443")])
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "8443")


# ------------------------------------------------------------------ wsgi.input

BODY = b"".join(b"line %d %s\n" % (i, b"x" * (i % 97)) for i in range(3000)) + b"tail"


@pytest.mark.parametrize("mode", ["all", "none", "n", "line", "lines", "iter", "mixed"])
@pytest.mark.parametrize("chunked", [False, True])
def test_input_modes(wsgi_server, mode, chunked):
    from server import chunked as enc
    if chunked:
        headers = [("Transfer-Encoding", "chunked")]
        body = enc(BODY, 1000)
    else:
        headers = [("Content-Length", str(len(BODY)))]
        body = BODY
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("POST", "/read?mode=%s&size=777" % mode, headers, body))
        r, _ = HTTPReader(s).read_final_response()
    finally:
        s.close()
    assert r.status == 200, r.body
    out = json.loads(r.body)
    assert out["len"] == len(BODY)
    assert out["md5"] == hashlib.md5(BODY).hexdigest()
    assert out["eof"] == ""
    if mode == "line":
        assert out["pieces"] == 3001


def test_input_readline_size_limit(wsgi_server):
    body = b"a" * 50 + b"\n" + b"b" * 10
    out = get_json(wsgi_server, "/read?mode=line&size=16", method="POST", body=body)
    assert out["len"] == len(body)
    assert out["pieces"] == 4 + 1  # 16+16+16+3 ("...a\n") then 10 b's


def test_input_expect_continue(wsgi_server):
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("POST", "/read?mode=all", [("Expect", "100-continue"),
                                                            ("Content-Length", "5")], b""))
        reader = HTTPReader(s)
        interim = reader.read_response()
        assert interim.status == 100
        s.sendall(b"hello")
        r = reader.read_response()
        assert r.status == 200
        assert json.loads(r.body)["len"] == 5
    finally:
        s.close()


def test_input_large_upload_streams(wsgi_server):
    """64 MiB through read(64K): the worker must not buffer it."""
    from server import vmrss_kib
    total = 64 * 1024 * 1024
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("POST", "/read?mode=n&size=65536",
                                [("Content-Length", str(total))], b""))
        block = b"z" * (1 << 20)
        h = hashlib.md5()
        for _ in range(total // len(block)):
            s.sendall(block)
            h.update(block)
        r, _ = HTTPReader(s, 60).read_final_response()
    finally:
        s.close()
    out = json.loads(r.body)
    assert out["len"] == total and out["md5"] == h.hexdigest()
    for pid in wsgi_server.worker_pids():
        rss = vmrss_kib(pid)
        assert rss is None or rss < 300 * 1024


def test_leaked_input_and_start_response_fail_cleanly(wsgi_server):
    get_json(wsgi_server, "/leak_input")
    out = get_json(wsgi_server, "/use_leaked")
    assert out == {"read": "ValueError", "start_response": "RuntimeError"}


# ------------------------------------------------------------------ responses

def test_legacy_write_callable(wsgi_server):
    r = wsgi_server.request(path="/write")
    assert r.status == 200
    assert r.body == b"hello world!"


def test_generator_response(wsgi_server):
    r = wsgi_server.request(path="/gen?n=4")
    assert r.body == b"chunk0;chunk1;chunk2;chunk3;"


@pytest.mark.parametrize("query,expect_len", [
    ("size=100000", 100000),
    ("size=1000", 1000),
    ("size=100000&offset=1000", 99000),
    ("size=100000&cl=5000", 5000),
    ("size=50000&kind=bytesio", 50000),
])
def test_file_wrapper(wsgi_server, query, expect_len):
    r = wsgi_server.request(path="/filewrapper?" + query)
    assert r.status == 200
    data = bytes(range(256)) * (400000 // 256 + 1)
    offset = 1000 if "offset" in query else 0
    assert len(r.body) == expect_len
    assert r.body == data[offset:offset + expect_len]


def test_close_called_on_success_and_failure(wsgi_server, tmp_path):
    path = str(tmp_path / "closed.txt")

    def marks():
        # close() runs after the response went out (as in gunicorn): poll for it.
        return os.path.exists(path) and open(path).read().count("closed\n")
    r = wsgi_server.request(path="/close?path=" + path)
    assert r.body == b"abc"
    assert wait_until(lambda: marks() == 1, 5)
    r = wsgi_server.request(path="/close?fail_at=0&path=" + path)
    assert r.status == 500
    assert wait_until(lambda: marks() == 2, 5)


def test_no_content_response(wsgi_server):
    r = wsgi_server.request(path="/no_content")
    assert r.status == 204
    assert r.body == b""


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("route", ["error_before", "not_bytes", "bad_header_name",
                                   "bad_header_value", "bad_status", "non_str_header",
                                   "twice", "no_start", "system_exit"])
def test_app_errors_answer_500(wsgi_server, route):
    off = wsgi_server.log_offset()
    r = wsgi_server.request(path="/" + route)
    assert r.status == 500
    wsgi_server.wait_for_log(r"Error handling request GET /%s" % route, since=off)
    # The worker survived.
    assert wsgi_server.request(path="/gen?n=1").status == 200


def test_header_injection_never_reaches_the_wire(wsgi_server):
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("GET", "/bad_header_value"))
        raw, _ = read_all_until_close(s)
    finally:
        s.close()
    assert b"Injected" not in raw


def test_error_after_head_closes_connection(wsgi_server):
    off = wsgi_server.log_offset()
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("GET", "/error_after"))
        raw, closed = read_all_until_close(s)
    finally:
        s.close()
    assert closed
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"500" not in raw.split(b"\r\n", 1)[0]
    wsgi_server.wait_for_log(r"Error handling request\n", since=off)
    assert wsgi_server.request(path="/gen?n=1").status == 200


def test_exc_info_replaces_response_before_head(wsgi_server):
    r = wsgi_server.request(path="/exc_info_before")
    assert r.status == 503
    assert r.body == b"replaced"


def test_exc_info_after_head_reraises(wsgi_server):
    off = wsgi_server.log_offset()
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("GET", "/exc_info_after"))
        raw, closed = read_all_until_close(s)
    finally:
        s.close()
    assert closed
    assert raw.startswith(b"HTTP/1.1 200")
    assert b"never" not in raw
    wsgi_server.wait_for_log(r"ValueError: too late", since=off)


def test_wsgi_errors_goes_to_error_log(wsgi_server):
    off = wsgi_server.log_offset()
    get_json(wsgi_server, "/errors?tag=t1")
    wsgi_server.wait_for_log(r"wsgi-errors-marker t1\nline-a\nline-b\n", since=off)


# ------------------------------------------------------------------ app loading

@pytest.mark.parametrize("uri,body", [
    ("wsgi_app", b"default-application"),
    ("wsgi_app:factory()", b"hello"),
    ("wsgi_app:factory('hi', times=2)", b"hihi"),
    ("wsgi_app:Holder.inner.app", b"dotted"),
])
def test_app_uri_forms(make_server, uri, body):
    s = make_server(uri)
    r = s.request(path="/")
    assert r.status == 200
    assert r.body == body


@pytest.mark.parametrize("uri,message", [
    ("wsgi_app:missing", "Failed to find attribute 'missing' in 'wsgi_app'."),
    ("wsgi_app:not_callable", "Application object must be callable."),
    ("wsgi_app:factory(os.sep)", "Failed to parse arguments as literal values"),
    ("wsgi_app:factory(nope=1)", "unexpected keyword argument"),
    ("wsgi_app:(1+", "Failed to parse '(1+' as an attribute name or function call."),
    ("no_such_module_xyz:app", "No module named 'no_such_module_xyz'"),
])
def test_app_load_errors(make_server, uri, message):
    s = make_server(uri, start=False, ready=False)
    s.start()
    rc = s.wait_exit(timeout=15)
    assert message in s.log(), s.log()
    assert rc != 0


def test_bad_chunked_framing_mid_body_is_not_an_app_error(wsgi_server):
    """The app's read() hits invalid chunk framing after a large valid prefix: the client
    gets 400 (or a closed connection), and nothing is logged as an application error."""
    from server import chunked as enc
    off = wsgi_server.log_offset()
    good = enc(b"q" * (512 * 1024), 65536)[:-len(b"0\r\n\r\n")]
    s = wsgi_server.connect()
    try:
        s.sendall(build_request("POST", "/read?mode=all", [("Transfer-Encoding", "chunked")],
                                good + b"zz\r\nnope\r\n0\r\n\r\n"))
        raw, closed = read_all_until_close(s)
    finally:
        s.close()
    assert raw == b"" or raw.startswith(b"HTTP/1.1 400"), raw[:200]
    assert closed
    assert "Error handling request" not in wsgi_server.log()[off:]
