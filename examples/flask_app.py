"""A small Flask app.  Run:  cunicorn flask_app:app"""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask!"


@app.get("/json")
def as_json():
    return jsonify(server="cunicorn", items=[1, 2, 3], args=request.args.to_dict())


@app.post("/form")
def form():
    return jsonify(received=request.form.to_dict())


@app.get("/hello/<name>")
def hello(name):
    return f"Hello, {name}!"
