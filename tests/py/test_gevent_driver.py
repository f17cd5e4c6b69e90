"""_gevent.version_ok: gevent's version floor (24.10.1) ordered as gunicorn 27 orders it
(packaging.version, run in the same test)."""
import pytest

import _gevent

packaging_version = pytest.importorskip("packaging.version")


@pytest.mark.parametrize("v", ["24.10.1", "24.10.2", "24.11.0", "25.0", "26.9.0", "24.10.0",
                               "24.2.1", "23.9.1", "20.0.0", "24.10.1rc1", "24.10.1.dev0",
                               "24.10.2a1", "25.5.1"])
def test_version_floor_like_gunicorn(v):
    want = packaging_version.parse(v) >= packaging_version.parse("24.10.1")
    assert _gevent.version_ok(v) is want
