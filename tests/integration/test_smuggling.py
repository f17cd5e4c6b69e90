"""Request smuggling: requests on one connection crafted so that two HTTP parsers could
disagree on where one message ends (CL.TE, TE.CL, obfuscated Transfer-Encoding, duplicate
or signed Content-Length, chunk-size overflow, bare LF/CR, NUL, obs-fold, absolute-form,
HTTP/0.9, huge chunk extensions), including gunicorn's advisories CVE-2024-1135 and
CVE-2024-6827.

Each case says how a front proxy that parses by RFC 9112 reads the bytes: the requests it
would forward (`rfc`), then what follows them:
  "ok"     nothing: all bytes are those requests (the connection may stay open);
  "close"  the server must close after answering them (e.g. RFC 9112 6.1: a request with
           both Transfer-Encoding and Content-Length);
  "reject" the next message is invalid: it must be refused.
cunicorn passes a case when every request its app saw is, in order, the one the proxy
would have sent (method, path, body), and where it stops short of the proxy's reading it
answered an error status and closed the connection. Rejecting something the RFC allows is
acceptable (stricter never desyncs); serving something different is not.

Set CUNICORN_SMUGGLING_REPORT=path to write each case's outcome as JSON (docs/security.md).
"""
import json
import os
import socket
import textwrap

import pytest

import server as srv
from server import ConnectionClosed, HTTPReader

APP = textwrap.dedent('''
    import json, os

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/pid":
            out = str(os.getpid()).encode()
        else:
            body = environ["wsgi.input"].read()
            out = json.dumps({
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "host": environ.get("HTTP_HOST"),
                "body": body.decode("latin-1"),
                "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
            }).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(out)))])
        return [out]
''')


class Case:
    def __init__(self, name, raw, rfc=(), end="ok", fold=False, note=""):
        self.name = name
        self.raw = raw
        self.rfc = [(m, p, b.decode("latin-1") if isinstance(b, bytes) else b)
                    for m, p, b in rfc]
        self.end = end
        self.fold = fold  # run on a server started with --permit-obsolete-folding
        self.note = note

    def __repr__(self):
        return self.name


def head(line, *fields):
    return (line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode("latin-1")


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
N = ("GET", "/next", b"")


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def te_case(name, te_lines, rfc_chunked, end, note="", cl=True, fold=False):
    """POST with the given Transfer-Encoding lines and (cl) a Content-Length that, if used,
    would make the smuggled request a separate one. Without cl, a request follows."""
    body = chunk(SMUGGLED) + b"0\r\n\r\n"
    if cl:
        raw = head("POST /a HTTP/1.1", "Host: a", *te_lines, "Content-Length: 0") + body
    else:
        raw = head("POST /a HTTP/1.1", "Host: a", *te_lines) + body + NEXT
    rfc = [("POST", "/a", SMUGGLED)] if rfc_chunked else []
    if rfc_chunked and not cl and end == "ok":
        rfc.append(N)
    return Case(name, raw, rfc, end, note=note, fold=fold)


def cl_case(name, value, valid, note=""):
    raw = head("POST /a HTTP/1.1", "Host: a", "Content-Length: " + value) + b"abc" + NEXT
    if valid:
        return Case(name, raw, [("POST", "/a", b"abc"), N], "ok", note=note)
    return Case(name, raw, [], "reject", note=note)


def chunked_case(name, body, rfc_body, note=""):
    raw = head("POST /a HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + body + NEXT
    if rfc_body is None:
        return Case(name, raw, [], "reject", note=note)
    return Case(name, raw, [("POST", "/a", rfc_body), N], "ok", note=note)


CASES = [
    # -- CL.TE / TE.CL: both framings present. RFC 9112 6.1: Transfer-Encoding wins, and
    # the server must close after responding (or reject).
    Case("cl_te",
         head("POST /a HTTP/1.1", "Host: a", "Content-Length: 6",
              "Transfer-Encoding: chunked") + b"0\r\n\r\n" + SMUGGLED,
         [("POST", "/a", b"")], "close"),
    Case("te_cl",
         head("POST /a HTTP/1.1", "Host: a", "Transfer-Encoding: chunked",
              "Content-Length: 4") + chunk(SMUGGLED) + b"0\r\n\r\n",
         [("POST", "/a", SMUGGLED)], "close"),
    # -- TE.TE: obfuscated Transfer-Encoding, with a Content-Length to fall back on
    te_case("cve_2024_1135_te_chunked_then_gzip",
            ["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"], False, "reject",
            "two TE fields: final coding gzip, so the length is unknown (400)"),
    te_case("te_list_chunked_gzip", ["Transfer-Encoding: chunked, gzip"], False, "reject"),
    te_case("cve_2024_6827_te_xchunked", ["Transfer-Encoding: xchunked"], False, "reject",
            "unknown coding must not fall back to Content-Length"),
    te_case("te_chunked_x", ["Transfer-Encoding: chunked-x"], False, "reject"),
    te_case("te_quoted", ['Transfer-Encoding: "chunked"'], False, "reject"),
    te_case("te_identity_chunked", ["Transfer-Encoding: identity, chunked"], True, "close"),
    te_case("te_chunked_chunked", ["Transfer-Encoding: chunked, chunked"], False, "reject",
            "chunked applied twice (RFC 9112 7)"),
    te_case("te_space_before_colon", ["Transfer-Encoding : chunked"], False, "reject",
            "RFC 9112 5.1: must be rejected"),
    te_case("te_tab_ows", ["Transfer-Encoding:\tchunked"], True, "close"),
    te_case("te_upper_case", ["Transfer-Encoding: CHUNKED"], True, "close"),
    # the same obfuscations without a Content-Length: does the parser read them as chunked?
    te_case("te_tab_ows_alone", ["Transfer-Encoding:\tchunked"], True, "ok", cl=False),
    te_case("te_upper_case_alone", ["Transfer-Encoding: CHUNKED"], True, "ok", cl=False),
    te_case("te_empty_element_alone", ["Transfer-Encoding: , chunked"], True, "ok", cl=False,
            note="RFC 9110 5.6.1 would ignore the empty element; 501 like gunicorn"),
    te_case("te_identity_chunked_alone", ["Transfer-Encoding: identity, chunked"], True, "ok",
            cl=False),
    te_case("te_gzip_chunked_alone", ["Transfer-Encoding: gzip, chunked"], True, "close",
            cl=False, note="a coding the server cannot undo: served, then closed"),
    te_case("te_two_fields_alone", ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
            True, "close", cl=False),
    te_case("te_obs_fold_permitted_alone", ["Transfer-Encoding:", " chunked"], True, "ok",
            cl=False, fold=True),
    te_case("te_vertical_tab", ["Transfer-Encoding: chunked\x0b"], False, "reject"),
    te_case("te_nbsp", ["Transfer-Encoding: \xa0chunked"], False, "reject"),
    te_case("te_empty_element", ["Transfer-Encoding: , chunked"], True, "close"),
    te_case("te_obs_fold", ["Transfer-Encoding:", " chunked"], False, "reject",
            "obs-fold not permitted: 400"),
    Case("te_obs_fold_permitted",
         head("POST /a HTTP/1.1", "Host: a", "Transfer-Encoding:", " chunked",
              "Content-Length: 0") + chunk(SMUGGLED) + b"0\r\n\r\n",
         [("POST", "/a", SMUGGLED)], "close", fold=True,
         note="--permit-obsolete-folding: unfolded to 'chunked' as RFC 9112 5.2 says"),
    Case("te_first_line_whitespace",
         head("POST /a HTTP/1.1", " Transfer-Encoding: chunked", "Host: a",
              "Content-Length: 0") + chunk(SMUGGLED) + b"0\r\n\r\n",
         [], "reject", note="whitespace before the first field line (RFC 9112 2.2)"),
    Case("te_underscore",
         head("POST /a HTTP/1.1", "Host: a", "Transfer_Encoding: chunked",
              "Content-Length: 3") + b"abc" + NEXT,
         [("POST", "/a", b"abc"), N], "ok",
         note="not the Transfer-Encoding field: dropped (header_map=drop), CL frames"),
    Case("te_http10",
         head("POST /a HTTP/1.0", "Host: a", "Transfer-Encoding: chunked",
              "Content-Length: 3") + b"0\r\n\r\n" + NEXT,
         [], "reject", note="RFC 9112 6.1: TE in HTTP/1.0 means faulty framing"),
    # -- Content-Length values
    cl_case("cl_duplicate_same",
            "3\r\nContent-Length: 3", True, "identical values: may be one (RFC 9110 8.6)"),
    cl_case("cl_duplicate_different", "3\r\nContent-Length: 30", False),
    cl_case("cl_list_same", "3, 3", True),
    cl_case("cl_list_different", "3, 30", False),
    cl_case("cl_plus_sign", "+3", False),
    cl_case("cl_minus_sign", "-3", False),
    cl_case("cl_ows_around", " 3 ", True),
    cl_case("cl_inner_space", "3 0", False),
    cl_case("cl_hex", "0x3", False),
    cl_case("cl_leading_zeros", "003", True),
    cl_case("cl_overflow", "18446744073709551619", False, "2^64 + 3"),
    cl_case("cl_empty", "", False),
    cl_case("cl_underscore_in_number", "1_0", False),
    # -- chunk sizes and framing
    chunked_case("chunk_size_overflow", b"10000000000000003\r\nabc\r\n0\r\n\r\n", None,
                 "2^64 + 3: must not wrap to 3"),
    chunked_case("chunk_size_overflow_zeros", b"000000000000000000000003\r\nabc\r\n0\r\n\r\n",
                 b"abc", "leading zeros are not an overflow"),
    chunked_case("chunk_size_negative", b"-3\r\nabc\r\n0\r\n\r\n", None),
    chunked_case("chunk_size_0x", b"0x3\r\nabc\r\n0\r\n\r\n", None),
    chunked_case("chunk_size_trailing_space", b"3 \r\nabc\r\n0\r\n\r\n", None),
    chunked_case("chunk_ext_bws", b"3 ;x=y\r\nabc\r\n0\r\n\r\n", b"abc"),
    chunked_case("chunk_data_too_long", b"3\r\nabcd\r\n0\r\n\r\n", None),
    chunked_case("chunk_bare_lf_size", b"3\nabc\r\n0\r\n\r\n", None),
    chunked_case("chunk_bare_lf_after_data", b"3\r\nabc\n0\r\n\r\n", None),
    chunked_case("chunk_bare_lf_last", b"3\r\nabc\r\n0\n\n", None),
    chunked_case("chunk_ext_huge", b"3;" + b"a" * 8000 + b"\r\nabc\r\n0\r\n\r\n", None,
                 "one 8000-byte extension: over the 4096-byte size-line cap"),
    chunked_case("chunk_ext_many", b"".join(b"1;e=" + b"v" * 100 + b"\r\nx\r\n"
                                            for _ in range(200)) + b"0\r\n\r\n",
                 b"x" * 200, "200 chunks with 100-byte extensions: served"),
    chunked_case("chunk_trailer_content_length", b"3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n",
                 b"abc", "a framing field in the trailer is never used for framing"),
    # -- bare LF, CR and NUL in the head
    Case("bare_lf_request_line", b"GET /a HTTP/1.1\nHost: a\r\n\r\n" + NEXT, [], "reject"),
    Case("bare_lf_field", b"GET /a HTTP/1.1\r\nHost: a\nX: y\r\n\r\n" + NEXT, [], "reject"),
    Case("bare_lf_end_of_head",
         b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"%d" % len(SMUGGLED)
         + b"\r\n\n" + SMUGGLED, [], "reject"),
    Case("bare_cr_in_value", b"GET /a HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n" + NEXT, [],
         "reject"),
    Case("bare_cr_line_end", b"GET /a HTTP/1.1\r\nHost: a\r\r\n\r\n" + NEXT, [], "reject"),
    Case("nul_in_value", b"GET /a HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n" + NEXT, [],
         "reject"),
    Case("nul_in_name", b"GET /a HTTP/1.1\r\nHost: a\r\nX\x00Y: b\r\n\r\n" + NEXT, [],
         "reject"),
    Case("nul_in_target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n" + NEXT, [], "reject"),
    Case("nul_in_method", b"GE\x00T /a HTTP/1.1\r\nHost: a\r\n\r\n" + NEXT, [], "reject"),
    Case("nul_in_cl", b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\x00\r\n\r\nabc" + NEXT,
         [], "reject"),
    # -- obs-fold of an ordinary field
    Case("obs_fold", head("GET /a HTTP/1.1", "Host: a", "X-A: a", " b") + NEXT, [], "reject"),
    Case("obs_fold_permitted", head("GET /a HTTP/1.1", "Host: a", "X-A: a", " b") + NEXT,
         [("GET", "/a", b""), N], "ok", fold=True),
    # -- request-target forms
    Case("absolute_form_host_mismatch",
         head("GET http://evil.example/x HTTP/1.1", "Host: good.example") + NEXT,
         [("GET", "/x", b""), N], "ok",
         note="framing unaffected; the app sees the Host header (gunicorn does the same)"),
    Case("absolute_form_no_host", head("GET http://evil.example/x HTTP/1.1") + NEXT,
         [("GET", "/x", b""), N], "ok"),
    Case("http09_request", b"GET /a\r\n\r\n" + NEXT, [], "reject",
         note="no HTTP/0.9: a status line and a close, never a bare body"),
    Case("http09_version", b"GET /a HTTP/0.9\r\n\r\n" + NEXT, [], "reject"),
    Case("double_space_request_line", b"GET  /a HTTP/1.1\r\nHost: a\r\n\r\n" + NEXT, [],
         "reject"),
    Case("trailing_space_request_line", b"GET /a HTTP/1.1 \r\nHost: a\r\n\r\n" + NEXT, [],
         "reject"),
    # -- a body where none is usual, and connection close
    Case("get_with_body",
         head("GET /a HTTP/1.1", "Host: a", "Content-Length: %d" % len(SMUGGLED)) + SMUGGLED
         + NEXT, [("GET", "/a", SMUGGLED), N], "ok",
         note="a GET body is a body: the bytes are not a second request"),
    Case("connection_close_then_more",
         head("GET /a HTTP/1.1", "Host: a", "Connection: close") + SMUGGLED,
         [("GET", "/a", b"")], "close"),
    Case("http10_default_close", head("GET /a HTTP/1.0", "Host: a") + SMUGGLED,
         [("GET", "/a", b"")], "close"),
]


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smugapp")
    (d / "smugapp.py").write_text(APP)
    return str(d)


_servers = {}


@pytest.fixture(scope="module")
def servers(app_dir):
    started = []

    def get(worker, fold):
        key = (worker, fold)
        if key not in _servers:
            args = ["--keep-alive", "5"]
            if worker == "gthread":
                args += ["-k", "gthread", "--threads", "4"]
            if fold:
                args += ["--permit-obsolete-folding"]
            s = srv.Server("smugapp:app", args, cwd=app_dir, pythonpath=app_dir)
            s.start()
            started.append(s)
            _servers[key] = s
        return _servers[key]

    yield get
    for s in started:
        s.close()
    _servers.clear()


def exchange(server, raw, half_close, timeout=5.0):
    """Send raw on one connection and read every response until the server closes.
    Returns (responses, closed_by_server)."""
    s = server.connect(timeout=timeout)
    resps = []
    closed = False
    try:
        s.sendall(raw)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        rd = HTTPReader(s, timeout=timeout)
        while True:
            try:
                r = rd.read_response()
            except ConnectionClosed as e:
                assert not e.partial, "truncated response: %r" % e.partial[:300]
                closed = True
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            except socket.timeout:
                break
            resps.append(r)
    finally:
        s.close()
    return resps, closed


_report = []


@pytest.mark.parametrize("worker", ["sync", "gthread"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_smuggling(servers, case, worker):
    server = servers(worker, case.fold)
    pid_before = server.request("GET", "/pid").body
    # "ok": the client half-closes so the server's close marks the end without a wait.
    resps, closed = exchange(server, case.raw, half_close=(case.end == "ok"))
    seen, error = [], None
    for r in resps:
        assert error is None, "%s: a response after the error response: %r" % (case, r)
        if r.status == 200:
            j = json.loads(r.body)
            seen.append((j["method"], j["path"], j["body"]))
            continue
        assert 400 <= r.status <= 599, "%s: unexpected status %r" % (case, r)
        error = r.status
    outcome = {"case": case.name, "worker": worker, "served": len(seen),
               "rfc": len(case.rfc), "end": case.end, "error": error, "closed": closed,
               "note": case.note}
    if case.name.startswith("absolute_form") and resps and resps[0].status == 200:
        outcome["host_seen"] = json.loads(resps[0].body)["host"]
    _report.append(outcome)

    detail = "%s (%s): served %r, error %r, closed %r; RFC 9112 reading %r then %s\n%s" % (
        case.name, worker, seen, error, closed, case.rfc, case.end, server.describe()[-3000:])
    # never a request the front proxy did not send
    assert seen == case.rfc[:len(seen)], "DESYNC " + detail
    if len(seen) < len(case.rfc) or case.end == "reject":
        # stopped short of the proxy's reading (or at an invalid message): refused, closed
        assert error is not None, "no error response " + detail
        assert closed, "not closed after the error " + detail
    elif case.end == "close":
        assert closed, "connection left open " + detail
    # the worker survived and serves the next request
    assert server.request("GET", "/pid").body == pid_before, "worker changed " + detail


def teardown_module(module):
    path = os.environ.get("CUNICORN_SMUGGLING_REPORT")
    if path and _report:
        with open(path, "w") as f:
            json.dump(_report, f, indent=1)
