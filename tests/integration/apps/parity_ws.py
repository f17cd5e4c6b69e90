"""WebSocket apps that take the connection over through environ['gunicorn.socket']:
Flask-Sock (simple-websocket) and python-socketio in threading mode."""
import flask
import socketio
from flask_sock import Sock

app = flask.Flask(__name__)
sock = Sock(app)


@sock.route("/echo")
def echo(ws):
    while True:
        msg = ws.receive()
        if msg == "bye":
            break
        ws.send("echo:" + msg)


@app.route("/plain")
def plain():
    return "plain"


sio = socketio.Server(async_mode="threading")


@sio.event
def ping(sid, data):
    sio.emit("pong", {"got": data}, to=sid)


sio_app = socketio.WSGIApp(sio, app)
