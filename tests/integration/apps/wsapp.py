"""WebSocket apps for the asgi worker: a raw ASGI echo (and its refusals) and a Starlette
WebSocket route."""
import os

RECORD = os.environ.get("ASGI_RECORD")


def record(line):
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(line + "\n")


async def raw(scope, receive, send):
    if scope["type"] == "lifespan":
        m = await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert scope["type"] == "websocket"
    m = await receive()
    assert m["type"] == "websocket.connect", m
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/deny-response":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"go away"})
        return
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub,
                "headers": [(b"x-ws-scope", ("%s %s %s" % (scope["scheme"], scope["path"],
                                                          scope["query_string"].decode())).encode())]})
    if path == "/server-close":
        await send({"type": "websocket.send", "text": "bye"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done here"})
        return
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            record("disconnect:%d" % m["code"])
            return
        if m.get("text") is not None:
            await send({"type": "websocket.send", "text": m["text"]})
        else:
            await send({"type": "websocket.send", "bytes": m["bytes"]})


def make_starlette():
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def chat(ws: WebSocket):
        await ws.accept()
        name = ws.path_params["name"]
        try:
            while True:
                data = await ws.receive_json()
                await ws.send_json({"to": name, "echo": data})
        except WebSocketDisconnect as exc:
            record("starlette disconnect:%d" % exc.code)

    return Starlette(routes=[WebSocketRoute("/chat/{name}", chat)])


try:
    starlette_app = make_starlette()
except ImportError:  # the raw app does not need it
    starlette_app = None
