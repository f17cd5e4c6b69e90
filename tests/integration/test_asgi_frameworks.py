"""The asgi worker with real frameworks and clients: FastAPI (JSON, params, dependency
injection, background tasks, StreamingResponse, a 20 MB UploadFile, lifespan state) and
Django's ASGI handler (async view) and Quart (routes, before_serving, a WebSocket), through
httpx and websockets."""
import hashlib
import os

import pytest

import server as srv

httpx = pytest.importorskip("httpx")


records = srv.read_lines


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fa") / "rec")


@pytest.fixture(scope="module")
def fastapi_server(rec):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    s = srv.Server("fastapi_app:app", ["-k", "uvicorn.workers.UvicornWorker"],
                   env={"ASGI_RECORD": rec})
    s.start()
    yield s
    s.close()


def test_fastapi_json(fastapi_server):
    r = httpx.get(fastapi_server.url + "/", timeout=10)
    assert r.status_code == 200 and r.json() == {"message": "Hello World"}
    assert r.headers["content-type"] == "application/json"


def test_fastapi_path_query_and_dependency(fastapi_server):
    r = httpx.get(fastapi_server.url + "/items/42?q=abc&limit=3", timeout=10)
    assert r.json() == {"item_id": 42, "q": "abc", "limit": 3}
    r = httpx.get(fastapi_server.url + "/items/notanint", timeout=10)
    assert r.status_code == 422


def test_fastapi_body_model_and_lifespan_state(fastapi_server):
    r = httpx.post(fastapi_server.url + "/items", json={"name": "pen", "price": 1.5,
                                                        "tags": ["a"]}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"item": {"name": "pen", "price": 1.5, "tags": ["a"]}, "db": "connected"}
    r = httpx.post(fastapi_server.url + "/items", json={"name": "pen"}, timeout=10)
    assert r.status_code == 422


def test_fastapi_sync_endpoint_in_threadpool(fastapi_server):
    with httpx.Client(timeout=10) as c:  # keep-alive across requests
        for _ in range(3):
            assert c.get(fastapi_server.url + "/sync").json() == {"sync": True}


def test_fastapi_streaming_response(fastapi_server):
    with httpx.stream("GET", fastapi_server.url + "/stream?n=8", timeout=10) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        got = b"".join(r.iter_bytes())
    assert got == b"".join(b"part %d\n" % i for i in range(8))


def test_fastapi_upload_20mb(fastapi_server):
    data = os.urandom(20 * 1024 * 1024)
    r = httpx.post(fastapi_server.url + "/upload", files={"file": ("big.bin", data)},
                   timeout=60)
    assert r.status_code == 200
    assert r.json() == {"filename": "big.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()}


def test_fastapi_background_task(fastapi_server, rec):
    r = httpx.post(fastapi_server.url + "/notify?text=done", timeout=10)
    assert r.json() == {"queued": "done"}
    assert srv.wait_until(lambda: "background:done" in records(rec), 5)


def test_fastapi_concurrent_clients(fastapi_server):
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda i: httpx.get(fastapi_server.url + "/items/%d" % i,
                                               timeout=10).json()["item_id"], range(40)))
    assert outs == list(range(40))


def test_fastapi_lifespan_runs_per_worker(make_server, tmp_path):
    pytest.importorskip("fastapi")
    r = str(tmp_path / "rec")
    s = make_server("fastapi_app:app", ["-k", "asgi"], env={"ASGI_RECORD": r}, workers=2)
    assert httpx.get(s.url + "/", timeout=10).status_code == 200
    assert s.stop() == 0
    got = records(r)
    assert got.count("fastapi startup") == 2 and got.count("fastapi shutdown") == 2


@pytest.fixture(scope="module")
def django_asgi():
    pytest.importorskip("django")
    d = os.path.join(srv.EXAMPLES, "djangoapp")
    s = srv.Server("djangoapp.asgi", ["-k", "asgi"], cwd=d, pythonpath=d)
    s.start()
    yield s
    s.close()


def test_django_asgi_async_view(django_asgi):
    r = httpx.post(django_asgi.url + "/async/?a=1", content=b"payload", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"async": True, "method": "POST", "path": "/async/",
                        "query": {"a": "1"}, "body": "payload"}


def test_django_asgi_sync_view(django_asgi):
    r = httpx.get(django_asgi.url + "/", timeout=10)
    assert r.status_code == 200 and r.text == "Hello from Django!"
    assert httpx.get(django_asgi.url + "/missing/", timeout=10).status_code == 404


@pytest.fixture(scope="module")
def quart_server():
    pytest.importorskip("quart")
    s = srv.Server("quart_app:app", ["-k", "asgi"])
    s.start()
    yield s
    s.close()


def test_quart_routes_and_lifespan(quart_server):
    r = httpx.get(quart_server.url + "/", timeout=10)
    assert r.status_code == 200 and r.text == "Hello from Quart!"
    r = httpx.get(quart_server.url + "/json/7?q=x", timeout=10)
    assert r.json() == {"n": 7, "q": "x", "started": True}  # before_serving ran (lifespan)
    r = httpx.post(quart_server.url + "/post", json={"a": [1, 2]}, timeout=10)
    assert r.json() == {"got": {"a": [1, 2]}}


def test_quart_websocket(quart_server):
    websockets = pytest.importorskip("websockets")
    import asyncio

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws" % quart_server.port) as ws:
            await ws.send("hi")
            assert await ws.recv() == "quart:hi"
    asyncio.run(asyncio.wait_for(go(), 20))
