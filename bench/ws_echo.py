#!/usr/bin/env python3
"""WebSocket echo load: `conns` connections, each keeping `window` small text messages in
flight (sent in one write, the echoes counted by bytes), for `seconds`. Frames are built
once, so the client costs little next to the server. Prints messages echoed per second.

  python3 bench/ws_echo.py PORT [--seconds 5] [--conns 10] [--window 32]
"""
import argparse
import base64
import os
import selectors
import socket
import time

MSG = b"hello, websocket"


def frame(payload):
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(
        b ^ key[i % 4] for i, b in enumerate(payload))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("closed during handshake")
        data += d
    if not data.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake refused: %r" % data[:60])
    s.setblocking(False)
    return s, len(data.partition(b"\r\n\r\n")[2])


def run(port, seconds=5.0, conns=10, window=32):
    echo_len = 2 + len(MSG)  # an unmasked server frame
    batch = frame(MSG) * window
    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(conns):
        s, extra = connect(port)
        s.sendall(batch)
        state[s] = extra
        sel.register(s, selectors.EVENT_READ)
    done = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                raise RuntimeError("server closed a connection")
            state[s] += len(d)
            while state[s] >= echo_len * window:  # a whole window came back: send the next
                state[s] -= echo_len * window
                done += window
                s.sendall(batch)
    elapsed = time.monotonic() - start
    for s in state:
        s.close()
    return done / elapsed


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    print("%.0f messages/s" % run(a.port, a.seconds, a.conns, a.window))
