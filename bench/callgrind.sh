#!/bin/sh
# Instructions per request in one worker, counted by callgrind (repeatable on a noisy
# machine, unlike req/s). Usage: bench/callgrind.sh [sync|gthread] [requests] [app] [path]
#   bench/callgrind.sh sync 2000 bench_app:flask_app '/json?k=v'   (Flask JSON)
set -eu
cd "$(dirname "$0")/.."
. bench/callgrind_lib.sh
need valgrind:valgrind
class=${1:-sync}
n=${2:-20000}
app=${3:-bench_app:app}
path=${4:-/}
start_worker "$class" "$app"
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
report "$class" "$n" "cu_py_handle_request|cu_h1_parse_request|emit_head|process_input|PyObject_Call |environ"
