#!/bin/sh
# Install what the build ("build") or the test suite ("test") needs, or say what is missing.
# Debian packages through apt when run as root; Python test packages through pip into $PYTHON.
set -u
what=${1:-build}
PYTHON=${PYTHON:-python3}

need_cmds="cc make pkg-config"
pkgs=""
missing=""

have() { command -v "$1" >/dev/null 2>&1; }

for c in $need_cmds; do
  have "$c" || { missing="$missing $c"; case $c in cc) pkgs="$pkgs gcc";; *) pkgs="$pkgs $c";; esac; }
done
if ! have "$PYTHON"; then
  missing="$missing $PYTHON"; pkgs="$pkgs python3 python3-dev"
elif ! "$PYTHON" -c 'import sysconfig,os,sys; h=sysconfig.get_paths()["include"]; sys.exit(0 if os.path.exists(os.path.join(h,"Python.h")) else 1)'; then
  missing="$missing Python.h($PYTHON)"; pkgs="$pkgs python3-dev"
fi
# Test extras: each test that needs one skips when it is missing (clang: make fuzz;
# clang-format: format-check; curl, nginx, haproxy, slowhttptest: their integration tests),
# so a machine where they cannot be installed (no network, no root) still runs the suite.
opt_pkgs=""
if [ "$what" = test ]; then
  for c in clang clang-format curl nginx haproxy slowhttptest; do
    have "$c" || case $c in nginx) opt_pkgs="$opt_pkgs nginx-light";; *) opt_pkgs="$opt_pkgs $c";; esac
  done
  # gcc's ASan/UBSan runtimes come with gcc; llvm-symbolizer makes reports readable.
  have llvm-symbolizer || opt_pkgs="$opt_pkgs llvm"
  # Debian's python3 comes without pip; the test packages are installed with it.
  if have "$PYTHON" && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    pkgs="$pkgs python3-pip"
  fi
fi

apt_ok=0
if [ -n "$pkgs$opt_pkgs" ] && [ "$(id -u)" = 0 ] && have apt-get; then
  apt_ok=1
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
fi
if [ -n "$pkgs" ]; then
  if [ $apt_ok = 1 ]; then
    echo "ensure-deps: installing Debian packages:$pkgs"
    # shellcheck disable=SC2086
    apt-get install -y -qq $pkgs >/dev/null || { echo "ensure-deps: apt-get install$pkgs failed" >&2; exit 1; }
  elif [ -n "$missing" ]; then
    echo "ensure-deps: missing:$missing" >&2
    echo "ensure-deps: on Debian, as root: apt-get install$pkgs" >&2
    exit 1
  fi
fi
if [ -n "$opt_pkgs" ]; then
  # one at a time: a package this Debian does not have must not stop the others
  for p in $opt_pkgs; do
    if [ $apt_ok = 1 ] && apt-get install -y -qq "$p" >/dev/null 2>&1; then
      echo "ensure-deps: installed $p"
    else
      echo "ensure-deps: warning: $p not installed; the tests that need it are skipped" >&2
    fi
  done
fi

# pip_install NAME...: into $PYTHON; returns non-zero if pip failed.
pip_install() {
  # Debian's own python refuses pip without this flag (PEP 668); pyenv's does not need it.
  "$PYTHON" -m pip install -q "$@" 2>/dev/null ||
    "$PYTHON" -m pip install -q --break-system-packages "$@"
}

if [ "$what" = test ]; then
  # What the tests import (grep -r '^import\|^from' tests): pytest and requests are
  # needed to run at all; the others are skipped without them (flask, django: the
  # framework tests; gunicorn: the --print-config comparison; PasteDeploy: --paste).
  # bench/run.py installs its own peers (granian, ...) when it runs.
  need=""
  for m in pytest requests; do
    "$PYTHON" -c "import $m" >/dev/null 2>&1 || need="$need $m"
  done
  if [ -n "$need" ]; then
    echo "ensure-deps: pip installing into $PYTHON:$need"
    # shellcheck disable=SC2086
    pip_install $need || { echo "ensure-deps: could not pip install$need into $PYTHON" >&2; exit 1; }
  fi
  opt=""
  for m in flask django gunicorn; do
    "$PYTHON" -c "import $m" >/dev/null 2>&1 || opt="$opt $m"
  done
  # pip name differs from the import name
  "$PYTHON" -c "import paste.deploy" >/dev/null 2>&1 || opt="$opt PasteDeploy"
  for m in $opt; do
    if pip_install "$m"; then
      echo "ensure-deps: pip installed $m"
    else
      echo "ensure-deps: warning: could not pip install $m; the tests that need it are skipped" >&2
    fi
  done
fi
exit 0
