"""The ASGI worker's event loop (-k asgi): asyncio or uvloop on the worker's main thread.

The C connection engine is stepped from this loop: its one fd (an epoll set) is watched with
loop.add_reader and its next timer with loop.call_at, so the same thread accepts, parses,
runs the app's coroutines and writes responses. C builds each request's scope and runs its
receive/send (src/py/asgi.c); this file only owns the loop, the stepping and the lifespan
protocol. `eng` is the C module _cunicorn_asgi_engine:

    eng.step()   run what is ready; then the seconds until the engine's next timer (-1.0:
                 none), or STOPPED (-2.0) after a graceful stop, QUICK (-3.0) after a quick one
    eng.fd()     the engine's fd to watch for readability
    eng.start(loop, state, step)   requests are dispatched from now on, as tasks of `loop`
    eng.log(level, message)  the error log (gunicorn's levels: 10 debug ... 40 error)
"""
import asyncio

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
LIFESPAN_TIMEOUT = 30.0  # gunicorn's startup and shutdown limits
WORKER_BOOT_ERROR = 3  # the master stops instead of starting another worker
STOPPED, QUICK = -2.0, -3.0


class LifespanFailed(Exception):
    """The app sent lifespan.startup.failed (or shutdown.failed)."""


def new_loop(kind):
    """asgi_loop: 'uvloop', 'asyncio', or 'auto' (uvloop when it can be imported)."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


def _settle(fut, exc=None):
    if fut.done():
        return False
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)
    return True


class Lifespan:
    """One worker's run of the ASGI lifespan protocol (spec 2.0+, with state)."""

    def __init__(self, app, state, log):
        loop = asyncio.get_running_loop()
        self.app = app
        self.state = state
        self.log = log
        self.inbox = asyncio.Queue()
        self.started = loop.create_future()
        self.stopped = loop.create_future()
        self.finished = False
        self.task = None

    async def _run(self):
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.inbox.get, self._send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the app's failure is reported, not raised here
            if not _settle(self.started, exc):
                if not self.stopped.done():
                    self.log(ERROR, "ASGI lifespan shutdown error: %r" % (exc,))
                _settle(self.stopped)
        finally:
            self.finished = True
            _settle(self.started, RuntimeError("Application exited before startup complete"))
            _settle(self.stopped)

    async def _send(self, message):
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            _settle(self.started)
        elif kind == "lifespan.startup.failed":
            _settle(self.started, LifespanFailed(message.get("message", "")))
        elif kind == "lifespan.shutdown.complete":
            _settle(self.stopped)
        elif kind == "lifespan.shutdown.failed":
            self.log(ERROR, "ASGI lifespan shutdown failed: %s" % message.get("message", ""))
            _settle(self.stopped)
        else:
            raise RuntimeError("Unexpected ASGI lifespan message type: %r" % (kind,))

    async def startup(self):
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(asyncio.shield(self.started), LIFESPAN_TIMEOUT)

    async def shutdown(self):
        if self.finished:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self.stopped), LIFESPAN_TIMEOUT)
        except asyncio.TimeoutError:
            self.log(WARNING, "ASGI lifespan shutdown timed out")
        if not self.task.done():
            self.task.cancel()


async def _serve(eng, app, lifespan_mode):
    loop = asyncio.get_running_loop()
    state = {}
    lifespan = None
    if lifespan_mode != "off":
        lifespan = Lifespan(app, state, eng.log)
        try:
            await lifespan.startup()
        except Exception as exc:
            if lifespan_mode == "on" or isinstance(exc, LifespanFailed):
                # Serving without a started app, or rebooting workers forever, helps
                # nobody: the master stops with this message.
                reason = str(exc) or type(exc).__name__
                eng.log(ERROR, "ASGI lifespan startup failed: %s" % reason)
                if not lifespan.task.done():
                    lifespan.task.cancel()
                return WORKER_BOOT_ERROR
            eng.log(DEBUG, "ASGI lifespan not supported by app: %s" % (exc,))
            lifespan = None

    stopped = loop.create_future()
    fd = eng.fd()
    timer = None
    timer_at = 0.0
    now = loop.time

    def on_timer():
        nonlocal timer
        timer = None
        step()

    def step():
        nonlocal timer, timer_at
        delay = eng.step()
        if delay >= 0.0:
            at = now() + delay
            if timer is None or timer_at > at + 0.001:
                if timer is not None:
                    timer.cancel()
                timer_at = at
                timer = loop.call_at(at, on_timer)
        elif delay <= STOPPED:
            loop.remove_reader(fd)
            if timer is not None:
                timer.cancel()
            if not stopped.done():
                stopped.set_result(delay)

    eng.start(loop, state, step)
    loop.add_reader(fd, step)
    loop.call_soon(step)
    how = await stopped
    if lifespan is not None and how == STOPPED:
        await lifespan.shutdown()
    return 0


def serve(eng, app, loop_kind, lifespan_mode):
    """Run the worker until the engine stops; returns the worker's exit code."""
    loop, name = new_loop(loop_kind)
    eng.log(DEBUG, "ASGI worker event loop: %s" % name)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve(eng, app, lifespan_mode))
    finally:
        asyncio.set_event_loop(None)
