"""cunicorn._hooks: the objects server hooks receive (server/arbiter, worker, req, resp, cfg, log) with gunicorn's attributes; py/hooks.c builds them."""
import os, sys, ast, traceback

class Log:
    '''server.log / worker.log: gunicorn's logger methods, into the error log.'''
    def __init__(self, emit):
        self._emit = emit
    def log(self, lvl, msg, *args, **kw):
        text = str(msg)
        if args:
            if len(args) == 1 and isinstance(args[0], dict) and args[0]:
                args = args[0]
            try:
                text = text % args
            except Exception:
                text = '%s %r' % (text, args)
        if kw.get('exc_info'):
            text += '\n' + traceback.format_exc().rstrip('\n')
        self._emit(int(lvl), text)
    def debug(self, msg, *a, **kw): self.log(10, msg, *a, **kw)
    def info(self, msg, *a, **kw): self.log(20, msg, *a, **kw)
    def warning(self, msg, *a, **kw): self.log(30, msg, *a, **kw)
    warn = warning
    def error(self, msg, *a, **kw): self.log(40, msg, *a, **kw)
    def critical(self, msg, *a, **kw): self.log(50, msg, *a, **kw)
    def exception(self, msg, *a, **kw):
        kw.setdefault('exc_info', True)
        self.log(40, msg, *a, **kw)
    def reopen_files(self): pass
    def close_on_exec(self): pass
    def access(self, *a, **kw): pass

def lit(text):
    try:
        return ast.literal_eval(text)
    except Exception:
        return text

def parse_address(bind):
    '''A bind as gunicorn's cfg.address lists it: (host, port), a unix path, an fd.'''
    if bind.startswith('unix:'):
        return bind[7:] if bind.startswith('unix://') else bind[5:]
    if bind.startswith('fd://'):
        return int(bind[5:])
    if bind.startswith('tcp://'):
        bind = bind[6:]
    host, port = bind, '8000'
    if '[' in bind and ']' in bind:
        host, _, rest = bind[1:].partition(']')
        port = rest[1:] if rest.startswith(':') else port
    elif ':' in bind:
        host, port = bind.split(':')[:2]
    elif bind == '':
        host = '0.0.0.0'
    return host.lower(), int(port)

class Setting:
    __slots__ = ('name', 'value')
    def __init__(self, name, value):
        self.name, self.value = name, value
    def get(self):
        return self.value
    def __repr__(self):
        return '<Setting %s = %r>' % (self.name, self.value)

class Config:
    '''server.cfg: every setting by name, read-only like gunicorn's.'''
    def __init__(self, values):
        object.__setattr__(self, 'settings',
                           {k: Setting(k, v) for k, v in values.items()})
    def __getattr__(self, name):
        s = self.settings.get(name)
        if s is None:
            raise AttributeError('No configuration setting for: %s' % name)
        return s.value
    def __setattr__(self, name, value):
        if name in self.settings:
            raise AttributeError('Invalid access!')
        object.__setattr__(self, name, value)
    @property
    def proc_name(self):
        pn = self.settings['proc_name'].value
        return pn if pn is not None else self.settings['default_proc_name'].value
    @property
    def worker_class_str(self):
        wc = self.settings['worker_class'].value
        sync = wc == 'sync' or str(wc).endswith('SyncWorker')
        return 'gthread' if sync and self.threads > 1 else wc
    @property
    def address(self):
        return [parse_address(b) for b in self.bind]
    @property
    def env(self):
        return dict(e.split('=', 1) for e in self.raw_env)
    @property
    def is_ssl(self):
        return bool(self.certfile or self.keyfile)
    @property
    def uid(self):
        return os.geteuid()
    @property
    def gid(self):
        return os.getegid()
    @property
    def sendfile(self):
        if self.settings['sendfile'].value is not None:
            return False
        if 'SENDFILE' in os.environ:
            return os.environ['SENDFILE'].lower() in ('y', '1', 'yes', 'true')
        return True
    def __str__(self):
        w = max(len(k) for k in self.settings)
        out = []
        for k in sorted(self.settings):
            v = self.settings[k].value
            if callable(v):
                v = '<%s()>' % getattr(v, '__qualname__', type(v).__qualname__)
            out.append('%-*s = %s' % (w, k, v))
        return '\n'.join(out)

class Arbiter:
    '''server: what hooks read from gunicorn's Arbiter.'''
    def __init__(self, cfg, log):
        self.cfg, self.log = cfg, log
        self.pid = None
        self.num_workers = None
        self.WORKERS = {}
        self.LISTENERS = []
        self.address = cfg.address
        self.master_name = 'Master'
        self.proc_name = cfg.proc_name
        self.timeout = cfg.timeout
        self.worker_age = 0
        self.reexec_pid = 0
        self.master_pid = 0
        self.app = None
    def __repr__(self):
        return '<cunicorn Arbiter pid=%s>' % self.pid

class Worker:
    '''worker: what hooks read from gunicorn's Worker.'''
    def __init__(self, age, ppid, cfg, log):
        self.age, self.ppid, self.cfg, self.log = age, ppid, cfg, log
        self.pid = None
        self.alive = True
        self.booted = False
        self.aborted = False
        self.nr = 0
        self.max_requests = cfg.max_requests or sys.maxsize
        self.timeout = cfg.timeout
        self.app = self.wsgi = None
        self.sockets = []
        self.exitcode = None
        self.status = None
    def notify(self):
        pass
    def __str__(self):
        return '<Worker %s>' % self.pid

class SyncWorker(Worker):
    '''worker under the sync class (gunicorn.workers.sync.SyncWorker).'''

class ThreadWorker(Worker):
    '''worker under gthread (gunicorn.workers.gthread.ThreadWorker).'''

def new_worker(age, ppid, cfg, log):
    '''The worker object of the class that runs: sync with threads > 1 is gthread.'''
    wc = cfg.settings['worker_class'].value
    sync = wc in ('sync', 'egg:gunicorn#sync', 'gunicorn.workers.sync.SyncWorker')
    cls = SyncWorker if sync and cfg.threads <= 1 else ThreadWorker
    return cls(age, ppid, cfg, log)

class Request:
    '''req: the parsed request head, as gunicorn's Request exposes it.'''
    def __init__(self, method, uri, path, query, fragment, version, headers, scheme,
                 peer_addr, must_close):
        self.method, self.uri, self.path = method, uri, path
        self.query, self.fragment, self.version = query, fragment, version
        self.headers, self.scheme = headers, scheme
        self.peer_addr = self.remote_addr = peer_addr
        self.trailers = []
        self._must_close = must_close
    def should_close(self):
        return self._must_close
    def __repr__(self):
        return '<Request %s %s>' % (self.method, self.uri)

class Response:
    '''resp: what post_request reads from gunicorn's Response.'''
    def __init__(self, status, headers, sent):
        if isinstance(status, int):
            import http
            status = '%d %s' % (status, http.HTTPStatus(status).phrase)
        self.status = status
        try:
            self.status_code = int(status.split(None, 1)[0]) if status else None
        except ValueError:
            self.status_code = None
        self.headers = headers
        self.sent = self.response_length = sent
        self.headers_sent = status is not None
    def __repr__(self):
        return '<Response %s>' % self.status

def noop(*args, **kw):
    pass
