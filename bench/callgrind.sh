#!/bin/sh
# Instructions per request in one worker, counted by callgrind (repeatable on a noisy
# machine, unlike req/s). Usage: bench/callgrind.sh [sync|gthread] [requests] [app] [path]
#   bench/callgrind.sh sync 2000 bench_app:flask_app '/json?k=v'   (Flask JSON)
set -eu
cd "$(dirname "$0")/.."
for t in valgrind:valgrind; do
  command -v "${t%%:*}" >/dev/null ||
    { echo "bench: ${t%%:*} missing (Debian: apt-get install ${t#*:})" >&2; exit 1; }
done
class=${1:-sync}
n=${2:-20000}
app=${3:-bench_app:app}
path=${4:-/}
bin=${CUNICORN_BIN:-build/cunicorn}
py=${PYTHON:-python3}
out=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
  "$bin" -w 1 -k "$class" --threads 2 --timeout 600 --no-control-socket -b 127.0.0.1:$port \
  --chdir bench "$app" \
  >"$out/log" 2>&1 &
vpid=$!
$py - "$port" "$n" "$path" <<'PY'
import re, socket, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=300)
        break
    except OSError:
        time.sleep(0.1)
req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n" % (
    path.encode(), port)
# One request at a time on a keep-alive connection; each response read by its length.
buf = b""
got = 0
for i in range(n):
    s.sendall(req)
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(buf) < length:
        buf += s.recv(65536)
    buf = buf[length:]
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
