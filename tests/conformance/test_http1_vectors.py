"""HTTP/1 conformance vectors from ../shared/conformance/http1 (beside the repository) over a
real socket.

Each vector is one test id: <worker class>-<vector file>. Servers are shared between
vectors with the same worker class and cfg (started lazily, stopped at session end).
"""
import base64
import glob
import json
import os
import sys
import urllib.parse

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import server as srv  # noqa: E402

VECTOR_DIR = os.environ.get("CUNICORN_CONFORMANCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "conformance", "http1"))
VECTORS = sorted(glob.glob(os.path.join(VECTOR_DIR, "*.json")))

# Worker classes the vectors run under.
WORKER_CLASSES = os.environ.get("CUNICORN_CONFORMANCE_WORKERS", "sync,gthread").split(",")

# Status a server answers with, when it answers at all, per error class (gunicorn's).
ERROR_STATUS = {
    "LimitRequestHeaders": {431},
    "LimitRequestLine": {400, 414},
    "UnsupportedTransferCoding": {501},
    "ForbiddenProxyRequest": {403},
    "ExpectationFailed": {417},
}
DEFAULT_ERROR_STATUS = {400}


def cfg_to_flags(cfg):
    flags = []
    for key, value in sorted(cfg.items()):
        if key == "limit_request_field_size":
            flag = "--limit-request-field_size"
        else:
            flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)  # bool switch (--proxy-protocol: nargs='?', bare = auto)
        elif value is False:
            continue
        else:
            flags.append("%s=%s" % (flag, value))
    return flags


class ServerPool:
    def __init__(self):
        self.servers = {}

    def get(self, worker_class, cfg):
        key = (worker_class, json.dumps(cfg, sort_keys=True))
        s = self.servers.get(key)
        if s is not None and s.proc.poll() is None:
            return s
        # The vectors are gunicorn's parser corpus, where an HTTP/1.1 request without Host is
        # valid; cunicorn answers those 400 by default (RFC 9112 3.2, --no-require-host
        # serves them as gunicorn does; tests/integration/test_parity.py checks the rule).
        args = cfg_to_flags(cfg) + ["--worker-class", worker_class, "--keep-alive", "2",
                                    "--no-require-host"]
        if cfg.get("proxy_protocol"):
            args += ["--proxy-allow-from", "127.0.0.1"]
        s = srv.Server("environ_echo:app", args, cwd=srv.EXAMPLES, pythonpath=srv.EXAMPLES)
        s.start()
        self.servers[key] = s
        return s

    def close(self):
        for s in self.servers.values():
            s.close()


@pytest.fixture(autouse=True)
def _time_limit():
    yield from srv.time_limit_fixture_body()


@pytest.fixture(scope="session")
def pool():
    p = ServerPool()
    yield p
    p.close()


def load(path):
    with open(path) as f:
        return json.load(f)


def expected_environ(req):
    env = {
        "REQUEST_METHOD": req["method"],
        "QUERY_STRING": req["uri"]["query"],
        "SERVER_PROTOCOL": "HTTP/%d.%d" % tuple(req["version"]),
        "PATH_INFO": urllib.parse.unquote_to_bytes(req["uri"]["path"]).decode("latin-1"),
    }
    joined = {}
    for name, value in req["headers"]:
        if name == "CONTENT-TYPE":
            key = "CONTENT_TYPE"
        elif name == "CONTENT-LENGTH":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name.replace("-", "_")
        joined.setdefault(key, []).append(value)
    for k, vs in joined.items():
        env[k] = ",".join(vs)
    return env


def check_valid(server, vector):
    raw = base64.b64decode(vector["raw"])
    expected = vector["requests"]
    s = server.connect(timeout=10)
    got = []
    try:
        s.sendall(raw)
        rd = srv.HTTPReader(s, timeout=10)
        for _ in expected:
            try:
                r, _ = rd.read_final_response()
            except srv.ConnectionClosed as e:
                pytest.fail("connection closed after %d of %d responses (partial %r)\n%s"
                            % (len(got), len(expected), e.partial[:300], server.describe()))
            got.append(r)
    finally:
        s.close()
    for i, (req, resp) in enumerate(zip(expected, got)):
        assert resp.status == 200, "request %d: status %s body %r\n%s" % (
            i, resp.status, resp.body[:300], server.describe())
        env = json.loads(resp.body)
        want = expected_environ(req)
        for k, v in want.items():
            assert env.get(k) == v, "request %d: %s = %r, expected %r" % (i, k, env.get(k), v)
        # no extra headers (e.g. underscore headers must be dropped, not renamed)
        extra = sorted(k for k in env if (k.startswith("HTTP_") or k in ("CONTENT_TYPE",
                                                                          "CONTENT_LENGTH"))
                       and k not in want)
        assert not extra, "request %d: unexpected header keys %s" % (i, extra)
        body = base64.b64decode(env["body_base64"])
        assert body == base64.b64decode(req["body"]), "request %d: body %r" % (i, body[:200])


def check_invalid(server, vector):
    raw = base64.b64decode(vector["raw"])
    s = server.connect(timeout=10)
    try:
        s.sendall(raw)
        try:
            s.shutdown(srv.socket.SHUT_WR)  # an incomplete request must end, not hang
        except OSError:
            pass
        data, closed = srv.read_all_until_close(s, timeout=8)
    finally:
        s.close()
    allowed = ERROR_STATUS.get(vector["error"], DEFAULT_ERROR_STATUS)
    if data:
        assert data.startswith(b"HTTP/1."), data[:300]
        status = int(data.split(b" ", 2)[1])
        assert not 200 <= status < 300, "invalid request (%s) answered %d: %r" % (
            vector["error"], status, data[:500])
        assert status in allowed, "invalid request (%s) answered %d, expected %s: %r" % (
            vector["error"], status, sorted(allowed), data[:300])
    assert closed, "connection left open after an invalid request (%s)" % vector["error"]


def _ids():
    return [os.path.basename(p)[:-5] for p in VECTORS]


@pytest.mark.skipif(not VECTORS, reason="no vectors in %s" % VECTOR_DIR)
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
@pytest.mark.parametrize("path", VECTORS, ids=_ids())
def test_vector(pool, worker_class, path):
    vector = load(path)
    server = pool.get(worker_class, vector.get("cfg") or {})
    if vector["kind"] == "valid":
        check_valid(server, vector)
    else:
        check_invalid(server, vector)
    # whatever the vector did, the server still answers
    r = server.request(raw=b"GET /after HTTP/1.0\r\n\r\n")
    assert r.status == 200


def test_vectors_found():
    """The vectors live in ../shared beside the repository: a missing directory must fail,
    not silently run zero vectors."""
    assert len(VECTORS) >= 70, "no conformance vectors found in %s" % VECTOR_DIR
