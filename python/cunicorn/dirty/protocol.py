"""gunicorn's dirty wire protocol: a 16-byte header (magic "GD", version 1, message type,
payload length u32 BE, request id u64 BE) and a TLV payload. Written for cunicorn; the C
side is src/dirty/proto.c."""
import struct

from .errors import DirtyProtocolError

MAGIC = b"GD"
VERSION = 1
HEADER = struct.Struct(">2sBBIQ")
HEADER_SIZE = HEADER.size
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_ITEMS = 1024 * 1024

REQUEST, RESPONSE, ERROR, CHUNK, END = 0x01, 0x02, 0x03, 0x04, 0x05
STASH, STATUS, MANAGE = 0x10, 0x11, 0x12
TYPES = {REQUEST, RESPONSE, ERROR, CHUNK, END, STASH, STATUS, MANAGE}

(STASH_OP_PUT, STASH_OP_GET, STASH_OP_DELETE, STASH_OP_KEYS, STASH_OP_CLEAR, STASH_OP_INFO,
 STASH_OP_ENSURE, STASH_OP_DELETE_TABLE, STASH_OP_TABLES, STASH_OP_EXISTS) = range(1, 11)
MANAGE_OP_ADD, MANAGE_OP_REMOVE = 1, 2

_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_U32 = struct.Struct(">I")


def _enc(v, out):
    if v is None:
        out.append(b"\x00")
    elif v is True or v is False:
        out.append(b"\x01\x01" if v else b"\x01\x00")
    elif isinstance(v, int):
        out.append(b"\x05" + _I64.pack(v))
    elif isinstance(v, float):
        out.append(b"\x06" + _F64.pack(v))
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        out.append(b"\x10" + _U32.pack(len(b)))
        out.append(b)
    elif isinstance(v, str):
        b = v.encode("utf-8")
        out.append(b"\x11" + _U32.pack(len(b)))
        out.append(b)
    elif isinstance(v, (list, tuple)):
        out.append(b"\x20" + _U32.pack(len(v)))
        for x in v:
            _enc(x, out)
    elif isinstance(v, dict):
        out.append(b"\x21" + _U32.pack(len(v)))
        for k, x in v.items():
            _enc(k if isinstance(k, str) else str(k), out)
            _enc(x, out)
    else:
        raise DirtyProtocolError("Unsupported type for TLV encoding: %s" % type(v).__name__)


def encode_value(v):
    out = []
    _enc(v, out)
    return b"".join(out)


def _dec(data, off):
    if off >= len(data):
        raise DirtyProtocolError("Truncated TLV data")
    t = data[off]
    off += 1
    if t == 0x00:
        return None, off
    if t == 0x01:
        if off >= len(data):
            raise DirtyProtocolError("Truncated TLV data: missing bool value")
        return data[off] != 0, off + 1
    if t in (0x05, 0x06):
        if off + 8 > len(data):
            raise DirtyProtocolError("Truncated TLV data: incomplete number")
        s = _I64 if t == 0x05 else _F64
        return s.unpack_from(data, off)[0], off + 8
    if off + 4 > len(data):
        raise DirtyProtocolError("Truncated TLV data: incomplete length")
    n = _U32.unpack_from(data, off)[0]
    off += 4
    if t in (0x10, 0x11):
        if n > MAX_MESSAGE_SIZE or off + n > len(data):
            raise DirtyProtocolError("Truncated TLV data")
        raw = bytes(data[off:off + n])
        if t == 0x11:
            try:
                return raw.decode("utf-8"), off + n
            except UnicodeDecodeError as e:
                raise DirtyProtocolError("Invalid UTF-8 in string: %s" % e)
        return raw, off + n
    if t in (0x20, 0x21):
        if n > MAX_ITEMS:
            raise DirtyProtocolError("Container too large: %d items" % n)
        if t == 0x20:
            items = []
            for _ in range(n):
                x, off = _dec(data, off)
                items.append(x)
            return items, off
        d = {}
        for _ in range(n):
            k, off = _dec(data, off)
            if not isinstance(k, str):
                raise DirtyProtocolError("Dict key must be string")
            d[k], off = _dec(data, off)
        return d, off
    raise DirtyProtocolError("Unknown TLV type code: 0x%02x" % t)


def decode_value(data):
    v, off = _dec(data, 0)
    if off != len(data):
        raise DirtyProtocolError("Trailing data after TLV: %d bytes" % (len(data) - off))
    return v


def encode(msg_type, request_id, payload=None):
    body = b"" if payload is None else encode_value(payload)
    if len(body) > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError("Message too large: %d bytes" % len(body))
    return HEADER.pack(MAGIC, VERSION, msg_type, len(body), request_id) + body


def decode_header(data):
    magic, version, msg_type, length, request_id = HEADER.unpack(data)
    if magic != MAGIC:
        raise DirtyProtocolError("Invalid magic: %r" % magic)
    if version != VERSION:
        raise DirtyProtocolError("Unsupported protocol version: %d" % version)
    if msg_type not in TYPES:
        raise DirtyProtocolError("Unknown message type: 0x%02x" % msg_type)
    if length > MAX_MESSAGE_SIZE:
        raise DirtyProtocolError("Message too large: %d bytes" % length)
    return msg_type, request_id, length


def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise DirtyProtocolError("Connection closed")
        buf += chunk
    return bytes(buf)


def read_message(sock):
    """(type, request id, payload) from a blocking socket."""
    msg_type, rid, length = decode_header(recv_exactly(sock, HEADER_SIZE))
    payload = decode_value(recv_exactly(sock, length)) if length else {}
    return msg_type, rid, payload


async def read_message_async(reader):
    msg_type, rid, length = decode_header(await reader.readexactly(HEADER_SIZE))
    payload = decode_value(await reader.readexactly(length)) if length else {}
    return msg_type, rid, payload
