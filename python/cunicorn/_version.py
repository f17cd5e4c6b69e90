"""The version of cunicorn: the one place it is written.

The Makefile reads this line for the C binary (`cunicorn --version`, SERVER_SOFTWARE, the
"Starting cunicorn" log line) and setuptools reads it for the package metadata.
Keep it a single `__version__ = "X.Y.Z"` line.
"""

__version__ = "0.1.0"
