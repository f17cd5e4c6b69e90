#!/usr/bin/env python3
"""Round-trip calls/s of a trivial dirty execute() from one HTTP worker: cunicorn's arbiter
against gunicorn's, one dirty worker each, the same client library (gunicorn's) in the same
run, then cunicorn with its own package. Each figure is one bounded loop (--seconds, at most
500k calls) timed inside the HTTP worker.

    python3 bench/dirty_bench.py [--seconds 3]"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(cmd, port, lib, seconds, env):
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=log, env=env)
    try:
        url = "http://127.0.0.1:%d/loop?seconds=%s&lib=%s" % (port, seconds, lib)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url.replace("seconds=%s" % seconds, "seconds=0.2"),
                                            timeout=10) as r:
                    json.load(r)
                break
            except Exception:
                if time.monotonic() > deadline or p.poll() is not None:
                    log.seek(0)
                    raise SystemExit("server did not come up:\n" + log.read().decode()[-3000:])
                time.sleep(0.1)
        with urllib.request.urlopen(url, timeout=seconds + 30) as r:
            return json.load(r)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--cunicorn", default=os.path.join(REPO, "build", "cunicorn"))
    a = ap.parse_args()
    gunicorn = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable),
                                                        "gunicorn")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.join(REPO, "python")]))
    common = ["-w", "1", "--dirty-workers", "1", "--dirty-app", "dirty_app:Trivial",
              "--timeout", "120", "dirty_app:app"]
    rows = []
    for name, exe, lib in (("gunicorn 27 (gunicorn.dirty client)", gunicorn, "gunicorn"),
                           ("cunicorn (gunicorn.dirty client)", a.cunicorn, "gunicorn"),
                           ("cunicorn (cunicorn.dirty client)", a.cunicorn, "cunicorn")):
        port = free_port()
        try:
            r = run([exe, "-b", "127.0.0.1:%d" % port] + common, port, lib, a.seconds, env)
        except SystemExit as e:
            # cunicorn.dirty inside the server needs the builtin module renamed _cunicorn
            print("%s: skipped (%s)" % (name, str(e).strip().splitlines()[-1]), file=sys.stderr)
            continue
        rows.append((name, r["calls"] / r["elapsed"], r["p50_us"], r["p99_us"]))
    base = rows[0][1]
    print("| server (client) | calls/s | p50 µs | p99 µs | vs gunicorn |")
    print("|---|---|---|---|---|")
    for name, cps, p50, p99 in rows:
        print("| %s | %.0f | %.0f | %.0f | %.1f× |" % (name, cps, p50, p99, cps / base))


if __name__ == "__main__":
    main()
