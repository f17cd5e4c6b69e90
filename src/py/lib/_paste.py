"""cunicorn._paste: loads a PasteDeploy app (paste:/config: URIs) for py/paste.c."""
import os

class Missing(Exception):
    pass

def load(uri, pairs):
    try:
        from paste.deploy import loadapp
    except ImportError as e:
        raise Missing('--paste needs the PasteDeploy package, which is not installed '
                      '(pip install PasteDeploy): %s' % e)
    uri = os.path.abspath(uri)
    config_file = uri.split('#')[0]
    if not os.path.exists(config_file):
        raise Missing('%r not found' % config_file)
    conf = dict(p.split('=', 1) for p in pairs) or None
    if ':' not in uri:
        uri = 'config:%s' % uri
    return loadapp(uri, relative_to=os.getcwd(), global_conf=conf)
