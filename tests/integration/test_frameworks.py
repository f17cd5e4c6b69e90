"""Real frameworks end to end: Flask and Django from examples/."""
import os

import pytest
import requests

import server as srv


@pytest.fixture(scope="module")
def flask_server():
    pytest.importorskip("flask")
    s = srv.Server("flask_app:app", cwd=srv.EXAMPLES, pythonpath=srv.EXAMPLES)
    s.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def django_server():
    pytest.importorskip("django")
    d = os.path.join(srv.EXAMPLES, "djangoapp")
    s = srv.Server("djangoapp.wsgi", cwd=d, pythonpath=d)
    s.start()
    yield s
    s.close()


def test_flask_index(flask_server):
    r = requests.get(flask_server.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.text == "Hello from Flask!"


def test_flask_json(flask_server):
    r = requests.get(flask_server.url + "/json?k=v", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"server": "cunicorn", "items": [1, 2, 3], "args": {"k": "v"}}


def test_flask_form_post(flask_server):
    r = requests.post(flask_server.url + "/form", data={"name": "Zoë", "n": "3"}, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"received": {"name": "Zoë", "n": "3"}}


def test_flask_path_param_and_404(flask_server):
    assert requests.get(flask_server.url + "/hello/bob", timeout=5).text == "Hello, bob!"
    assert requests.get(flask_server.url + "/missing", timeout=5).status_code == 404
    assert requests.post(flask_server.url + "/json", timeout=5).status_code == 405


def test_flask_keepalive_session(flask_server):
    with requests.Session() as sess:
        for i in range(5):
            r = sess.get(flask_server.url + "/hello/%d" % i, timeout=5)
            assert r.text == "Hello, %d!" % i


def test_django_index(django_server):
    r = requests.get(django_server.url + "/", timeout=5)
    assert r.status_code == 200
    assert r.text == "Hello from Django!"


def test_django_view_json(django_server):
    r = requests.get(django_server.url + "/info/?a=1", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"method": "GET", "path": "/info/", "query": {"a": "1"}}


def test_django_404_and_disallowed_host(django_server):
    assert requests.get(django_server.url + "/nope/", timeout=5).status_code == 404
    r = django_server.request("GET", "/", headers=[("Host", "evil.example")])
    assert r.status == 400
