"""A plain framed format for arrays, parsed by hand (standard library and numpy only).

Used both ways: the grader sends a case's inputs to the child in it, and the
child sends its results back in it.  The harness loads this file by path
inside the sandbox, so it imports nothing of ``nflows_np``.

Layout (little-endian)::

    b"NFA1"
    records:  b"A" name_len:u16 name:utf-8 dtype_len:u8 dtype:ascii ndim:u8 shape:u64*ndim
              nbytes:u64 data          an array (C order)
              b"M" nbytes:u32 utf-8    an error message (the submission raised)
    b"END!"

:func:`decode` checks every field against what the reader expects -- the
names, the dtype, the exact shape and the byte count -- *before* it allocates
anything, so a forged header cannot make the reader allocate more than the
expected result; anything malformed raises :class:`FrameError` with one line.
"""
import struct

import numpy as np

MAGIC, END = b"NFA1", b"END!"
MAX_ERROR_BYTES = 16 * 2**10
MAX_NDIM = 8
DTYPES = ("<f8", "<i8", "<i4", "|u1", "|b1")  # what may cross: float64 results, numeric inputs


class FrameError(ValueError):
    """Bytes that are not a well-formed frame of the expected arrays."""


class ChildError(Exception):
    """The frame carried an error message (the submission raised); the message is the text."""


def encode(arrays, error=None):
    """Frame ``arrays`` (``{name: ndarray}``) or one ``error`` message as bytes."""
    parts = [MAGIC]
    if error is not None:
        message = error.encode("utf-8", "replace")[:MAX_ERROR_BYTES]
        parts += [b"M", struct.pack("<I", len(message)), message]
    for name, array in arrays.items():
        array = np.asarray(array).copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        # Any real numeric array crosses as one of DTYPES: floats as float64, integers as int64.
        widened = {"f": "<f8", "i": "<i8", "u": "<i8" if array.dtype.itemsize > 1 else "|u1", "b": "|b1"}
        dtype = widened.get(array.dtype.kind, array.dtype.str)
        if dtype not in DTYPES or array.ndim > MAX_NDIM:
            raise FrameError(f"{name!r}: cannot send dtype {array.dtype} with {array.ndim} dimensions")
        data = array.astype(dtype, copy=False).tobytes()
        raw_name, raw_dtype = name.encode("utf-8"), dtype.encode("ascii")
        parts += [b"A", struct.pack("<H", len(raw_name)), raw_name, struct.pack("<B", len(raw_dtype)),
                  raw_dtype, struct.pack("<B", array.ndim), struct.pack(f"<{array.ndim}Q", *array.shape),
                  struct.pack("<Q", len(data)), data]
    parts.append(END)
    return b"".join(parts)


class _Reader:
    def __init__(self, data):
        self.data, self.at = memoryview(data), 0

    def take(self, count, what):
        if count > len(self.data) - self.at:
            raise FrameError(f"the frame ends inside {what}")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _array(reader, expected):
    (name_len,) = reader.unpack("<H", "a name length")
    name = bytes(reader.take(name_len, "a name")).decode("utf-8", "replace")
    label = repr(name)[:80]
    (dtype_len,) = reader.unpack("<B", f"the dtype of {label}")
    dtype = bytes(reader.take(dtype_len, f"the dtype of {label}")).decode("ascii", "replace")
    (ndim,) = reader.unpack("<B", f"the shape of {label}")
    if ndim > MAX_NDIM:
        raise FrameError(f"result {label} has {ndim} dimensions")
    shape = reader.unpack(f"<{ndim}Q", f"the shape of {label}")
    (nbytes,) = reader.unpack("<Q", f"the size of {label}")
    if expected is not None:
        if name not in expected:
            raise FrameError(f"unexpected result {label} (expected {', '.join(sorted(expected))})")
        want_dtype, want_shape = expected[name]
        if dtype != want_dtype:
            raise FrameError(f"result {label} has dtype {dtype[:16]!r}; expected {want_dtype}")
        if tuple(shape) != tuple(want_shape):
            raise FrameError(f"result {label} has shape {tuple(shape)}; expected shape {tuple(want_shape)}")
    elif dtype not in DTYPES:
        raise FrameError(f"array {label} has dtype {dtype[:16]!r}")
    itemsize = np.dtype(dtype).itemsize
    if nbytes != itemsize * int(np.prod(shape, dtype=np.float64)):
        raise FrameError(f"result {label} announces {nbytes} bytes for shape {tuple(shape)}")
    data = reader.take(nbytes, f"the data of {label}")
    return name, np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def decode(data, expected=None):
    """Parse a frame; return ``{name: ndarray}``.

    Parameters
    ----------
    data : bytes
    expected : dict or None
        ``{name: (dtype str, shape)}``: exactly these arrays must come, with
        this dtype and shape; ``None`` accepts any arrays of :data:`DTYPES`
        (the harness reading the grader's own inputs).

    Raises
    ------
    ChildError
        The frame is an error message.
    FrameError
        Anything else that is not exactly the expected frame.
    """
    reader = _Reader(data)
    if bytes(reader.take(len(MAGIC), "the header")) != MAGIC:
        raise FrameError("the result does not start with the frame header")
    arrays = {}
    while True:
        kind = bytes(reader.take(1, "a record"))
        if kind == END[:1]:
            if bytes(reader.take(len(END) - 1, "the end mark")) != END[1:]:
                raise FrameError("a broken end mark")
            break
        if kind == b"M":
            (length,) = reader.unpack("<I", "an error message")
            if length > MAX_ERROR_BYTES:
                raise FrameError(f"an error message of {length} bytes")
            raise ChildError(bytes(reader.take(length, "an error message")).decode("utf-8", "replace"))
        if kind != b"A":
            raise FrameError(f"unknown record type {kind!r}")
        name, array = _array(reader, expected)
        if name in arrays:
            raise FrameError(f"result {name!r} sent twice")
        arrays[name] = array
    if reader.at != len(reader.data):
        raise FrameError(f"{len(reader.data) - reader.at} bytes after the end mark")
    missing = sorted(set(expected or ()) - set(arrays))
    if missing:
        raise FrameError(f"no result named {missing[0]!r} was sent back")
    return arrays


def frame_limit(expected):
    """The largest well-formed frame of ``expected`` (``{name: (dtype, shape)}``), in bytes."""
    total = len(MAGIC) + len(END) + 5 + MAX_ERROR_BYTES
    for name, (dtype, shape) in expected.items():
        total += 13 + len(name.encode("utf-8")) + len(dtype) + 8 * len(shape)
        total += np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))
    return total
