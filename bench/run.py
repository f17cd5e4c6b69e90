#!/usr/bin/env python3
"""Benchmark cunicorn against gunicorn, granian (latest from PyPI) and nginx, side by side, one run.

Prints requests/s, p50/p99 latency and the ratios the project targets:
  cunicorn >= 0.8x nginx static, >= 20x gunicorn gthread, slow-client runs within 10 %.
The server is pinned to CPU 0 and wrk to CPU 1. Every load is bounded in time.

  python3 bench/run.py [--seconds 5] [--rounds 3] [--servers a,b]
        [--only hello,idle,trickle,big,upload,flask,django,fastapi,ws]
  python3 bench/run.py --tls     HTTPS: keep-alive hello, a new connection (full handshake)
                                 per request, 200 idle and 200 trickling handshakes, against
                                 nginx and granian with the same certificate
                                 (default --only hello,handshake,idle,trickle)

flask and django serve a JSON view of a real framework (bench_app.py) with each server,
granian included (pip-installed here when missing, like gunicorn); their servers run side
by side and are loaded in turn for --rounds rounds, the ratios being the median of the
ratios of neighbouring runs (robust to a machine whose load drifts). With --tls they run
over HTTPS against cunicorn and granian.

Every figure comes with the server's CPU time per request (user + system of all its
processes and threads, from /proc, divided by the requests wrk counted): a figure a busy
machine disturbs far less than requests/s.

ASGI (issue 14): --servers "cunicorn asgi,uvicorn,granian asgi,gunicorn asgi" --only hello,fastapi,ws
compares cunicorn -k asgi with uvicorn (uvloop + httptools), granian --interface asgi and
gunicorn -k asgi; targets cunicorn asgi >= 2x uvicorn and >= 1.5x granian on hello. `fastapi` is a FastAPI JSON endpoint, `ws` a WebSocket
echo in messages/s (bench/ws_echo.py); both for ASGI servers only. For the plain
(non-framework) scenarios --rounds runs every server that many times, alternating, and
keeps each best (a shared machine's noise only ever lowers a figure).
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


def ensure_peers(need_frameworks):
    # peers are installed from PyPI by their ordinary client, never copied in
    mods = {"gunicorn": "gunicorn", "granian": "granian", "h2": "h2"}  # h2: gunicorn's HTTP/2
    if need_frameworks:
        mods.update({"flask": "flask", "django": "django"})
    for mod, pkg in mods.items():
        try:
            __import__(mod)
        except ImportError:
            print("bench: installing %s from PyPI" % pkg, flush=True)
            subprocess.check_call([PY, "-m", "pip", "install", "-q", pkg])
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


def wait_ready(port, proc, timeout=30, tls=False):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                s = raw
                if tls:
                    import ssl
                    ctx = ssl.create_default_context()
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                    s = ctx.wrap_socket(raw)
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
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
        self.tls = name.endswith(" tls")
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(pin(0) + argv, cwd=cwd or BENCH, env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        wait_ready(port, self.proc, tls=self.tls)

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

    def cpu_seconds(self):
        """User + system CPU time used so far by every process of the server (all threads)."""
        tck = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.tree():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / tck

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
            os.killpg(self.proc.pid, signal.SIGQUIT if self.name.startswith("nginx") else signal.SIGTERM)
            self.proc.wait(10)
        except Exception:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def make_cert(tmp):
    """A self-signed P-256 certificate every TLS server uses (nginx's default curve too)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return cert, key


# scenario -> (WSGI app in bench_app.py, path wrk requests, connections)
APPS = {"flask": ("bench_app:flask_app", "/json?k=v", 50),
        "django": ("bench_app:django_app", "/json/?k=v", 50)}

ASGI_SERVERS = ("cunicorn asgi", "uvicorn", "granian asgi", "gunicorn asgi")


def start(kind, port, tmp, app="bench_app:app"):
    bind = "127.0.0.1:%d" % port
    if kind == "cunicorn sync tls":
        cert, key = make_cert(tmp)
        return Server(kind, [CUNICORN, "-w", "1", "-b", bind, "--certfile", cert, "--keyfile",
                             key, "--keep-alive", "75", app], port)
    if kind == "granian tls":
        cert, key = make_cert(tmp)
        return Server(kind, [PY, "-m", "granian", "--interface", "wsgi", "--workers", "1",
                             "--host", "127.0.0.1", "--port", str(port), "--ssl-certificate",
                             cert, "--ssl-keyfile", key, app], port)
    if kind == "nginx tls":
        cert, key = make_cert(tmp)
        root = os.path.join(tmp, "www")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.txt"), "wb") as f:
            f.write(HELLO)
        conf = os.path.join(tmp, "nginx-tls.conf")
        with open(conf, "w") as f:
            f.write("""
worker_processes 1; daemon off; pid %(tmp)s/nginx-tls.pid; error_log %(tmp)s/error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; client_body_temp_path %(tmp)s;
  proxy_temp_path %(tmp)s; fastcgi_temp_path %(tmp)s; uwsgi_temp_path %(tmp)s; scgi_temp_path %(tmp)s;
  default_type text/plain; open_file_cache max=100;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
  server { listen %(bind)s ssl; root %(root)s;
    ssl_certificate %(cert)s; ssl_certificate_key %(key)s;
    location = / { try_files /index.txt =404; }
  }
}
""" % {"tmp": tmp, "bind": bind, "root": root, "cert": cert, "key": key})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return Server(kind, [nginx, "-c", conf, "-e", os.path.join(tmp, "error.log")], port)
    if kind == "cunicorn sync":
        return Server(kind, [CUNICORN, "-w", "1", "-b", bind, app], port)
    if kind == "cunicorn gthread":
        return Server(kind, [CUNICORN, "-w", "1", "-k", "gthread", "--threads", "4", "-b", bind,
                             app], port)
    if kind == "gunicorn sync":
        return Server(kind, [PY, "-m", "gunicorn", "-w", "1", "-b", bind, app], port)
    if kind == "gunicorn gthread":
        return Server(kind, [PY, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
                             "-b", bind, app], port)
    if kind == "granian":
        # one worker, its defaults otherwise (one runtime thread; WSGI blocking threads)
        return Server(kind, [PY, "-m", "granian", "--interface", "wsgi", "--workers", "1",
                             "--host", "127.0.0.1", "--port", str(port), "--no-ws",
                             "--log-level", "warning", app], port)
    if kind == "cunicorn asgi":
        return Server(kind, [CUNICORN, "-w", "1", "-k", "asgi", "-b", bind, "bench_asgi:app"], port)
    if kind == "uvicorn":  # uvloop + httptools, as deployed for speed
        return Server(kind, [PY, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
                             "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1",
                             "--port", str(port), "bench_asgi:app"], port)
    if kind == "granian asgi":
        return Server(kind, [PY, "-m", "granian", "--interface", "asgi", "--workers", "1",
                             "--host", "127.0.0.1", "--port", str(port), "bench_asgi:app"], port)
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


def client_hello_bytes():
    """A real TLS ClientHello: the bytes a client sends first."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    out = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class SlowClients:
    """Hold `n` connections open: idle (nothing sent) or trickling a header line a second;
    on a TLS port, trickling means a ClientHello one byte a second (a handshake that never
    ends within the run)."""

    def __init__(self, port, n, trickle, tls=False):
        self.stop_evt = threading.Event()
        self.socks = []
        self.hello = client_hello_bytes() if tls else None
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                if trickle:
                    s.sendall(self.hello[:1] if tls else b"GET / HTTP/1.1\r\n")
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
                    if self.hello:
                        s.send(self.hello[i:i + 1])
                    else:
                        s.send(b"X-Trickle-%d: y\r\n" % i)
                except OSError:
                    pass

    def close(self):
        self.stop_evt.set()
        if self.thread:
            self.thread.join(3)
        for s in self.socks:
            s.close()


def wrk(port, path, seconds, conns=50, script=None, tls=False, close=False):
    cmd = pin(1) + ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "4s"]
    if script:
        cmd += ["-s", script]
    if close:
        cmd += ["-H", "Connection: close"]  # a new connection, a full handshake, per request
    cmd.append("%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path))
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

    nreq = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms(p50), "p99": ms(p99),
            "requests": int(nreq.group(1)) if nreq else 0,
            "errors": (errs.group(1) if errs else "") + (" non2xx=%s" % non2xx.group(1) if non2xx else "")}


def with_cpu(srv, cpu0, r):
    """Server CPU time per request (us) since `cpu0` (srv.cpu_seconds() taken before the load
    and before any slow clients it carried), over the requests wrk counted: what the server
    costs whatever share of the CPU it got, so a busy machine disturbs it far less than req/s."""
    cpu = srv.cpu_seconds() - cpu0
    r["cpu_us"] = 1e6 * cpu / r["requests"] if r["requests"] else None
    return r


def report(kind, sc, r, runs=None):
    print("%-17s %-9s %10.0f req/s  p50 %8s ms  p99 %8s ms  cpu %7s us/req%s%s" % (
        kind, sc, r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]),
        "-" if r["cpu_us"] is None else "%.1f" % r["cpu_us"],
        "  " + r["errors"].strip() if r["errors"].strip() else "",
        "  (median of %s)" % " ".join("%.0f" % x["rps"] for x in runs) if runs else ""),
        flush=True)


def interleaved(sc, servers, seconds, nrounds, tmp):
    """A framework scenario: every server started with the scenario's app at once, then
    `nrounds` rounds in which each is loaded in turn (A B C A B C ...), so that a change in
    the machine's load hits every server alike. Returns ({kind: [wrk result per round]},
    {kind: peak worker RSS})."""
    app, path, conns = APPS[sc]
    started = {}
    runs = {}
    try:
        for kind in servers:
            if kind.startswith("nginx") or kind in ASGI_SERVERS:
                continue  # no WSGI framework there
            started[kind] = start(kind, free_port(), tmp, app)
            runs[kind] = []
        for _ in range(nrounds):
            for kind, srv in started.items():
                cpu0 = srv.cpu_seconds()
                runs[kind].append(with_cpu(srv, cpu0, wrk(srv.port, path, seconds, conns=conns,
                                                          tls=srv.tls)))
        rss = {kind: srv.worker_rss_kb() for kind, srv in started.items()}
    finally:
        for srv in started.values():
            srv.stop()
    return runs, rss


def fmt_ms(v):
    return "-" if v is None else ("%.2f" % v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "5")),
                    help="seconds of load per figure (default 5)")
    ap.add_argument("--rounds", type=int,
                    default=int(os.environ["BENCH_ROUNDS"]) if "BENCH_ROUNDS" in os.environ else None,
                    help="framework scenarios: rounds of every server in turn (median; "
                         "default 3); other scenarios: run every server this many times, "
                         "alternating, and keep each best (default 1)")
    ap.add_argument("--only", default=None,
                    help="scenarios, comma-separated (default hello,idle,trickle,big,upload,"
                         "flask,django; with --tls hello,handshake,idle,trickle; ASGI servers also "
                         "fastapi,ws)")
    ap.add_argument("--servers", default=None,
                    help="servers, comma-separated (default: every plain one, or with --tls "
                         "cunicorn sync tls,nginx tls,granian tls)")
    ap.add_argument("--tls", action="store_true",
                    help="HTTPS scenarios: hello, handshake, idle, trickle against nginx and granian")
    args = ap.parse_args()
    if args.only is None:
        args.only = "hello,handshake,idle,trickle" if args.tls else \
            "hello,idle,trickle,big,upload,flask,django"
    if args.servers is None:
        args.servers = "cunicorn sync tls,nginx tls,granian tls" if args.tls else \
            "cunicorn sync,cunicorn gthread,gunicorn sync,gunicorn gthread,granian,nginx static"
    scen = args.only.split(",")
    ensure_peers(any(sc in APPS for sc in scen))
    if not os.path.exists(CUNICORN):
        sys.exit("bench: %s not built (run make)" % CUNICORN)
    servers = args.servers.split(",")
    results = {}
    rss = {}
    rounds = {}  # (kind, scenario) -> [wrk result per round], framework scenarios
    with tempfile.TemporaryDirectory() as tmp:
        for sc in [s for s in scen if s in APPS]:
            got, got_rss = interleaved(sc, servers, args.seconds, args.rounds or 3, tmp)
            for kind, v in got_rss.items():
                rss["%s %s" % (kind, sc)] = v
            for kind, runs in got.items():
                rounds[(kind, sc)] = runs
                # the median run by req/s, with the median CPU per request of the rounds
                r = dict(sorted(runs, key=lambda x: x["rps"])[len(runs) // 2])
                cpu = sorted(x["cpu_us"] for x in runs if x["cpu_us"])
                r["cpu_us"] = cpu[len(cpu) // 2] if cpu else None
                results[(kind, sc)] = r
                report(kind, sc, r, runs)
        plain = [s for s in scen if s not in APPS]
        for kind in [k for _ in range(args.rounds or 1) for k in servers]:
            if not plain:
                continue
            port = free_port()
            srv = start(kind, port, tmp)
            try:
                for sc in plain:
                    cpu0 = srv.cpu_seconds()
                    if sc == "hello":
                        r = wrk(port, "/", args.seconds, tls=srv.tls)
                    elif sc == "handshake":
                        r = wrk(port, "/", args.seconds, conns=20, tls=srv.tls, close=True)
                    elif sc in ("idle", "trickle"):
                        slow = SlowClients(port, 200, trickle=(sc == "trickle"), tls=srv.tls)
                        time.sleep(0.5)
                        try:
                            r = wrk(port, "/", args.seconds, tls=srv.tls)
                        finally:
                            slow.close()
                    elif sc == "big":
                        r = wrk(port, "/1m", args.seconds, conns=10, tls=srv.tls)
                    elif sc == "ws":
                        if kind not in ASGI_SERVERS:
                            continue
                        out = subprocess.check_output(
                            pin(1) + [PY, os.path.join(BENCH, "ws_echo.py"), str(port),
                                      "--seconds", str(args.seconds)], timeout=args.seconds + 30)
                        rate = float(out.split()[0])
                        # CPU per message: "requests" is the messages echoed
                        r = {"rps": rate, "p50": None, "p99": None, "requests": int(rate * args.seconds),
                             "errors": "(messages/s, 10 conns x 32 in flight)"}
                    elif sc == "fastapi":
                        if kind not in ASGI_SERVERS:
                            continue
                        r = wrk(port, "/fa/json?q=bench", args.seconds, tls=srv.tls)
                    elif sc == "upload":
                        if kind.startswith("nginx"):
                            continue  # no app reads the body there: nothing to compare
                        r = wrk(port, "/upload", args.seconds, conns=4,
                                script=os.path.join(BENCH, "upload.lua"), tls=srv.tls)
                    else:
                        continue
                    r = with_cpu(srv, cpu0, r)
                    best = results.get((kind, sc))
                    if best is None or r["rps"] > best["rps"]:
                        results[(kind, sc)] = r
                    report(kind, sc, r)
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
        if (a, sc) in rounds and (b, sc) in rounds:
            # median of the ratios of runs made one right after the other: the machine's
            # load drifts between rounds, much less between neighbours
            rs = sorted(x["rps"] / y["rps"] if y["rps"] else float("inf")
                        for x, y in zip(rounds[(a, sc)], rounds[(b, sc)]))
            return rs[len(rs) // 2]
        ra, rb = results.get((a, sc)), results.get((b, sc))
        if not ra or not rb:
            return None
        return ra["rps"] / rb["rps"] if rb["rps"] else float("inf")

    for peer in ("nginx tls", "granian tls"):
        for sc in ("hello", "handshake"):
            r = ratio("cunicorn sync tls", peer, sc)
            a, b = results.get(("cunicorn sync tls", sc)), results.get((peer, sc))
            if r is not None:
                cpu = ""
                if a and b and a.get("cpu_us") and b.get("cpu_us"):
                    cpu = "  by CPU per request %.2fx" % (b["cpu_us"] / a["cpu_us"])
                print("  %-17s / %-17s %-9s %8.2fx%s%s" % (
                    "cunicorn sync tls", peer, sc, r, cpu,
                    "  (target >= 0.8x)" if peer == "nginx tls" else ""))
    base = results.get(("cunicorn sync tls", "hello"))
    for sc, what in (("idle", "idle handshakes"), ("trickle", "slow handshakes")):
        r = results.get(("cunicorn sync tls", sc))
        if base and r and base["rps"]:
            cpu = ""
            if base.get("cpu_us") and r.get("cpu_us"):
                cpu = ", CPU per request %.1f %%" % (100.0 * r["cpu_us"] / base["cpu_us"])
            print("  cunicorn sync tls %s vs hello: %6.1f %% req/s%s  (target within 10 %%)"
                  % (what, 100.0 * r["rps"] / base["rps"], cpu))
    def cpu_ratio(a, b, sc):
        """How many times less server CPU per request `a` spends than `b` (None if unknown)."""
        ca = (results.get((a, sc)) or {}).get("cpu_us")
        cb = (results.get((b, sc)) or {}).get("cpu_us")
        return cb / ca if ca and cb else None

    for sc in ("hello", "fastapi", "ws"):
        for peer, target in (("uvicorn", 2.0), ("granian asgi", 1.5), ("gunicorn asgi", None)):
            r = ratio("cunicorn asgi", peer, sc)
            if r is not None:
                print("  %-17s / %-17s %-7s %8.2fx%s" % ("cunicorn asgi", peer, sc, r,
                      "  (target >= %.1fx)" % target if target and sc == "hello" else ""))
    for cu in ("cunicorn sync", "cunicorn gthread", "cunicorn sync tls", "cunicorn asgi"):
        tls = " tls" if cu.endswith(" tls") else ""
        for sc, peer, target in (("flask", "gunicorn gthread", 2.5), ("flask", "granian", 1.3),
                                 ("django", "gunicorn gthread", None), ("django", "granian", None)):
            peer += tls
            r = ratio(cu, peer, sc)
            if r is not None:
                c = cpu_ratio(cu, peer, sc)
                print("  %-17s / %-17s %-7s %8.2fx%s%s" % (
                    cu, peer, sc, r, "  (target >= %.1fx)" % target if target else "",
                    "  CPU per request %.2fx less" % c if c else ""))
        if tls:
            continue  # HTTPS hello, handshake, idle and trickle: above
        for peer, target in (("nginx static", 0.8), ("gunicorn gthread", 20.0), ("gunicorn sync", None), ("granian", None)):
            r = ratio(cu, peer)
            if r is not None:
                c = cpu_ratio(cu, peer, "hello")
                print("  %-17s / %-17s hello   %8.2fx%s%s" % (
                    cu, peer, r, "  (target >= %.1fx)" % target if target else "",
                    "  CPU per request %.2fx less" % c if c else ""))
        base = results.get((cu, "hello"))
        for sc in ("idle", "trickle"):
            r = results.get((cu, sc))
            if base and r and base["rps"]:
                cpu = ""
                if base.get("cpu_us") and r.get("cpu_us"):
                    cpu = ", CPU per request %.1f %%" % (100.0 * r["cpu_us"] / base["cpu_us"])
                print("  %-17s %-7s vs hello: %6.1f %% req/s%s  (target within 10 %%)" % (
                    cu, sc, 100.0 * r["rps"] / base["rps"], cpu))

if __name__ == "__main__":
    main()
