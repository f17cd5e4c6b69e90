"""The stash: tables of keys and values held by the dirty arbiter, shared by every HTTP and
dirty worker. Values must be TLV-encodable (None, bool, int, float, bytes, str, list,
dict)."""
import os
import socket
import threading

from . import protocol as P
from .errors import DirtyError


class StashError(DirtyError):
    """A stash operation failed."""


class StashTableNotFoundError(StashError):
    def __init__(self, table_name):
        self.table_name = table_name
        super().__init__("Stash table not found: %s" % table_name)


class StashKeyNotFoundError(StashError):
    def __init__(self, table_name, key):
        self.table_name, self.key = table_name, key
        super().__init__("Key not found in %s: %s" % (table_name, key))


class StashClient:
    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock = None
        self._lock = threading.Lock()
        self._ids = 0

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _execute(self, op, table, key=None, value=None, pattern=None):
        msg = {"op": op, "table": table}
        if key is not None:
            msg["key"] = key
        if value is not None:
            msg["value"] = value
        if pattern is not None:
            msg["pattern"] = pattern
        with self._lock:
            try:
                if self._sock is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(self.timeout)
                    try:
                        s.connect(self.socket_path)
                    except OSError:
                        s.close()
                        raise
                    self._sock = s
                self._ids += 1
                self._sock.sendall(P.encode(P.STASH, self._ids, msg))
                t, _, body = P.read_message(self._sock)
            except (OSError, DirtyError) as e:
                self._close()
                raise StashError("Stash operation failed: %s" % e) from e
        if t == P.RESPONSE:
            return body.get("result")
        err = body.get("error") or {}
        kind = err.get("error_type")
        if kind == "StashTableNotFoundError":
            raise StashTableNotFoundError(table)
        if kind == "StashKeyNotFoundError":
            raise StashKeyNotFoundError(table, key)
        raise StashError(err.get("message", "Unknown error"))

    def put(self, table, key, value):
        self._execute(P.STASH_OP_PUT, table, key=key, value=value)

    def get(self, table, key, default=None):
        try:
            return self._execute(P.STASH_OP_GET, table, key=key)
        except StashKeyNotFoundError:
            return default

    def delete(self, table, key):
        return self._execute(P.STASH_OP_DELETE, table, key=key)

    def keys(self, table, pattern=None):
        return self._execute(P.STASH_OP_KEYS, table, pattern=pattern)

    def clear(self, table):
        self._execute(P.STASH_OP_CLEAR, table)

    def info(self, table):
        return self._execute(P.STASH_OP_INFO, table)

    def ensure(self, table):
        self._execute(P.STASH_OP_ENSURE, table)

    def exists(self, table, key=None):
        return self._execute(P.STASH_OP_EXISTS, table, key=key)

    def delete_table(self, table):
        self._execute(P.STASH_OP_DELETE_TABLE, table)

    def tables(self):
        return self._execute(P.STASH_OP_TABLES, "")

    def table(self, name):
        return StashTable(self, name)

    def close(self):
        with self._lock:
            self._close()


class StashTable:
    """A dict-like view of one table."""

    _MISSING = object()

    def __init__(self, client, name):
        self._client, self._name = client, name

    @property
    def name(self):
        return self._name

    def __getitem__(self, key):
        v = self._client.get(self._name, key, self._MISSING)
        if v is self._MISSING:
            raise KeyError(key)
        return v

    def __setitem__(self, key, value):
        self._client.put(self._name, key, value)

    def __delitem__(self, key):
        if not self._client.delete(self._name, key):
            raise KeyError(key)

    def __contains__(self, key):
        return self._client.exists(self._name, key)

    def __iter__(self):
        return iter(self._client.keys(self._name))

    def __len__(self):
        try:
            return self._client.info(self._name).get("size", 0)
        except StashTableNotFoundError:
            return 0

    def get(self, key, default=None):
        return self._client.get(self._name, key, default)

    def keys(self, pattern=None):
        return self._client.keys(self._name, pattern=pattern)

    def clear(self):
        self._client.clear(self._name)

    def items(self):
        for k in self._client.keys(self._name):
            yield k, self._client.get(self._name, k)

    def values(self):
        for k in self._client.keys(self._name):
            yield self._client.get(self._name, k)


_local = threading.local()
_socket_path = None


def set_stash_socket_path(path):
    global _socket_path
    _socket_path = path


def _client():
    c = getattr(_local, "client", None)
    if c is None:
        path = _socket_path or os.environ.get("GUNICORN_DIRTY_SOCKET")
        if not path:
            raise StashError("Stash socket path not configured. "
                             "Make sure dirty_workers > 0 and dirty_apps are configured.")
        c = _local.client = StashClient(path)
    return c


def put(table, key, value):
    _client().put(table, key, value)


def get(table, key, default=None):
    return _client().get(table, key, default)


def delete(table, key):
    return _client().delete(table, key)


def keys(table, pattern=None):
    return _client().keys(table, pattern)


def clear(table):
    _client().clear(table)


def info(table):
    return _client().info(table)


def ensure(table):
    _client().ensure(table)


def exists(table, key=None):
    return _client().exists(table, key)


def delete_table(table):
    _client().delete_table(table)


def tables():
    return _client().tables()


def table(name):
    return StashTable(_client(), name)
