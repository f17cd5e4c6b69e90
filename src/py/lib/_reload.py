"""cunicorn._reload: the files --reload watches and the --spew tracer, for py/reload.c."""
import glob, linecache, os, re, sys

def files(extra):
    out = set()
    for m in tuple(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if isinstance(f, str) and f:
            if f.endswith(('.pyc', '.pyo')):
                f = f[:-1]
            out.add(os.path.abspath(f))
    for pat in extra:
        if glob.has_magic(pat):
            out.update(os.path.abspath(p) for p in glob.glob(pat, recursive=True))
        else:
            out.add(os.path.abspath(pat))
    return sorted(out)

_tok = re.compile(r'\W+')

def spew(frame, event, arg):
    if event == 'line':
        g = frame.f_globals
        n = frame.f_lineno
        if '__file__' in g:
            fn = g['__file__'] or ''
            if fn.endswith(('.pyc', '.pyo')):
                fn = fn[:-1]
            name = g.get('__name__', '[unknown]')
            line = linecache.getline(fn, n)
        else:
            name = '[unknown]'
            line = 'Unknown code named [%s].  VM instruction #%d' % (
                frame.f_code.co_name, frame.f_lasti)
        print('%s:%s: %s' % (name, n, line.rstrip()))
    return spew
