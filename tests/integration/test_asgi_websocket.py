"""WebSockets on the asgi worker: the `websockets` client against a raw ASGI echo and a
Starlette route, and a raw-socket RFC 6455 suite (handshake refusals, framing errors,
fragmentation, control frames, close codes, UTF-8, message size)."""
import asyncio
import base64
import hashlib
import json
import os
import struct

import pytest

import server as srv

websockets = pytest.importorskip("websockets")


records = srv.read_lines


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ws") / "rec")


@pytest.fixture(scope="module")
def ws_server(rec):
    s = srv.Server("wsapp:raw", ["-k", "asgi", "--websocket-max-message-size", "100000"],
                   env={"ASGI_RECORD": rec})
    s.start()
    yield s
    s.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


# ---- with the websockets client ----

def test_echo_text_binary_subprotocol_scope(ws_server):
    async def go():
        url = "ws://127.0.0.1:%d/echo?x=1" % ws_server.port
        async with websockets.connect(url, subprotocols=["chat", "other"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-ws-scope"] == "ws /echo x=1"
            await ws.send("héllo wörld")
            assert await ws.recv() == "héllo wörld"
            blob = os.urandom(90000)
            await ws.send(blob)
            assert await ws.recv() == blob
            for i in range(40):  # more than the read-ahead queue: back-pressure, in order
                await ws.send("m%d" % i)
            assert [await ws.recv() for _ in range(40)] == ["m%d" % i for i in range(40)]
    run(go())


def test_client_close_reaches_app(ws_server, rec):
    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % ws_server.port) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(code=1000)
            assert ws.close_code == 1000
    run(go())
    assert srv.wait_until(lambda: "disconnect:1000" in records(rec), 5)


def test_server_close_code_and_reason(ws_server):
    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/server-close" % ws_server.port) as ws:
            assert await ws.recv() == "bye"
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd.code == 4001 and ei.value.rcvd.reason == "done here"
    run(go())


def test_close_before_accept_is_403(ws_server):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatus) as ei:
            async with websockets.connect("ws://127.0.0.1:%d/deny" % ws_server.port):
                pass
        assert ei.value.response.status_code == 403
    run(go())


def test_http_still_served_beside_websockets(ws_server):
    sock = ws_server.connect(timeout=5)
    sock.sendall(srv.build_request("GET", "/"))
    r = srv.HTTPReader(sock).read_response()
    assert r.status == 200 and r.body == b"plain http"


def test_starlette_websocket_route(make_server, tmp_path):
    pytest.importorskip("starlette")
    r = str(tmp_path / "rec")
    s = make_server("wsapp:starlette_app", ["-k", "asgi"], env={"ASGI_RECORD": r})

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/chat/ann" % s.port) as ws:
            for i in range(3):
                await ws.send(json.dumps({"n": i}))
                assert json.loads(await ws.recv()) == {"to": "ann", "echo": {"n": i}}
    run(go())
    assert srv.wait_until(lambda: "starlette disconnect:1000" in records(r), 5)


# ---- raw sockets: the handshake and RFC 6455 framing ----

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(s, path="/echo", version="13", extra=""):
    sock = s.connect(timeout=5)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n%s\r\n"
                  % (path, KEY, version, extra)).encode())
    return sock


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        d = sock.recv(4096)
        if not d:
            break
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def frame(op, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n < 65536:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return h + payload
    key = b"\x11\x22\x33\x44"
    return h + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Reader:
    def __init__(self, sock, rest=b""):
        self.sock, self.buf = sock, rest

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        assert not b1 & 0x80  # server frames are never masked
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        self.rsv1 = bool(b0 & 0x40)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, bool(b0 & 0x80), payload


def open_ws(s, path="/echo", extra=""):
    sock = handshake(s, path, extra=extra)
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 101"), head
    want = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                         .encode()).digest()).decode()
    assert ("Sec-WebSocket-Accept: %s" % want) in head
    rd = Reader(sock, rest)
    rd.head = head
    return sock, rd


def expect_close(rd, code):
    op, _, payload = rd.frame()
    assert op == 8, (op, payload)
    assert struct.unpack(">H", payload[:2])[0] == code, payload


def test_version_not_13_is_426(ws_server):
    sock = handshake(ws_server, version="8")
    head, _ = read_head(sock)
    assert head.startswith("HTTP/1.1 426") and "Sec-WebSocket-Version: 13" in head


def test_missing_key_is_400(ws_server):
    sock = ws_server.connect(timeout=5)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    head, _ = read_head(sock)
    assert head.startswith("HTTP/1.1 400")


def test_denial_response_extension(ws_server):
    sock = handshake(ws_server, "/deny-response")
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 401") and "go away" in (rest + sock.recv(100)).decode()


def test_fragmented_message_with_ping_inside(ws_server):
    sock, rd = open_ws(ws_server)
    sock.sendall(frame(1, b"Hel", fin=False) + frame(9, b"are you there") +
                 frame(0, b"lo ", fin=False) + frame(0, "wörld".encode()))
    assert rd.frame() == (0xA, True, b"are you there")  # pong first, same payload
    assert rd.frame() == (1, True, "Hello wörld".encode())
    sock.sendall(frame(8, struct.pack(">H", 1000)))
    expect_close(rd, 1000)


def test_empty_messages_and_control_frames(ws_server):
    sock, rd = open_ws(ws_server)
    sock.sendall(frame(9, b"") + frame(1, b"") + frame(2, b"") + frame(0xA, b"unsolicited"))
    assert rd.frame() == (0xA, True, b"")
    assert rd.frame() == (1, True, b"")
    assert rd.frame() == (2, True, b"")
    sock.sendall(frame(8, b""))  # no status code: we answer 1000
    expect_close(rd, 1000)


def test_utf8_split_across_fragments_is_fine(ws_server):
    sock, rd = open_ws(ws_server)
    data = "😀".encode()
    sock.sendall(frame(1, data[:2], fin=False) + frame(0, data[2:]))
    assert rd.frame() == (1, True, data)


@pytest.mark.parametrize("name,frames,code", [
    ("unmasked", [frame(1, b"hi", mask=False)], 1002),
    ("reserved opcode", [frame(3, b"x")], 1002),
    ("rsv bit", [frame(1, b"x", rsv=0x20)], 1002),
    ("fragmented ping", [frame(9, b"x", fin=False)], 1002),
    ("continuation first", [frame(0, b"x")], 1002),
    ("new message inside fragmented", [frame(1, b"a", fin=False), frame(1, b"b")], 1002),
    ("invalid utf-8", [frame(1, b"\xed\xa0\x80")], 1007),
    ("utf-8 cut at message end", [frame(1, b"\xf0\x9f")], 1007),
    ("close code 1005 on the wire", [frame(8, struct.pack(">H", 1005))], 1002),
    ("close one byte", [frame(8, b"\x03")], 1002),
    ("too big", [frame(2, b"x" * 100001)], 1009),
    ("too big in fragments", [frame(2, b"x" * 60000, fin=False), frame(0, b"y" * 60000)], 1009),
])
def test_protocol_errors_close_with_the_right_code(ws_server, name, frames, code):
    sock, rd = open_ws(ws_server)
    sock.sendall(b"".join(frames))
    expect_close(rd, code)
    data, closed = srv.read_all_until_close(sock)
    assert closed


def test_abrupt_client_drop_reaches_app(ws_server, rec):
    sock, rd = open_ws(ws_server)
    sock.sendall(frame(1, b"ping?"))
    assert rd.frame() == (1, True, b"ping?")
    n = records(rec).count("disconnect:1006")
    sock.close()
    assert srv.wait_until(lambda: records(rec).count("disconnect:1006") > n, 5)


def test_graceful_stop_closes_websockets_with_1001(make_server, tmp_path):
    r = str(tmp_path / "rec")
    s = make_server("wsapp:raw", ["-k", "asgi", "--graceful-timeout", "20"],
                    env={"ASGI_RECORD": r})
    socks = [open_ws(s) for _ in range(3)]
    for sock, rd in socks:
        sock.sendall(frame(1, b"hi"))
        assert rd.frame() == (1, True, b"hi")
    s.proc.send_signal(15)
    for sock, rd in socks:
        expect_close(rd, 1001)
    assert s.proc.wait(10) == 0  # well before the graceful timeout
    assert records(r).count("disconnect:1001") == 3


# ---- permessage-deflate (RFC 7692) ----

import zlib  # noqa: E402

DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def deflate(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(data):
    return zlib.decompressobj(wbits=-15).decompress(data + b"\x00\x00\xff\xff")


def test_deflate_negotiated_with_the_websockets_client(ws_server):
    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/echo" % ws_server.port) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert ext.startswith("permessage-deflate")
            text = "compress me " * 5000
            await ws.send(text)
            assert await ws.recv() == text
    run(go())


def test_deflate_raw_compressed_both_ways(ws_server):
    sock, rd = open_ws(ws_server, extra=DEFLATE_OFFER)
    assert "Sec-WebSocket-Extensions: permessage-deflate" in rd.head
    text = ("héllo " * 2000).encode()
    z = deflate(text)
    assert len(z) < len(text) // 10
    # compressed, in two fragments (RSV1 on the first only), twice: the client keeps context
    sock.sendall(frame(1, z[:10], fin=False, rsv=0x40) + frame(0, z[10:]))
    op, fin, payload = rd.frame()
    assert op == 1 and rd.rsv1 and len(payload) < len(text) // 10  # we compress too
    assert inflate(payload) == text
    sock.sendall(frame(2, b"short", rsv=0))  # uncompressed messages still work
    op, fin, payload = rd.frame()
    assert (op, rd.rsv1, payload) == (2, False, b"short")


def test_deflate_corrupt_is_1007_and_bomb_is_1009(ws_server):
    sock, rd = open_ws(ws_server, extra=DEFLATE_OFFER)
    sock.sendall(frame(2, b"\xff\xfe\xfd garbage", rsv=0x40))
    expect_close(rd, 1007)
    sock, rd = open_ws(ws_server, extra=DEFLATE_OFFER)
    bomb = deflate(b"\0" * 2000000)  # tiny on the wire, 2 MB inflated; the limit is 100000
    assert len(bomb) < 100000
    sock.sendall(frame(2, bomb, rsv=0x40))
    expect_close(rd, 1009)


def test_deflate_not_negotiated_when_declined_or_disabled(ws_server, make_server):
    sock, rd = open_ws(ws_server, extra="Sec-WebSocket-Extensions: permessage-deflate; "
                                        "server_max_window_bits=10\r\n")
    assert "Sec-WebSocket-Extensions" not in rd.head
    sock.sendall(frame(1, deflate(b"x" * 100), rsv=0x40))
    expect_close(rd, 1002)  # RSV1 without the extension
    s = make_server("wsapp:raw", ["-k", "asgi", "--no-websocket-deflate"])
    sock, rd = open_ws(s, extra=DEFLATE_OFFER)
    assert "Sec-WebSocket-Extensions" not in rd.head
