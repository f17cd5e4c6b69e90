#!/usr/bin/env python3
"""Write libFuzzer seed corpora from the conformance vectors (and, for the whole-connection
target, the smuggling and limits cases of tests/integration):
tests/fuzz/corpus/{fuzz_h1,fuzz_chunked,fuzz_proxy,fuzz_conn,fuzz_tls}/. The first byte of each seed
is the target's option byte (see each fuzz_*.c)."""
import base64
import glob
import hashlib
import importlib.util
import json
import os
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "conformance", "http1")
here = os.path.dirname(os.path.abspath(__file__))


def put(target, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    v = json.load(open(path))
    raw = base64.b64decode(v["raw"])
    cfg = v.get("cfg", {})
    flags = 0
    if cfg.get("permit_obsolete_folding"):
        flags |= 0x10
    if cfg.get("strip_header_spaces"):
        flags |= 0x20
    if cfg.get("permit_unconventional_http_method"):
        flags |= 0x40
    if cfg.get("header_map") == "refuse":
        flags |= 0x04
    if cfg.get("header_map") == "dangerous":
        flags |= 0x08
    if cfg.get("proxy_protocol"):
        put("fuzz_proxy", b"\x03" + raw)
        if raw.startswith(b"PROXY "):
            raw = raw[raw.find(b"\r\n") + 2:]
        elif raw.startswith(b"\r\n\r\n\x00\r\nQUIT\n"):
            raw = raw[16 + int.from_bytes(raw[14:16], "big"):]
    put("fuzz_h1", bytes([flags]) + raw)
    head_end = raw.find(b"\r\n\r\n")
    if b"chunked" in raw.lower() and head_end >= 0:
        body = raw[head_end + 4:]
        for split in (0, 3, 7):
            put("fuzz_chunked", bytes([split]) + body)


def put_conn(flags, raw):
    """fuzz_conn: option byte, split mode byte, split lengths, then the client's bytes."""
    put("fuzz_conn", bytes([flags, 0]) + raw)
    put("fuzz_conn", bytes([flags, 3, 1, 5, 17]) + raw)
    if len(raw) <= 400:
        put("fuzz_conn", bytes([flags, 0x80]) + raw)


for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    v = json.load(open(path))
    raw = base64.b64decode(v["raw"])
    cfg = v.get("cfg", {})
    if set(cfg) - {"proxy_protocol", "permit_obsolete_folding", "header_map",
                   "strip_header_spaces"}:
        continue  # limits the target does not vary
    flags = 0
    if cfg.get("proxy_protocol"):
        flags |= 0x01
    if cfg.get("permit_obsolete_folding"):
        flags |= 0x02
    if cfg.get("header_map") == "refuse":
        flags |= 0x04
    if cfg.get("header_map") == "dangerous":
        flags |= 0x08
    if cfg.get("strip_header_spaces"):
        flags |= 0x10
    put_conn(flags, raw)

# The smuggling suite's requests (one connection each).
smug = os.path.join(here, "..", "integration", "test_smuggling.py")
if os.path.exists(smug):
    sys.path.insert(0, os.path.dirname(smug))
    spec = importlib.util.spec_from_file_location("test_smuggling", smug)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for case in mod.CASES:
        put_conn(0x02 if case.fold else 0, case.raw)


# fuzz_tls: real ClientHellos (TLS 1.3 and 1.2-only clients, with and without ALPN), first
# byte the client-certificate mode (0, 1, 2). Hellos carry random bytes: each run adds new
# seed files beside the old ones.
def client_hello(max_version=None, alpn=None):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if max_version:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    out = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


try:
    import ssl
    for mode in range(3):
        put("fuzz_tls", bytes([mode]) + client_hello())
        put("fuzz_tls", bytes([mode]) + client_hello(ssl.TLSVersion.TLSv1_2))
    put("fuzz_tls", b"\x00" + client_hello(alpn=["h2", "http/1.1"]))
except ImportError:
    pass
