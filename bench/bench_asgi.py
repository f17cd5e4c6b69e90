"""ASGI app the benchmark serves with every ASGI server: hello, a 1 MiB body, an upload
sink, a FastAPI JSON endpoint under /fa/ (FastAPI's own routing and serialisation), and a
WebSocket echo."""

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)
_fastapi = None


def fastapi_app():
    global _fastapi
    if _fastapi is None:
        from fastapi import FastAPI

        fa = FastAPI()

        @fa.get("/fa/json")
        async def json_endpoint(q: str = "x"):
            return {"message": "Hello, World!", "q": q, "items": [1, 2, 3]}

        _fastapi = fa
    return _fastapi


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                fastapi_app()
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":  # echo, for the ws scenario (bench/ws_echo.py)
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            if m.get("text") is not None:
                await send({"type": "websocket.send", "text": m["text"]})
            else:
                await send({"type": "websocket.send", "bytes": m["bytes"]})
    path = scope["path"]
    if path.startswith("/fa/"):
        return await fastapi_app()(scope, receive, send)
    if path == "/upload":
        n = 0
        while True:
            m = await receive()
            n += len(m.get("body", b""))
            if not m.get("more_body"):
                break
        body = str(n).encode()
    elif path == "/1m":
        body = BIG
    else:
        body = HELLO
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
