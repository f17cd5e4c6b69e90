"""Dirty arbiters example: a "model" loaded once per dirty worker, called from a WSGI app.

    ./build/cunicorn --chdir examples --pythonpath python -w 2 \
        --dirty-workers 2 --dirty-app dirty_app:SentimentModel dirty_app:app
    curl 'http://127.0.0.1:8000/predict?text=what+a+great+day'
    curl 'http://127.0.0.1:8000/stream?text=hello+dirty+world'

The same file runs under gunicorn 25+ (swap the import for gunicorn.dirty)."""
import json
import os
import time
from urllib.parse import parse_qs

try:
    from cunicorn.dirty import DirtyApp, get_dirty_client, stash
except ImportError:  # gunicorn installed as a library instead
    from gunicorn.dirty import DirtyApp, get_dirty_client, stash

MODEL = "dirty_app:SentimentModel"


class SentimentModel(DirtyApp):
    """Stands for an expensive model: loaded in init(), once per dirty worker."""

    def init(self):
        time.sleep(0.2)  # "loading weights"
        self.words = {"great": 1, "good": 1, "love": 1, "bad": -1, "awful": -1, "hate": -1}
        self.served = 0

    def predict(self, text):
        self.served += 1
        score = sum(self.words.get(w, 0) for w in text.lower().split())
        stash.put("stats", "last_text", text)  # shared state every worker can read
        return {"score": score, "served_by": os.getpid(), "served": self.served}

    def tokens(self, text):
        for word in text.split():  # a generator streams: CHUNK per word, then END
            yield word


def app(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    client = get_dirty_client()
    text = q.get("text", "")
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (t.encode() + b"\n" for t in client.stream(MODEL, "tokens", text))
    result = client.execute(MODEL, "predict", text)
    result["last_text"] = stash.get("stats", "last_text")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(result).encode() + b"\n"]
