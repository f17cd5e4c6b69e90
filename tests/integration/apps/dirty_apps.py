"""Dirty apps for tests/integration/test_dirty.py: a stateful model, a token streamer,
failures on demand. Plain classes with init/__call__/close (what both gunicorn and
cunicorn require of a dirty app), so the same file runs under either server."""
import asyncio
import os
import threading
import time

EVENTS = os.environ.get("DIRTY_EVENTS")  # a file every app appends its lifecycle to


def _event(text):
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write("%s %d\n" % (text, os.getpid()))


class Base:
    workers = None

    def init(self):
        pass

    def close(self):
        pass

    def __call__(self, action, *args, **kwargs):
        method = getattr(self, action, None)
        if method is None or action.startswith("_"):
            raise ValueError("Unknown action: %s" % action)
        return method(*args, **kwargs)


class Model(Base):
    """Loaded once per worker: init() counts, predict() uses the loaded 'weights'."""

    def init(self):
        self.weights = {"bias": 10}
        self.calls = 0
        self.loaded_at = time.time()
        self.lock = threading.Lock()
        _event("model-init")

    def predict(self, x, scale=1):
        with self.lock:
            self.calls += 1
            n = self.calls
        return {"y": x * scale + self.weights["bias"], "calls": n, "pid": os.getpid(),
                "loaded_at": self.loaded_at}

    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    def ping(self):
        return 1

    def sleep(self, seconds, tag=None):
        _event("sleep")
        time.sleep(seconds)
        return {"slept": seconds, "tag": tag, "pid": os.getpid()}

    def unencodable(self):
        return {"a set": {1, 2}}

    def boom(self, text):
        raise RuntimeError("boom: %s" % text)

    def die(self):
        os._exit(7)

    def pid(self):
        return os.getpid()

    def stash_put(self, table, key, value):
        # the stash from inside a dirty worker (gunicorn documents it)
        from gunicorn.dirty import stash
        stash.put(table, key, value)
        return True

    def close(self):
        _event("model-close")


class Tokens(Base):
    """A streaming token generator (sync) and an async one."""

    def generate(self, prompt, n=5):
        for i in range(n):
            yield "%s-%d" % (prompt, i)

    async def agenerate(self, prompt, n=3):
        for i in range(n):
            await asyncio.sleep(0)
            yield "%s:%d" % (prompt, i)

    def broken_stream(self):
        yield "first"
        raise ValueError("stream broke")


class Limited(Base):
    """Only one worker loads it (class attribute, as gunicorn reads it)."""
    workers = 1

    def pid(self):
        return os.getpid()
