"""Limits and bad input end to end: oversized request line, too many or too large header
fields, huge bodies with and without a declared length, invalid UTF-8 and latin-1 edges in
paths, NUL bytes. Each gets the documented status (docs/security.md) and the worker keeps
serving: same worker pid, next request OK."""
import hashlib
import json
import re
import socket
import threading

import pytest

import server as srv
from server import HTTPReader, build_request, chunked, read_all_until_close


@pytest.fixture(scope="module", params=["sync", "gthread"])
def server(request):
    args = ["--keep-alive", "5"]
    if request.param == "gthread":
        args += ["-k", "gthread", "--threads", "4"]
    s = srv.Server("testapp:app", args)
    s.start()
    yield s
    s.close()


def pid_of(server):
    r = server.request("GET", "/pid")
    assert r.status == 200
    return int(r.body)


def still_serving(server, pid):
    assert pid_of(server) == pid, "the worker changed:\n" + server.describe()
    r = server.request("GET", "/")
    assert r.status == 200 and r.body == b"Hello, World!"


def send_raw(server, raw, timeout=10.0):
    """Send raw bytes, read until the server closes. Returns (status or None, data, closed)."""
    s = server.connect(timeout=timeout)
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        data, closed = read_all_until_close(s, timeout=timeout)
    finally:
        s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None
    return status, data, closed


def environ_of(server, target, headers=None, body=b""):
    raw = build_request("POST" if body else "GET", target, headers, body)
    s = server.connect()
    try:
        s.sendall(raw)
        r = HTTPReader(s).read_response()
    finally:
        s.close()
    assert r.status == 200, r
    return json.loads(r.body)


# ---------------------------------------------------------------- the head

HEAD_LIMITS = [
    # name, raw, status (None = served 200)
    ("request_line_at_limit", b"GET /?" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
     None),
    ("request_line_too_long", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("request_line_huge", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    # 100 fields with the Connection: close the test adds
    ("fields_at_limit", b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(98)) + b"\r\n", None),
    ("too_many_fields", b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
    ("endless_fields", b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)), 431),
    ("field_at_limit", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8000 + b"\r\n\r\n",
     None),
    ("field_too_large", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
     431),
    ("field_name_too_large", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X" * 9000 + b": v\r\n\r\n",
     431),
    ("field_endless_value", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 300000, 431),
    ("large_head_within_limits", b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(90)) + b"\r\n", None),
    ("cl_overflow", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808"
     b"\r\n\r\nabc", 400),
    ("cl_huge_digits", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000
     + b"\r\n\r\nabc", 400),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("nul_in_field_value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("nul_in_field_name", b"GET / HTTP/1.1\r\nHost: x\r\nX\x00A: b\r\n\r\n", 400),
    ("nul_before_request", b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("only_nuls", b"\x00" * 100 + b"\r\n\r\n", 400),
    ("binary_garbage", bytes(range(256)) * 4 + b"\r\n\r\n", 400),
]


@pytest.mark.parametrize("name,raw,status", HEAD_LIMITS, ids=[c[0] for c in HEAD_LIMITS])
def test_head_limits(server, name, raw, status):
    pid = pid_of(server)
    got, data, closed = send_raw(server, raw if status else raw.replace(
        b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1))
    if status is None:
        assert got == 200, "%s: %r" % (name, data[:300])
    else:
        assert got == status, "%s: expected %d, got %r\n%s" % (name, status, data[:300],
                                                              server.describe()[-2000:])
        # exactly one response, then the close (the page may quote the request line)
        assert len(re.findall(rb"(?m)^HTTP/1\.\d \d{3} ", data)) == 1, data[:500]
    assert closed
    still_serving(server, pid)


# ---------------------------------------------------------------- bodies

def test_body_without_declared_length_is_not_a_body(server):
    """No Content-Length and no Transfer-Encoding: no body. What follows is the next
    request (here not a valid one: 400 and close)."""
    pid = pid_of(server)
    s = server.connect()
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\nthis is not a body\r\n\r\n")
        rd = HTTPReader(s, timeout=5)
        r1 = rd.read_response()
        assert r1.status == 200 and r1.body == b""
        r2 = rd.read_response()
        assert r2.status == 400
        assert rd.is_closed(3)
    finally:
        s.close()
    still_serving(server, pid)


def test_http10_body_without_length(server):
    pid = pid_of(server)
    status, data, closed = send_raw(server, b"POST /echo HTTP/1.0\r\n\r\nxyz")
    assert status == 200 and data.endswith(b"\r\n\r\n"), data[-200:]
    assert closed
    still_serving(server, pid)


def test_huge_declared_length_partial_then_close(server):
    """Content-Length: 2^63-1, a few MB sent, then the client leaves."""
    pid = pid_of(server)
    s = server.connect()
    try:
        s.sendall(b"POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n")
        piece = b"z" * 65536
        for _ in range(64):
            s.sendall(piece)
    finally:
        s.close()
    still_serving(server, pid)


def test_huge_chunk_size_partial_then_close(server):
    pid = pid_of(server)
    s = server.connect()
    try:
        s.sendall(b"POST /md5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3fffffffffffffff\r\n" + b"z" * 1000000)
    finally:
        s.close()
    still_serving(server, pid)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_body_streamed_to_app(server, framing):
    """32 MiB with and without a declared length (chunked): the app reads all of it."""
    body = hashlib.sha256(b"seed").digest() * (32 * 1024 * 1024 // 32)
    want = "%s %d" % (hashlib.md5(body).hexdigest(), len(body))
    pid = pid_of(server)
    s = server.connect(timeout=30)
    try:
        if framing == "chunked":
            head = build_request("POST", "/md5", [("Transfer-Encoding", "chunked")])
            sender = threading.Thread(target=lambda: s.sendall(
                head + chunked(body, size=1 << 20)), daemon=True)
        else:
            head = build_request("POST", "/md5", [("Content-Length", str(len(body)))])
            sender = threading.Thread(target=lambda: s.sendall(head + body), daemon=True)
        sender.start()
        r = HTTPReader(s, timeout=30).read_response()
        sender.join(30)
    finally:
        s.close()
    assert r.status == 200 and r.body.decode() == want
    still_serving(server, pid)


def test_large_body_app_does_not_read(server):
    """16 MiB the app never reads: answered, then the rest is drained or the connection
    closes; either way the worker is fine."""
    pid = pid_of(server)
    body = b"q" * (16 * 1024 * 1024)
    s = server.connect(timeout=30)
    errors = []

    def send():
        try:
            s.sendall(build_request("POST", "/", [("Content-Length", str(len(body)))]) + body)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        r = HTTPReader(s, timeout=30).read_response()
        assert r.status == 200 and r.body == b"Hello, World!"
    finally:
        try:
            s.shutdown(socket.SHUT_RDWR)  # unblocks the sender
        except OSError:
            pass  # already reset by the server
        s.close()
        t.join(30)
    still_serving(server, pid)


def test_nul_bytes_in_body_are_data(server):
    pid = pid_of(server)
    body = b"\x00a\x00\r\n\x00" * 1000
    r = server.request("POST", "/echo", body=body)
    assert r.status == 200 and r.body == body
    still_serving(server, pid)


# ---------------------------------------------------------------- paths (PEP 3333: latin-1)

PATHS = [
    # target, PATH_INFO (the percent-decoded bytes read as latin-1), QUERY_STRING
    ("/caf%C3%A9", "/caf\u00c3\u00a9", ""),
    ("/trunc%C3", "/trunc\u00c3", ""),
    ("/overlong%C0%AF", "/overlong\u00c0\u00af", ""),
    ("/surrogate%ED%A0%80", "/surrogate\u00ed\u00a0\u0080", ""),
    ("/latin1%FF%FE", "/latin1\u00ff\u00fe", ""),
    ("/bad%zzescape%", "/bad%zzescape%", ""),
    ("/slash%2Fin%2fname", "/slash/in/name", ""),
    ("/q?a=%FF%00&b=caf%C3", "/q", "a=%FF%00&b=caf%C3"),
]


@pytest.mark.parametrize("target,path_info,query", PATHS, ids=[p[0] for p in PATHS])
def test_path_bytes_latin1(server, target, path_info, query):
    pid = pid_of(server)
    env = environ_of(server, "/environ" + target)
    assert env["PATH_INFO"] == "/environ" + path_info
    assert env["QUERY_STRING"] == query
    assert env["RAW_URI"] == "/environ" + target
    still_serving(server, pid)


def test_percent_encoded_nul_in_path(server):
    """%00 decodes to a NUL in PATH_INFO (as in gunicorn); the app decides."""
    pid = pid_of(server)
    env = environ_of(server, "/environ/a%00b")
    assert env["PATH_INFO"] == "/environ/a\x00b"
    still_serving(server, pid)


@pytest.mark.parametrize("raw_path,path_info", [
    ("/environ/café".encode("utf-8"), "/environ/caf\u00c3\u00a9"),
    (b"/environ/caf\xe9", "/environ/caf\u00e9"),
    (b"/environ/%C3%A9/\xc3\xa9", "/environ/\u00c3\u00a9/\u00c3\u00a9"),
])
def test_raw_bytes_in_target_are_served(server, raw_path, path_info):
    """Unencoded bytes >= 0x80 in the request-target (clients and scanners send UTF-8 as it
    is): served, as nginx does; PATH_INFO and RAW_URI are the bytes read as latin-1 (PEP
    3333), percent-escapes decoded the same way."""
    pid = pid_of(server)
    s = server.connect()
    try:
        s.sendall(b"GET " + raw_path + b"?q=\xff HTTP/1.1\r\nHost: x\r\n\r\n")
        r = HTTPReader(s).read_response()
    finally:
        s.close()
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["PATH_INFO"] == path_info
    assert env["RAW_URI"] == raw_path.decode("latin-1") + "?q=\u00ff"
    assert env["QUERY_STRING"] == "q=\u00ff"
    still_serving(server, pid)


def test_latin1_field_value(server):
    pid = pid_of(server)
    s = server.connect()
    try:
        s.sendall(b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Latin: caf\xe9 \xff\r\n\r\n")
        r = HTTPReader(s).read_response()
    finally:
        s.close()
    assert r.status == 200
    assert json.loads(r.body)["HTTP_X_LATIN"] == "caf\u00e9 \u00ff"
    still_serving(server, pid)


# ---------------------------------------------------------------- issue 9

@pytest.mark.parametrize("klass", ["sync", "gthread"])
def test_limit_request_line_0_with_small_field_size_is_unlimited(klass):
    """--limit-request-line 0 means unlimited (gunicorn caps it at 1 MiB), whatever the
    field size limit: a 100 KB request line was answered 431 because the read buffer was
    sized as if 0 meant 8190. A too-large field still gets its 431."""
    args = ["--limit-request-line", "0", "--limit-request-field_size", "100"]
    if klass == "gthread":
        args += ["-k", "gthread", "--threads", "2"]
    s = srv.Server("testapp:app", args)
    s.start()
    try:
        target = b"/?" + b"a" * 100000
        got, data, closed = send_raw(
            s, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert got == 200, data[:300]
        assert data.endswith(b"Hello, World!")
        got, data, closed = send_raw(
            s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200 + b"\r\n\r\n")
        assert got == 431 and closed, data[:300]
        got, data, closed = send_raw(
            s, b"GET /" + b"a" * (1024 * 1024 + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert got == 414, data[:300]  # LimitRequestLine, as gunicorn 27 answers it
    finally:
        s.close()
