"""cunicorn._config: loads gunicorn.conf.py (a path, file: or python:) and validates each setting as gunicorn's config.py does; py/config_file.c calls load() and convert()."""
import importlib, importlib.util, importlib.machinery, inspect, os, sys, traceback

class Fail(Exception):
    '''The message was printed; exit with args[0].'''

def load(location):
    if location.startswith('python:'):
        try:
            return vars(importlib.import_module(location[len('python:'):]))
        except Exception as e:
            print('\nError: %s' % e, file=sys.stderr)
            sys.stderr.flush()
            raise Fail(1)
    filename = location[len('file:'):] if location.startswith('file:') else location
    if not os.path.exists(filename):
        print('\nError: %r doesn\'t exist' % filename, file=sys.stderr)
        sys.stderr.flush()
        raise Fail(1)
    try:
        name = '__config__'
        if os.path.splitext(filename)[1] in ('.py', '.pyc'):
            spec = importlib.util.spec_from_file_location(name, filename)
        else:
            print('!!!\n!!! WARNING: configuration file should have a valid Python '
                  'extension.\n!!!\n', file=sys.stderr)
            ldr = importlib.machinery.SourceFileLoader(name, filename)
            spec = importlib.util.spec_from_file_location(name, filename, loader=ldr)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    except Exception:
        print('Failed to read config file: %s' % filename, file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        raise Fail(1)
    return vars(mod)

def _string(v):
    if v is None:
        return None
    if not isinstance(v, str):
        raise TypeError('Not a string: %s' % v)
    return v

_POS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

def _arity(f):
    return sum(1 for p in inspect.signature(f).parameters.values() if p.kind in _POS)

def _callable(name, v, arity):
    if isinstance(v, str):
        try:
            mod_name, obj_name = v.rsplit('.', 1)
        except ValueError:
            raise TypeError("Value '%s' is not import string. "
                            'Format: module[.submodules...].object' % v)
        try:
            v = getattr(__import__(mod_name, fromlist=[obj_name]), obj_name)
        except ImportError as e:
            raise TypeError(str(e))
        except AttributeError:
            raise TypeError("Can not load '%s' from '%s'" % (obj_name, mod_name))
    if not callable(v):
        raise TypeError('Value is not callable: %s' % v)
    n = _arity(v)
    qual = getattr(v, '__qualname__', type(v).__qualname__)
    if name == 'post_request':
        if n not in (2, 3, 4):
            raise TypeError('Value must have an arity of: 4')
        if n != 4:
            qual = 'validate_post_request.<locals>.<lambda>'
    elif n != arity:
        raise TypeError('Value must have an arity of: %s' % arity)
    return ('hook', v, n, '<%s()>' % qual)

ARITY = {'on_starting': 1, 'on_reload': 1, 'when_ready': 1, 'pre_fork': 2,
         'post_fork': 2, 'post_worker_init': 1, 'worker_int': 1, 'worker_abort': 1,
         'pre_exec': 1, 'pre_request': 2, 'post_request': 4, 'child_exit': 2,
         'worker_exit': 2, 'nworkers_changed': 3, 'on_exit': 1, 'ssl_context': 2,
         'on_dirty_starting': 1, 'dirty_post_fork': 2, 'dirty_worker_init': 1,
         'dirty_worker_exit': 2}

def _shown(v):
    '''What gunicorn's --print-config would show for a value its validator kept.'''
    if callable(v):
        return '<%s()>' % getattr(v, '__qualname__', type(v).__qualname__)
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return str([x.strip() for x in v])
    return str(v)

def _same_as_default(v, default):
    if v is None:
        return True
    shown = _shown(v)
    if shown == default:
        return True
    if isinstance(v, str):
        return str([x.strip() for x in v.split(',') if x]) == default
    return False

# the order of enum cu_config_vtype
INT, BOOL, STR, LIST, ADDRS, CHOICE, CLASS, HOOK, FIXED, NOT_YET = range(10)
DICT = 10
KEPT = {}  # dict settings as given (py/pylog.c reads them)

def convert(vtype, name, v, default):
    '''One module-level value: what to set in C, or TypeError/ValueError.'''
    if vtype == INT:
        if isinstance(v, int):
            return ('set', str(int(v)))
        if isinstance(v, str):
            return ('set', v)
        raise TypeError("int() can't convert non-string with explicit base")
    if vtype == BOOL:
        if v is None or isinstance(v, bool):
            return ('set', 'true' if v else 'false')
        if not isinstance(v, str):
            raise TypeError('Invalid type for casting: %s' % v)
        return ('set', v)
    if vtype == STR:
        if name == 'ssl_version' and not isinstance(v, str):
            return ('set', str(v))  # validate_ssl_version takes any value
        v = _string(v)
        return ('none',) if v is None else ('set', v)
    if vtype == LIST:
        if not v:
            return ('list', [])
        if isinstance(v, str):
            v = [v]
        return ('list', [_string(x) for x in v])
    if vtype == ADDRS:
        v = _string(v)
        return ('set', v or '')
    if vtype == CHOICE:
        if name == 'proxy_protocol':
            if v is None or isinstance(v, bool):
                return ('set', 'auto' if v else 'off')
            if not isinstance(v, str):
                raise TypeError('proxy_protocol must be string or bool')
            return ('set', v)
        if name == 'http2_cleartext':
            if v is None or isinstance(v, bool):
                return ('set', 'prior-knowledge' if v else 'off')
            if not isinstance(v, str):
                raise TypeError('Invalid type for casting: %s' % v)
            return ('set', v)
        if name == 'http_protocols':
            if v is None:
                return ('set', 'h1')
            if not isinstance(v, str):
                raise TypeError('http_protocols must be a string')
            return ('set', v)
        if v is None:
            return ('skip',)
        if not isinstance(v, str):
            raise TypeError('Invalid type for casting: %s' % v)
        return ('set', v)
    if vtype == CLASS and name == 'logger_class':
        KEPT.pop(name, None)
        if inspect.isclass(v):
            KEPT[name] = v  # py/pylog.c instantiates it
            return ('set', '%s.%s' % (v.__module__, v.__qualname__))
        v = _string(v)
        return ('skip',) if v is None else ('set', v)
    if vtype == CLASS:
        if inspect.isfunction(v) or inspect.ismethod(v):
            v = v()
        if inspect.isclass(v):
            raise TypeError('worker class %s: cunicorn runs its own sync and gthread '
                            'workers, not Python worker classes' % v.__qualname__)
        v = _string(v)
        return ('skip',) if v is None else ('set', v)
    if vtype == HOOK:
        return _callable(name, v, ARITY[name])
    if vtype == DICT:
        if not isinstance(v, dict):
            raise TypeError('Value is not a dictionary: %s ' % v)
        if not v:
            KEPT.pop(name, None)
            return ('none',)
        KEPT[name] = v
        return ('set', str(v))
    if vtype == FIXED:
        return ('skip',)
    return ('notyet', not _same_as_default(v, default))
