#!/bin/sh
# Instructions per HTTP/2 request in one worker, counted by callgrind (repeatable on a noisy
# machine): h2c prior knowledge, h2load on one connection with 10 streams in flight.
# Usage: bench/callgrind_h2.sh [sync|gthread|asgi] [requests] [app]   (asgi: bench_asgi:app)
set -eu
cd "$(dirname "$0")/.."
for t in valgrind:valgrind h2load:nghttp2-client curl:curl; do
  command -v "${t%%:*}" >/dev/null ||
    { echo "bench: ${t%%:*} missing (Debian: apt-get install ${t#*:})" >&2; exit 1; }
done
class=${1:-sync}
n=${2:-20000}
app=${3:-bench_app:app}
bin=${CUNICORN_BIN:-build/cunicorn}
py=${PYTHON:-python3}
out=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/cg.%p" \
  "$bin" -w 1 -k "$class" --threads 2 --timeout 600 --no-control-socket -b 127.0.0.1:$port \
  --http-protocols h2,h1 --http2-cleartext prior-knowledge --forwarded-allow-ips 127.0.0.1 \
  --chdir bench "$app" >"$out/log" 2>&1 &
vpid=$!
i=0
until curl -s --http2-prior-knowledge "http://127.0.0.1:$port/" >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 600 ] || { echo "the server did not start" >&2; kill $vpid; exit 1; }
  sleep 0.1
done
h2load -n "$n" -c1 -m10 "http://127.0.0.1:$port/" | grep -E "^requests:"
kill -TERM $vpid
wait $vpid || true
for f in "$out"/cg.*; do
  if callgrind_annotate "$f" 2>/dev/null | grep -qE "cu_py_handle_request|cu_py_asgi_dispatch"; then
    total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
    echo "worker $class (h2c): $total instructions for $n requests (+ boot) = $((total / n)) per request"
  fi
done
rm -rf "$out"
