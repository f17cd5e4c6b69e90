"""Memory tests: /grow?mb=N keeps N MB more for the life of the worker and answers
'<pid> <rss_kb>' measured after the allocation."""
import os

_kept = []


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024


def app(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        mb = int(environ.get("QUERY_STRING", "mb=10").split("=")[1])
        block = bytearray(mb * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page: resident, not just mapped
            block[i] = 1
        _kept.append(block)
    body = b"%d %d" % (os.getpid(), _rss_kb())
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
