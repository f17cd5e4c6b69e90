"""Application exceptions: 500 before headers, closed connection after, worker survives."""
from server import HTTPReader, build_request, read_all_until_close


def _pid(server):
    return int(server.request("GET", "/pid").body)


def test_exception_before_start_response_is_500(app_server):
    before = _pid(app_server)
    off = app_server.log_offset()
    r = app_server.request("GET", "/exc_before")
    assert r.status == 500
    app_server.wait_for_log(r"Traceback \(most recent call last\)", since=off, timeout=5)
    app_server.wait_for_log(r"RuntimeError: boom before start_response", since=off,
                            timeout=5)
    assert _pid(app_server) == before


def test_exception_after_body_started_closes_connection(app_server):
    before = _pid(app_server)
    off = app_server.log_offset()
    s = app_server.connect()
    try:
        s.sendall(build_request("GET", "/exc_after"))
        data, closed = read_all_until_close(s, timeout=5)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"first part" in data
    assert closed, "connection not closed after the app failed mid-body"
    # a chunked response must not be terminated as if complete
    assert not data.endswith(b"0\r\n\r\n"), "truncated body was framed as complete"
    app_server.wait_for_log(r"RuntimeError: boom after body started", since=off, timeout=5)
    assert _pid(app_server) == before
    assert app_server.request("GET", "/").status == 200


def test_exc_info_replaces_status_before_headers_sent(app_server):
    r = app_server.request("GET", "/exc_info")
    assert r.status == 503
    assert r.body == b"error page"


def test_exc_info_after_headers_sent_reraises(app_server):
    before = _pid(app_server)
    off = app_server.log_offset()
    s = app_server.connect()
    try:
        s.sendall(build_request("GET", "/exc_info_after"))
        data, closed = read_all_until_close(s, timeout=5)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"sent" in data
    assert b"unreachable" not in data
    assert closed
    app_server.wait_for_log(r"ValueError: too late", since=off, timeout=5)
    assert _pid(app_server) == before


def test_error_in_keepalive_connection_then_next_connection_ok(app_server):
    s = app_server.connect()
    try:
        rd = HTTPReader(s)
        s.sendall(build_request("GET", "/exc_before"))
        r = rd.read_response()
        assert r.status == 500
    finally:
        s.close()
    assert app_server.request("GET", "/").body == b"Hello, World!"
