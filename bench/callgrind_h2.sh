#!/bin/sh
# Instructions per HTTP/2 request in one worker, counted by callgrind (repeatable on a noisy
# machine): h2c prior knowledge, h2load on one connection with 10 streams in flight.
# Usage: bench/callgrind_h2.sh [sync|gthread|asgi] [requests] [app]   (asgi: bench_asgi:app)
set -eu
cd "$(dirname "$0")/.."
. bench/callgrind_lib.sh
need valgrind:valgrind h2load:nghttp2-client curl:curl
class=${1:-sync}
n=${2:-20000}
app=${3:-bench_app:app}
start_worker "$class" "$app" --http-protocols h2,h1 --http2-cleartext prior-knowledge \
  --forwarded-allow-ips 127.0.0.1
i=0
until curl -s --http2-prior-knowledge "http://127.0.0.1:$port/" >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 600 ] || { echo "the server did not start" >&2; kill $vpid; exit 1; }
  sleep 0.1
done
h2load -n "$n" -c1 -m10 "http://127.0.0.1:$port/" | grep -E "^requests:"
report "$class (h2c)" "$n"
