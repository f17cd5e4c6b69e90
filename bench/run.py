#!/usr/bin/env python3
"""Benchmark cunicorn against gunicorn (latest from PyPI) and nginx, side by side, one run.

Prints requests/s, p50/p99 latency and the ratios the project targets:
  cunicorn >= 0.8x nginx static, >= 20x gunicorn gthread, slow-client runs within 10 %.
The server is pinned to CPU 0 and wrk to CPU 1. Every load is bounded in time.

  python3 bench/run.py [--seconds 5] [--only hello,idle,trickle,big,upload,fastapi]

ASGI (issue 14): --servers "cunicorn asgi,uvicorn,gunicorn asgi" --only hello,fastapi,ws
compares cunicorn -k asgi with uvicorn (uvloop + httptools) and gunicorn -k asgi; target
cunicorn asgi >= 2x uvicorn on hello. `fastapi` is a FastAPI JSON endpoint, `ws` a WebSocket
echo in messages/s (bench/ws_echo.py); both for ASGI servers only.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
CUNICORN = os.environ.get("CUNICORN_BIN", os.path.join(ROOT, "build", "cunicorn"))
PY = sys.executable
HELLO = b"Hello, World!"


def ensure_peers():
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        print("bench: installing gunicorn from PyPI", flush=True)
        subprocess.check_call([PY, "-m", "pip", "install", "-q", "gunicorn"])
    missing = [t for t in ("wrk", "nginx") if not shutil.which(t) and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pk = {"wrk": "wrk", "nginx": "nginx-light"}
            subprocess.check_call(["apt-get", "install", "-y", "-qq"] + [pk[m] for m in missing])
        else:
            sys.exit("bench: missing %s (Debian: apt-get install wrk nginx-light)" % " ".join(missing))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(port, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not ready on port %d" % port)


def pin(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


class Server:
    def __init__(self, name, argv, port, env=None, cwd=None):
        self.name, self.port = name, port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(pin(0) + argv, cwd=cwd or BENCH, env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        wait_ready(port, self.proc)

    def worker_rss_kb(self):
        """Peak RSS (VmHWM) of each process in the server's tree, worker processes only."""
        out = []
        for pid in self.tree():
            try:
                with open("/proc/%d/status" % pid) as f:
                    st = f.read()
            except OSError:
                continue
            m = re.search(r"VmHWM:\s+(\d+)", st)
            if m and pid != self.proc.pid:
                out.append(int(m.group(1)))
        return out

    def tree(self):
        pids, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            pids.append(p)
            try:
                with open("/proc/%d/task/%d/children" % (p, p)) as f:
                    todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return pids

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM if self.name != "nginx" else signal.SIGQUIT)
            self.proc.wait(10)
        except Exception:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


ASGI_SERVERS = ("cunicorn asgi", "uvicorn", "gunicorn asgi")


def start(kind, port, tmp):
    bind = "127.0.0.1:%d" % port
    if kind == "cunicorn sync":
        return Server(kind, [CUNICORN, "-w", "1", "-b", bind, "bench_app:app"], port)
    if kind == "cunicorn gthread":
        return Server(kind, [CUNICORN, "-w", "1", "-k", "gthread", "--threads", "4", "-b", bind,
                             "bench_app:app"], port)
    if kind == "gunicorn sync":
        return Server(kind, [PY, "-m", "gunicorn", "-w", "1", "-b", bind, "bench_app:app"], port)
    if kind == "gunicorn gthread":
        return Server(kind, [PY, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
                             "-b", bind, "bench_app:app"], port)
    if kind == "cunicorn asgi":
        return Server(kind, [CUNICORN, "-w", "1", "-k", "asgi", "-b", bind, "bench_asgi:app"], port)
    if kind == "uvicorn":  # uvloop + httptools, as deployed for speed
        return Server(kind, [PY, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
                             "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1",
                             "--port", str(port), "bench_asgi:app"], port)
    if kind == "gunicorn asgi":
        return Server(kind, [PY, "-m", "gunicorn", "-w", "1", "-k", "asgi", "-b", bind,
                             "bench_asgi:app"], port)
    if kind == "nginx static":
        root = os.path.join(tmp, "www")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.txt"), "wb") as f:
            f.write(HELLO)
        with open(os.path.join(root, "1m"), "wb") as f:
            f.write(b"x" * (1024 * 1024))
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
worker_processes 1; daemon off; pid %(tmp)s/nginx.pid; error_log %(tmp)s/error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; client_body_temp_path %(tmp)s;
  proxy_temp_path %(tmp)s; fastcgi_temp_path %(tmp)s; uwsgi_temp_path %(tmp)s; scgi_temp_path %(tmp)s;
  default_type text/plain; open_file_cache max=100; sendfile on; tcp_nopush on;
  server { listen %(bind)s; root %(root)s;
    location = / { try_files /index.txt =404; }
    location = /upload { client_max_body_size 20m; client_body_buffer_size 20m; return 200 "ok"; }
  }
}
""" % {"tmp": tmp, "bind": bind, "root": root})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return Server(kind, [nginx, "-c", conf, "-e", os.path.join(tmp, "error.log")], port)
    raise ValueError(kind)


class SlowClients:
    """Hold `n` connections open: idle (nothing sent) or trickling a header line a second."""

    def __init__(self, port, n, trickle):
        self.stop_evt = threading.Event()
        self.socks = []
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                if trickle:
                    s.sendall(b"GET / HTTP/1.1\r\n")
                self.socks.append(s)
            except OSError:
                pass
        self.thread = None
        if trickle:
            self.thread = threading.Thread(target=self._trickle, daemon=True)
            self.thread.start()

    def _trickle(self):
        i = 0
        while not self.stop_evt.wait(1.0):
            i += 1
            for s in self.socks:
                try:
                    s.send(b"X-Trickle-%d: y\r\n" % i)
                except OSError:
                    pass

    def close(self):
        self.stop_evt.set()
        if self.thread:
            self.thread.join(3)
        for s in self.socks:
            s.close()


def wrk(port, path, seconds, conns=50, script=None):
    cmd = pin(1) + ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "4s"]
    if script:
        cmd += ["-s", script]
    cmd.append("http://127.0.0.1:%d%s" % (port, path))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(m):
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms(p50), "p99": ms(p99),
            "errors": (errs.group(1) if errs else "") + (" non2xx=%s" % non2xx.group(1) if non2xx else "")}


def fmt_ms(v):
    return "-" if v is None else ("%.2f" % v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "5")))
    ap.add_argument("--only", default="hello,idle,trickle,big,upload")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every server this many times, alternating; keep each best "
                         "(a shared machine's noise only ever lowers a figure)")
    ap.add_argument("--servers", default="cunicorn sync,cunicorn gthread,gunicorn sync,gunicorn gthread,nginx static")
    args = ap.parse_args()
    ensure_peers()
    if not os.path.exists(CUNICORN):
        sys.exit("bench: %s not built (run make)" % CUNICORN)
    scen = args.only.split(",")
    servers = args.servers.split(",")
    results = {}
    rss = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in [k for _ in range(args.rounds) for k in servers]:
            port = free_port()
            srv = start(kind, port, tmp)
            try:
                for sc in scen:
                    if sc == "hello":
                        r = wrk(port, "/", args.seconds)
                    elif sc in ("idle", "trickle"):
                        slow = SlowClients(port, 200, trickle=(sc == "trickle"))
                        time.sleep(0.5)
                        try:
                            r = wrk(port, "/", args.seconds)
                        finally:
                            slow.close()
                    elif sc == "big":
                        r = wrk(port, "/1m", args.seconds, conns=10)
                    elif sc == "ws":
                        if kind not in ASGI_SERVERS:
                            continue
                        out = subprocess.check_output(
                            pin(1) + [PY, os.path.join(BENCH, "ws_echo.py"), str(port),
                                      "--seconds", str(args.seconds)], timeout=args.seconds + 30)
                        r = {"rps": float(out.split()[0]), "p50": None, "p99": None,
                             "errors": "(messages/s, 10 conns x 32 in flight)"}
                    elif sc == "fastapi":
                        if kind not in ASGI_SERVERS:
                            continue
                        r = wrk(port, "/fa/json?q=bench", args.seconds)
                    elif sc == "upload":
                        if kind == "nginx static":
                            continue  # no app reads the body there: nothing to compare
                        r = wrk(port, "/upload", args.seconds, conns=4,
                                script=os.path.join(BENCH, "upload.lua"))
                    else:
                        continue
                    best = results.get((kind, sc))
                    if best is None or r["rps"] > best["rps"]:
                        results[(kind, sc)] = r
                    print("%-17s %-8s %10.0f req/s  p50 %8s ms  p99 %8s ms  %s" % (
                        kind, sc, r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]), r["errors"]), flush=True)
                rss[kind] = srv.worker_rss_kb()
            finally:
                srv.stop()
    print()
    print("peak RSS per worker (KiB):")
    for k, v in rss.items():
        print("  %-17s %s" % (k, v))
    print()
    print("ratios:")

    def ratio(a, b, sc="hello"):
        ra, rb = results.get((a, sc)), results.get((b, sc))
        if not ra or not rb:
            return None
        return ra["rps"] / rb["rps"] if rb["rps"] else float("inf")

    for sc in ("hello", "fastapi", "ws"):
        for peer, target in (("uvicorn", 2.0), ("gunicorn asgi", None)):
            r = ratio("cunicorn asgi", peer, sc)
            if r is not None:
                print("  %-17s / %-17s %-7s %8.2fx%s" % ("cunicorn asgi", peer, sc, r,
                      "  (target >= %.1fx)" % target if target and sc == "hello" else ""))
    for cu in ("cunicorn sync", "cunicorn gthread", "cunicorn asgi"):
        for peer, target in (("nginx static", 0.8), ("gunicorn gthread", 20.0), ("gunicorn sync", None)):
            r = ratio(cu, peer)
            if r is not None:
                print("  %-17s / %-17s hello   %8.2fx%s" % (cu, peer, r, "  (target >= %.1fx)" % target if target else ""))
        base = results.get((cu, "hello"))
        for sc in ("idle", "trickle"):
            r = results.get((cu, sc))
            if base and r and base["rps"]:
                print("  %-17s %-7s vs hello: %6.1f %%  (target within 10 %%)" % (cu, sc, 100.0 * r["rps"] / base["rps"]))


if __name__ == "__main__":
    main()
