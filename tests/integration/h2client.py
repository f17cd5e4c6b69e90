"""A small HTTP/2 client over a plain socket (h2c prior knowledge, or TLS with ALPN) built
on the `h2` library, for tests that need several streams on one connection or misbehaving peers."""
import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


class H2Conn:
    def __init__(self, host, port, timeout=10.0, settings=None, window=None, tls=False,
                 ssl_context=None, server_hostname=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        tls = tls or ssl_context is not None
        if tls:  # HTTP/2 chosen by ALPN (a test certificate: verified only by ssl_context)
            ctx = ssl_context
            if ctx is None:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname or host)
            assert self.sock.selected_alpn_protocol() == "h2"
        self.scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.responses = {}  # stream id -> dict(status, headers, body, ended, reset)
        self.events = []
        self.closed = False
        self.goaway = None
        self.host, self.port = host, port

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", self.scheme),
                (":authority", "%s:%d" % (self.host, self.port))] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None and end)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        self.responses[sid] = {"status": None, "headers": [], "body": b"", "ended": False,
                               "reset": None, "done_at": None}
        return sid

    def send_body(self, sid, body, end=True):
        # respect the peer's flow control window: wait for WINDOW_UPDATEs as needed
        while body:
            w = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if w <= 0:
                self.flush()
                self.pump(0.2)
                continue
            chunk, body = body[:w], body[w:]
            self.conn.send_data(sid, chunk, end_stream=end and not body)
            self.flush()
        if end and not body and not self.conn._get_stream_by_id(sid).state_machine.state.name.startswith("HALF_CLOSED_LOCAL"):
            pass

    def pump(self, timeout):
        """Read and process for up to `timeout` seconds (or until one read returns)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            self.events.append(ev)
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.InformationalResponseReceived):
                r.setdefault("informational", []).append(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived):
                r["trailers"] = ev.headers
            elif isinstance(ev, h2.events.ResponseReceived):
                r["status"] = int(dict(ev.headers)[":status"])
                r["headers"] = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                r["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r["ended"] = True
                r["done_at"] = time.monotonic()
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r["reset"] = ev.error_code
                    r["done_at"] = time.monotonic()
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()
        return True

    def wait(self, sids, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.responses[s]["ended"] or self.responses[s]["reset"] is not None
                   for s in sids):
                return [self.responses[s] for s in sids]
            if self.closed:
                break
            self.pump(0.2)
        return [self.responses[s] for s in sids]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
