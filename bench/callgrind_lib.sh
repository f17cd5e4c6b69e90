# Shared by bench/callgrind.sh and bench/callgrind_h2.sh (sourced, POSIX sh): the tool
# check, one worker started under callgrind, and the worker's totals afterwards.

# need TOOL:DEBIAN_PACKAGE ...: exit with the package to install when a tool is missing.
need() {
  for t in "$@"; do
    command -v "${t%%:*}" >/dev/null ||
      { echo "bench: ${t%%:*} missing (Debian: apt-get install ${t#*:})" >&2; exit 1; }
  done
}

# start_worker CLASS APP [cunicorn arguments...]: one worker under callgrind on a free
# loopback port; sets $out (the output directory), $port and $vpid.
start_worker() {
  class=$1 app=$2
  shift 2
  bin=${CUNICORN_BIN:-build/cunicorn}
  py=${PYTHON:-python3}
  out=$(mktemp -d)
  port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
    "$bin" -w 1 -k "$class" --threads 2 --timeout 600 --no-control-socket -b 127.0.0.1:$port \
    "$@" --chdir bench "$app" >"$out/log" 2>&1 &
  vpid=$!
}

# report LABEL REQUESTS [FUNCTIONS]: stop the worker, print the instructions per request
# of the process that ran the app (and, given a grep pattern, those functions' inclusive
# counts), remove $out.
report() {
  kill -TERM $vpid
  wait $vpid || true
  for f in "$out"/cg.*; do
    if callgrind_annotate "$f" 2>/dev/null | grep -qE "cu_py_handle_request|cu_py_asgi_dispatch"; then
      total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
      echo "worker $1: $total instructions for $2 requests (+ boot) = $((total / $2)) per request"
      [ -z "${3:-}" ] || callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -E "$3" | head -8
    fi
  done
  rm -rf "$out"
}
