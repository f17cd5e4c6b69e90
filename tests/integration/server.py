"""Harness for running the real cunicorn binary in tests.

Shared by tests/integration and tests/conformance. Everything here talks to the server over
real sockets on 127.0.0.1 (or a unix socket); nothing waits with a fixed sleep: readiness,
log lines and process state are polled with a deadline.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, "apps")
EXAMPLES = os.path.join(REPO, "examples")

BIN = os.environ.get("CUNICORN_BIN") or os.path.join(REPO, "build", "cunicorn")



def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ASan keeps freed memory in quarantine (256 MiB by default): RSS bounds must allow for it.
SANITIZED = _is_sanitized(BIN)

# How much slower than the release build a request may be on this binary: every time bound
# a test asserts is multiplied by it. ASan+UBSan run the server about 2-3x slower, so 3 for
# a sanitizer binary; CUNICORN_TIME_SCALE overrides (the Makefile sets it for its ASan
# pass, and a very slow CI machine may raise it).
TIME_SCALE = float(os.environ.get("CUNICORN_TIME_SCALE") or (3.0 if SANITIZED else 1.0))


def scaled(seconds):
    """A time bound for this build: seconds on the release build, x TIME_SCALE otherwise."""
    return seconds * TIME_SCALE


def median(values):
    v = sorted(values)
    n = len(v)
    if not n:
        return 0.0
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def timed(fn, n):
    """Call fn() n times; returns the list of wall times in seconds (fn's result unused)."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        fn()
        out.append(time.monotonic() - t0)
    return out


def latency_bound(baseline, factor, floor):
    """Bound for a latency measured under some condition, from a baseline measured in the same
    run on the same server: factor x the baseline, never below floor (both scaled for this
    build). The floor absorbs scheduler noise of a loaded machine; a test that uses it must
    argue why the failure it guards against costs more than the bound."""
    return max(factor * baseline, scaled(floor))


def open_fds(pid):
    """Number of open file descriptors of pid (None if it is gone)."""
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None

READY_TIMEOUT = float(os.environ.get("CUNICORN_READY_TIMEOUT", "20" if SANITIZED else "10"))
IO_TIMEOUT = scaled(10.0)


TEST_TIME_LIMIT = int(os.environ.get("CUNICORN_TEST_TIME_LIMIT", "180"))


class TestTimeLimit(BaseException):
    pass


def _on_alarm(signum, frame):
    raise TestTimeLimit("test exceeded %ds" % TEST_TIME_LIMIT)


def time_limit_fixture_body():
    """Generator body for an autouse fixture: SIGALRM hard cap per test (no pytest-timeout
    needed)."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class ServerError(AssertionError):
    pass


# Lines that start a report of ASan, LSan or UBSan; Server.close() fails on any of them.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def ipv6_loopback_works():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.02):
    """Poll pred() until it returns a truthy value or the deadline passes. The deadline is
    only how long to wait for something that must happen: it is scaled for this build
    (TIME_SCALE), as are wait_for_log, wait_workers and wait_exit, which poll through it."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def read_lines(path):
    """The lines a test app or hook appended to the file at path ([] before the first)."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []

def wait_port(port, proc, what="proxy", timeout=10.0):
    """Wait until a peer process we started (nginx, haproxy...) accepts on 127.0.0.1:port;
    fail at once if it exited."""
    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited early with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    assert wait_until(up, timeout), "%s did not start listening" % what


# --------------------------------------------------------------------------- /proc helpers

def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parens: fields after the last ')'
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[1])


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[0].decode()


def children_of(pid):
    """Live (non-zombie) children of pid, scanning /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        cpid = int(name)
        if proc_ppid(cpid) == pid and proc_state(cpid) not in (None, "Z", "X"):
            out.append(cpid)
    return sorted(out)


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None


def vmrss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pid_alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


# --------------------------------------------------------------------------- HTTP client bits

class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def __repr__(self):
        return "<Response %s %s %r body=%r>" % (self.status, self.reason, self.headers,
                                                 self.body[:200])


class ConnectionClosed(Exception):
    """The peer closed before a complete response arrived (partial holds what did)."""

    def __init__(self, partial=b""):
        super().__init__("connection closed by server (got %r)" % partial[:200])
        self.partial = partial


class HTTPReader:
    """Reads HTTP/1.x responses from a socket, keeping leftover bytes for pipelining."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        sock.settimeout(timeout)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosed(self.buf)
        self.buf += data

    def _read_until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + len(sep):]
                return out
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def read_head(self):
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            k, sep, v = line.partition(b":")
            if not sep:
                raise AssertionError("bad header line %r" % line)
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        return (m.group(1).decode(), int(m.group(2)),
                (m.group(3) or b"").decode("latin-1"), headers)

    def read_response(self, head_request=False, sink=None):
        """Read one response (1xx included: the caller decides what to do with it).

        sink: optional callable receiving body pieces instead of accumulating them
        (for very large downloads); the returned body is then b"" and .body_len is set.
        """
        version, status, reason, headers = self.read_head()
        resp = Response(version, status, reason, headers, b"")
        if status < 200 or status in (204, 304) or head_request:
            resp.body_len = 0
            return resp
        pieces = []
        total = 0

        def emit(b):
            nonlocal total
            total += len(b)
            if sink is not None:
                sink(b)
            else:
                pieces.append(b)

        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None and "chunked" in te.lower():
            while True:
                line = self._read_until(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers until the empty line
                    while self._read_until(b"\r\n"):
                        pass
                    break
                while size:
                    if not self.buf:
                        self._fill()
                    take = self.buf[:size]
                    self.buf = self.buf[len(take):]
                    size -= len(take)
                    emit(take)
                if self._read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
        elif cl is not None:
            n = int(cl)
            while n:
                if not self.buf:
                    self._fill()
                take = self.buf[:n]
                self.buf = self.buf[len(take):]
                n -= len(take)
                emit(take)
        else:
            # close-delimited
            while True:
                if self.buf:
                    emit(self.buf)
                    self.buf = b""
                try:
                    self._fill()
                except ConnectionClosed:
                    break
        resp.body = b"".join(pieces)
        resp.body_len = total
        return resp

    def read_final_response(self, head_request=False):
        """Skip 1xx interim responses; return (final, [interims])."""
        interims = []
        while True:
            r = self.read_response(head_request=head_request)
            if 100 <= r.status < 200:
                interims.append(r)
                continue
            return r, interims

    def is_closed(self, timeout=3.0):
        """True if the server closes the connection (EOF or RST) within timeout with no
        further bytes; raises if bytes arrive."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            raise AssertionError("expected close, got %r" % data[:200])
        return True


def read_all_until_close(sock, timeout=5.0):
    """Read bytes until EOF/RST or timeout; returns (data, closed)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), False
        sock.settimeout(remaining)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True
        if not d:
            return b"".join(chunks), True
        chunks.append(d)


def build_request(method="GET", path="/", headers=None, body=b"", version="HTTP/1.1",
                  host="localhost"):
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, path, version)]
    hdrs = list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    for k, v in hdrs:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, size=7):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


# --------------------------------------------------------------------------- the server

class Server:
    """One cunicorn master started on a free 127.0.0.1 port.

    app: the APP_MODULE argument; args: extra CLI arguments; cwd/env: process setup.
    binds: override the default single -b 127.0.0.1:PORT (list of bind strings; the first
    TCP one, if any, sets .host/.port).
    """

    def __init__(self, app, args=(), cwd=None, env=None, workers=1, binds=None,
                 pythonpath=APPS, ready=True, ready_timeout=READY_TIMEOUT):
        self.app = app
        self.args = list(args)
        self.cwd = cwd or APPS
        self.workers = workers
        self.ready_timeout = ready_timeout
        self.host = "127.0.0.1"
        self.port = None
        self.unix_path = None
        if binds is None:
            self.port = free_port()
            binds = ["127.0.0.1:%d" % self.port]
        else:
            for b in binds:
                if b.startswith("unix:"):
                    self.unix_path = self.unix_path or b[5:]
                elif self.port is None:
                    m = re.match(r"^\[(.*)\]:(\d+)$", b) or re.match(r"^(.*):(\d+)$", b)
                    self.host, self.port = m.group(1), int(m.group(2))
        self.binds = binds
        self.env = dict(os.environ)
        self.env.pop("GUNICORN_CMD_ARGS", None)
        self.env.pop("WEB_CONCURRENCY", None)
        self.env["PYTHONUNBUFFERED"] = "1"
        if SANITIZED:
            # what `make` exports, for a pytest run started by hand
            self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:"
                                "detect_stack_use_after_return=0")
            self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            self.env.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0"
                                % os.path.join(REPO, "tests", "lsan.supp"))
        if env:
            self.env.update(env)
        self.pythonpath = pythonpath
        self.proc = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="cunicorn-it-")
        self.tmpdir = self._tmpdir.name
        self.errlog_path = os.path.join(self.tmpdir, "stderr.log")
        self.outlog_path = os.path.join(self.tmpdir, "stdout.log")
        self._ready = ready

    # -- lifecycle
    def command(self):
        cmd = [BIN]
        for b in self.binds:
            cmd += ["-b", b]
        cmd += ["--workers", str(self.workers)]
        if self.pythonpath:
            cmd += ["--pythonpath", self.pythonpath]
        if not any("control-socket" in a for a in self.args):
            # the default path (~/.gunicorn/gunicorn.ctl) is shared by every server on the
            # machine: a server of another test would make this one warn and run without
            cmd += ["--control-socket", os.path.join(self.tmpdir, "ctl.sock")]
        cmd += self.args
        if self.app is not None:
            cmd.append(self.app)
        return cmd

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("Server.start() called on a running server (its process would "
                              "be orphaned)")
        if not os.path.exists(BIN):
            raise ServerError("server binary %s does not exist (set CUNICORN_BIN)" % BIN)
        self._err = open(self.errlog_path, "wb")
        self._out = open(self.outlog_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.cwd, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err)
        if self._ready:
            self.wait_ready()
        return self

    def wait_ready(self, workers=None):
        workers = self.workers if workers is None else workers
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError("server exited with %s before becoming ready:\n%s"
                                  % (self.proc.returncode, self.describe()))
            booted = len(re.findall(r"Booting worker", self.log()))
            if booted >= workers and self._can_connect():
                return
            if time.monotonic() >= deadline:
                raise ServerError("server not ready after %.1fs (%d/%d workers booted):\n%s"
                                  % (self.ready_timeout, booted, workers, self.describe()))
            time.sleep(0.02)

    def _can_connect(self):
        try:
            s = self.connect(timeout=0.5)
        except OSError:
            return False
        s.close()
        return True

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig, wait for exit (SIGKILL after timeout). Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_all()
                self.proc.wait(5)
                raise ServerError("server did not exit %ss after %s:\n%s"
                                  % (timeout, signal.Signals(sig).name, self.describe()))
        return self.proc.returncode

    def kill_all(self):
        pids = []
        if self.proc and self.proc.poll() is None:
            pids = self.worker_pids()
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sanitizer_reports(self):
        """Sanitizer reports in the server's stderr (master and workers share it)."""
        try:
            text = self.log()
        except OSError:
            return []
        out = []
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                start = text.rfind("\n", 0, max(0, i - 200)) + 1
                out.append(text[start:start + 4000])
        return out

    def close(self):
        reports = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.stop(timeout=5)
                except ServerError:
                    pass
            # a master that died uncleanly may leave orphans: they hold our port
            for p in getattr(self, "_seen_workers", set()):
                if pid_alive(p) and proc_ppid(p) in (1, self.proc.pid if self.proc else -1):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if self.proc is not None:
                reports = self.sanitizer_reports()
        finally:
            for f in ("_err", "_out"):
                if hasattr(self, f):
                    getattr(self, f).close()
            self._tmpdir.cleanup()
        if reports:
            raise ServerError("sanitizer report in the server's stderr (command: %s):\n%s"
                              % (" ".join(self.command()), "\n...\n".join(reports)))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def worker_pids(self):
        pids = children_of(self.proc.pid)
        self._seen_workers = getattr(self, "_seen_workers", set()) | set(pids)
        return pids

    def wait_workers(self, n, timeout=10.0, exclude=()):
        """Wait until exactly n workers exist (none of them in exclude); returns the pids."""
        def ok():
            p = self.worker_pids()
            return p if len(p) == n and not set(p) & set(exclude) else None
        got = wait_until(ok, timeout)
        if not got:
            raise ServerError("expected %d workers (excluding %s), have %s:\n%s"
                              % (n, list(exclude), self.worker_pids(), self.describe()))
        return got

    def wait_exit(self, timeout=10.0):
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            return None

    # -- logs
    def log(self):
        with open(self.errlog_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.outlog_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_offset(self):
        return os.path.getsize(self.errlog_path)

    def wait_for_log(self, regex, timeout=10.0, since=0, source="stderr"):
        """Wait for regex to appear in the error log (or stdout) after byte offset since.
        Returns the match; fails with the log shown."""
        rx = re.compile(regex, re.M)
        read = self.log if source == "stderr" else self.stdout

        def find():
            return rx.search(read()[since:])
        m = wait_until(find, timeout)
        if not m:
            raise ServerError("log never matched %r within %.1fs (x%g):\n%s"
                              % (regex, timeout, TIME_SCALE, self.describe()))
        return m

    def describe(self):
        s = "command: %s\n--- stderr ---\n%s" % (" ".join(self.command()), self.log()[-6000:])
        out = self.stdout()
        if out:
            s += "\n--- stdout ---\n%s" % out[-3000:]
        return s

    # -- client side
    @property
    def url(self):
        h = self.host
        if ":" in h:
            h = "[%s]" % h
        return "http://%s:%d" % (h, self.port)

    def connect(self, timeout=IO_TIMEOUT):
        if self.port is None and self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(self.unix_path)
            except OSError:
                s.close()
                raise
            return s
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.settimeout(timeout)
        return s

    def request(self, method="GET", path="/", headers=None, body=b"", version="HTTP/1.1",
                raw=None, timeout=IO_TIMEOUT):
        """One request on a fresh connection; returns the final Response."""
        s = self.connect(timeout)
        try:
            s.sendall(raw if raw is not None else
                      build_request(method, path, headers, body, version))
            r = HTTPReader(s, timeout)
            resp, _ = r.read_final_response(head_request=(method == "HEAD"))
            return resp
        finally:
            s.close()


class GunicornServer(Server):
    """The reference: real gunicorn 27 (python -m gunicorn) started like Server starts
    cunicorn, for differential tests that compare what both do with the same input."""

    def command(self):
        # no control socket: its default path is shared by every gunicorn and cunicorn
        return ([sys.executable, "-m", "gunicorn", "--no-control-socket"]
                + Server.command(self)[1:])

    def sanitizer_reports(self):
        return []
