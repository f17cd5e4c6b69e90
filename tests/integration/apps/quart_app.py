"""A Quart app for the asgi worker (Flask's API on ASGI): JSON, path params, a POST body,
lifespan hooks (before_serving) and a WebSocket route."""
from quart import Quart, jsonify, request, websocket

app = Quart(__name__)
state = {"served": False}


@app.before_serving
async def startup():
    state["served"] = True


@app.route("/")
async def index():
    return "Hello from Quart!"


@app.route("/json/<int:n>")
async def as_json(n):
    return jsonify({"n": n, "q": request.args.get("q"), "started": state["served"]})


@app.route("/post", methods=["POST"])
async def post():
    data = await request.get_json()
    return jsonify({"got": data})


@app.websocket("/ws")
async def ws():
    while True:
        msg = await websocket.receive()
        await websocket.send("quart:" + msg)
