"""cunicorn._pylog: Python logging setup (logconfig, logconfig_dict/json, paste logging) bridged to the C error and access logs; py/pylog.c calls setup()."""
import json, logging, logging.config, os, sys

GENERIC = '%(asctime)s [%(process)d] [%(levelname)s] %(message)s'
DATEFMT = '[%Y-%m-%d %H:%M:%S %z]'

def defaults():
    return {
        'version': 1,
        'disable_existing_loggers': False,
        'root': {'level': 'INFO', 'handlers': ['console']},
        'loggers': {
            'gunicorn.error': {'level': 'INFO', 'handlers': ['error_console'],
                               'propagate': True, 'qualname': 'gunicorn.error'},
            'gunicorn.access': {'level': 'INFO', 'handlers': ['console'],
                                'propagate': True, 'qualname': 'gunicorn.access'},
        },
        'handlers': {
            'console': {'class': 'logging.StreamHandler', 'formatter': 'generic',
                        'stream': 'ext://sys.stdout'},
            'error_console': {'class': 'logging.StreamHandler', 'formatter': 'generic',
                              'stream': 'ext://sys.stderr'},
        },
        'formatters': {'generic': {'format': GENERIC, 'datefmt': DATEFMT,
                                   'class': 'logging.Formatter'}},
    }

def _handler(log, output, fmt, stream):
    h = logging.StreamHandler(stream) if output == '-' else logging.FileHandler(output)
    h.setFormatter(fmt)
    h._gunicorn = True
    log.addHandler(h)

# gunicorn: a PasteDeploy file with a [loggers] section is the logconfig
def paste_logging(paste):
    import configparser
    path = os.path.abspath(paste).split('#')[0]
    p = configparser.ConfigParser()
    p.read([path])
    return path if p.has_section('loggers') else None

def setup(level, errorlog, accesslog, fileconf, dictconf, jsonconf, paste):
    if paste and not fileconf:
        fileconf = paste_logging(paste)
    if not (fileconf or dictconf or jsonconf):
        return None
    err = logging.getLogger('gunicorn.error')
    acc = logging.getLogger('gunicorn.access')
    for log in (err, acc):
        log.propagate = False
        for h in list(log.handlers):
            if getattr(h, '_gunicorn', False):
                log.removeHandler(h)
    err.setLevel(level)
    acc.setLevel(logging.INFO)
    _handler(err, errorlog, logging.Formatter(GENERIC, DATEFMT), sys.stderr)
    if accesslog is not None:
        _handler(acc, accesslog, logging.Formatter('%(message)s'), sys.stdout)
    try:
        if dictconf:
            conf = defaults()
            conf.update(dictconf)
            logging.config.dictConfig(conf)
        elif jsonconf:
            if os.path.exists(jsonconf):
                conf = defaults()
                with open(jsonconf) as f:
                    conf.update(json.load(f))
                logging.config.dictConfig(conf)
        elif fileconf:
            if not os.path.exists(fileconf):
                raise RuntimeError("Error: log config '%s' not found" % fileconf)
            d = {k: str(v) for k, v in defaults().items()}
            d['__file__'] = fileconf
            d['here'] = os.path.dirname(fileconf)
            logging.config.fileConfig(fileconf, defaults=d,
                                      disable_existing_loggers=False)
    except (json.JSONDecodeError, AttributeError, ImportError, ValueError,
            TypeError) as exc:
        raise RuntimeError(str(exc)) from exc
    return err.log, acc.info
