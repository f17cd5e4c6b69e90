"""HTTP/2 benchmark: h2load -c10 -m10 against cunicorn (sync, gthread, asgi), nginx,
gunicorn 27 and granian (asgi), one run, the server pinned to CPU 0 and h2load to CPU 1,
one worker each, every load bounded in time.

  python3 bench/h2load.py [--seconds 5] [--mode tls,h2c] [--servers ...]

Each server serves "Hello, World!" at GET / (the apps: bench/bench_app.py, for cunicorn
asgi the raw ASGI app bench/bench_asgi.py; nginx: a static file). Modes: tls (ALPN h2) and h2c (prior knowledge). Prints requests/s per server and mode
and the ratios the HTTP/2 issue targets (>= 1x nginx, >= 10x gunicorn)."""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CUNICORN = os.environ.get("CUNICORN_BIN") or os.path.join(REPO, "build", "cunicorn")
PY = sys.executable
HELLO = b"Hello, World!"

sys.path.insert(0, HERE)
from run import ensure_peers, free_port, make_cert, pin  # noqa: E402  (one copy of each)


def nginx_conf(tmp, port, mode):
    root = os.path.join(tmp, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.txt"), "wb") as f:
        f.write(HELLO)
    cert, key = make_cert(tmp)
    listen = ("listen 127.0.0.1:%d ssl http2;" % port if mode == "tls"
              else "listen 127.0.0.1:%d http2;" % port)
    conf = os.path.join(tmp, "nginx-%s.conf" % mode)
    with open(conf, "w") as f:
        f.write("""
worker_processes 1; daemon off; pid %(tmp)s/nginx-%(mode)s.pid; error_log %(tmp)s/error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path %(tmp)s; proxy_temp_path %(tmp)s; fastcgi_temp_path %(tmp)s;
  uwsgi_temp_path %(tmp)s; scgi_temp_path %(tmp)s;
  default_type text/plain; open_file_cache max=100;
  ssl_protocols TLSv1.2 TLSv1.3;
  server { %(listen)s root %(root)s;
    ssl_certificate %(cert)s; ssl_certificate_key %(key)s;
    location = / { try_files /index.txt =404; }
  }
}
""" % {"tmp": tmp, "mode": mode, "listen": listen, "root": root, "cert": cert, "key": key})
    return conf


def argv_for(kind, mode, port, tmp):
    bind = "127.0.0.1:%d" % port
    cert, key = make_cert(tmp)
    tls = ["--certfile", cert, "--keyfile", key] if mode == "tls" else \
        ["--http2-cleartext", "prior-knowledge"]
    if kind.startswith("nginx"):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-c", nginx_conf(tmp, port, mode), "-e", os.path.join(tmp, "error.log")]
    cls = (["-k", "gthread", "--threads", "4"] if kind.endswith("gthread")
           else ["-k", "asgi"] if kind.endswith("asgi") else [])
    common = ["-w", "1", "-b", bind, "--http-protocols", "h2,h1", "--keep-alive", "75"] + cls + tls
    if kind.startswith("cunicorn"):
        # asgi: the raw ASGI app (bench/bench_asgi.py), "Hello, World!" at / as well
        return [CUNICORN] + common + ["bench_asgi:app" if kind.endswith("asgi")
                                      else "bench_app:app"]
    if kind.startswith("gunicorn"):
        return [PY, "-m", "gunicorn"] + common + ["bench_app:app"]
    if kind == "granian asgi":
        # HTTP/2 only (--http 2): ALPN h2 with the certificate, else h2c prior knowledge
        gtls = ["--ssl-certificate", cert, "--ssl-keyfile", key] if mode == "tls" else []
        return [shutil.which("granian") or "granian", "--interface", "asgi", "--http", "2",
                "--workers", "1", "--host", "127.0.0.1", "--port", str(port)] + gtls + \
            ["bench_asgi:app"]
    raise ValueError(kind)


def wait_ready(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(0.3)  # workers booted
            return True
        except OSError:
            time.sleep(0.05)
    return False


def h2load(port, mode, seconds):
    url = ("https" if mode == "tls" else "http") + "://127.0.0.1:%d/" % port
    cmd = pin(1) + ["h2load", "-c", "10", "-m", "10", "-t", "1",
                    "-D", str(seconds), url]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 0.0, (0, 0), "h2load timed out (server stalled)"
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                   out)
    proto = re.search(r"Application protocol: (\S+)", out)
    return (float(m.group(1)) if m else 0.0,
            (int(ok.group(2)), int(ok.group(3))) if ok else (0, 0),
            proto.group(1) if proto else "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--mode", default="tls,h2c")
    ap.add_argument("--servers", default="cunicorn sync,cunicorn gthread,cunicorn asgi,nginx,"
                                         "gunicorn gthread,granian asgi")
    args = ap.parse_args()
    if not shutil.which("h2load"):
        sys.exit("bench: h2load missing (Debian: apt-get install nghttp2-client)")
    ensure_peers(False)  # gunicorn and granian from PyPI, nginx from apt, when missing
    results = {}
    with tempfile.TemporaryDirectory(prefix="cu-h2bench-") as tmp:
        for mode in args.mode.split(","):
            for kind in args.servers.split(","):
                port = free_port()
                proc = subprocess.Popen(pin(0) + argv_for(kind, mode, port, tmp), cwd=HERE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
                try:
                    if not wait_ready(port, proc):
                        print("%-18s %-4s did not start" % (kind, mode))
                        continue
                    rps, (succ, failed), proto = h2load(port, mode, args.seconds)
                    results[(kind, mode)] = rps
                    print("%-18s %-4s %10.0f req/s  (%s; %d succeeded, %d failed)"
                          % (kind, mode, rps, proto, succ, failed), flush=True)
                finally:
                    try:
                        os.killpg(proc.pid, signal.SIGQUIT if kind.startswith("nginx")
                                  else signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
    for mode in args.mode.split(","):
        c, g = results.get(("cunicorn asgi", mode)), results.get(("granian asgi", mode))
        if c and g:
            print("cunicorn asgi %s / granian asgi: %.2fx" % (mode, c / g))
        ng = results.get(("nginx", mode))
        gu = results.get(("gunicorn gthread", mode))
        for kind in ("cunicorn sync", "cunicorn gthread", "cunicorn asgi"):
            c = results.get((kind, mode))
            if c and ng:
                print("%s %s / nginx: %.2fx" % (kind, mode, c / ng))
            if c and gu:
                print("%s %s / gunicorn gthread: %.1fx" % (kind, mode, c / gu))


if __name__ == "__main__":
    main()
