"""HTTP/2 protections, each bounded: rapid reset, CONTINUATION flood, SETTINGS/PING/empty
DATA floods, HPACK bombs, too many streams, a peer that never reads; GOAWAY on graceful
stop, HUP and max_requests with the streams in flight finished."""
import re
import shutil
import signal
import subprocess
import socket
import struct
import time

import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

import server as srv
from h2client import H2Conn

H2C = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
REFUSED_STREAM = 0x7


class Raw:
    """Frames by hand, for peers no well-behaved client library would be."""

    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.closed = False
        sf = SettingsFrame(0)
        for k, v in (settings or {}).items():
            sf.settings[k] = v
        self.sock.sendall(PREFACE + sf.serialize())

    def headers(self, sid, path, end_stream=True, end_headers=True, method="GET", extra=()):
        block = self.enc.encode([(":method", method), (":path", path), (":scheme", "http"),
                                 (":authority", "x")] + list(extra))
        f = HeadersFrame(sid)
        f.data = block
        f.flags.add("END_HEADERS") if end_headers else None
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.closed = True
            return False

    def frames(self, timeout=10.0):
        """Yield frames until the connection closes or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                    a = SettingsFrame(0)
                    a.flags.add("ACK")
                    self.send(a.serialize())
                yield f
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return
            except ConnectionError:
                self.closed = True
                return
            if not d:
                self.closed = True
                return
            self.buf += d

    def until_goaway_or_close(self, timeout=20.0):
        for f in self.frames(timeout):
            if isinstance(f, GoAwayFrame):
                return f
        return None

    def close(self):
        self.sock.close()


def app_calls(s, path):
    return s.stdout().count('"GET %s HTTP/2.0"' % path) + s.stdout().count(
        '"POST %s HTTP/2.0"' % path)


def still_serves(s):
    c = H2Conn("127.0.0.1", s.port)
    try:
        [r] = c.wait([c.request("GET", "/alive")])
        return r["status"] == 200 and r["body"] == b"hello /alive"
    finally:
        c.close()


@pytest.fixture(params=["sync", "gthread"])
def server(request, make_server):
    return make_server("h2app:app", H2C + ["--worker-class", request.param, "--threads", "4",
                                           "--access-logfile", "-"])


def test_rapid_reset_is_bounded(server):
    """CVE-2023-44487: streams opened and cancelled at once cost no app call, and a peer
    that keeps doing it is cut off."""
    r = Raw(server.port)
    sent = 0
    for batch in range(20):
        out = b""
        for i in range(250):
            sid = 1 + 2 * sent
            out += r.headers(sid, "/sleep?0.2") + RstStreamFrame(sid, error_code=0x8).serialize()
            sent += 1
        if not r.send(out):
            break
    g = r.until_goaway_or_close(30 * (3 if srv.SANITIZED else 1))
    assert g is not None or r.closed
    r.close()
    srv.wait_until(lambda: still_serves(server), 10)
    assert app_calls(server, "/sleep?0.2") < 100, app_calls(server, "/sleep?0.2")


def test_continuation_flood_is_cut_off(server):
    """CVE-2024-27316: a header block that never ends."""
    r = Raw(server.port)
    r.send(r.headers(1, "/x", end_stream=True, end_headers=False))
    block = r.enc.encode([("x-pad", "a" * 100)])
    ok = True
    for i in range(2000):
        f = ContinuationFrame(1)
        f.data = block
        if not r.send(f.serialize()):
            ok = False
            break
    g = r.until_goaway_or_close(20)
    assert (g is not None and g.error_code != 0) or r.closed or not ok
    r.close()
    assert still_serves(server)
    assert app_calls(server, "/x") == 0


@pytest.mark.parametrize("kind", ["ping", "settings"])
def test_ack_floods_from_a_peer_that_does_not_read(server, kind):
    """A peer sending PINGs / SETTINGS without reading the ACKs is cut off before the
    queued ACKs grow without bound."""
    r = Raw(server.port)
    if kind == "ping":
        one = PingFrame(0, opaque_data=b"12345678").serialize()
    else:
        f = SettingsFrame(0)
        f.settings[SettingsFrame.INITIAL_WINDOW_SIZE] = 65535
        one = f.serialize()
    r.sock.settimeout(5)
    total = 0
    for i in range(200):
        if not r.send(one * 1000):
            break
        total += 1000
    # Cut off: the socket was reset, or a GOAWAY/close is what follows.
    if not r.closed:
        assert r.until_goaway_or_close(20) is not None or r.closed
    r.close()
    assert still_serves(server)


def test_empty_data_flood_is_cut_off(server):
    r = Raw(server.port)
    r.send(r.headers(1, "/echo", end_stream=False, method="POST"))
    empty = DataFrame(1, data=b"").serialize()
    for i in range(10):
        if not r.send(empty * 500):
            break
    g = r.until_goaway_or_close(20)
    assert (g is not None and g.error_code == ENHANCE_YOUR_CALM) or r.closed
    r.close()
    assert still_serves(server)


def test_hpack_bomb_resets_the_stream_not_the_connection(server):
    """A small header block that decompresses past http2_max_header_list_size (64 KiB):
    that stream is refused, the connection goes on."""
    r = Raw(server.port)
    big = ("x-big", "b" * 4000)
    enc = r.enc
    first = enc.encode([(":method", "GET"), (":path", "/bomb"), (":scheme", "http"),
                        (":authority", "x"), big])
    rest = enc.encode([big] * 40)  # each one a 1-byte index into the dynamic table
    f = HeadersFrame(1)
    f.data = first + rest
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    assert len(f.data) < 4200
    r.send(f.serialize())
    r.send(r.headers(3, "/after"))
    got, body = {}, {}
    for fr in r.frames(20):
        if isinstance(fr, RstStreamFrame):
            got[fr.stream_id] = ("rst", fr.error_code)
        elif isinstance(fr, DataFrame):
            body[fr.stream_id] = body.get(fr.stream_id, b"") + bytes(fr.data)
            if "END_STREAM" in fr.flags:
                got[fr.stream_id] = ("data", body[fr.stream_id])
        if 1 in got and 3 in got:
            break
    r.close()
    assert got.get(1) == ("rst", ENHANCE_YOUR_CALM), got
    assert got.get(3) == ("data", b"hello /after"), got
    assert app_calls(server, "/bomb") == 0


def test_more_streams_than_allowed_are_refused(make_server):
    """Streams past http2_max_concurrent_streams never reach the app. (libnghttp2 makes
    this a connection error: GOAWAY naming the last stream within the limit.)"""
    s = make_server("h2app:app", H2C + ["--worker-class", "gthread", "--threads", "8",
                                        "--http2-max-concurrent-streams", "3",
                                        "--access-logfile", "-"])
    r = Raw(s.port)
    settings = None
    for f in r.frames(5):
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            settings = dict(f.settings)
            break
    assert settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 3
    r.send(b"".join(r.headers(1 + 2 * i, "/sleep?0.3") for i in range(6)))
    refused = None
    for f in r.frames(30):
        if isinstance(f, GoAwayFrame):
            refused = f
            break
        if isinstance(f, RstStreamFrame) and f.stream_id == 7:
            refused = f
            break
    r.close()
    assert refused is not None
    if isinstance(refused, GoAwayFrame):
        assert refused.last_stream_id == 5 and refused.error_code == 0x1
    else:
        assert refused.error_code in (0x1, REFUSED_STREAM)
    time.sleep(1)
    assert app_calls(s, "/sleep?0.3") <= 3
    assert still_serves(s)


def test_server_settings_carry_the_configured_numbers(make_server):
    s = make_server("h2app:app", H2C + ["--http2-initial-window-size", "1048576",
                                        "--http2-max-frame-size", "32768",
                                        "--http2-max-header-list-size", "10000"])
    r = Raw(s.port)
    for f in r.frames(5):
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            st = dict(f.settings)
            break
    r.close()
    assert st[SettingsFrame.MAX_CONCURRENT_STREAMS] == 100
    assert st[SettingsFrame.INITIAL_WINDOW_SIZE] == 1048576
    assert st[SettingsFrame.MAX_FRAME_SIZE] == 32768
    assert st[SettingsFrame.MAX_HEADER_LIST_SIZE] == 10000


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_peer_that_never_reads_is_dropped_and_others_are_served(make_server, worker):
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "4",
                                        "--timeout", "2"])
    # A window large enough that the response fills the socket buffers, then no reading.
    r = Raw(s.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
    r.send(WindowUpdateFrame(0, window_increment=2 ** 31 - 1 - 65535).serialize())
    r.send(r.headers(1, "/big?200000000"))
    time.sleep(0.5)  # let the server fill the buffers (no reading on purpose)
    if worker == "gthread":
        assert still_serves(s)  # the worker is not held by the stalled peer
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 60 * (3 if srv.SANITIZED else 1):
        r.sock.settimeout(1)
        try:
            # Drain slowly from the front: the server must have given up by now.
            d = r.sock.recv(1 << 20)
            if not d:
                closed = True
                break
        except socket.timeout:
            continue
        except ConnectionError:
            closed = True
            break
        if time.monotonic() - t0 < 1:
            time.sleep(1)
    r.close()
    assert closed
    assert still_serves(s)


def _graceful(make_server, how):
    args = H2C + ["--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "20"]
    if how == "max_requests":
        args += ["--max-requests", "1"]
    s = make_server("h2app:app", args)
    r = Raw(s.port)
    try:
        sid = 1
        if how == "max_requests":
            # the first stream to finish is the worker's last request: the other one, in
            # flight, still finishes
            r.send(r.headers(1, "/sleep?0.2"))
            sid = 3
        r.send(r.headers(sid, "/sleep?1"))
        time.sleep(0.3)
        if how == "term":
            s.proc.send_signal(signal.SIGTERM)
        elif how == "hup":
            s.proc.send_signal(signal.SIGHUP)
        goaways, body, ended, order = [], b"", False, []
        for f in r.frames(30):
            if isinstance(f, GoAwayFrame):
                goaways.append(f)
                order.append("goaway")
                if f.last_stream_id != 2 ** 31 - 1:
                    # the final GOAWAY: a stream the client opens now is not served
                    r.send(r.headers(sid + 2, "/late"))
            elif isinstance(f, DataFrame) and f.stream_id == sid:
                body += bytes(f.data)
                if "END_STREAM" in f.flags:
                    ended = True
                    order.append("end")
            if ended and goaways and goaways[-1].last_stream_id != 2 ** 31 - 1:
                break
        # RFC 9113 6.8: a shutdown notice (the highest stream id), then the final GOAWAY
        # naming the last stream served
        assert goaways, "no GOAWAY"
        assert all(g.error_code == 0 for g in goaways)
        assert goaways[0].last_stream_id in (2 ** 31 - 1, sid)
        assert goaways[-1].last_stream_id == sid
        assert ended and body == b"slept"
        assert order[0] == "goaway"  # GOAWAY first, then the stream in flight finished
        r.frames(1)
    finally:
        r.close()
    assert "/late" not in s.stdout()


def test_graceful_stop_sends_goaway_and_finishes_streams(make_server):
    _graceful(make_server, "term")


def test_hup_sends_goaway_and_finishes_streams(make_server):
    _graceful(make_server, "hup")


def test_max_requests_sends_goaway_and_finishes_streams(make_server):
    _graceful(make_server, "max_requests")


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
@pytest.mark.parametrize("how", ["hup", "max_requests"])
@pytest.mark.parametrize("worker", ["gthread", "asgi"])
def test_nothing_dropped_under_h2load(make_server, how, worker):
    """Load on HTTP/2 connections while workers are replaced (HUP, max_requests): GOAWAY,
    the streams in flight finish, no request gets an error status. Streams h2load opens
    after the final GOAWAY are refused (RFC 9113 6.8: the client may retry them; h2load
    does not and counts them as failed): at most what 4 connections x 10 streams can have
    outstanding, per replaced worker."""
    args = H2C + ["--worker-class", worker, "--threads", "4"]
    if how == "max_requests":
        args += ["--max-requests", "3000"]
    # asgi: streams are tasks of the worker's loop (the raw ASGI app answers /scope)
    s = make_server("asgiapp:app" if worker == "asgi" else "h2app:app", args)
    booted = s.log().count("Booting worker")
    path = "/scope" if worker == "asgi" else "/x"
    h = subprocess.Popen(["h2load", "-c", "4", "-m", "10", "-t", "1", "-D", "4",
                          "http://127.0.0.1:%d%s" % (s.port, path)], stdout=subprocess.PIPE,
                         text=True)
    if how == "hup":
        time.sleep(1.5)
        s.proc.send_signal(signal.SIGHUP)
    out, _ = h.communicate(timeout=60 * (3 if srv.SANITIZED else 1))
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored", out)
    assert m, out
    done, ok, failed, errored = (int(x) for x in m.groups())
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert st and int(st.group(3)) == 0 and int(st.group(4)) == 0, out
    replaced = s.log().count("Booting worker") - booted
    assert replaced >= 1  # workers were really replaced
    assert ok > 0 and failed <= 40 * replaced, out
