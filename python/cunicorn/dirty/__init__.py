"""cunicorn.dirty: gunicorn's dirty-arbiter API for code that does not install gunicorn.

    from cunicorn.dirty import DirtyApp, get_dirty_client, stash

Same names and behaviour as gunicorn.dirty (gunicorn 25+), same wire protocol: it talks to
the arbiter whose socket path the server puts in GUNICORN_DIRTY_SOCKET."""
from . import stash
from .app import DirtyApp
from .client import (DirtyClient, close_dirty_client, close_dirty_client_async,
                     get_dirty_client, get_dirty_client_async, set_dirty_socket_path)
from .errors import (DirtyAppError, DirtyAppNotFoundError, DirtyConnectionError, DirtyError,
                     DirtyNoWorkersAvailableError, DirtyProtocolError, DirtyTimeoutError,
                     DirtyWorkerError)
from .stash import (StashClient, StashError, StashKeyNotFoundError, StashTable,
                    StashTableNotFoundError)

__all__ = [
    "DirtyError", "DirtyTimeoutError", "DirtyConnectionError", "DirtyWorkerError",
    "DirtyAppError", "DirtyAppNotFoundError", "DirtyNoWorkersAvailableError",
    "DirtyProtocolError", "DirtyApp", "DirtyClient", "get_dirty_client",
    "get_dirty_client_async", "close_dirty_client", "close_dirty_client_async",
    "set_dirty_socket_path", "stash", "StashClient", "StashTable", "StashError",
    "StashTableNotFoundError", "StashKeyNotFoundError",
]
