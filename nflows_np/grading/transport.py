"""Arrays in and out of the child: ``.npz`` only, never pickles.

The result comes back as bytes from a pipe.  It is decoded defensively: the
zip member's ``.npy`` header is read first, and the array is read only if its
dtype is numeric and its shape is exactly the expected one -- so a forged
header cannot make the grader allocate memory, and an object cannot fake
equality (the grader only ever compares float64 arrays it built itself).
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np

MAX_ERROR_BYTES = 64 * 2**10


class ResultError(Exception):
    """The child's result is unusable (missing, wrong shape or dtype, corrupt)."""


class StudentError(Exception):
    """The child reported an exception raised by the submission (message inside)."""


def write_inputs(path: str, inputs: Mapping[str, np.ndarray]) -> None:
    """Save the case inputs as an uncompressed ``.npz`` (plain numeric arrays only)."""
    arrays = {}
    for name, value in inputs.items():
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"case input {name!r} must be a numeric array, got {array.dtype}")
        arrays[name] = array
    np.savez(path, **arrays)


def _read_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    return tuple(int(n) for n in shape), np.dtype(dtype)


def _read_checked(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str,
                  shape: tuple[int, ...] | None, max_elements: int) -> np.ndarray:
    try:
        got_shape, dtype = _read_header(archive, member)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ResultError(f"result {name!r} is not a valid .npy array: {exc}") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ResultError(f"result {name!r} has dtype {dtype}; expected real numbers")
    if shape is not None and got_shape != tuple(shape):
        raise ResultError(f"result {name!r} has shape {got_shape}; expected shape {tuple(shape)}")
    if int(np.prod(got_shape, dtype=np.int64)) > max_elements:
        raise ResultError(f"result {name!r} is too large ({got_shape})")
    try:
        with archive.open(member) as handle:
            array = np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ResultError(f"result {name!r} could not be read: {exc}") from None
    return np.array(array, dtype=np.float64).reshape(got_shape)


def read_result(data: bytes, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Decode the child's ``.npz`` bytes into float64 arrays of the expected shapes.

    Parameters
    ----------
    data : bytes
        What the child sent through the result pipe.
    shapes : mapping
        Expected output names and shapes (from the grader's reference).

    Returns
    -------
    dict of str to ndarray
        Fresh float64 arrays, one per expected name.

    Raises
    ------
    StudentError
        The child reported an exception from the submission.
    ResultError
        The bytes are not a usable result.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ResultError(f"the result sent back is not a valid .npz archive: {exc}") from None
    if "__error__.npy" in members:
        raw = _read_checked(archive, members["__error__.npy"], "__error__", None, MAX_ERROR_BYTES)
        raise StudentError(bytes(np.clip(raw, 0, 255).astype(np.uint8).ravel()).decode("utf-8", "replace"))
    arrays = {}
    for name, shape in shapes.items():
        member = members.get(f"{name}.npy")
        if member is None:
            raise ResultError(f"no result named {name!r} was sent back")
        arrays[name] = _read_checked(archive, member, name, shape,
                                     max(1, int(np.prod(shape, dtype=np.int64))))
    return arrays
