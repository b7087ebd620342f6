"""Saving and loading a model's parameters as ``.npz`` (never pickle).

The file holds one array per key of ``model.params`` and, optionally, a JSON
``spec`` (how to rebuild the model, e.g. ``{"flow": "realnvp", "dim": 2}``)
stored as a plain string array, so ``np.load(..., allow_pickle=False)`` reads it.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from nflows_np.base import Module

SPEC_KEY = "__spec__"


def save_params(model: Module, path: str | os.PathLike, spec: dict | None = None) -> None:
    """Write ``model.params`` (and an optional JSON-able ``spec``) to ``path`` atomically."""
    arrays = {key: np.asarray(value) for key, value in model.params.items()}
    if SPEC_KEY in arrays:
        raise ValueError(f"save_params: parameter key {SPEC_KEY!r} is reserved")
    if spec is not None:
        arrays[SPEC_KEY] = np.array(json.dumps(spec))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict | None]:
    """The arrays and the spec (or None) stored in ``path``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a checkpoint written by :func:`save_params` (not an
        ``.npz`` archive, truncated, or holding objects rather than arrays).
    """
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
        spec_array = arrays.pop(SPEC_KEY, None)
        spec = json.loads(str(spec_array)) if spec_array is not None else None
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        # numpy's own message for a non-archive advises allow_pickle=True: never for a file of unknown origin
        reason = str(err) if "pickle" not in str(err) else "not an .npz archive"
        raise ValueError(f"{os.fspath(path)} is not a readable nflows_np checkpoint (.npz of arrays): {reason}") from None
    return arrays, spec


def load_params(model: Module, path: str | os.PathLike) -> dict | None:
    """Copy the arrays in ``path`` into ``model.params`` in place; return the stored spec.

    Every key must match, with the same shape; otherwise ``ValueError`` names
    the first mismatch and nothing is changed.
    """
    arrays, spec = read_checkpoint(path)
    missing, extra = set(model.params) - set(arrays), set(arrays) - set(model.params)
    if missing or extra:
        raise ValueError(f"load_params: {path} does not match the model: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for key, value in arrays.items():
        if value.shape != model.params[key].shape:
            raise ValueError(f"load_params: {key} has shape {value.shape} in {path}, the model expects {model.params[key].shape}")
    for key, value in arrays.items():
        model.params[key][...] = value
    return spec
