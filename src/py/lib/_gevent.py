"""The gevent worker's driver (-k gevent): the gevent hub runs the worker's C engine.

The hub watches the engine's epoll fd and a timer for the engine's next deadline; a
"stepper" greenlet calls step() (cu_engine_step: never waits for I/O). A complete request
runs its app inside that step, in the stepper's greenlet. When the app yields to the hub
(a patched socket, time.sleep, a lock), the engine's next event finds no idle stepper and
a new one is started: so each request in flight holds one greenlet, at most
worker_connections of them (the engine's connection cap), and a stepper whose app
finished after another took over just ends. Called by src/py/gevent.c; step and
next_deadline are its C functions.
"""

MIN_VERSION = (24, 10, 1)
spawn_raw = getcurrent = Waiter = None  # gevent's, imported by serve() (after the version check)


def version_ok(version):
    """gevent >= 24.10.1 (gunicorn 27's requirement), from gevent.__version__; a
    pre-release of 24.10.1 (24.10.1rc1, .dev0) is below it, as packaging orders them."""
    parts = []
    pre = False
    for piece in version.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                pre = True
                break
            digits += ch
        if not digits:
            pre = True
            break
        parts.append(int(digits))
        if pre:
            break
    if len(version.split(".")) > 3 and not version.split(".")[3].isdigit():
        pre = True  # 24.10.1.dev0
    while len(parts) < 3:
        parts.append(0)
    key = tuple(parts)
    return key > MIN_VERSION or (key == MIN_VERSION and not pre)


def patch():
    """gunicorn's GeventWorker.init_process: patch everything, then a fresh hub after fork."""
    from gevent import monkey, hub

    monkey.patch_all()
    hub.reinit()


class Driver:
    def __init__(self, step, fd, next_deadline):
        from gevent.event import Event
        from gevent.hub import get_hub

        self.step = step
        self.next_deadline = next_deadline
        self.hub = get_hub()
        self.loop = self.hub.loop
        self.io = self.loop.io(fd, 1)
        self.timer = None
        self.deadline = None  # the engine deadline self.timer is set for
        self.idle = None  # the stepper waiting for the next wake-up (a Waiter)
        self.current = None  # the stepper in charge (the others finish their app and end)
        self.starting = False  # a new stepper was spawned and has not run yet
        self.finished = Event()

    def run(self):
        self.io.start(self.wake)
        self.starting = True
        spawn_raw(self.stepper)
        self.finished.wait()
        self.io.stop()
        if self.timer is not None:
            self.timer.stop()

    def wake(self):
        """From the hub: the engine's fd is readable or its deadline came."""
        w = self.idle
        if w is not None:
            self.idle = None
            w.switch(None)
        elif not self.starting and not self.finished.is_set():
            # The stepper is inside an app that yielded: another one serves meanwhile.
            self.starting = True
            spawn_raw(self.stepper)

    def arm_timer(self):
        deadline, delay = self.next_deadline()  # ms on the engine's clock; delay from now
        if self.timer is not None:
            if self.timer.active and self.deadline == deadline:
                return
            self.timer.stop()
        if deadline < 0:
            return
        self.deadline = deadline
        self.timer = self.loop.timer(delay / 1000.0)
        self.timer.start(self.wake)

    def stepper(self):
        me = getcurrent()
        self.starting = False
        while True:
            self.current = me
            # a timer is armed while the step runs: if an app dispatched in it yields,
            # that timer (or the next event) starts another stepper, so the engine's
            # timers (the heartbeat) keep running
            timer = self.timer
            if timer is None or not timer.active:
                self.arm_timer()
            if self.step():
                self.finished.set()
                return
            if self.current is not me or self.finished.is_set():
                return  # an app yielded inside this step and another stepper took over
            self.arm_timer()
            w = self.idle = Waiter(self.hub)
            w.get()


def serve(step, fd, next_deadline):
    global spawn_raw, getcurrent, Waiter
    from gevent import getcurrent, spawn_raw
    from gevent.hub import Waiter

    Driver(step, fd, next_deadline).run()
