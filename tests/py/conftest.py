"""Unit tests for the server's own Python (src/py/lib/*.py), imported straight from the
tree as the top-level modules _app, _config, ... (the binary embeds the same bytes as
cunicorn._app, ...)."""
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "src", "py", "lib"))
