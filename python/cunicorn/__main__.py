"""`python -m cunicorn ARGS...`: run the cunicorn server binary with ARGS (it replaces this
process, so signals, the pid and the exit status are the server's own).

The binary is the one that goes with this package: the build tree's when the package sits
in a source checkout (python/cunicorn/../../build/cunicorn beside the Makefile), else where
an install puts it: beside this interpreter (a virtualenv's bin/), the environment's scripts
directory, the user scripts directory, then PATH. When this Python is
a virtualenv's, the server is told so through VIRTUAL_ENV, so it imports what this
interpreter imports.
"""

import os
import shutil
import sys
import sysconfig

NAME = "cunicorn"


def _candidates():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
    if os.path.isfile(os.path.join(top, "Makefile")):
        yield os.path.join(top, "build", NAME)
    yield os.path.join(os.path.dirname(sys.executable), NAME)
    yield os.path.join(sysconfig.get_path("scripts"), NAME)
    try:
        yield os.path.join(sysconfig.get_path("scripts", f"{os.name}_user"), NAME)
    except KeyError:
        pass
    found = shutil.which(NAME)
    if found:
        yield found


def find_binary():
    """The path of the cunicorn server binary, or None."""
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
    return None


def main():
    binary = find_binary()
    if binary is None:
        sys.stderr.write(
            "cunicorn: the server binary was not found (looked beside %s, in %s and on PATH);"
            " install the package with pip, or build it with `make`\n"
            % (sys.executable, sysconfig.get_path("scripts"))
        )
        return 1
    if sys.prefix != sys.base_prefix and "VIRTUAL_ENV" not in os.environ:
        os.environ["VIRTUAL_ENV"] = sys.prefix
    os.execv(binary, [binary] + sys.argv[1:])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
