/* gunicorn.conf.py: evaluated by the embedded interpreter while the command line is being
 * applied (defaults < config file < GUNICORN_CMD_ARGS < argv). Module-level names that are
 * settings go through gunicorn's validators; hooks are kept by py/hooks.c; settings
 * cunicorn does not support yet are errors when they differ from gunicorn's default. */
#include "py/py_internal.h"

#include "core/log.h"
#include "py/hooks.h"

#include <limits.h>
#include <unistd.h>

/* How gunicorn reads the file and validates Python values (what C cannot see: types). */
static const char loader_src[] =
    "import importlib, importlib.util, importlib.machinery, inspect, os, sys, traceback\n"
    "\n"
    "class Fail(Exception):\n"
    "    '''The message was printed; exit with args[0].'''\n"
    "\n"
    "def load(location):\n"
    "    if location.startswith('python:'):\n"
    "        try:\n"
    "            return vars(importlib.import_module(location[len('python:'):]))\n"
    "        except Exception as e:\n"
    "            print('\\nError: %s' % e, file=sys.stderr)\n"
    "            sys.stderr.flush()\n"
    "            raise Fail(1)\n"
    "    filename = location[len('file:'):] if location.startswith('file:') else location\n"
    "    if not os.path.exists(filename):\n"
    "        print('\\nError: %r doesn\\'t exist' % filename, file=sys.stderr)\n"
    "        sys.stderr.flush()\n"
    "        raise Fail(1)\n"
    "    try:\n"
    "        name = '__config__'\n"
    "        if os.path.splitext(filename)[1] in ('.py', '.pyc'):\n"
    "            spec = importlib.util.spec_from_file_location(name, filename)\n"
    "        else:\n"
    "            print('!!!\\n!!! WARNING: configuration file should have a valid Python '\n"
    "                  'extension.\\n!!!\\n', file=sys.stderr)\n"
    "            ldr = importlib.machinery.SourceFileLoader(name, filename)\n"
    "            spec = importlib.util.spec_from_file_location(name, filename, loader=ldr)\n"
    "        mod = importlib.util.module_from_spec(spec)\n"
    "        sys.modules[name] = mod\n"
    "        spec.loader.exec_module(mod)\n"
    "    except Exception:\n"
    "        print('Failed to read config file: %s' % filename, file=sys.stderr)\n"
    "        traceback.print_exc()\n"
    "        sys.stderr.flush()\n"
    "        raise Fail(1)\n"
    "    return vars(mod)\n"
    "\n"
    "def _string(v):\n"
    "    if v is None:\n"
    "        return None\n"
    "    if not isinstance(v, str):\n"
    "        raise TypeError('Not a string: %s' % v)\n"
    "    return v\n"
    "\n"
    "_POS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)\n"
    "\n"
    "def _arity(f):\n"
    "    return sum(1 for p in inspect.signature(f).parameters.values() if p.kind in _POS)\n"
    "\n"
    "def _callable(name, v, arity):\n"
    "    if isinstance(v, str):\n"
    "        try:\n"
    "            mod_name, obj_name = v.rsplit('.', 1)\n"
    "        except ValueError:\n"
    "            raise TypeError(\"Value '%s' is not import string. \"\n"
    "                            'Format: module[.submodules...].object' % v)\n"
    "        try:\n"
    "            v = getattr(__import__(mod_name, fromlist=[obj_name]), obj_name)\n"
    "        except ImportError as e:\n"
    "            raise TypeError(str(e))\n"
    "        except AttributeError:\n"
    "            raise TypeError(\"Can not load '%s' from '%s'\" % (obj_name, mod_name))\n"
    "    if not callable(v):\n"
    "        raise TypeError('Value is not callable: %s' % v)\n"
    "    n = _arity(v)\n"
    "    qual = getattr(v, '__qualname__', type(v).__qualname__)\n"
    "    if name == 'post_request':\n"
    "        if n not in (2, 3, 4):\n"
    "            raise TypeError('Value must have an arity of: 4')\n"
    "        if n != 4:\n"
    "            qual = 'validate_post_request.<locals>.<lambda>'\n"
    "    elif n != arity:\n"
    "        raise TypeError('Value must have an arity of: %s' % arity)\n"
    "    return ('hook', v, n, '<%s()>' % qual)\n"
    "\n"
    "ARITY = {'on_starting': 1, 'on_reload': 1, 'when_ready': 1, 'pre_fork': 2,\n"
    "         'post_fork': 2, 'post_worker_init': 1, 'worker_int': 1, 'worker_abort': 1,\n"
    "         'pre_exec': 1, 'pre_request': 2, 'post_request': 4, 'child_exit': 2,\n"
    "         'worker_exit': 2, 'nworkers_changed': 3, 'on_exit': 1, 'ssl_context': 2}\n"
    "\n"
    "def _shown(v):\n"
    "    '''What gunicorn's --print-config would show for a value its validator kept.'''\n"
    "    if callable(v):\n"
    "        return '<%s()>' % getattr(v, '__qualname__', type(v).__qualname__)\n"
    "    if isinstance(v, str):\n"
    "        return v.strip()\n"
    "    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):\n"
    "        return str([x.strip() for x in v])\n"
    "    return str(v)\n"
    "\n"
    "def _same_as_default(v, default):\n"
    "    if v is None:\n"
    "        return True\n"
    "    shown = _shown(v)\n"
    "    if shown == default:\n"
    "        return True\n"
    "    if isinstance(v, str):\n"
    "        return str([x.strip() for x in v.split(',') if x]) == default\n"
    "    return False\n"
    "\n"
    "# the order of enum cu_config_vtype\n"
    "INT, BOOL, STR, LIST, ADDRS, CHOICE, CLASS, HOOK, FIXED, NOT_YET = range(10)\n"
    "DICT = 10\n"
    "KEPT = {}  # dict settings as given (py/pylog.c reads them)\n"
    "\n"
    "def convert(vtype, name, v, default):\n"
    "    '''One module-level value: what to set in C, or TypeError/ValueError.'''\n"
    "    if vtype == INT:\n"
    "        if isinstance(v, int):\n"
    "            return ('set', str(int(v)))\n"
    "        if isinstance(v, str):\n"
    "            return ('set', v)\n"
    "        raise TypeError(\"int() can't convert non-string with explicit base\")\n"
    "    if vtype == BOOL:\n"
    "        if v is None or isinstance(v, bool):\n"
    "            return ('set', 'true' if v else 'false')\n"
    "        if not isinstance(v, str):\n"
    "            raise TypeError('Invalid type for casting: %s' % v)\n"
    "        return ('set', v)\n"
    "    if vtype == STR:\n"
    "        if name == 'ssl_version' and not isinstance(v, str):\n"
    "            return ('set', str(v))  # validate_ssl_version takes any value\n"
    "        v = _string(v)\n"
    "        return ('none',) if v is None else ('set', v)\n"
    "    if vtype == LIST:\n"
    "        if not v:\n"
    "            return ('list', [])\n"
    "        if isinstance(v, str):\n"
    "            v = [v]\n"
    "        return ('list', [_string(x) for x in v])\n"
    "    if vtype == ADDRS:\n"
    "        v = _string(v)\n"
    "        return ('set', v or '')\n"
    "    if vtype == CHOICE:\n"
    "        if name == 'proxy_protocol':\n"
    "            if v is None or isinstance(v, bool):\n"
    "                return ('set', 'auto' if v else 'off')\n"
    "            if not isinstance(v, str):\n"
    "                raise TypeError('proxy_protocol must be string or bool')\n"
    "            return ('set', v)\n"
    "        if name == 'http2_cleartext':\n"
    "            if v is None or isinstance(v, bool):\n"
    "                return ('set', 'prior-knowledge' if v else 'off')\n"
    "            if not isinstance(v, str):\n"
    "                raise TypeError('Invalid type for casting: %s' % v)\n"
    "            return ('set', v)\n"
    "        if name == 'http_protocols':\n"
    "            if v is None:\n"
    "                return ('set', 'h1')\n"
    "            if not isinstance(v, str):\n"
    "                raise TypeError('http_protocols must be a string')\n"
    "            return ('set', v)\n"
    "        if v is None:\n"
    "            return ('skip',)\n"
    "        if not isinstance(v, str):\n"
    "            raise TypeError('Invalid type for casting: %s' % v)\n"
    "        return ('set', v)\n"
    "    if vtype == CLASS:\n"
    "        if inspect.isfunction(v) or inspect.ismethod(v):\n"
    "            v = v()\n"
    "        if inspect.isclass(v):\n"
    "            raise TypeError('worker class %s: cunicorn runs its own sync and gthread '\n"
    "                            'workers, not Python worker classes' % v.__qualname__)\n"
    "        v = _string(v)\n"
    "        return ('skip',) if v is None else ('set', v)\n"
    "    if vtype == HOOK:\n"
    "        return _callable(name, v, ARITY[name])\n"
    "    if vtype == DICT:\n"
    "        if not isinstance(v, dict):\n"
    "            raise TypeError('Value is not a dictionary: %s ' % v)\n"
    "        if not v:\n"
    "            KEPT.pop(name, None)\n"
    "            return ('none',)\n"
    "        KEPT[name] = v\n"
    "        return ('set', str(v))\n"
    "    if vtype == FIXED:\n"
    "        return ('skip',)\n"
    "    return ('notyet', not _same_as_default(v, default))\n";

static PyObject *loader; /* the module above */

/* The text of a Python object for messages: str(v). */
static void print_str(FILE *out, PyObject *v)
{
    PyObject *s = PyObject_Str(v);
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    fputs(t ? t : "?", out);
    Py_XDECREF(s);
    PyErr_Clear();
}

/* gunicorn: "Invalid value for k: v" then "Error: <reason>", exit 1. */
static int invalid_value(const char *name, PyObject *value, const char *why)
{
    fprintf(stderr, "Invalid value for %s: ", name);
    print_str(stderr, value);
    /* the C validators prefix their messages with the setting name */
    size_t n = strlen(name);
    if (strncmp(why, name, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
        why += n + 2;
    fprintf(stderr, "\n\n\nError: %s\n", why);
    return 1;
}

/* The pending exception as "Error: <str(exc)>" after the invalid-value line. */
static int invalid_value_exc(const char *name, PyObject *value)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    PyErr_Clear();
    int rc = invalid_value(name, value, t ? t : "invalid value");
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    return rc;
}

/* Apply one converted value. Returns CU_OK, or an exit code after the message. */
static int apply(cu_config_t *cfg, const char *name, PyObject *value, PyObject *what)
{
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 0));
    char err[512];
    int rc = CU_OK;
    if (kind == NULL)
        return 1;
    if (strcmp(kind, "set") == 0) {
        const char *v = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 1));
        if (v == NULL)
            return invalid_value_exc(name, value);
        rc = cu_config_set(cfg, name, v, err, sizeof(err));
    } else if (strcmp(kind, "none") == 0) {
        rc = cu_config_set(cfg, name, NULL, err, sizeof(err));
    } else if (strcmp(kind, "list") == 0) {
        PyObject *l = PyTuple_GET_ITEM(what, 1);
        Py_ssize_t n = PyList_GET_SIZE(l);
        const char **v = cu_xcalloc((size_t)n + 1, sizeof(*v));
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(l, i);
            v[i] = x == Py_None ? "None" : PyUnicode_AsUTF8(x);
            if (v[i] == NULL) {
                cu_free(v);
                return invalid_value_exc(name, value);
            }
        }
        rc = cu_config_set_list(cfg, name, v, (size_t)n, err, sizeof(err));
        cu_free(v);
    } else if (strcmp(kind, "hook") == 0) {
        int arity = (int)PyLong_AsLong(PyTuple_GET_ITEM(what, 2));
        const char *shown = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 3));
        if (cu__hook_set(name, PyTuple_GET_ITEM(what, 1), arity) != CU_OK || shown == NULL)
            return invalid_value_exc(name, value);
        cu_config_set_shown(cfg, name, shown);
    }
    if (rc != CU_OK)
        return invalid_value(name, value, err);
    return CU_OK;
}

/* Apply the namespace's settings in its order. GIL held. */
static int apply_namespace(cu_config_t *cfg, PyObject *ns, const char *shown)
{
    PyObject *convert = PyObject_GetAttrString(loader, "convert"); /* new ref */
    if (convert == NULL)
        return 1;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int rc = CU_OK, not_yet = 0;
    while (rc == CU_OK && PyDict_Next(ns, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        enum cu_config_vtype vt;
        if (name == NULL) {
            PyErr_Clear();
            continue;
        }
        /* gunicorn lower-cases names before setting them, but only looks up exact ones */
        if (cu_config_lookup(name, &vt) != CU_OK)
            continue;
        char def[PATH_MAX + 64];
        const char *deftext = cu_config_default_text(name, def, sizeof(def));
        PyObject *what = PyObject_CallFunction(convert, "isOs", (int)vt, name, value, deftext);
        if (what == NULL) {
            rc = invalid_value_exc(name, value);
            break;
        }
        const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(what, 0));
        if (kind != NULL && strcmp(kind, "notyet") == 0) {
            if (PyObject_IsTrue(PyTuple_GET_ITEM(what, 1))) {
                fprintf(stderr, "cunicorn: setting '%s' (from %s) is not supported yet\n", name,
                        shown);
                not_yet++;
            } else {
                cu_log_debug("%s (from %s) has gunicorn's default value: nothing to do", name,
                             shown);
            }
        } else if (kind != NULL && strcmp(kind, "skip") != 0) {
            rc = apply(cfg, name, value, what);
        }
        Py_DECREF(what);
    }
    Py_DECREF(convert);
    if (rc == CU_OK && not_yet)
        rc = 1;
    return rc;
}

/* sys.path.insert(0, cwd) as gunicorn's chdir() does before reading the file. */
static int cwd_on_path(const cu_config_t *cfg)
{
    PyObject *syspath = PySys_GetObject("path");                              /* borrowed */
    PyObject *dir = PyUnicode_DecodeFSDefault(cfg->chdir ? cfg->chdir : "."); /* new ref */
    if (syspath == NULL || dir == NULL) {
        Py_XDECREF(dir);
        return -1;
    }
    int has = PySequence_Contains(syspath, dir);
    int rc = has < 0 ? -1 : has ? 0 : PyList_Insert(syspath, 0, dir);
    Py_DECREF(dir);
    return rc;
}

static int load_file(cu_config_t *cfg, const char *path, const char *shown, void *ctx)
{
    CU_UNUSED(ctx);
    if (cu__py_start() != CU_OK)
        return 1;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 1;
    PyObject *ns = NULL;
    if (loader == NULL) {
        loader = cu__py_module_from_source("cunicorn._config", loader_src);
        /* in sys.modules so py/pylog.c finds the dict settings it keeps (KEPT) */
        if (loader != NULL &&
            PyDict_SetItemString(PyImport_GetModuleDict(), "cunicorn._config", loader) < 0)
            Py_CLEAR(loader);
    }
    if (loader == NULL || cwd_on_path(cfg) < 0) {
        cu__py_log_exception(CU_LOG_ERROR, "cannot prepare to read the config file");
        goto out;
    }
    ns = PyObject_CallMethod(loader, "load", "s", path); /* new ref: the module's dict */
    if (ns == NULL) {
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        PyObject *fail = PyObject_GetAttrString(loader, "Fail"); /* new ref */
        PyErr_Clear();
        if (fail != NULL && PyErr_GivenExceptionMatches(type, fail)) {
            Py_XDECREF(type);
            Py_XDECREF(exc);
            Py_XDECREF(tb);
        } else {
            fprintf(stderr, "Failed to read config file: %s\n", path);
            PyErr_Restore(type, exc, tb);
            PyErr_Print();
        }
        Py_XDECREF(fail);
        goto out;
    }
    rc = apply_namespace(cfg, ns, shown);
out:
    Py_XDECREF(ns);
    fflush(stderr);
    PyGILState_Release(g);
    return rc;
}

/* Registered before main(): the config module knows no Python, so the loader is plugged in
 * from here. (The explicit alternative is one call in main(); see hooks.h's report.) */
__attribute__((constructor)) static void register_loader(void)
{
    cu_config_set_file_loader(load_file, NULL);
}
