"""The client HTTP workers use to call dirty apps: sync (sync/gthread workers) and async
(asyncio) APIs over one unix-socket connection to the dirty arbiter (GUNICORN_DIRTY_SOCKET).
A connection carries one call at a time; a call that fails mid-way (timeout, broken stream)
drops the connection, so nothing left of it can be read as a later call's answer."""
import asyncio
import contextvars
import itertools
import os
import socket
import threading
import time

from . import protocol as P
from .errors import DirtyConnectionError, DirtyError, DirtyTimeoutError

_ids = itertools.count(1)


def _result(msg_type, payload):
    if msg_type == P.RESPONSE:
        return payload.get("result")
    if msg_type == P.ERROR:
        raise DirtyError.from_dict(payload.get("error") or {})
    raise DirtyError("Unknown response type: %d" % msg_type)


class DirtyClient:
    """Calls dirty apps through the arbiter at socket_path; `timeout` seconds per call."""

    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock = None
        self._reader = None
        self._writer = None
        self._lock = threading.Lock()

    # ---- sync
    def connect(self):
        if self._sock is not None:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self.socket_path)
        except OSError as e:
            s.close()
            raise DirtyConnectionError("Failed to connect to dirty arbiter: %s" % e,
                                       socket_path=self.socket_path) from e
        self._sock = s

    def _close_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _roundtrip(self, msg_type, payload):
        if self._sock is None:
            self.connect()
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(P.encode(msg_type, next(_ids), payload))
            t, _, body = P.read_message(self._sock)
        except socket.timeout:
            self._close_socket()
            raise DirtyTimeoutError("Timeout waiting for dirty app response", timeout=self.timeout)
        except DirtyError:
            self._close_socket()
            raise
        except OSError as e:
            self._close_socket()
            raise DirtyConnectionError("Communication error: %s" % e) from e
        return _result(t, body)

    def execute(self, app_path, action, *args, **kwargs):
        """Run `action` of the dirty app `app_path` ("module:Class") and return its result."""
        with self._lock:
            return self._roundtrip(P.REQUEST, {"app_path": app_path, "action": action,
                                               "args": list(args), "kwargs": kwargs})

    def stream(self, app_path, action, *args, **kwargs):
        """Iterate the chunks of an action that returns a generator."""
        return DirtyStreamIterator(self, app_path, action, args, kwargs)

    def status(self):
        """The arbiter's view of its workers (pid, age, apps, heartbeat)."""
        with self._lock:
            return self._roundtrip(P.STATUS, None)

    def manage(self, op, count=1):
        with self._lock:
            return self._roundtrip(P.MANAGE, {"op": op, "count": count})

    def close(self):
        with self._lock:
            self._close_socket()

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- async
    async def connect_async(self):
        if self._writer is not None:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path), timeout=self.timeout)
        except asyncio.TimeoutError:
            raise DirtyTimeoutError("Timeout connecting to dirty arbiter", timeout=self.timeout)
        except OSError as e:
            raise DirtyConnectionError("Failed to connect to dirty arbiter: %s" % e,
                                       socket_path=self.socket_path) from e

    async def _close_async(self):
        if self._writer is not None:
            try:
                self._writer.close()
                await self._writer.wait_closed()
            except Exception:
                pass
            self._reader = self._writer = None

    async def execute_async(self, app_path, action, *args, **kwargs):
        await self.connect_async()
        req = P.encode(P.REQUEST, next(_ids), {"app_path": app_path, "action": action,
                                               "args": list(args), "kwargs": kwargs})
        try:
            self._writer.write(req)
            await self._writer.drain()
            t, _, body = await asyncio.wait_for(P.read_message_async(self._reader),
                                                timeout=self.timeout)
        except asyncio.TimeoutError:
            await self._close_async()
            raise DirtyTimeoutError("Timeout waiting for dirty app response", timeout=self.timeout)
        except DirtyError:
            await self._close_async()
            raise
        except (OSError, asyncio.IncompleteReadError) as e:
            await self._close_async()
            raise DirtyConnectionError("Communication error: %s" % e) from e
        return _result(t, body)

    def stream_async(self, app_path, action, *args, **kwargs):
        return DirtyAsyncStreamIterator(self, app_path, action, args, kwargs)

    async def close_async(self):
        await self._close_async()

    async def __aenter__(self):
        await self.connect_async()
        return self

    async def __aexit__(self, *exc):
        await self.close_async()


class DirtyStreamIterator:
    """Chunks of a streaming call (sync). `timeout` bounds the whole stream, and each wait
    for a chunk is bounded by the idle timeout (30 s, or less)."""

    DEFAULT_IDLE_TIMEOUT = 30.0

    def __init__(self, client, app_path, action, args, kwargs, idle_timeout=None):
        self.client = client
        self._req = {"app_path": app_path, "action": action, "args": list(args),
                     "kwargs": kwargs}
        self._started = self._done = False
        self._deadline = None
        self._idle = idle_timeout if idle_timeout is not None else \
            min(self.DEFAULT_IDLE_TIMEOUT, client.timeout)

    def __iter__(self):
        return self

    def _fail(self, exc):
        self._done = True
        self.client._close_socket()
        raise exc

    def __next__(self):
        if self._done:
            raise StopIteration
        c = self.client
        with c._lock:
            if not self._started:
                self._started = True
                if c._sock is None:
                    c.connect()
                self._deadline = time.monotonic() + c.timeout
                try:
                    c._sock.sendall(P.encode(P.REQUEST, next(_ids), self._req))
                except OSError as e:
                    self._fail(DirtyConnectionError("Communication error: %s" % e))
            left = self._deadline - time.monotonic()
            if left <= 0:
                self._fail(DirtyTimeoutError("Stream exceeded total timeout", timeout=c.timeout))
            try:
                c._sock.settimeout(min(left, self._idle))
                t, _, body = P.read_message(c._sock)
            except socket.timeout:
                self._fail(DirtyTimeoutError("Timeout waiting for next chunk",
                                             timeout=self._idle))
            except DirtyError as e:
                self._fail(e)
            except OSError as e:
                self._fail(DirtyConnectionError("Communication error: %s" % e))
        if t == P.CHUNK:
            return body.get("data")
        self._done = True
        if t == P.ERROR:
            raise DirtyError.from_dict(body.get("error") or {})
        if t in (P.END, P.RESPONSE):
            raise StopIteration
        raise DirtyError("Unknown message type: %d" % t)


class DirtyAsyncStreamIterator:
    """Chunks of a streaming call (async)."""

    def __init__(self, client, app_path, action, args, kwargs):
        self.client = client
        self._req = {"app_path": app_path, "action": action, "args": list(args),
                     "kwargs": kwargs}
        self._started = self._done = False
        self._deadline = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._done:
            raise StopAsyncIteration
        c = self.client
        if not self._started:
            self._started = True
            await c.connect_async()
            self._deadline = time.monotonic() + c.timeout
            c._writer.write(P.encode(P.REQUEST, next(_ids), self._req))
            await c._writer.drain()
        left = self._deadline - time.monotonic()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            t, _, body = await asyncio.wait_for(P.read_message_async(c._reader),
                                                timeout=min(left, 30.0))
        except asyncio.TimeoutError:
            self._done = True
            await c._close_async()
            raise DirtyTimeoutError("Timeout waiting for next chunk", timeout=c.timeout)
        except (OSError, asyncio.IncompleteReadError, DirtyError) as e:
            self._done = True
            await c._close_async()
            if isinstance(e, DirtyError):
                raise
            raise DirtyConnectionError("Communication error: %s" % e) from e
        if t == P.CHUNK:
            return body.get("data")
        self._done = True
        if t == P.ERROR:
            raise DirtyError.from_dict(body.get("error") or {})
        raise StopAsyncIteration


_local = threading.local()
_async_client = contextvars.ContextVar("cunicorn_dirty_client")
_socket_path = None


def set_dirty_socket_path(path):
    global _socket_path
    _socket_path = path
    from .stash import set_stash_socket_path
    set_stash_socket_path(path)


def get_dirty_socket_path():
    path = _socket_path or os.environ.get("GUNICORN_DIRTY_SOCKET")
    if not path:
        raise DirtyError("Dirty socket path not configured. "
                         "Make sure dirty_workers > 0 and dirty_apps are configured.")
    return path


def get_dirty_client(timeout=30.0):
    """This thread's client (created on first use)."""
    c = getattr(_local, "client", None)
    if c is None:
        c = _local.client = DirtyClient(get_dirty_socket_path(), timeout=timeout)
    return c


async def get_dirty_client_async(timeout=30.0):
    """This context's client (created on first use)."""
    try:
        return _async_client.get()
    except LookupError:
        c = DirtyClient(get_dirty_socket_path(), timeout=timeout)
        _async_client.set(c)
        return c


def close_dirty_client():
    c = getattr(_local, "client", None)
    if c is not None:
        c.close()
        _local.client = None


async def close_dirty_client_async():
    try:
        await _async_client.get().close_async()
    except LookupError:
        pass
