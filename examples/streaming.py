"""Stream a response of unknown length (sent chunked), one piece at a time.
Run:  cunicorn streaming:app   then   curl -N http://127.0.0.1:8000/?count=5&delay=0.5
"""
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(q.get("count", ["10"])[0])
    delay = float(q.get("delay", ["0"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])

    def pieces():
        for i in range(count):
            yield b"line %d\n" % i
            if delay:
                time.sleep(delay)
    return pieces()
