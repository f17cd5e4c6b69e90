#!/bin/sh
# Instructions per request in one worker, counted by callgrind (repeatable on a noisy
# machine, unlike req/s). Usage: bench/callgrind.sh [sync|gthread] [requests]
set -eu
cd "$(dirname "$0")/.."
class=${1:-sync}
n=${2:-20000}
bin=${CUNICORN_BIN:-build/cunicorn}
py=${PYTHON:-python3}
out=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
  "$bin" -w 1 -k "$class" --threads 2 -b 127.0.0.1:$port --chdir bench bench_app:app \
  >"$out/log" 2>&1 &
vpid=$!
$py - "$port" "$n" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        break
    except OSError:
        time.sleep(0.1)
req = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n"
# Warm up, then the measured run: one request at a time on a keep-alive connection.
got = 0
buf = b""
for i in range(n):
    s.sendall(req)
    while buf.count(b"Hello, World!") < 1:
        buf += s.recv(65536)
    buf = buf.split(b"Hello, World!", 1)[1]
    got += 1
print("requests:", got)
PY
kill -TERM $vpid
wait $vpid || true
# The worker is the process that ran cu_py_handle_request.
for f in "$out"/cg.*; do
  if callgrind_annotate "$f" 2>/dev/null | grep -q cu_py_handle_request; then
    total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
    echo "worker $class: $total instructions for $n requests (+ boot) = $((total / n)) per request"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | grep -E "cu_py_handle_request|cu_h1_parse_request|emit_head|process_input|PyObject_Call |environ" | head -8
  fi
done
rm -rf "$out"
