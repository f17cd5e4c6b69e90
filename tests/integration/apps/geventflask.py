"""A Flask app that calls another service with requests (run under -k gevent)."""
import os

import requests
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/call")
def call():
    r = requests.get(request.args["url"], timeout=30)
    return jsonify(pid=os.getpid(), got=r.text, status=r.status_code)
