"""The dirty-arbiter error classes, with gunicorn's names, fields and wire form
({"error_type", "message", "details"})."""


class DirtyError(Exception):
    """Base class of every dirty-arbiter error."""

    def __init__(self, message, details=None):
        self.message = message
        self.details = details or {}
        super().__init__(message)

    def __str__(self):
        if self.details:
            return "%s: %s" % (self.message, self.details)
        return self.message

    def to_dict(self):
        return {"error_type": type(self).__name__, "message": self.message,
                "details": self.details}

    @classmethod
    def from_dict(cls, data):
        """The error a wire ERROR payload describes, as an instance of its class."""
        klass = _CLASSES.get(data.get("error_type"), DirtyError)
        err = Exception.__new__(klass)
        err.message = data.get("message", "Unknown error")
        err.details = data.get("details") or {}
        Exception.__init__(err, err.message)
        d = err.details
        if klass is DirtyTimeoutError:
            err.timeout = d.get("timeout")
        elif klass is DirtyConnectionError:
            err.socket_path = d.get("socket_path")
        elif klass is DirtyWorkerError:
            err.worker_id = d.get("worker_id")
            err.traceback = d.get("traceback")
        elif klass in (DirtyAppError, DirtyAppNotFoundError):
            err.app_path = d.get("app_path")
            err.action = d.get("action")
            err.traceback = d.get("traceback")
        elif klass is DirtyNoWorkersAvailableError:
            err.app_path = d.get("app_path")
        return err


class DirtyTimeoutError(DirtyError):
    """A call took longer than its timeout (the client's, or the server's dirty_timeout)."""

    def __init__(self, message="Operation timed out", timeout=None):
        super().__init__(message, {"timeout": timeout} if timeout else {})
        self.timeout = timeout


class DirtyConnectionError(DirtyError):
    """The dirty arbiter could not be reached."""

    def __init__(self, message="Connection failed", socket_path=None):
        super().__init__(message, {"socket_path": socket_path} if socket_path else {})
        self.socket_path = socket_path


class DirtyWorkerError(DirtyError):
    """The dirty worker handling the call failed (it died, or could not be reached)."""

    def __init__(self, message, worker_id=None, traceback=None):
        details = {}
        if worker_id is not None:
            details["worker_id"] = worker_id
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.worker_id = worker_id
        self.traceback = traceback


class DirtyAppError(DirtyError):
    """The app's action raised; `traceback` is the worker-side traceback."""

    def __init__(self, message, app_path=None, action=None, traceback=None):
        details = {}
        if app_path:
            details["app_path"] = app_path
        if action:
            details["action"] = action
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.app_path = app_path
        self.action = action
        self.traceback = traceback


class DirtyAppNotFoundError(DirtyAppError):
    """The worker has no such app."""

    def __init__(self, app_path):
        super().__init__("Dirty app not found: %s" % app_path, app_path=app_path)


class DirtyNoWorkersAvailableError(DirtyError):
    """No dirty worker has loaded the app (none configured for it, or all dead)."""

    def __init__(self, app_path, message=None):
        super().__init__(message or "No workers available for app: %s" % app_path,
                         {"app_path": app_path})
        self.app_path = app_path


class DirtyProtocolError(DirtyError):
    """A malformed message."""

    def __init__(self, message="Protocol error", raw_data=None):
        details = {}
        if raw_data is not None:
            if isinstance(raw_data, bytes):
                raw_data = raw_data[:100].hex()
            details["raw_data"] = str(raw_data)[:200]
        super().__init__(message, details)


_CLASSES = {c.__name__: c for c in (
    DirtyError, DirtyTimeoutError, DirtyConnectionError, DirtyWorkerError, DirtyAppError,
    DirtyAppNotFoundError, DirtyNoWorkersAvailableError, DirtyProtocolError)}
