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
fi
# zlib: WebSocket permessage-deflate
if ! pkg-config --exists zlib 2>/dev/null; then
  missing="$missing zlib"; pkgs="$pkgs zlib1g-dev"
fi
if ! have "$PYTHON"; then
  :
elif ! "$PYTHON" -c 'import sysconfig,os,sys; h=sysconfig.get_paths()["include"]; sys.exit(0 if os.path.exists(os.path.join(h,"Python.h")) else 1)'; then
  missing="$missing Python.h($PYTHON)"; pkgs="$pkgs python3-dev"
fi
if [ "$what" = test ]; then
  # clang: libFuzzer targets (make fuzz); slowhttptest: the slow-client suite
  for c in clang clang-format curl nginx haproxy slowhttptest; do
    have "$c" || { missing="$missing $c"; case $c in nginx) pkgs="$pkgs nginx-light";; *) pkgs="$pkgs $c";; esac; }
  done
  # gcc's ASan/UBSan runtimes come with gcc; llvm-symbolizer makes reports readable.
  have llvm-symbolizer || pkgs="$pkgs llvm"
  # Debian's python3 comes without pip; the test packages are installed with it.
  if have "$PYTHON" && ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    missing="$missing pip($PYTHON)"; pkgs="$pkgs python3-pip"
  fi
fi

if [ -n "$pkgs" ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "ensure-deps: installing Debian packages:$pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    apt-get install -y -qq $pkgs >/dev/null || { echo "ensure-deps: apt-get install$pkgs failed" >&2; exit 1; }
  elif [ -n "$missing" ]; then
    echo "ensure-deps: missing:$missing" >&2
    echo "ensure-deps: on Debian, as root: apt-get install$pkgs" >&2
    exit 1
  fi
fi

if [ "$what" = test ]; then
  pymods="pytest requests flask django gunicorn"
  # the asgi worker's tests and bench: frameworks, clients, uvicorn to compare with
  pymods="$pymods fastapi starlette uvicorn uvloop httptools httpx websockets quart"
  need=""
  for m in $pymods; do
    "$PYTHON" -c "import $m" >/dev/null 2>&1 || need="$need $m"
  done
  # pip name differs from the import name
  "$PYTHON" -c "import paste.deploy" >/dev/null 2>&1 || need="$need PasteDeploy"
  "$PYTHON" -c "import multipart" >/dev/null 2>&1 || need="$need python-multipart"
  if [ -n "$need" ]; then
    echo "ensure-deps: pip installing into $PYTHON:$need"
    # Debian's own python refuses pip without this flag (PEP 668); pyenv's does not need it.
    "$PYTHON" -m pip install -q $need 2>/dev/null ||
      "$PYTHON" -m pip install -q --break-system-packages $need ||
      { echo "ensure-deps: could not pip install$need into $PYTHON" >&2; exit 1; }
  fi
fi
exit 0
