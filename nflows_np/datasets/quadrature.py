"""The numerics behind the exact toy densities: curve quadrature, grouped log-sum-exp, bisection.

- :func:`curve_nodes` — composite Gauss–Legendre nodes on panels of equal arc length;
- :func:`log_gaussian_tube` — log Σ_j w_j N(x; c_j, σ² I), chunked so memory stays bounded;
- :func:`group_logsumexp`, :func:`row_logsumexp` — log-sum-exp within groups / rows;
- :func:`log_ndtr_diff` — log(Φ(a) − Φ(b)) accurate in both tails;
- :func:`bisect` — elementwise root of a monotone function to float64 resolution.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Quadrature along the curves: Gauss-Legendre panels of this order, each at
# most this many noise standard deviations long (in arc length).
GL_ORDER = 8
PANEL_LENGTH_IN_STDS = 1.5
# Bisection halvings for the pinwheel preimages: an interval of width 2π is
# cut to 2π·2⁻⁵⁵ ≈ 2e-16, float64 resolution of an angle.
BISECTION_STEPS = 55
# Rows per chunk when a (rows × quadrature nodes) array is formed.
CHUNK_ELEMENTS = 1 << 20


def curve_nodes(speed: Callable[[np.ndarray], np.ndarray], t_lo: float, t_hi: float,
                 panel_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes and weights for ∫_{t_lo}^{t_hi} f(t) dt.

    The panels have (nearly) equal arc length ∫ speed(t) dt, each at most
    ``panel_length``, so the resolution is uniform along the curve.
    """
    fine = np.linspace(t_lo, t_hi, 8193)
    fine_speed = speed(fine)
    arc = np.concatenate([[0.0], np.cumsum(0.5 * (fine_speed[1:] + fine_speed[:-1]) * np.diff(fine))])
    n_panels = int(np.ceil(arc[-1] / panel_length))
    edges = np.interp(np.linspace(0.0, arc[-1], n_panels + 1), arc, fine)
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(GL_ORDER)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * unit_nodes).ravel()
    weights = (half[:, None] * unit_weights).ravel()
    return nodes, weights


def row_logsumexp(a: np.ndarray) -> np.ndarray:
    """log Σ_j exp(a[:, j]) per row; overwrites ``a`` (it is a scratch array)."""
    top = a.max(axis=1)
    a -= top[:, None]
    np.exp(a, out=a)
    return np.log(a.sum(axis=1)) + top


def squared_distances(points: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """(rows × nodes) array of |points_n − (cx_j, cy_j)|², built with two temporaries."""
    d2 = np.subtract.outer(points[:, 0], cx)
    np.square(d2, out=d2)
    dy = np.subtract.outer(points[:, 1], cy)
    np.square(dy, out=dy)
    d2 += dy
    return d2


def log_gaussian_tube(x: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                       log_w: np.ndarray, std: float) -> np.ndarray:
    """log Σ_j w_j N(x; (cx_j, cy_j), std² I): a quadrature of a Gaussian along a curve."""
    out = np.empty(x.shape[0])
    rows = max(1, CHUNK_ELEMENTS // cx.size)
    for start in range(0, x.shape[0], rows):
        log_terms = squared_distances(x[start:start + rows], cx, cy)
        log_terms *= -1.0 / (2.0 * std * std)
        log_terms += log_w
        out[start:start + rows] = row_logsumexp(log_terms)
    return out - np.log(2.0 * np.pi * std * std)


def group_logsumexp(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """log Σ exp(values) within each group; −inf for an empty group."""
    top = np.full(n_groups, -np.inf)
    np.maximum.at(top, group, values)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    total = np.bincount(group, weights=np.exp(values - safe_top[group]), minlength=n_groups)
    with np.errstate(divide="ignore"):
        return np.log(total) + safe_top


def log_ndtr_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(a) − Φ(b)) for a > b, accurate in both tails."""
    from scipy.special import log_ndtr  # imported on use: scipy.special takes 0.2 s to import

    # In the upper tail Φ(a) − Φ(b) = Φ(−b) − Φ(−a), whose terms do not round to 1.
    upper = b > 0.0
    big = log_ndtr(np.where(upper, -b, a))
    small = log_ndtr(np.where(upper, -a, b))
    return big + np.log1p(-np.exp(small - big))


def bisect(func: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
            increasing: np.ndarray) -> np.ndarray:
    """Elementwise root of a function monotone on [lo, hi] (sign change assumed)."""
    lo = lo.copy()
    hi = hi.copy()
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        root_is_right = (func(mid) < 0.0) == increasing
        lo = np.where(root_is_right, mid, lo)
        hi = np.where(root_is_right, hi, mid)
    return 0.5 * (lo + hi)
