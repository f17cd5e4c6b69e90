#!/usr/bin/env python3
"""The gevent worker against gunicorn 27's, same run: one worker each, pinned to CPU 0, wrk
on CPU 1, every load bounded in time.

  hello: keep-alive hello world, 50 connections (target: cunicorn >= 5x gunicorn)
  sleep: every request sleeps 1 s (time.sleep, patched), --sleep-conns connections at once
         (default 500): requests/s should be bounded only by the connections in flight
         (worker_connections 1000), i.e. about conns/s for both

  python3 bench/gevent_bench.py [--seconds 5] [--only hello,sleep] [--sleep-conns 500]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: Server, pin, wrk, free_port)


def start(kind, port):
    bind = "127.0.0.1:%d" % port
    common = ["-w", "1", "-b", bind, "--keep-alive", "75", "--worker-connections", "1000",
              "--timeout", "120", "gevent_app:app"]
    if kind == "cunicorn gevent":
        argv = [run.CUNICORN, "-k", "gevent", "--no-control-socket"] + common
    else:
        argv = [run.PY, "-m", "gunicorn", "-k", "gevent", "--no-control-socket"] + common
    return run.Server(kind, argv, port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "5")))
    ap.add_argument("--only", default="hello,sleep")
    ap.add_argument("--sleep-conns", type=int, default=500)
    a = ap.parse_args()
    run.ensure_peers()
    scenarios = a.only.split(",")
    kinds = ["cunicorn gevent", "gunicorn gevent"]
    res = {}
    for kind in kinds:
        s = start(kind, run.free_port())
        try:
            for sc in scenarios:
                if sc == "hello":
                    run.wrk(s.port, "/", 1, conns=50)  # warm-up
                    c0 = s.cpu_seconds()
                    r = run.wrk(s.port, "/", a.seconds, conns=50)
                elif sc == "sleep":
                    c0 = s.cpu_seconds()
                    r = run.wrk(s.port, "/sleep", max(a.seconds, 3), conns=a.sleep_conns)
                else:
                    sys.exit("unknown scenario %s" % sc)
                cpu = s.cpu_seconds() - c0
                secs = a.seconds if sc == "hello" else max(a.seconds, 3)
                r["cpu_us"] = cpu * 1e6 / max(1.0, r["rps"] * secs)
                res[(kind, sc)] = r
                print("%-16s %-6s %10.0f req/s  p50 %8s ms  p99 %8s ms  %6.1f us CPU/req %s"
                      % (kind, sc, r["rps"], run.fmt_ms(r["p50"]), run.fmt_ms(r["p99"]),
                         r["cpu_us"], r["errors"]), flush=True)
        finally:
            s.stop()
    for sc in scenarios:
        a_, b_ = res.get(("cunicorn gevent", sc)), res.get(("gunicorn gevent", sc))
        if a_ and b_ and b_["rps"]:
            print("%s: cunicorn/gunicorn = %.1fx req/s" % (sc, a_["rps"] / b_["rps"]))


if __name__ == "__main__":
    main()
