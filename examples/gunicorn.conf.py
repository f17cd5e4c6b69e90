# An annotated gunicorn.conf.py that cunicorn reads as gunicorn does.
#
#   cunicorn -c examples/gunicorn.conf.py hello:app      (or drop it in ./gunicorn.conf.py)
#
# Precedence, lowest first: defaults < this file < GUNICORN_CMD_ARGS < the command line.
# The file is plain Python run by the embedded interpreter in the master; module-level
# names that are gunicorn settings apply (other names are ignored), with gunicorn's
# validation. A gunicorn setting cunicorn does not implement yet is an error naming it if
# its value differs from gunicorn's default. `cunicorn --print-config APP` shows the result.
import multiprocessing
import os

# ---- sockets and workers
bind = os.environ.get("BIND", "127.0.0.1:8000")   # a str or a list of str
backlog = 2048
workers = min(4, multiprocessing.cpu_count())      # ints: 4, "4", "0x4" all work
worker_class = "sync"                              # sync or gthread
threads = 1                                        # sync with threads > 1 runs gthread
timeout = 30
graceful_timeout = 30
keepalive = 2

# ---- server mechanics
preload_app = False        # True imports the app in the master before forking
raw_env = ["EXAMPLE_SETTING=1"]                    # KEY=VALUE into os.environ
proc_name = "cunicorn-example"                     # process titles: "master [name]"
forwarded_allow_ips = "127.0.0.1,::1"              # one comma-separated string

# ---- logging
accesslog = "-"
loglevel = "info"


# ---- server hooks (all optional). `server` has pid, cfg, log, num_workers, WORKERS,
# proc_name; `worker` has pid, ppid, age, cfg, log, alive, booted; `req` has method, path,
# query, uri, version, headers (upper-case names). A hook that raises is logged.

def on_starting(server):            # master, before listeners are opened (raise: exit 1)
    server.log.info("starting with %d workers", server.cfg.workers)


def when_ready(server):             # master, listeners open, before workers are forked
    server.log.info("ready: pid %s", server.pid)


def pre_fork(server, worker):       # master, before each fork (worker.pid is None)
    pass


def post_fork(server, worker):      # worker, right after fork (raise: worker boot fails)
    pass


def post_worker_init(worker):       # worker, app loaded, before serving (raise: boot fails)
    pass


def pre_request(worker, req):       # worker, before the app (raise: 500)
    worker.log.debug("%s %s", req.method, req.path)


def post_request(worker, req, environ, resp):   # 2- and 3-argument forms work too
    pass


def worker_int(worker):             # worker got INT/QUIT
    pass


def worker_abort(worker):           # worker got ABRT (the master's WORKER TIMEOUT)
    worker.log.warning("worker %s aborted", worker.pid)


def worker_exit(server, worker):    # worker, as it exits
    pass


def child_exit(server, worker):     # master, after a worker was reaped
    pass


def nworkers_changed(server, new_value, old_value):   # startup (old None), TTIN, TTOU
    pass


def on_reload(server):              # master, HUP (when reload exists)
    pass


def pre_exec(server):               # master's child, before USR2 re-exec (when it exists)
    pass


def on_exit(server):                # master, last thing before exit
    pass

# ssl_context(config, default_ssl_context_factory) is accepted and validated, but cunicorn
# has no TLS listeners yet, so it is never called (a warning says so at startup).
