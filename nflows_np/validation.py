"""The argument checks every public entry uses: one function per kind of argument, one error type per mistake.

- a value of the wrong *type* (a float where a count is expected, a bool, a list
  where a name is expected) raises ``TypeError``;
- a value of the right type but outside its range, an unknown name, a wrong
  shape or a non-finite entry raises ``ValueError``.

Every message names the argument (``what``) and the value received.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

RngLike = None | int | np.random.Generator
T = TypeVar("T")


class NonFiniteError(ValueError):
    """An array that should be finite holds NaN or inf (training uses it to detect divergence)."""


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``None``, an int seed, or a Generator.

    Library code draws random numbers only through the returned generator,
    never through numpy's global state.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def check_int(value: Any, what: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``: TypeError if it is not an integer (bools included), ValueError if too small."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{what} must be {bound}, got {value!r}")
    return int(value)


def check_bool(value: Any, what: str) -> bool:
    """``value`` if it is a bool (numpy's included), else a TypeError naming ``what``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_real(value: Any, what: str, minimum: float = -math.inf, inclusive: bool = True) -> float:
    """``value`` as a finite float ≥ ``minimum`` (> with ``inclusive=False``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ValueError(f"{what} must be finite and {bound}, got {value!r}")
    return value


def lookup(name: Any, choices: dict[str, T] | Iterable[str], what: str) -> str:
    """The canonical key of ``name`` among ``choices`` (case-insensitive), or an error listing the valid names."""
    keys = list(choices)
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, one of {', '.join(keys)}; got {type(name).__name__}")
    by_lower = {key.lower(): key for key in keys}
    if name.lower() not in by_lower:
        raise ValueError(f"unknown {what} {name!r}; valid names are {', '.join(keys)}")
    return by_lower[name.lower()]


def check_array(x: Any, dim: int, who: str, what: str = "input") -> np.ndarray:
    """Validate a batch ``x`` of shape (N, dim) and return it as float64.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong
    shape or non-finite values, naming ``who`` (the layer) in the message.
    """
    if type(x) is np.ndarray and x.dtype == np.float64:
        array = x  # the common case, inside a FlowModel: skip the dtype inspection
    else:
        try:
            array = np.asarray(x)
        except Exception as err:  # ragged lists and the like
            raise TypeError(f"{who}: {what} must be a numeric array, could not convert ({err})") from None
        if array.dtype == bool or array.dtype.kind not in "iuf":
            raise TypeError(f"{who}: {what} must be a real numeric array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{who}: {what} must have shape (N, {dim}), got shape {array.shape}")
    if array.shape[1] != dim:
        raise ValueError(f"{who}: {what} must have shape (N, {dim}), got shape {array.shape} (D = {array.shape[1]})")
    array = array.astype(np.float64, copy=False)
    # One reduction is cheaper than isfinite + all; a NaN or inf anywhere makes the sum
    # non-finite (so can an overflowing sum of huge finite values: then look closer).
    if not np.isfinite(np.sum(array)) and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise NonFiniteError(f"{who}: {what} contains non-finite values, e.g. {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array
