/* Loading the WSGI application named by APP_MODULE, with gunicorn's rules and messages:
 * "module" (-> application), "module:name", "module:factory(literal args)", and, as an
 * extension, dotted attributes "module:obj.attr". */
#include "py/py_internal.h"
#include "py/reload.h"

#include "core/log.h"

/* The URI grammar is Python expression syntax, so the resolver is a few lines of Python
 * run through ast; C only drives it and sorts its errors. AppImportError marks what
 * gunicorn reports as a plain message (exit 4); anything else is an exception raised by the
 * app's own code (exit 3, with traceback). */
static const char resolver_src[] =
    "import ast, importlib, os, traceback\n"
    "\n"
    "class AppImportError(Exception):\n"
    "    pass\n"
    "\n"
    "def _dotted(node):\n"
    "    parts = []\n"
    "    while isinstance(node, ast.Attribute):\n"
    "        parts.append(node.attr)\n"
    "        node = node.value\n"
    "    if not isinstance(node, ast.Name):\n"
    "        return None\n"
    "    parts.append(node.id)\n"
    "    return '.'.join(reversed(parts))\n"
    "\n"
    "def _raised_inside(func, tb):\n"
    "    code = getattr(func, '__code__', None)\n"
    "    while tb is not None:\n"
    "        if code is not None and tb.tb_frame.f_code is code:\n"
    "            return True\n"
    "        tb = tb.tb_next\n"
    "    return False\n"
    "\n"
    "def resolve(uri):\n"
    "    module, sep, obj = uri.partition(':')\n"
    "    if not sep:\n"
    "        obj = 'application'\n"
    "    try:\n"
    "        mod = importlib.import_module(module)\n"
    "    except ImportError:\n"
    "        if module.endswith('.py') and os.path.exists(module):\n"
    "            raise ImportError(\"Failed to find application, did you mean '%s:%s'?\"\n"
    "                              % (module.rsplit('.', 1)[0], obj))\n"
    "        raise\n"
    "    try:\n"
    "        expr = ast.parse(obj, mode='eval').body\n"
    "    except SyntaxError:\n"
    "        raise AppImportError(\n"
    "            'Failed to parse %r as an attribute name or function call.' % obj) from None\n"
    "    args = kwargs = None\n"
    "    if isinstance(expr, ast.Call):\n"
    "        name = _dotted(expr.func)\n"
    "        if name is None:\n"
    "            raise AppImportError('Function reference must be a simple name: %r' % obj)\n"
    "        try:\n"
    "            args = [ast.literal_eval(a) for a in expr.args]\n"
    "            kwargs = {k.arg: ast.literal_eval(k.value) for k in expr.keywords}\n"
    "        except ValueError:\n"
    "            raise AppImportError(\n"
    "                'Failed to parse arguments as literal values: %r' % obj) from None\n"
    "        if any(k.arg is None for k in expr.keywords):\n"
    "            raise AppImportError(\n"
    "                'Failed to parse arguments as literal values: %r' % obj)\n"
    "    else:\n"
    "        name = _dotted(expr)\n"
    "        if name is None:\n"
    "            raise AppImportError(\n"
    "                'Failed to parse %r as an attribute name or function call.' % obj)\n"
    "    app = mod\n"
    "    try:\n"
    "        for part in name.split('.'):\n"
    "            app = getattr(app, part)\n"
    "    except AttributeError:\n"
    "        raise AppImportError(\n"
    "            'Failed to find attribute %r in %r.' % (name, module)) from None\n"
    "    if args is not None:\n"
    "        factory = app\n"
    "        try:\n"
    "            app = factory(*args, **kwargs)\n"
    "        except TypeError as e:\n"
    "            if not _raised_inside(factory, e.__traceback__):\n"
    "                raise AppImportError(\n"
    "                    ''.join(traceback.format_exception_only(TypeError, e)).strip()\n"
    "                ) from None\n"
    "            raise\n"
    "    if app is None:\n"
    "        raise AppImportError('Failed to find application object: %r' % obj)\n"
    "    if not callable(app):\n"
    "        raise AppImportError('Application object must be callable.')\n"
    "    return app\n";

/* Print str(exc) to stderr as gunicorn does ("%s" % e), after flushing Python's streams so
 * the order on the terminal is right. GIL held; `value` borrowed. */
static void print_exc_str(PyObject *value)
{
    PyObject *s = value ? PyObject_Str(value) : NULL; /* new ref */
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    if (t == NULL)
        PyErr_Clear();
    PyObject *err = PySys_GetObject("stderr"); /* borrowed */
    if (err != NULL && err != Py_None) {
        PyObject *r = PyObject_CallMethod(err, "flush", NULL);
        if (r == NULL)
            PyErr_Clear();
        Py_XDECREF(r);
    }
    fprintf(stderr, "%s\n", t ? t : "");
    fflush(stderr);
    Py_XDECREF(s);
}

static int load(const cu_config_t *cfg)
{
    if (cfg->app_uri == NULL || cfg->app_uri[0] == '\0') {
        fprintf(stderr, "No application module specified.\n");
        return CU_PY_APP_IMPORT_ERROR;
    }

    PyObject *ns = PyDict_New(); /* new ref */
    if (ns == NULL)
        goto fail_internal;
    PyObject *name = PyUnicode_FromString("cunicorn._app"); /* new ref */
    int bad = name == NULL || PyDict_SetItemString(ns, "__name__", name) < 0 ||
              PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0;
    Py_XDECREF(name);
    if (bad)
        goto fail_ns;
    /* A named code object, so tracebacks through the loader say where they come from. */
    PyObject *code = Py_CompileString(resolver_src, "<cunicorn app loader>", Py_file_input);
    PyObject *r = code ? PyEval_EvalCode(code, ns, ns) : NULL; /* new refs */
    Py_XDECREF(code);
    if (r == NULL)
        goto fail_ns;
    Py_DECREF(r);

    PyObject *resolve = PyDict_GetItemString(ns, "resolve");           /* borrowed */
    PyObject *import_err = PyDict_GetItemString(ns, "AppImportError"); /* borrowed */
    if (resolve == NULL || import_err == NULL)
        goto fail_ns;

    PyObject *app = PyObject_CallFunction(resolve, "s", cfg->app_uri); /* new ref */
    if (app == NULL) {
        int rc = PyErr_ExceptionMatches(import_err) ? CU_PY_APP_IMPORT_ERROR : CU_ERROR;
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (rc == CU_PY_APP_IMPORT_ERROR) {
            cu_log_debug("Exception while loading the application");
            print_exc_str(value);
            Py_XDECREF(type);
            Py_XDECREF(tb);
        } else {
            /* Keep a copy of the value for the one-line message after the traceback. */
            Py_XINCREF(value);
            PyErr_Restore(type, value, tb);
            cu__py_log_exception(CU_LOG_ERROR, "Exception in worker process");
            print_exc_str(value);
        }
        Py_XDECREF(value);
        Py_DECREF(ns);
        return rc;
    }
    cu__py.app = app;
    Py_DECREF(ns);
    return CU_OK;

fail_ns:
    Py_DECREF(ns);
fail_internal:
    cu__py_log_exception(CU_LOG_ERROR, "cannot set up the application loader");
    return CU_ERROR;
}

int cu_py_load_app(const cu_config_t *cfg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = cu__py.app != NULL ? CU_OK : cfg->paste ? cu__paste_load(cfg) : load(cfg);
    PyGILState_Release(g);
    return rc;
}
