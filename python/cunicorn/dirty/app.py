"""DirtyApp: the base class of dirty applications (loaded once per dirty worker)."""


class DirtyApp:
    """Subclass it and add actions as methods. Lifecycle in each dirty worker: the class is
    instantiated once, `init()` loads resources, each call runs `self(action, *args,
    **kwargs)` (a method named `action`; a generator streams), `close()` runs at exit.

    `workers = N` limits how many dirty workers load the app (None: every worker); the
    config spec "module:Class:N" overrides it. With dirty_threads > 1, actions run
    concurrently and must be thread-safe."""

    workers = None

    def init(self):
        """Load what the actions need (called once, in the dirty worker, after fork)."""

    def __call__(self, action, *args, **kwargs):
        method = getattr(self, action, None)
        if method is None or action.startswith("_"):
            raise ValueError("Unknown action: %s" % action)
        return method(*args, **kwargs)

    def close(self):
        """Release resources (called once as the dirty worker exits)."""
