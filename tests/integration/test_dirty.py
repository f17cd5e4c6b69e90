"""Dirty arbiters (gunicorn 25+ API) against the real binary: apps written here
(apps/dirty_apps.py) called from HTTP workers (apps/dirty_wsgi.py) through gunicorn's own
client library, and from this test process through cunicorn's package (python/cunicorn)
speaking the wire protocol to the arbiter's socket directly."""
import json
import os
import re
import signal
import socket
import stat
import sys
import threading
import urllib.parse

import pytest

import server as srv

sys.path.insert(0, os.path.join(srv.REPO, "python"))
from cunicorn.dirty import protocol as P  # noqa: E402

SCALE = 3 if srv.SANITIZED else 1
MODEL = "dirty_apps:Model"
TOKENS = "dirty_apps:Tokens"


def start(make_server, dirty_workers=2, apps=(MODEL, TOKENS), extra=(), workers=1, env=None):
    args = ["--dirty-workers", str(dirty_workers)]
    for a in apps:
        args += ["--dirty-app", a]
    s = make_server("dirty_wsgi:app", args=args + list(extra), workers=workers, env=env)
    wait_ready_workers(s, dirty_workers)
    return s


def wait_ready_workers(s, n, since=0):
    ok = srv.wait_until(lambda: len(re.findall(r"Dirty worker \d+ ready", s.log()[since:])) >= n,
                        srv.READY_TIMEOUT)
    assert ok, s.describe()


def get(s, path, **q):
    qs = urllib.parse.urlencode({k: json.dumps(v) if k in ("args", "kwargs", "value") else v
                                 for k, v in q.items()})
    r = s.request("GET", path + "?" + qs, timeout=30 * SCALE)
    assert r.status == 200, r
    return json.loads(r.body)


def call(s, app, action, *args, **kw):
    lib = kw.pop("lib", "gunicorn")
    return get(s, "/call", lib=lib, app=app, action=action, args=list(args), kwargs=kw)


def pids_of(s, title):
    out = []
    for p in srv.children_of(s.pid) + [g for c in srv.children_of(s.pid)
                                       for g in srv.children_of(c)]:
        if title in (srv.cmdline(p) or ""):
            out.append(p)
    return sorted(set(out))


def arbiter_pid(s):
    p = pids_of(s, "dirty arbiter")
    assert len(p) == 1, (p, s.describe())
    return p[0]


def socket_path(s):
    return get(s, "/socket")["ok"]


class Raw:
    """A wire-protocol connection to the arbiter (cunicorn.dirty.protocol)."""

    def __init__(self, path, timeout=10.0 * SCALE):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def send(self, msg_type, rid, payload=None):
        self.sock.sendall(P.encode(msg_type, rid, payload))

    def request(self, rid, app, action, *args, **kwargs):
        self.send(P.REQUEST, rid, {"app_path": app, "action": action, "args": list(args),
                                   "kwargs": kwargs})

    def read(self):
        return P.read_message(self.sock)

    def roundtrip(self, msg_type, payload=None, rid=99):
        self.send(msg_type, rid, payload)
        t, got, body = self.read()
        assert got == rid
        return t, body

    def close(self):
        self.sock.close()


def status(s):
    r = Raw(socket_path(s))
    try:
        t, body = r.roundtrip(P.STATUS)
        assert t == P.RESPONSE
        return body["result"]
    finally:
        r.close()


def wait_status(s, pred, timeout=10.0 * SCALE):
    got = srv.wait_until(lambda: pred(status(s)), timeout, interval=0.1)
    assert got, (status(s), s.describe())
    return status(s)


# ---------------------------------------------------------------------------------------


def test_socket_mode_titles_and_env(make_server):
    s = start(make_server)
    path = socket_path(s)
    assert path and os.path.isabs(path)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert len(pids_of(s, "dirty arbiter")) == 1
    assert len(pids_of(s, "dirty worker")) == 2
    # the dirty workers are the arbiter's children, the arbiter is the master's
    a = arbiter_pid(s)
    assert srv.proc_ppid(a) == s.pid
    assert all(srv.proc_ppid(w) == a for w in pids_of(s, "dirty worker"))


def test_stateful_model_loaded_once_round_robin(make_server, tmp_path):
    events = tmp_path / "events"
    s = start(make_server, env={"DIRTY_EVENTS": str(events)})
    seen = {}
    for i in range(20):
        r = call(s, MODEL, "predict", i, scale=2)["ok"]
        assert r["y"] == i * 2 + 10
        seen.setdefault(r["pid"], []).append(r)
    # round robin over the two dirty workers, each with its own state loaded once
    assert len(seen) == 2 and all(len(v) == 10 for v in seen.values()), seen
    for pid, rs in seen.items():
        assert [r["calls"] for r in rs] == list(range(1, 11))
        assert len({r["loaded_at"] for r in rs}) == 1
    inits = [l for l in events.read_text().splitlines() if l.startswith("model-init")]
    assert sorted(int(l.split()[1]) for l in inits) == sorted(seen)
    # arguments and results of every TLV type survive the trip
    r = call(s, MODEL, "echo", None, True, -7, 1.25, "é✓", [1, [2]], k={"x": None})["ok"]
    assert r == {"args": [None, True, -7, 1.25, "é✓", [1, [2]]], "kwargs": {"k": {"x": None}}}


def test_streaming_tokens(make_server):
    s = start(make_server)
    assert get(s, "/stream", app=TOKENS, action="generate", args=["tok", 6])["ok"] == \
        ["tok-%d" % i for i in range(6)]
    assert get(s, "/stream", app=TOKENS, action="agenerate", args=["a"])["ok"] == \
        ["a:0", "a:1", "a:2"]
    r = get(s, "/stream", app=TOKENS, action="broken_stream")
    assert r["error"] == "DirtyAppError" and "stream broke" in r["message"]
    # on the wire: CHUNK... END under the caller's request id
    raw = Raw(socket_path(s))
    raw.request(0xfedcba9876543210, TOKENS, "generate", "w", 3)
    frames = [raw.read() for _ in range(4)]
    raw.close()
    assert [f[0] for f in frames] == [P.CHUNK] * 3 + [P.END]
    assert {f[1] for f in frames} == {0xfedcba9876543210}
    assert [f[2].get("data") for f in frames[:3]] == ["w-0", "w-1", "w-2"]


def test_stash_shared_by_http_workers(make_server):
    # --reuse-port: each worker has its own listening socket and the kernel spreads new
    # connections by their source port, so fresh connections reach several HTTP workers
    # (with one shared socket one worker may take them all)
    s = start(make_server, workers=3, extra=["--reuse-port"])
    http_pids = set()
    for i in range(12):
        r = get(s, "/stash", op="put", table="sessions", key="user:%d" % i, value={"n": i})
        http_pids.add(r["pid"])
    # read back through fresh connections: whichever HTTP worker answers sees every key
    for rnd in range(20):
        for i in range(12):
            r = get(s, "/stash", op="get", table="sessions", key="user:%d" % i)
            assert r["ok"] == {"n": i}
            http_pids.add(r["pid"])
        if len(http_pids) >= 2:
            break
    assert len(http_pids) >= 2, http_pids
    assert get(s, "/stash", op="get", table="sessions", key="nope")["ok"] == "<default>"
    keys = get(s, "/stash", op="keys", table="sessions", pattern="user:1*")["ok"]
    assert keys == ["user:1", "user:10", "user:11"]
    assert get(s, "/stash", op="info", table="sessions")["ok"] == {"size": 12,
                                                                   "table": "sessions"}
    assert get(s, "/stash", op="exists", table="sessions", key="user:3")["ok"] is True
    assert get(s, "/stash", op="delete", table="sessions", key="user:3")["ok"] is True
    assert get(s, "/stash", op="exists", table="sessions", key="user:3")["ok"] is False
    # a dirty worker writes, HTTP workers read
    assert call(s, MODEL, "stash_put", "shared", "from-dirty", [1, 2])["ok"] is True
    assert get(s, "/stash", op="get", table="shared", key="from-dirty")["ok"] == [1, 2]
    get(s, "/stash", op="ensure", table="empty")
    assert get(s, "/stash", op="tables")["ok"] == ["sessions", "shared", "empty"]
    get(s, "/stash", op="clear", table="sessions")
    assert get(s, "/stash", op="keys", table="sessions")["ok"] == []
    get(s, "/stash", op="delete_table", table="shared")
    assert get(s, "/stash", op="tables")["ok"] == ["sessions", "empty"]
    r = get(s, "/stash", op="info", table="shared")
    assert r["error"] == "StashTableNotFoundError"


def test_cunicorn_package_client(make_server):
    """cunicorn.dirty (no gunicorn involved) from this process against the arbiter."""
    s = start(make_server)
    import cunicorn.dirty as cd
    os.environ["GUNICORN_DIRTY_SOCKET"] = socket_path(s)
    try:
        c = cd.DirtyClient(socket_path(s), timeout=10 * SCALE)
        assert c.execute(MODEL, "predict", 1)["y"] == 11
        assert list(c.stream(TOKENS, "generate", "c", 2)) == ["c-0", "c-1"]
        with pytest.raises(cd.DirtyAppError) as e:
            c.execute(MODEL, "boom", "pkg")
        assert "RuntimeError: boom: pkg" in e.value.traceback
        with pytest.raises(cd.DirtyNoWorkersAvailableError) as e:
            c.execute("nope:Nothing", "x")
        assert e.value.app_path == "nope:Nothing"
        st = c.status()
        assert st["worker_count"] == 2 and st["apps"] == [MODEL, TOKENS]
        c.close()
        cd.stash.put("t", "k", {"v": b"\x00"})
        assert cd.stash.get("t", "k") == {"v": b"\x00"}
        assert cd.stash.table("t")["k"] == {"v": b"\x00"}
        with pytest.raises(KeyError):
            cd.stash.table("t")["missing"]

        import asyncio

        async def go():
            ac = cd.DirtyClient(socket_path(s), timeout=10 * SCALE)
            r = await ac.execute_async(MODEL, "echo", 5)
            chunks = [x async for x in ac.stream_async(TOKENS, "agenerate", "z", 2)]
            await ac.close_async()
            return r, chunks
        assert asyncio.run(go()) == ({"args": [5], "kwargs": {}}, ["z:0", "z:1"])
    finally:
        os.environ.pop("GUNICORN_DIRTY_SOCKET", None)


def test_cunicorn_package_inside_the_server(make_server):
    s = start(make_server, extra=["--pythonpath", os.path.join(srv.REPO, "python")])
    r = call(s, MODEL, "ping", lib="cunicorn")
    if r.get("error") == "ModuleNotFoundError" and "not a package" in r.get("message", ""):
        pytest.skip("this build's builtin module is still named `cunicorn` (the package "
                    "branch renames it _cunicorn)")
    assert r["ok"] == 1


def test_app_error_reaches_caller_with_traceback(make_server):
    s = start(make_server)
    r = call(s, MODEL, "boom", "abc")
    assert r["error"] == "DirtyAppError"
    assert r["message"].startswith("boom: abc")
    assert "dirty_apps.py" in r["traceback"] and "RuntimeError: boom: abc" in r["traceback"]
    r = call(s, MODEL, "no_such_action")
    assert r["error"] == "DirtyAppError" and "Unknown action" in r["message"]
    # the worker survived both
    assert call(s, MODEL, "ping")["ok"] == 1


def test_no_worker_for_app(make_server):
    s = start(make_server, apps=(MODEL, "dirty_apps:Limited"))
    r = call(s, "dirty_apps:Unknown", "x")
    assert r["error"] == "DirtyNoWorkersAvailableError"
    assert "dirty_apps:Unknown" in r["message"]
    # Limited (class attribute workers = 1) lives in one of the two workers only
    st = status(s)
    holders = [w["pid"] for w in st["workers"] if "dirty_apps:Limited" in w["apps"]]
    assert len(holders) == 1 and st["worker_count"] == 2
    assert {call(s, "dirty_apps:Limited", "pid")["ok"] for _ in range(4)} == set(holders)


def test_spec_count_beats_class_attribute(make_server):
    s = start(make_server, dirty_workers=3, apps=(MODEL + ":2", TOKENS))
    st = status(s)
    assert st["worker_count"] == 3
    assert sum(MODEL in w["apps"] for w in st["workers"]) == 2
    assert sum(TOKENS in w["apps"] for w in st["workers"]) == 3


def test_timeout_late_reply_never_reaches_later_caller(make_server):
    """gunicorn #3687: the reply of a call that timed out must not answer the next call."""
    s = start(make_server, dirty_workers=1,
              extra=["--dirty-timeout", str(SCALE), "--dirty-threads", "2"])
    raw = Raw(socket_path(s))
    raw.request(1, MODEL, "sleep", 1.5 * SCALE, tag="late")
    t, rid, body = raw.read()
    assert (t, rid) == (P.ERROR, 1)
    assert body["error"]["error_type"] == "DirtyTimeoutError"
    assert body["error"]["details"] == {"timeout": SCALE}
    # the next call on the same connection, in flight when the late reply comes
    raw.request(2, MODEL, "sleep", 0.8 * SCALE, tag="second")
    t, rid, body = raw.read()
    assert (t, rid) == (P.RESPONSE, 2) and body["result"]["tag"] == "second", body
    # and nothing else ever arrives
    raw.sock.settimeout(1.5 * SCALE)
    with pytest.raises(socket.timeout):
        raw.sock.recv(1)
    raw.close()
    # through gunicorn's client in an HTTP worker: the caller gets DirtyTimeoutError
    r = call(s, MODEL, "sleep", 1.5 * SCALE)
    assert r["error"] == "DirtyTimeoutError"
    assert call(s, MODEL, "echo", "after")["ok"] == {"args": ["after"], "kwargs": {}}


def test_worker_dying_mid_call(make_server, tmp_path):
    events = tmp_path / "events"
    s = start(make_server, env={"DIRTY_EVENTS": str(events)})
    before = status(s)
    r = call(s, MODEL, "die")
    assert r["error"] == "DirtyWorkerError", r
    # replaced, with the same apps
    st = wait_status(s, lambda st: st["worker_count"] == 2 and
                     {w["pid"] for w in st["workers"]} != {w["pid"] for w in before["workers"]})
    assert all(w["apps"] == [MODEL, TOKENS] for w in st["workers"])

    # kill -9 from outside while a call runs on it
    raw = Raw(socket_path(s))
    raw.request(5, MODEL, "sleep", 30)
    assert srv.wait_until(lambda: _sleeping_pids(events), 10 * SCALE)
    victim = _sleeping_pids(events)[0]
    os.kill(victim, signal.SIGKILL)
    t, rid, body = raw.read()
    raw.close()
    assert (t, rid) == (P.ERROR, 5)
    assert body["error"]["error_type"] == "DirtyWorkerError"
    assert body["error"]["details"]["worker_id"] == victim
    wait_status(s, lambda st: st["worker_count"] == 2 and
                victim not in {w["pid"] for w in st["workers"]})
    assert call(s, MODEL, "ping")["ok"] == 1


def _sleeping_pids(events):
    try:
        text = events.read_text()
    except OSError:
        return []
    return [int(l.split()[1]) for l in text.splitlines() if l.startswith("sleep ")]


def test_ttin_ttou_to_the_arbiter(make_server):
    s = start(make_server)
    a = arbiter_pid(s)
    os.kill(a, signal.SIGTTIN)
    st = wait_status(s, lambda st: st["worker_count"] == 3)
    assert all(w["apps"] == [MODEL, TOKENS] for w in st["workers"])
    # one at a time: signals of one kind sent together coalesce in the kernel
    os.kill(a, signal.SIGTTOU)
    wait_status(s, lambda st: st["worker_count"] == 2)
    os.kill(a, signal.SIGTTOU)
    wait_status(s, lambda st: st["worker_count"] == 1)
    os.kill(a, signal.SIGTTOU)  # not below one worker
    s.wait_for_log(r"SIGTTOU: Cannot decrease below 1 workers")
    assert status(s)["worker_count"] == 1
    assert call(s, MODEL, "ping")["ok"] == 1
    # the MANAGE message does the same
    raw = Raw(socket_path(s))
    t, body = raw.roundtrip(P.MANAGE, {"op": P.MANAGE_OP_ADD, "count": 1})
    raw.close()
    assert t == P.RESPONSE and body["result"]["spawned"] == 1
    wait_status(s, lambda st: st["worker_count"] == 2)


def test_arbiter_restarted_by_master(make_server):
    s = start(make_server, dirty_workers=1)
    get(s, "/stash", op="put", table="t", key="k", value=1)
    a = arbiter_pid(s)
    os.kill(a, signal.SIGKILL)
    srv.wait_until(lambda: pids_of(s, "dirty arbiter") not in ([], [a]), 10 * SCALE)
    wait_ready_workers(s, 2)
    assert srv.wait_until(lambda: call(s, MODEL, "ping").get("ok") == 1, 10 * SCALE)
    # the old arbiter's dirty worker noticed and left; the stash was the old arbiter's
    srv.wait_until(lambda: len(pids_of(s, "dirty worker")) == 1, 10 * SCALE)
    # (the HTTP worker's first stash call may fail on its connection to the old arbiter)
    assert srv.wait_until(
        lambda: get(s, "/stash", op="get", table="t", key="k").get("ok") == "<default>", 5)


def test_graceful_stop_finishes_calls_in_flight(make_server, tmp_path):
    events = tmp_path / "events"
    s = start(make_server, env={"DIRTY_EVENTS": str(events)})
    path = socket_path(s)
    results = {}

    def caller(i):
        raw = Raw(path, timeout=20 * SCALE)
        raw.request(i, MODEL, "sleep", 1.0 * SCALE, tag=i)
        results[i] = raw.read()
        raw.close()
    threads = [threading.Thread(target=caller, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    # both calls are running (one per worker) before the stop
    assert srv.wait_until(lambda: len(_sleeping_pids(events)) == 2, 10 * SCALE)
    s.signal(signal.SIGTERM)
    for t in threads:
        t.join(30 * SCALE)
    assert s.wait_exit(30 * SCALE) == 0
    for i in (1, 2):
        t, rid, body = results[i]
        assert (t, rid) == (P.RESPONSE, i) and body["result"]["tag"] == i, results
    closes = [l for l in events.read_text().splitlines() if l.startswith("model-close")]
    assert len(closes) == 2
    assert not os.path.exists(path)


HOOKS_CONF = """
import os
EV = os.environ["DIRTY_EVENTS"]
def _w(text):
    with open(EV, "a") as f:
        f.write(text + "\\n")
def on_dirty_starting(arbiter):
    _w("on_dirty_starting %d %s" % (arbiter.pid, arbiter.socket_path))
def dirty_post_fork(arbiter, worker):
    _w("dirty_post_fork %d %d" % (worker.pid, os.getpid()))
def dirty_worker_init(worker):
    _w("dirty_worker_init %d %s %s" % (worker.pid, ",".join(worker.app_paths),
                                       ",".join(sorted(worker.apps))))
def dirty_worker_exit(arbiter, worker):
    _w("dirty_worker_exit %d %d" % (worker.pid, os.getpid()))
"""


def test_hooks_called_in_order(make_server, tmp_path):
    events = tmp_path / "events"
    conf = tmp_path / "conf.py"
    conf.write_text(HOOKS_CONF)
    s = start(make_server, extra=["-c", str(conf)], env={"DIRTY_EVENTS": str(events)})
    a = arbiter_pid(s)
    assert s.stop() == 0
    lines = [l.split() for l in events.read_text().splitlines()]
    names = [l[0] for l in lines]
    assert names[0] == "on_dirty_starting" and int(lines[0][1]) == a
    workers = sorted(int(l[1]) for l in lines if l[0] == "dirty_post_fork")
    assert len(workers) == 2
    for w in workers:
        seq = [l[0] for l in lines if len(l) > 1 and l[1] == str(w)]
        # post_fork (arbiter) may land before or after the worker's app init; the worker's
        # own order is fixed: every init(), then dirty_worker_init, ..., close(), exit hook
        mine = [n for n in seq if n != "dirty_post_fork"]
        assert mine == ["model-init", "dirty_worker_init", "model-close", "dirty_worker_exit"], seq
    for l in lines:
        if l[0] in ("dirty_post_fork", "dirty_worker_exit"):
            assert int(l[2]) == a  # run in the arbiter
        if l[0] == "dirty_worker_init":
            assert l[2] == "%s,%s" % (MODEL, TOKENS) and l[3] == "%s,%s" % (MODEL, TOKENS)


def test_settings_validation(make_server):
    s = make_server("dirty_wsgi:app", args=["--dirty-workers", "1", "--dirty-app", "a:B:0"],
                    ready=False)
    s.wait_for_log(r"Worker count must be >= 1", timeout=10 * SCALE)
    s.close()
    # no apps: no arbiter at all, and the HTTP side says so
    s = make_server("dirty_wsgi:app", args=["--dirty-workers", "2"])
    assert pids_of(s, "dirty arbiter") == []
    assert call(s, MODEL, "ping")["error"] == "DirtyError"


def test_hup_replaces_dirty_workers_after_their_calls(make_server, tmp_path):
    events = tmp_path / "events"
    s = start(make_server, dirty_workers=1, env={"DIRTY_EVENTS": str(events)})
    old = {w["pid"] for w in status(s)["workers"]}
    raw = Raw(socket_path(s), timeout=20 * SCALE)
    raw.request(1, MODEL, "sleep", 1.0 * SCALE, tag="before-hup")
    assert srv.wait_until(lambda: _sleeping_pids(events), 10 * SCALE)
    # HUP to the master reaches the arbiter (as gunicorn forwards it)
    since = s.log_offset()
    s.signal(signal.SIGHUP)
    s.wait_for_log(r"Reloading dirty workers", since=since, timeout=10 * SCALE)
    t, rid, body = raw.read()
    raw.close()
    # the call running on the old worker finished normally
    assert (t, rid) == (P.RESPONSE, 1) and body["result"]["tag"] == "before-hup"
    st = wait_status(s, lambda st: st["worker_count"] == 1 and
                     not {w["pid"] for w in st["workers"]} & old)
    assert st["workers"][0]["apps"] == [MODEL, TOKENS]
    assert call(s, MODEL, "pid")["ok"] not in old


def test_dirty_threads_run_calls_concurrently(make_server, tmp_path):
    events = tmp_path / "events"
    s = start(make_server, dirty_workers=1, extra=["--dirty-threads", "2"],
              env={"DIRTY_EVENTS": str(events)})
    path = socket_path(s)
    a, b = Raw(path), Raw(path)
    a.request(1, MODEL, "sleep", 1.0 * SCALE, tag="a")
    b.request(2, MODEL, "sleep", 1.0 * SCALE, tag="b")
    t1 = a.read()
    # by the time the first call returns, the second one had already started beside it
    assert len(_sleeping_pids(events)) == 2
    t2 = b.read()
    a.close()
    b.close()
    assert t1[2]["result"]["tag"] == "a" and t2[2]["result"]["tag"] == "b"
    assert t1[2]["result"]["pid"] == t2[2]["result"]["pid"]


def test_bad_client_input_and_large_values(make_server):
    s = start(make_server, dirty_workers=1)
    path = socket_path(s)
    # garbage: the arbiter drops that connection and goes on
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.settimeout(10 * SCALE)
    bad.connect(path)
    bad.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert bad.recv(100) == b""
    bad.close()
    # a header announcing more than 64 MiB: same
    bad = Raw(path)
    bad.sock.sendall(P.HEADER.pack(b"GD", 1, P.REQUEST, P.MAX_MESSAGE_SIZE + 1, 1))
    assert bad.sock.recv(100) == b""
    bad.close()
    # a payload that is not valid TLV gets an error answer
    raw = Raw(path)
    raw.sock.sendall(P.HEADER.pack(b"GD", 1, P.REQUEST, 3, 7) + b"\x21\x00\x00")
    t, rid, body = raw.read()
    assert (t, rid) == (P.ERROR, 7) and body["error"]["error_type"] == "DirtyProtocolError"
    # 4 MiB of bytes each way
    blob = bytes(range(256)) * (16 * 1024)
    raw.request(8, MODEL, "echo", blob)
    t, rid, body = raw.read()
    assert (t, rid) == (P.RESPONSE, 8) and body["result"]["args"] == [blob]
    # an unencodable result is the app's error, with the reason
    raw.request(9, MODEL, "unencodable")
    t, rid, body = raw.read()
    assert (t, rid) == (P.ERROR, 9)
    assert body["error"]["error_type"] == "DirtyAppError"
    assert "Unsupported type for TLV encoding: set" in body["error"]["message"]
    raw.close()
    assert call(s, MODEL, "ping")["ok"] == 1


def test_quick_stop(make_server):
    s = start(make_server)
    dirty = pids_of(s, "dirty worker") + pids_of(s, "dirty arbiter")
    assert len(dirty) == 3
    s.signal(signal.SIGINT)
    assert s.wait_exit(20 * SCALE) == 0
    assert srv.wait_until(lambda: not any(srv.pid_alive(p) for p in dirty), 10 * SCALE)


def test_control_socket_show_and_manage_dirty(make_server, tmp_path):
    """gunicorn's control client (gunicorn.ctl) against cunicorn's control socket."""
    from gunicorn.ctl.client import ControlClient
    sock = str(tmp_path / "c.ctl")
    s = start(make_server, extra=["--control-socket", sock])
    assert srv.wait_until(lambda: os.path.exists(sock), 5 * SCALE)
    c = ControlClient(sock, timeout=10 * SCALE)
    try:
        a = arbiter_pid(s)
        d = c.send_command("show dirty")
        assert d["enabled"] is True and d["pid"] == a
        assert sorted(w["pid"] for w in d["workers"]) == pids_of(s, "dirty worker")
        assert [x["import_path"] for x in d["apps"]] == [MODEL, TOKENS]
        assert all(x["current_workers"] == 2 for x in d["apps"])
        assert c.send_command("show stats")["dirty_arbiter_pid"] == a
        al = c.send_command("show all")
        assert al["dirty_arbiter"]["pid"] == a and al["dirty_worker_count"] == 2
        r = c.send_command("dirty add 1")
        assert r["success"] is True and r["spawned"] == 1
        wait_status(s, lambda st: st["worker_count"] == 3)
        r = c.send_command("dirty remove 2")
        assert r["success"] is True and r["removed"] == 2
        wait_status(s, lambda st: st["worker_count"] == 1)
    finally:
        c.close()
