"""`make install` (PREFIX, DESTDIR): the binaries, the man page and the bash completion
generated from the settings table, and the Python package where the installed binary finds
it."""
import json
import os
import re
import shutil
import subprocess

import pytest

import server as srv

pytestmark = pytest.mark.skipif(
    os.path.dirname(os.path.realpath(srv.BIN)) not in (
        os.path.join(srv.REPO, "build"), os.path.join(srv.REPO, "build", "asan")),
    reason="make install installs the tree's own build (CUNICORN_BIN is elsewhere)")

BUILD = "asan" if os.path.basename(os.path.dirname(os.path.realpath(srv.BIN))) == "asan" \
    else "release"


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    out = subprocess.run(["make", "-C", srv.REPO, "BUILD=" + BUILD, "install",
                          "DESTDIR=%s" % d, "PREFIX=/usr"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return d


def help_flags():
    """Every flag `cunicorn --help` lists for a supported setting."""
    text = subprocess.run([srv.BIN, "--help"], capture_output=True, text=True,
                          timeout=30).stdout
    supported = text.split("gunicorn options cunicorn does not support yet")[0]
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]+)", supported))


def test_binaries_installed(dest):
    for name in ("cunicorn", "cunicornc"):
        path = dest / "usr" / "bin" / name
        assert path.is_file() and os.access(path, os.X_OK), path
    out = subprocess.run([str(dest / "usr/bin/cunicorn"), "--version"], capture_output=True,
                         text=True, timeout=30)
    assert out.stdout == subprocess.run([srv.BIN, "--version"], capture_output=True,
                                        text=True, timeout=30).stdout


def test_man_page_lists_every_flag(dest):
    page = dest / "usr/share/man/man1/cunicorn.1"
    text = page.read_text().replace("\\-", "-")
    assert text.startswith(".\\\"") and "\n.TH CUNICORN 1 " in text
    missing = [f for f in help_flags() if f not in text]
    assert not missing, missing
    # the settings not supported yet (as the settings table says) are listed as such
    doc = subprocess.run([srv.BIN, "--print-settings-doc"], capture_output=True, text=True,
                         timeout=30).stdout
    not_yet = re.findall(r"^\| `(\w+)` \|[^\n]*\| not yet \|", doc, re.M)
    if not_yet:
        section = text.split('.SH "NOT SUPPORTED YET"', 1)[1]
        assert all("\n.B %s\n" % name in section for name in not_yet), not_yet
    else:
        assert "NOT SUPPORTED YET" not in text
    if shutil.which("man"):
        shown = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING=""),
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "--max-requests INT" in shown.stdout


def complete(dest, words, cword):
    script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _cunicorn; printf '%%s\\n' "
              "\"${COMPREPLY[@]}\"" % (dest / "usr/share/bash-completion/completions/cunicorn",
                                       " ".join("'%s'" % w for w in words), cword))
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                         timeout=30, cwd=str(dest))
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.split("\n") if w]


def test_bash_completion(dest):
    assert sorted(complete(dest, ["cunicorn", "--max-req"], 1)) == [
        "--max-requests", "--max-requests-jitter"]
    assert set(complete(dest, ["cunicorn", "-"], 1)) >= help_flags()
    assert complete(dest, ["cunicorn", "-k", ""], 2) == ["sync", "gthread"]
    assert complete(dest, ["cunicorn", "--config", "us"], 2) == ["usr"]  # file names
    assert complete(dest, ["cunicorn", "--workers", ""], 2) == []  # a number: nothing


def test_installed_binary_imports_the_installed_package(dest, tmp_path):
    pkg = dest / "usr/lib/cunicorn/python/cunicorn/__init__.py"
    assert pkg.is_file()

    class Installed(srv.Server):
        def command(self):
            return [str(dest / "usr/bin/cunicorn")] + super().command()[1:]

    s = Installed("pkginfo:app", ["--no-control-socket"])
    try:
        s.start()
        info = json.loads(s.request("GET", "/").body)
    finally:
        s.close()
    assert os.path.realpath(info["package"]) == os.path.realpath(str(pkg))
