"""Malformed requests get gunicorn's status codes, the connection is closed, and the same
worker keeps serving."""
import pytest

from server import HTTPReader, build_request, read_all_until_close


@pytest.fixture(scope="module")
def limited_server():
    import server as srv
    s = srv.Server("testapp:app", ["--limit-request-fields", "10",
                                   "--limit-request-field_size", "200"])
    s.start()
    yield s
    s.close()


def _pid(server):
    r = server.request("GET", "/pid")
    assert r.status == 200
    return int(r.body)


def _send_bad(server, raw):
    """Send raw bytes; return (status or None, closed)."""
    s = server.connect()
    try:
        s.sendall(raw)
        data, closed = read_all_until_close(s, timeout=5)
    finally:
        s.close()
    status = None
    if data:
        assert data.startswith(b"HTTP/1."), data[:200]
        status = int(data.split(b" ", 2)[1])
        # exactly one response: nothing after its body
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                assert len(body) == int(v), "extra bytes after error response: %r" % data
    return status, closed


CASES = [
    ("garbage_request_line", b"GARBAGE\r\n\r\n", (400,), None),
    ("bad_method_chars", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", (400,), None),
    ("bad_version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", (400,), None),
    ("space_in_header_name", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", (400,),
     None),
    ("header_without_colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", (400,),
     None),
    ("nul_in_header_value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", (400,),
     None),
    ("bad_content_length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
     (400,), None),
    ("duplicate_content_length",
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     (400,), None),
    ("te_chunked_then_identity",
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", (400,),
     None),
    ("bad_chunk_size",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
     (400,), None),
    # gunicorn <= 23 answered 400 for LimitRequestLine, newer releases 414
    ("request_line_too_long",
     b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (400, 414), None),
    ("unsupported_transfer_coding",
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n", (501,), None),
    ("bad_expect",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: 999-whatever\r\n\r\nx",
     (417,), None),
    ("too_many_headers",
     b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20)) + b"\r\n",
     (431,), "limited"),
    ("header_too_large",
     b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 400 + b"\r\n\r\n", (431,), "limited"),
]


@pytest.mark.parametrize("name,raw,statuses,which", CASES, ids=[c[0] for c in CASES])
def test_bad_request_status_and_close(app_server, limited_server, name, raw, statuses, which):
    server = limited_server if which == "limited" else app_server
    before = _pid(server)
    status, closed = _send_bad(server, raw)
    assert status in statuses, "%s: got status %r, expected one of %s\n%s" % (
        name, status, statuses, server.describe())
    assert closed, "%s: connection not closed after the error response" % name
    # the worker survived and serves the next request
    after = _pid(server)
    assert after == before, "worker changed (%d -> %d) after a bad request" % (before, after)
    assert server.request("GET", "/").body == b"Hello, World!"


def test_limits_do_not_reject_normal_requests(limited_server):
    r = limited_server.request("GET", "/", headers=[("X-H%d" % i, "v") for i in range(5)])
    assert r.status == 200


def test_bad_request_after_good_on_same_connection(app_server):
    s = app_server.connect()
    try:
        s.sendall(build_request("GET", "/") + b"BROKEN LINE\r\n\r\n")
        rd = HTTPReader(s, timeout=5)
        r1 = rd.read_response()
        assert r1.status == 200 and r1.body == b"Hello, World!"
        r2 = rd.read_response()
        assert r2.status == 400
        assert rd.is_closed(3)
    finally:
        s.close()


def test_client_disconnect_mid_body_does_not_kill_worker(app_server):
    before = _pid(app_server)
    s = app_server.connect()
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
    s.close()
    assert app_server.request("GET", "/").status == 200
    assert _pid(app_server) == before


def test_bad_request_logged_as_warning(app_server):
    off = app_server.log_offset()
    status, _ = _send_bad(app_server, b"GARBAGE\r\n\r\n")
    assert status == 400
    # gunicorn: log.warning("Invalid request from ip={ip}: {error}")
    app_server.wait_for_log(r"\[WARNING\] Invalid request from ip=127\.0\.0\.1: ", since=off,
                            timeout=5)
