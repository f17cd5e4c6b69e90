"""A FastAPI app for the asgi worker's framework tests."""
import asyncio
import hashlib
import os
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, Depends, FastAPI, File, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

RECORD = os.environ.get("ASGI_RECORD")


def record(line):
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(line + "\n")


@asynccontextmanager
async def lifespan(app):
    record("fastapi startup")
    yield {"db": "connected"}
    record("fastapi shutdown")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def common(q: str | None = None, limit: int = 10):
    return {"q": q, "limit": limit}


@app.get("/")
async def root():
    return {"message": "Hello World"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, params: dict = Depends(common)):
    return {"item_id": item_id, **params}


@app.post("/items")
async def create_item(item: Item, request: Request):
    return {"item": item.model_dump(), "db": request.state.db}


@app.get("/sync")
def sync_endpoint():
    return {"sync": True}


@app.get("/stream")
async def stream(n: int = 5):
    async def gen():
        for i in range(n):
            yield b"part %d\n" % i
            await asyncio.sleep(0.01)
    return StreamingResponse(gen(), media_type="text/plain")


@app.post("/upload")
async def upload(file: UploadFile = File(...)):
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    return {"filename": file.filename, "size": n, "sha256": h.hexdigest()}


def write_note(text):
    record("background:" + text)


@app.post("/notify")
async def notify(background: BackgroundTasks, text: str = "hi"):
    background.add_task(write_note, text)
    return {"queued": text}
