"""cunicorn._app: resolves APP_MODULE (module:callable, factories with literal arguments) as gunicorn's util.import_app does; py/app.c calls resolve()."""
import ast, importlib, os, traceback

class AppImportError(Exception):
    pass

def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return '.'.join(reversed(parts))

def _raised_inside(func, tb):
    code = getattr(func, '__code__', None)
    while tb is not None:
        if code is not None and tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False

def resolve(uri):
    module, sep, obj = uri.partition(':')
    if not sep:
        obj = 'application'
    try:
        mod = importlib.import_module(module)
    except ImportError:
        if module.endswith('.py') and os.path.exists(module):
            raise ImportError("Failed to find application, did you mean '%s:%s'?"
                              % (module.rsplit('.', 1)[0], obj))
        raise
    try:
        expr = ast.parse(obj, mode='eval').body
    except SyntaxError:
        raise AppImportError(
            'Failed to parse %r as an attribute name or function call.' % obj) from None
    args = kwargs = None
    if isinstance(expr, ast.Call):
        name = _dotted(expr.func)
        if name is None:
            raise AppImportError('Function reference must be a simple name: %r' % obj)
        try:
            args = [ast.literal_eval(a) for a in expr.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}
        except ValueError:
            raise AppImportError(
                'Failed to parse arguments as literal values: %r' % obj) from None
        if any(k.arg is None for k in expr.keywords):
            raise AppImportError(
                'Failed to parse arguments as literal values: %r' % obj)
    else:
        name = _dotted(expr)
        if name is None:
            raise AppImportError(
                'Failed to parse %r as an attribute name or function call.' % obj)
    app = mod
    try:
        for part in name.split('.'):
            app = getattr(app, part)
    except AttributeError:
        raise AppImportError(
            'Failed to find attribute %r in %r.' % (name, module)) from None
    if args is not None:
        factory = app
        try:
            app = factory(*args, **kwargs)
        except TypeError as e:
            if not _raised_inside(factory, e.__traceback__):
                raise AppImportError(
                    ''.join(traceback.format_exception_only(TypeError, e)).strip()
                ) from None
            raise
    if app is None:
        raise AppImportError('Failed to find application object: %r' % obj)
    if not callable(app):
        raise AppImportError('Application object must be callable.')
    return app
