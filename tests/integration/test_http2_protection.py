"""HTTP/2 protections, each bounded: rapid reset, CONTINUATION flood, SETTINGS/PING/empty
DATA floods, HPACK bombs, too many streams, a peer that never reads; GOAWAY on graceful
stop, HUP and max_requests with the streams in flight finished."""
import re
import shutil
import signal
import subprocess
import socket
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


def test_trailers_past_the_header_list_limit_reset_the_stream_not_the_connection(server):
    """Request trailers are held to http2_max_header_list_size like the head (64 KiB here):
    past it, RST_STREAM ENHANCE_YOUR_CALM on that stream; the connection goes on."""
    c = H2Conn("127.0.0.1", server.port)
    try:
        sid = c.request("POST", "/echo", body=b"some body", end=False)
        c.conn.send_headers(sid, [("x-pad-%d" % i, "p" * 4000) for i in range(20)],
                            end_stream=True)
        c.flush()
        [r] = c.wait([sid])
        assert r["reset"] == ENHANCE_YOUR_CALM and r["status"] is None, r
        sid = c.request("POST", "/echo", body=b"small", end=False)
        c.conn.send_headers(sid, [("x-pad", "p" * 4000)], end_stream=True)
        c.flush()
        [r] = c.wait([sid])
        assert r["status"] == 200 and r["body"] == b"small"
        assert not c.closed and c.goaway is None
    finally:
        c.close()


class Peer:
    """What a Raw connection received, frame by frame: statuses (HPACK-decoded), bodies,
    stream resets, GOAWAY."""

    def __init__(self, raw):
        self.raw, self.dec = raw, hpack.Decoder()
        self.status, self.body, self.ended, self.rst = {}, {}, set(), {}
        self.goaway, self.settings = None, None

    def pump_until(self, done, timeout=20.0):
        if done(self):
            return True
        for f in self.raw.frames(timeout):
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.settings = dict(f.settings)
            elif isinstance(f, HeadersFrame):
                self.status[f.stream_id] = int(dict(self.dec.decode(bytes(f.data)))[":status"])
            elif isinstance(f, DataFrame):
                self.body[f.stream_id] = self.body.get(f.stream_id, b"") + bytes(f.data)
            elif isinstance(f, RstStreamFrame):
                self.rst[f.stream_id] = f.error_code
            elif isinstance(f, GoAwayFrame):
                self.goaway = f
            if isinstance(f, (HeadersFrame, DataFrame)) and "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)
            if done(self):
                return True
        return done(self)


def data(sid, payload, end=True):
    f = DataFrame(sid, data=payload)
    if end:
        f.flags.add("END_STREAM")
    return f.serialize()


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_stream_past_the_limit_is_refused_and_the_connection_goes_on(make_server, worker):
    """RFC 9113 section 5.1.2: the stream past http2_max_concurrent_streams gets RST_STREAM
    REFUSED_STREAM (it never reaches the app); the streams within the limit and the
    connection go on."""
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "8",
                                        "--http2-max-concurrent-streams", "3",
                                        "--access-logfile", "-"])
    r = Raw(s.port)
    p = Peer(r)
    assert p.pump_until(lambda p: p.settings is not None, 5)  # and Raw acknowledged it
    assert p.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 3
    # Three requests whose apps wait for their bodies (open streams, in the app or queued
    # for it), then a fourth.
    r.send(b"".join(r.headers(sid, "/echo", end_stream=False, method="POST")
                    for sid in (1, 3, 5)) + r.headers(7, "/env"))
    assert p.pump_until(lambda p: 7 in p.rst), (p.rst, p.status, p.goaway)
    assert p.rst == {7: REFUSED_STREAM} and p.goaway is None and not p.status
    r.send(b"".join(data(sid, b"body %d" % sid) for sid in (1, 3, 5)))
    assert p.pump_until(lambda p: {1, 3, 5} <= p.ended), (p.status, p.rst, p.goaway)
    assert [p.status[sid] for sid in (1, 3, 5)] == [200, 200, 200]
    assert [p.body[sid] for sid in (1, 3, 5)] == [b"body 1", b"body 3", b"body 5"]
    # the refused request, retried on the same connection, is served
    r.send(r.headers(9, "/env"))
    assert p.pump_until(lambda p: 9 in p.ended), (p.status, p.rst, p.goaway)
    assert p.status[9] == 200 and b"SERVER_PROTOCOL=HTTP/2.0" in p.body[9]
    assert p.goaway is None and not r.closed and set(p.rst) == {7}
    r.close()
    srv.wait_until(lambda: app_calls(s, "/env") == 1 and app_calls(s, "/echo") == 3, 10)
    assert app_calls(s, "/env") == 1  # the refused stream never reached the app


def refuse(r, p, first, n):
    """Open n streams past the limit, 50 at a time (as many as the server holds open before
    its RST_STREAMs go out is 100), each batch refused before the next. Next stream id."""
    sid = first
    while n and p.goaway is None and not r.closed:
        k = min(n, 50)
        r.send(b"".join(r.headers(sid + 2 * i, "/env") for i in range(k)))
        want = {sid + 2 * i for i in range(k)}
        p.pump_until(lambda p: want <= set(p.rst) or p.goaway is not None)
        sid, n = sid + 2 * k, n - k
    return sid


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_peer_that_only_gets_refusals_is_cut_off(make_server, worker):
    """Refusals are bounded (1000 more than the streams served): a peer that keeps opening
    streams past the limit gets GOAWAY ENHANCE_YOUR_CALM, and none of them costs an app
    call."""
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "8",
                                        "--http2-max-concurrent-streams", "2",
                                        "--access-logfile", "-"])
    r = Raw(s.port)
    p = Peer(r)
    assert p.pump_until(lambda p: p.settings is not None, 5)
    r.send(b"".join(r.headers(sid, "/echo", end_stream=False, method="POST") for sid in (1, 3)))
    nxt = refuse(r, p, 5, 1000)
    assert p.goaway is None and len(p.rst) == 1000 and set(p.rst.values()) == {REFUSED_STREAM}
    refuse(r, p, nxt, 50)
    assert p.pump_until(lambda p: p.goaway is not None or r.closed)
    r.close()
    assert p.goaway is not None and p.goaway.error_code == ENHANCE_YOUR_CALM, p.goaway
    assert p.goaway.last_stream_id == nxt  # the first stream past the 1000 refusals
    assert still_serves(s)
    assert app_calls(s, "/env") == 0


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_burst_of_streams_past_the_limit_ends_the_connection(make_server, worker):
    """More than 100 streams past the limit at once (before the server's RST_STREAMs can go
    out): libnghttp2's connection error, GOAWAY PROTOCOL_ERROR; no app call."""
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "8",
                                        "--http2-max-concurrent-streams", "2",
                                        "--access-logfile", "-"])
    r = Raw(s.port)
    p = Peer(r)
    assert p.pump_until(lambda p: p.settings is not None, 5)
    r.send(b"".join(r.headers(sid, "/echo", end_stream=False, method="POST") for sid in (1, 3))
           + b"".join(r.headers(5 + 2 * i, "/env") for i in range(300)))
    assert p.pump_until(lambda p: p.goaway is not None or r.closed)
    r.close()
    assert p.goaway is not None and p.goaway.error_code == 0x1, p.goaway
    assert p.goaway.last_stream_id == 5 + 2 * 99  # 100 refused streams held at once
    assert still_serves(s)
    assert app_calls(s, "/env") == 0


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_each_stream_served_earns_back_a_refusal(make_server, worker):
    s = make_server("h2app:app", H2C + ["--worker-class", worker, "--threads", "4",
                                        "--http2-max-concurrent-streams", "1"])
    r = Raw(s.port)
    p = Peer(r)
    assert p.pump_until(lambda p: p.settings is not None, 5)
    post = lambda sid: r.headers(sid, "/echo", end_stream=False, method="POST")  # noqa: E731
    r.send(post(1))
    sid = refuse(r, p, 3, 999)
    assert len(p.rst) == 999 and p.goaway is None
    r.send(data(1, b"one"))  # 1 refusal left; serving stream 1 earns one more
    assert p.pump_until(lambda p: 1 in p.ended)
    r.send(post(sid))
    refuse(r, p, sid + 2, 2)
    assert p.goaway is None and len(p.rst) == 1001
    r.send(data(sid, b"two"))
    assert p.pump_until(lambda p: sid in p.ended)
    assert p.goaway is None and p.status[sid] == 200 and p.body[sid] == b"two"
    # serving stream sid earned one: one more refusal, then none left
    r.send(post(sid + 6))
    refuse(r, p, sid + 8, 2)
    assert p.pump_until(lambda p: p.goaway is not None or r.closed)
    r.close()
    assert p.goaway is not None and p.goaway.error_code == ENHANCE_YOUR_CALM
    # (sid + 8's RST_STREAM may be dropped with the connection: it was queued with the GOAWAY)
    assert p.goaway.last_stream_id == sid + 10


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
