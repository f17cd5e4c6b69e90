"""ASGI apps whose lifespan fails in different ways ($LIFESPAN_CASE), for the asgi worker."""
import os

CASE = os.environ.get("LIFESPAN_CASE", "ok")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        m = await receive()
        assert m["type"] == "lifespan.startup"
        if CASE == "failed":
            await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
            return
        if CASE == "raise":
            raise RuntimeError("startup exploded")
        if CASE == "unsupported":
            raise ValueError("this app only speaks http")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})
