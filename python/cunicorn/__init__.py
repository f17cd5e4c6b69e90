"""cunicorn: the Python side of the server (APIs that apps use live in submodules:
cunicorn.dirty is the dirty-arbiter client)."""
