"""Numerical pieces shared by several families of flows, densities and targets.

Each function states its formula and, in one line, why it is written the way it is.
Pieces used by one family only stay with that family (e.g. the tanh root-finder
of the residual flows in :mod:`nflows_np.flows.residual`).
"""
from __future__ import annotations

import math

import numpy as np

EPS = float(np.finfo(np.float64).eps)
LOG_2PI = math.log(2.0 * math.pi)
LOG_SCALE_BOUND = 3.0


def softplus(x: np.ndarray | float) -> np.ndarray | float:
    """log(1 + eˣ), as logaddexp(0, x): no overflow for large x, no log(1 + tiny) loss for small."""
    if isinstance(x, float):  # a layer's scalar (e.g. planar wᵀu): math is ~10× cheaper than a ufunc call
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    return np.logaddexp(0.0, x)


def sigmoid(x: np.ndarray | float) -> np.ndarray | float:
    """σ(x) = 1/(1 + e⁻ˣ) = softplus′(x), as 1/(1 + e^{−|x|}) or e^{−|x|}/(1 + e^{−|x|}) by the sign of x:
    exp of −|x| only, so no overflow, and a few ulps of relative accuracy even as σ → 0."""
    if isinstance(x, float):  # a layer's scalar: math is ~10× cheaper than a ufunc call
        e = math.exp(-abs(x))
        return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log Σ exp(a) along ``axis``, shifted by the maximum so no term overflows (−inf where every term is −inf)."""
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def logcosh(x: np.ndarray | float) -> np.ndarray:
    """log cosh x = |x| + log1p(e^{−2|x|}) − log 2 (no overflow of cosh for |x| > 710)."""
    x = np.abs(x)
    return x + np.log1p(np.exp(-2.0 * x)) - np.log(2.0)


def bounded_log_scale(raw: np.ndarray, bound: float = LOG_SCALE_BOUND) -> np.ndarray:
    """Soft clamp of a network's raw log-scale:  s = bound · tanh(ŝ / bound),  |s| < bound.

    Why: exp of an unbounded network output overflows as soon as |ŝ| grows (large
    |x|, a bad step); with the bound each layer scales by a factor in (e^{−3}, e^{3}).
    Near 0, s = ŝ − ŝ³/(3·bound²) + …, so ordinary log-scales pass almost unchanged
    and a stack of K layers still reaches scales up to e^{3K/2} per coordinate; the
    clamp is smooth, so the gradient is never cut off as by ``clip``.
    Returns a new array (``raw`` is not written to).
    """
    s = raw / bound
    np.tanh(s, out=s)
    s *= bound
    return s


def bounded_log_scale_slope(s: np.ndarray, bound: float = LOG_SCALE_BOUND) -> np.ndarray:
    """ds/dŝ = 1 − tanh²(ŝ/bound) = 1 − (s/bound)², from the clamped s (no second tanh)."""
    slope = s / bound
    slope *= slope
    np.subtract(1.0, slope, out=slope)
    return slope
