#!/bin/sh
# Install what the build ("build") or the test suite ("test") needs, or say what is missing.
# Debian packages through apt when run as root; Python test packages through pip into $PYTHON.
set -u
what=${1:-build}
PYTHON=${PYTHON:-python3}
# the packaging tests (tests/integration/test_install.py): sdist, pipx install, uv pip install
packaging_pymods="build pipx uv"
# the gevent worker (-k gevent) and its tests (tests/integration/test_gevent.py)
gevent_pymods="gevent"

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
# HTTP/2 (src/workers/h2.c) links libnghttp2, found with pkg-config.
if have pkg-config && ! pkg-config --exists libnghttp2 2>/dev/null; then
  missing="$missing libnghttp2"; pkgs="$pkgs libnghttp2-dev"
elif ! have pkg-config; then
  pkgs="$pkgs libnghttp2-dev"
fi
# OpenSSL headers for TLS listeners (pkg-config finds them)
if ! pkg-config --exists openssl 2>/dev/null; then
  missing="$missing libssl-dev"; pkgs="$pkgs libssl-dev"
fi
# What the build needs fails the script; test extras (below) only warn when they cannot be
# installed (no network, not root): every test that needs one skips without it.
build_missing=$missing
build_pkgs=$pkgs
if [ "$what" = test ]; then
  # nghttp2-client: h2load (bench) and nghttp; go: builds h2spec (below)
  have h2load || pkgs="$pkgs nghttp2-client"
  # Go builds h2spec (below); Debian's golang-go when no Go toolchain is on the machine
  have go || [ -x /usr/local/go/bin/go ] || pkgs="$pkgs golang-go"
  # clang: libFuzzer targets (make fuzz); slowhttptest: the slow-client suite
  # wrk: the keep-alive load under HUPs (test_graceful_load.py) and bench/
  for c in clang clang-format curl nginx haproxy slowhttptest openssl testssl wrk; do
    have "$c" || { missing="$missing $c"; case $c in nginx) pkgs="$pkgs nginx-light";; testssl) pkgs="$pkgs testssl.sh";; *) pkgs="$pkgs $c";; esac; }
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
    if ! apt-get install -y -qq $pkgs >/dev/null 2>&1; then
      # one at a time: a package that cannot be had must not stop the others
      for p in $pkgs; do
        apt-get install -y -qq "$p" >/dev/null 2>&1 && continue
        case " $build_pkgs " in
          *" $p "*) echo "ensure-deps: apt-get install $p failed" >&2; exit 1;;
          *) echo "ensure-deps: warning: $p not installed; the tests that need it are skipped" >&2;;
        esac
      done
    fi
  elif [ -n "$build_missing" ]; then
    echo "ensure-deps: missing:$build_missing" >&2
    echo "ensure-deps: on Debian, as root: apt-get install$build_pkgs" >&2
    exit 1
  elif [ -n "$missing" ]; then
    echo "ensure-deps: warning: missing:$missing (the tests that need them are skipped)" >&2
    echo "ensure-deps: on Debian, as root: apt-get install$pkgs" >&2
  fi
fi

if [ "$what" = test ]; then
  pymods="pytest requests flask django gunicorn pyflakes httpbin h2"
  # the asgi worker's tests and bench: frameworks, clients, uvicorn to compare with
  pymods="$pymods fastapi starlette uvicorn uvloop httptools httpx websockets quart"
  need=""
  for m in $pymods $packaging_pymods $gevent_pymods; do
    "$PYTHON" -c "import $m" >/dev/null 2>&1 || need="$need $m"
  done
  # pip name differs from the import name
  "$PYTHON" -c "import paste.deploy" >/dev/null 2>&1 || need="$need PasteDeploy"
  # WebSockets over WSGI (environ['gunicorn.socket']) with the real libraries and clients
  "$PYTHON" -c "import flask_sock" >/dev/null 2>&1 || need="$need flask-sock"
  "$PYTHON" -c "import simple_websocket" >/dev/null 2>&1 || need="$need simple-websocket"
  "$PYTHON" -c "import socketio" >/dev/null 2>&1 || need="$need python-socketio"
  "$PYTHON" -c "import websocket" >/dev/null 2>&1 || need="$need websocket-client"
  "$PYTHON" -c "import multipart" >/dev/null 2>&1 || need="$need python-multipart"
  if [ -n "$need" ]; then
    echo "ensure-deps: pip installing into $PYTHON:$need"
    # Debian's own python refuses pip without this flag (PEP 668); pyenv's does not need it.
    "$PYTHON" -m pip install -q $need 2>/dev/null ||
      "$PYTHON" -m pip install -q --break-system-packages $need 2>/dev/null ||
      for m in $need; do
        "$PYTHON" -m pip install -q "$m" 2>/dev/null ||
          "$PYTHON" -m pip install -q --break-system-packages "$m" 2>/dev/null ||
          echo "ensure-deps: warning: could not pip install $m into $PYTHON" >&2
      done
    # pytest and requests are needed to run at all (imported at collection); without the
    # others (flask, django: framework tests; gunicorn: --print-config comparison;
    # PasteDeploy: --paste) their tests skip. bench/run.py installs its own peers.
    for m in pytest requests; do
      "$PYTHON" -c "import $m" >/dev/null 2>&1 ||
        { echo "ensure-deps: could not pip install $m into $PYTHON" >&2; exit 1; }
    done
  fi
  # httpx speaks HTTP/2 only with its extra
  "$PYTHON" -c "import httpx, h2" >/dev/null 2>&1 ||
    "$PYTHON" -m pip install -q "httpx[http2]" 2>/dev/null ||
    "$PYTHON" -m pip install -q --break-system-packages "httpx[http2]" 2>/dev/null || true
  # h2spec (HTTP/2 conformance, tests/conformance/test_h2spec.py) into build/tools
  root=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -x "$root/build/tools/h2spec" ] && ! have h2spec; then
    GO=$(command -v go || echo /usr/local/go/bin/go)
    if [ -x "$GO" ]; then
      echo "ensure-deps: go install h2spec into $root/build/tools"
      mkdir -p "$root/build/tools"
      GOBIN="$root/build/tools" "$GO" install github.com/summerwind/h2spec/cmd/h2spec@latest ||
        echo "ensure-deps: warning: could not build h2spec" >&2
    else
      echo "ensure-deps: warning: go is needed to build h2spec (https://go.dev/dl/)" >&2
    fi
  fi
fi
exit 0
