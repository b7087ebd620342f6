"""The framed transport: everything is checked against the expected result before any allocation."""
from __future__ import annotations

import struct
import tracemalloc

import numpy as np
import pytest

from nflows_np.grading import framing

EXPECTED = {"out": ("<f8", (5,)), "grad": ("<f8", (2, 3))}


def _arrays():
    return {"out": np.arange(5.0), "grad": np.ones((2, 3))}


def _header(name: str, dtype: str, shape: tuple, nbytes: int) -> bytes:
    raw = name.encode()
    return (b"A" + struct.pack("<H", len(raw)) + raw + struct.pack("<B", len(dtype)) + dtype.encode()
            + struct.pack("<B", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<Q", nbytes))


def test_round_trip_of_arrays_and_of_an_error_message():
    decoded = framing.decode(framing.encode(_arrays()), EXPECTED)
    assert decoded["out"].tolist() == list(range(5)) and decoded["grad"].shape == (2, 3)
    with pytest.raises(framing.ChildError, match="boom"):
        framing.decode(framing.encode({}, "boom"), EXPECTED)
    inputs = {"seed": np.array(3), "x": np.zeros((4, 2)), "mask": np.array([True, False])}
    assert framing.decode(framing.encode(inputs))["seed"] == 3


def test_a_header_announcing_a_gibibyte_is_refused_before_any_allocation():
    forged = b"NFA1" + _header("out", "<f8", (2**27,), 2**30)
    tracemalloc.start()
    with pytest.raises(framing.FrameError, match=r"shape \(134217728,\); expected shape \(5,\)"):
        framing.decode(forged, EXPECTED)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2**20  # a vulnerable reader would need 1 GiB here


@pytest.mark.parametrize("data, words", [
    (b"PK\x03\x04 a zip", "frame header"),
    (b"NFA1" + _header("out", "|O8", (5,), 40) + b"\0" * 40 + b"END!", "dtype"),
    (b"NFA1" + _header("out", "<f8", (5,), 2**62), "announces"),
    (b"NFA1" + _header("out", "<f8", (5,), 40) + b"\0" * 8, "ends inside the data"),
    (b"NFA1" + _header("evil", "<f8", (5,), 40), "unexpected result"),
    (framing.encode(_arrays())[:-4] + _header("out", "<f8", (5,), 40) + b"\0" * 40 + b"END!", "sent twice"),
    (framing.encode(_arrays()) + b"x", "after the end mark"),
    (framing.encode({"out": np.arange(5.0)}), "no result named 'grad'"),
    (b"NFA1Z", "unknown record type"),
    (b"NFA1M" + struct.pack("<I", 2**31), "error message of"),
    (b"NFA1" + b"\xff" * 100, "unknown record type"),
    (b"NFA1" + _header("out", "<f8", (1,) * 200, 8), "dimensions"),
])
def test_malformed_frames_are_one_line_errors(data, words):
    with pytest.raises(framing.FrameError, match=words) as info:
        framing.decode(data, EXPECTED)
    assert "\n" not in str(info.value)


def test_frame_limit_is_the_size_of_the_largest_well_formed_result():
    limit = framing.frame_limit(EXPECTED)
    assert len(framing.encode(_arrays())) <= limit
    assert len(framing.encode({}, "x" * 10**6)) <= limit  # error messages are cut to fit
    assert limit < 64 * 2**10 + 8 * 11


def test_zero_dimensional_arrays_keep_their_shape():
    decoded = framing.decode(framing.encode({"b": np.array(1.5), "v": np.arange(3)}))
    assert decoded["b"].shape == () and float(decoded["b"]) == 1.5 and decoded["v"].shape == (3,)
