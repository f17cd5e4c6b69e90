"""Server hooks from the config file: a config that sets every hook records each call
(name, process, arguments) to a file; the tests check order and arguments, and that a
hook that raises is logged without bringing the server down (except where gunicorn
stops on purpose)."""
import json
import os
import signal

import pytest

import server as srv

MASTER_C = os.path.join(srv.REPO, "src", "proc", "master.c")


def master_wired():
    try:
        with open(MASTER_C) as f:
            return "cu_py_hook_on_starting" in f.read()
    except OSError:
        return False


def worker_wired():
    try:
        with open(os.path.join(srv.REPO, "src", "workers", "worker.c")) as f:
            return "cu_py_hook_signal_in_app" in f.read()
    except OSError:
        return False


needs_worker_wiring = pytest.mark.skipif(
    not worker_wired(), reason="worker.c does not call cu_py_hook_signal_in_app yet")

needs_master_wiring = pytest.mark.skipif(
    not master_wired(), reason="master.c does not call the src/py/hooks.h API yet")

RECORDER = r'''
import json, os
REC = os.environ["HOOK_RECORD"]

def rec(name, **kw):
    with open(REC, "a") as f:
        f.write(json.dumps(dict(hook=name, pid=os.getpid(), **kw)) + "\n")

def W(w):
    return dict(wpid=w.pid, age=w.age, ppid=w.ppid)

def on_starting(server):
    rec("on_starting", spid=server.pid, workers=server.cfg.workers, proc=server.cfg.proc_name)
def on_reload(server):
    rec("on_reload", spid=server.pid)
def when_ready(server):
    rec("when_ready", spid=server.pid, n=server.num_workers)
    server.log.info("when_ready ran in %s", server.pid)
def pre_fork(server, worker):
    rec("pre_fork", spid=server.pid, **W(worker))
def post_fork(server, worker):
    rec("post_fork", spid=server.pid, **W(worker))
def post_worker_init(worker):
    rec("post_worker_init", alive=worker.alive, timeout=worker.timeout, **W(worker))
    worker.log.info("post_worker_init in %s", worker.pid)
def worker_int(worker):
    rec("worker_int", **W(worker))
def worker_abort(worker):
    rec("worker_abort", **W(worker))
def pre_exec(server):
    rec("pre_exec")
def pre_request(worker, req):
    rec("pre_request", method=req.method, path=req.path, query=req.query, uri=req.uri,
        version=list(req.version), headers=req.headers, **W(worker))
def post_request(worker, req, environ, resp):
    rec("post_request", path=req.path, status=resp.status, code=resp.status_code,
        env_path=environ.get("PATH_INFO"), rheaders=resp.headers, **W(worker))
def child_exit(server, worker):
    rec("child_exit", spid=server.pid, **W(worker))
def worker_exit(server, worker):
    rec("worker_exit", spid=server.pid, **W(worker))
def nworkers_changed(server, new_value, old_value):
    rec("nworkers_changed", new=new_value, old=old_value)
def on_exit(server):
    rec("on_exit", spid=server.pid)
'''


def records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def recorder(tmp_path):
    conf = tmp_path / "hooks_conf.py"
    conf.write_text(RECORDER)
    rec = str(tmp_path / "record.jsonl")
    return str(conf), rec


def start(make_server, conf, rec, extra="", **kw):
    if extra:
        with open(conf, "a") as f:
            f.write(extra)
    return make_server(args=["-c", conf] + list(kw.pop("args", [])), env={"HOOK_RECORD": rec},
                       **kw)


def test_request_hooks_get_req_environ_resp(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec)
    r = s.request(path="/hello/there?x=1&y=2", headers=[("X-Thing", "v1")])
    srv.wait_until(lambda: any(x["hook"] == "post_request" for x in records(rec)), 5)
    recs = [x for x in records(rec) if x["hook"] in ("pre_request", "post_request")]
    assert [x["hook"] for x in recs] == ["pre_request", "post_request"]
    pre, post = recs
    wpid = s.worker_pids()[0]
    assert pre["pid"] == wpid and pre["wpid"] == wpid and post["wpid"] == wpid
    assert pre["ppid"] == s.pid
    assert pre["method"] == "GET" and pre["path"] == "/hello/there"
    assert pre["query"] == "x=1&y=2" and pre["uri"] == "/hello/there?x=1&y=2"
    assert pre["version"] == [1, 1]
    assert ["X-THING", "v1"] in pre["headers"] and ["HOST", "localhost"] in pre["headers"]
    assert post["status"].startswith(str(r.status)) and post["code"] == r.status
    assert post["env_path"] == "/hello/there"
    assert any(k.lower() == "content-type" for k, _ in post["rheaders"])


def test_post_worker_init(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec)
    s.wait_for_log(r"post_worker_init in %d" % s.worker_pids()[0])
    [x] = [x for x in records(rec) if x["hook"] == "post_worker_init"]
    assert x["pid"] == x["wpid"] == s.worker_pids()[0] and x["ppid"] == s.pid
    assert x["alive"] is True and x["timeout"] == 30


@pytest.mark.parametrize("sig, extra", [
    ("(worker, req)", "rec('post2', path=req.path)"),
    ("(worker, req, environ)", "rec('post3', path=req.path, m=environ['REQUEST_METHOD'])"),
])
def test_post_request_short_forms(make_server, recorder, sig, extra):
    conf, rec = recorder
    s = start(make_server, conf, rec, "\ndef post_request%s:\n    %s\n" % (sig, extra))
    assert s.request(path="/p").status
    got = srv.wait_until(lambda: [x for x in records(rec) if x["hook"] in ("post2", "post3")], 5)
    assert got and got[0]["path"] == "/p"


def test_raising_request_hooks_do_not_stop_the_worker(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec,
              "\ndef pre_request(worker, req):\n"
              "    if req.path == '/boom':\n        raise RuntimeError('pre boom')\n"
              "def post_request(worker, req, environ, resp):\n"
              "    rec('post', path=req.path, resp=resp is None, env=len(environ))\n"
              "    raise ValueError('post boom')\n")
    r = s.request(path="/boom")
    assert r.status == 500
    s.wait_for_log(r"RuntimeError: pre boom")
    r = s.request(path="/")
    assert r.status == 200
    s.wait_for_log(r"Exception in post_request hook")
    s.wait_for_log(r"ValueError: post boom")
    posts = srv.wait_until(
        lambda: [x for x in records(rec) if x["hook"] == "post"][1:] and
        [x for x in records(rec) if x["hook"] == "post"], 5)
    # after a failed pre_request gunicorn passes environ {} and resp None
    assert posts[0] == dict(posts[0], path="/boom", resp=True, env=0)
    assert posts[1]["path"] == "/" and posts[1]["resp"] is False
    assert len(s.worker_pids()) == 1


def test_post_worker_init_raising_fails_the_boot(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec,
              "\ndef post_worker_init(worker):\n    raise RuntimeError('no boot')\n",
              start=False)
    s._ready = False
    s.start()
    assert s.wait_exit(15) == 3
    assert "RuntimeError: no boot" in s.log()
    assert "Worker failed to boot" in s.log()


@needs_master_wiring
def test_lifecycle_order_and_arguments(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec, workers=2)
    s.wait_for_log(r"when_ready ran in %d" % s.pid)
    assert s.request(path="/").status == 200
    s.signal(signal.SIGTTIN)
    s.wait_workers(3)
    assert s.stop() == 0
    recs = records(rec)
    names = [x["hook"] for x in recs]
    master = [x["hook"] for x in recs if x["pid"] == s.pid]
    # master side, in gunicorn's order
    assert master[:3] == ["nworkers_changed", "on_starting", "when_ready"]
    assert master[-1] == "on_exit"
    assert names.count("pre_fork") == 3 and names.count("post_fork") == 3
    assert names.count("child_exit") == 3 and names.count("worker_exit") == 3
    nw = [x for x in recs if x["hook"] == "nworkers_changed"]
    assert (nw[0]["new"], nw[0]["old"]) == (2, None) and (nw[1]["new"], nw[1]["old"]) == (3, 2)
    first = [x for x in recs if x["hook"] == "on_starting"][0]
    assert first["spid"] == s.pid and first["workers"] == 2
    for pf in (x for x in recs if x["hook"] == "pre_fork"):
        assert pf["pid"] == s.pid and pf["wpid"] is None
    ages = sorted(x["age"] for x in recs if x["hook"] == "post_fork")
    assert ages == [1, 2, 3]
    for x in recs:
        if x["hook"] in ("post_fork", "post_worker_init", "worker_exit"):
            assert x["pid"] == x["wpid"] and x["ppid"] == s.pid
        if x["hook"] == "child_exit":
            assert x["pid"] == s.pid and x["wpid"] != s.pid
    for wpid in {x["wpid"] for x in recs if x["hook"] == "post_fork"}:
        mine = [x["hook"] for x in recs if x.get("wpid") == wpid]
        assert mine.index("pre_fork" if "pre_fork" in mine else "post_fork") <= \
            mine.index("post_fork") < mine.index("post_worker_init") < \
            mine.index("worker_exit") < mine.index("child_exit")


@needs_worker_wiring
def test_worker_abort_on_timeout(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec, args=["-t", "1"])
    try:
        s.request(path="/sleep?s=5", timeout=8)
    except Exception:
        pass
    got = srv.wait_until(lambda: [x for x in records(rec) if x["hook"] == "worker_abort"], 10)
    assert got


@needs_master_wiring
def test_raising_master_hooks_are_logged(make_server, recorder):
    conf, rec = recorder
    s = start(make_server, conf, rec,
              "\ndef child_exit(server, worker):\n    raise RuntimeError('child boom')\n"
              "def pre_fork(server, worker):\n    raise RuntimeError('fork boom')\n")
    os.kill(s.worker_pids()[0], signal.SIGKILL)
    s.wait_for_log(r"RuntimeError: child boom")
    s.wait_workers(1)
    assert s.request().status == 200
