"""A raw ASGI 3 app for the asgi worker's tests (no framework): each path shows one part of
the protocol. Observations the client cannot see are appended to $ASGI_RECORD."""
import asyncio
import hashlib
import json
import os

RECORD = os.environ.get("ASGI_RECORD")


def record(line):
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(line + "\n")


async def read_body(receive):
    body = bytearray()
    messages = 0
    while True:
        m = await receive()
        assert m["type"] == "http.request", m
        messages += 1
        body += m.get("body", b"")
        if not m.get("more_body", False):
            return bytes(body), messages


async def respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope, receive, send):
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            scope["state"]["answer"] = 42
            scope["state"]["items"] = ["from-startup"]
            record("startup")
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            record("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    path = scope["path"]
    if path == "/scope" or path.startswith("/scope/"):
        body, _ = await read_body(receive)
        state = scope.get("state")
        out = {k: scope[k] for k in ("type", "http_version", "method", "scheme", "path",
                                      "root_path", "asgi")}
        out["raw_path"] = scope["raw_path"].decode("latin-1")
        out["query_string"] = scope["query_string"].decode("latin-1")
        out["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
        out["header_types"] = sorted({type(n).__name__ + "/" + type(v).__name__
                                      for n, v in scope["headers"]})
        out["client"] = list(scope["client"]) if scope["client"] else None
        out["server"] = list(scope["server"]) if scope["server"] else None
        out["state"] = dict(state) if state is not None else None
        out["extensions"] = scope.get("extensions")
        if state is not None:
            state["answer"] = "changed by a request"  # must not reach the next request
        return await respond(send, 200, json.dumps(out).encode())
    if path == "/echo":
        body, messages = await read_body(receive)
        out = {"len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
               "messages": messages}
        return await respond(send, 200, json.dumps(out).encode())
    if path == "/stream":
        n = int(scope["query_string"].decode() or "5")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk%d\n" % i,
                        "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/big":
        n = int(scope["query_string"].decode() or "1000000")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(n).encode())]})
        piece = b"x" * 65536
        left = n
        while left > 0:
            k = min(left, len(piece))
            left -= k
            await send({"type": "http.response.body", "body": piece[:k], "more_body": left > 0})
        return
    if path == "/one-big":
        # One send() of the whole body: larger than what the connection buffers.
        n = int(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(n).encode())]})
        await send({"type": "http.response.body", "body": b"z" * n})
        record("one-big sent")
        return
    if path == "/wait-disconnect":
        # Answer nothing; report what receive() says once the client is gone.
        await read_body(receive)
        m = await receive()
        record("wait-disconnect:" + m["type"])
        return
    if path == "/send-after-disconnect":
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        m = await receive()
        record("receive:" + m["type"])
        try:
            for _ in range(100):
                await send({"type": "http.response.body", "body": b"x" * 65536,
                            "more_body": True})
            record("send: no error")
        except OSError as exc:
            record("send raised OSError:" + type(exc).__name__)
        return
    if path == "/body-disconnect":
        # The client leaves in the middle of its body: receive() says so.
        got = 0
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                record("body-disconnect after %d bytes" % got)
                return
            got += len(m.get("body", b""))
            if not m.get("more_body"):
                record("body complete")
                return
    if path == "/cancelled":
        # Ignores the disconnect: cancelled after asgi_disconnect_grace_period.
        await read_body(receive)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            record("cancelled")
            raise
        return
    if path == "/error":
        raise RuntimeError("boom before the response")
    if path == "/error-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the response started")
    if path == "/sleep":
        # Waits on the loop (HTTP/2 parallel-stream tests: the body is test_http2's)
        await read_body(receive)
        record("sleeping")
        await asyncio.sleep(float(scope["query_string"].decode() or "0.5"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"slept"})
        return
    if path == "/pieces":
        # 64 KiB sends; how many went through before the client stopped taking them
        n = int(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        sent = 0
        try:
            for _ in range(n):
                await send({"type": "http.response.body", "body": b"p" * 65536,
                            "more_body": True})
                sent += 1
            await send({"type": "http.response.body", "body": b""})
            record("pieces done")
        except OSError:
            record("pieces stopped after %d" % sent)
        return
    if path == "/no-response":
        return
    if path == "/status":
        code = int(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/after-response":
        # Work after the response (what background tasks do): the client is not held.
        await respond(send, 200, b"{}")
        await asyncio.sleep(0.3)
        record("after-response done")
        return
    if path == "/early-hints":
        # gunicorn 27's http.response.informational: 103 Early Hints before the response
        await send({"type": "http.response.informational", "status": 103,
                    "headers": [(b"link", b"</style.css>; rel=preload; as=style")]})
        await send({"type": "http.response.informational", "status": 103,
                    "headers": [(b"link", b"</app.js>; rel=preload; as=script")]})
        return await respond(send, 200, b"after hints")
    if path == "/bad-informational":
        await send({"type": "http.response.informational", "status": 200, "headers": []})
        return await respond(send, 200, b"not reached")
    if path == "/trailers":
        # the http.response.trailers extension: trailers after a body of n bytes, in two
        # messages (more_trailers); on HTTP/1 the extension is not offered
        n = int(scope["query_string"].decode() or "10")
        record("trailers offered %s" % ("http.response.trailers" in
                                        (scope.get("extensions") or {})))
        body = b"t" * n
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-sha256")]})
        await send({"type": "http.response.body", "body": body[: n // 2], "more_body": True})
        await send({"type": "http.response.body", "body": body[n // 2:], "more_body": False})
        await send({"type": "http.response.trailers", "more_trailers": True,
                    "headers": [(b"x-sha256", hashlib.sha256(body).hexdigest().encode())]})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-count", str(n).encode())]})
        record("trailers sent")
        return
    if path == "/trailers-unannounced":
        # gunicorn 27's documented example: no "trailers" key, trailers right after the body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"trailer", b"grpc-status")]})
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        if "http.response.trailers" in scope.get("extensions", {}):
            await send({"type": "http.response.trailers",
                        "headers": [(b"grpc-status", b"0"), (b"grpc-message", b"OK")]})
        return
    if path == "/trailers-late":
        # announced by a Trailer field only, sent after a pause: the response has ended
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"trailer", b"x-late")]})
        await send({"type": "http.response.body", "body": b"ended"})
        await asyncio.sleep(0.2)
        try:
            await send({"type": "http.response.trailers", "headers": [(b"x-late", b"1")]})
        except RuntimeError as e:
            record("trailers-late refused: %s" % e)
        return
    if path == "/trailers-bare":
        # not announced at all (neither the key nor a Trailer field): ignored
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"bare"})
        await send({"type": "http.response.trailers", "headers": [(b"x-bare", b"1")]})
        record("trailers-bare returned")
        return
    if path == "/trailers-none":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": []})
        await send({"type": "http.response.body", "body": b"no trailers after all"})
        return
    if path == "/trailers-early":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        try:
            await send({"type": "http.response.trailers", "headers": []})
        except RuntimeError as e:
            record("trailers-early refused: %s" % e)
        await send({"type": "http.response.body", "body": b" rest"})
        return
    await respond(send, 404, b'{"error": "not found"}')
