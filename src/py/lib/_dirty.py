"""Dirty workers and the dirty arbiter, Python side (driven by src/py/dirty.c): the objects
the dirty hooks receive, loading DirtyApp classes, running an action (coroutines and async
generators on a per-thread event loop), and the ERROR payload of an exception."""
import asyncio
import importlib
import inspect
import sys
import threading
import traceback


class Worker:
    '''What the dirty hooks receive as `worker` (gunicorn's DirtyWorker).'''
    def __init__(self, age, pid, ppid, app_paths, cfg, log):
        self.age, self.pid, self.ppid = age, pid, ppid
        self.app_paths = list(app_paths)
        self.cfg, self.log = cfg, log
        self.apps = {}
        self.booted = False
        self.alive = True
        self.aborted = False
    def __str__(self):
        return '<DirtyWorker %s>' % self.pid

class Arbiter:
    '''What the dirty hooks receive as `arbiter` (gunicorn's DirtyArbiter).'''
    def __init__(self, pid, socket_path, num_workers, cfg, log):
        self.pid, self.socket_path, self.num_workers = pid, socket_path, num_workers
        self.cfg, self.log = cfg, log
        self.workers = {}
        self.alive = True

class AppError(Exception):
    def __init__(self, error_type, message, app_path):
        super().__init__(message)
        self.error_type, self.message, self.app_path = error_type, message, app_path

def app_class(path):
    if ':' not in path:
        raise AppError('DirtyAppError', 'Invalid import path format: %s. '
                       "Expected 'module.path:ClassName'" % path, path)
    mod_name, cls_name = path.rsplit(':', 1)
    try:
        mod = sys.modules.get(mod_name) or importlib.import_module(mod_name)
    except ImportError as e:
        raise AppError('DirtyAppNotFoundError', 'Dirty app not found: %s' % path, path) from e
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise AppError('DirtyAppNotFoundError', 'Dirty app not found: %s' % path, path)
    if not isinstance(cls, type):
        raise AppError('DirtyAppError', '%s is not a class' % path, path)
    return cls

def app_workers(path):
    n = getattr(app_class(path), 'workers', None)
    return -1 if n is None else int(n)

def load(paths):
    apps = {}
    for p in paths:
        app = app_class(p)()
        for m in ('init', '__call__', 'close'):
            if not callable(getattr(app, m, None)):
                raise AppError('DirtyAppError',
                               '%s is missing required method: %s' % (p, m), p)
        apps[p] = app
    for p, app in apps.items():
        app.init()
    return apps

_tl = threading.local()

def _loop():
    loop = getattr(_tl, 'loop', None)
    if loop is None:
        loop = _tl.loop = asyncio.new_event_loop()
    return loop

def _agen(agen):
    loop = _loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(agen.aclose())

def call(app, action, args, kwargs):
    r = app(action, *args, **kwargs)
    if inspect.iscoroutine(r):
        r = _loop().run_until_complete(r)
    if inspect.isasyncgen(r):
        return 2, _agen(r)
    if inspect.isgenerator(r):
        return 1, r
    return 0, r

def error(e, app_path, action):
    # gunicorn's DirtyAppError order: app_path, action, traceback (str(error) shows them)
    details = {}
    if app_path:
        details['app_path'] = app_path
    if action:
        details['action'] = action
    details['traceback'] = ''.join(traceback.format_exception(type(e), e, e.__traceback__))
    return {'error': {'error_type': 'DirtyAppError', 'message': str(e), 'details': details}}
