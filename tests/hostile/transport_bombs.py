# Hostile: four functions write a forged result straight into the result pipe and
# leave: a header announcing 1 GiB, an unknown dtype, an absurd byte count, and a
# flood of bytes.  Against a zip-of-.npy transport the same four are: a .npy header
# length of 1 GiB (deflated), an encrypted member, an unknown compression method
# and a central directory of 300 000 entries.
import json
import os
import struct
import sys
import zipfile
import zlib

GIB = 2**30


def _result_fd():
    # The harness was started as `harness.py CASE_DIR` (framed results) or `harness.py case.json` (zip).
    where = sys.argv[1]
    kind = "frame" if os.path.isdir(where) else "zip"
    with open(os.path.join(where, "case.json") if kind == "frame" else where) as handle:
        return json.load(handle)["result_fd"], kind


def _send(data):
    fd, _ = _result_fd()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass
    os._exit(0)


def _frame(name, dtype, shape, nbytes, data=b""):
    raw = name.encode()
    return (b"NFA1A" + struct.pack("<H", len(raw)) + raw + struct.pack("<B", len(dtype)) + dtype.encode()
            + struct.pack("<B", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape)
            + struct.pack("<Q", nbytes) + data)


def _zip_member(name, payload, flag_bits=0, method=zipfile.ZIP_STORED):
    header = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flag_bits, method, 0, 0,
                         zlib.crc32(payload), len(payload), len(payload), len(name), 0)
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, flag_bits, method, 0, 0,
                          zlib.crc32(payload), len(payload), len(payload), len(name), 0, 0, 0, 0, 0, 0)
    return header + name.encode() + payload, central + name.encode()


def _zip(members, count=None):
    body, directory, offset = b"", b"", 0
    for name, payload, flags, method in members:
        local, central = _zip_member(name, payload, flags, method)
        directory += central[:42] + struct.pack("<L", offset) + central[46:]
        body += local
        offset += len(local)
    count = count or len(members)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def standard_normal_log_prob(z):
    fd, kind = _result_fd()
    if kind == "frame":
        _send(_frame("log_prob", "<f8", (GIB // 8,), GIB))
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    chunks = [b"\x93NUMPY\x02\x00" + struct.pack("<I", GIB)]
    block = b" " * (16 * 2**20)
    chunks += [deflate.compress(block) for _ in range(GIB // len(block))] + [deflate.flush()]
    payload = b"".join(chunks)
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 0, 0, len(payload), GIB + 12, 12, 0)
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 0, 0, len(payload),
                          GIB + 12, 12, 0, 0, 0, 0, 0, 0)
    record = local + b"log_prob.npy" + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + 12, len(record), 0)
    _send(record + central + b"log_prob.npy" + end)


def affine_log_prob(x, A, b):
    fd, kind = _result_fd()
    if kind == "frame":
        _send(_frame("log_prob", "|O8", (x.shape[0],), 8 * x.shape[0], b"\0" * 8 * x.shape[0]) + b"END!")
    _send(_zip([("log_prob.npy", b"\0" * 64, 0x1, zipfile.ZIP_STORED)]))


def elementwise_log_det(x, a):
    fd, kind = _result_fd()
    if kind == "frame":
        _send(_frame("log_det", "<f8", (x.shape[0],), 2**62))
    _send(_zip([("log_det.npy", b"\0" * 64, 0, 99)]))


def triangular_log_prob(x, a, c, alpha, beta):
    fd, kind = _result_fd()
    if kind == "frame":
        _send(b"NFA1" + b"\xff" * (64 * 2**20))
    members = [(f"{index}.npy", b"", 0, zipfile.ZIP_STORED) for index in range(300_000)]
    _send(_zip(members))
