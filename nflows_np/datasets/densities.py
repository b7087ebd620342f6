"""Exact log-densities of the toy datasets (formulas in :mod:`nflows_np.datasets`' docstring).

Closed forms for 8gaussians, circles, rings and checkerboard; 1-D Gauss–Legendre
quadrature over the curve parameter for moons, swissroll and 2spirals; an exact
change of variables over all preimages for pinwheel. Each function takes
validated float64 points of shape (N, 2) and returns log p, shape (N,).
"""
from __future__ import annotations

import functools

import numpy as np

from nflows_np.datasets import quadrature
from nflows_np.datasets.toys import (
    _CHECKERBOARD_AREA,
    _CIRCLES_RADII,
    _CIRCLES_STD,
    _GAUSSIANS_DIVISOR,
    _GAUSSIANS_STD,
    _MOONS_STD,
    _PINWHEEL_CLASSES,
    _PINWHEEL_RADIAL_STD,
    _PINWHEEL_RATE,
    _PINWHEEL_SCALE,
    _PINWHEEL_TANGENTIAL_STD,
    _RINGS_RADII,
    _RINGS_STD,
    _SPIRAL_BOX,
    _SPIRAL_DIVISOR,
    _SPIRAL_STD,
    _SPIRAL_TURN,
    _SWISSROLL_DIVISOR,
    _SWISSROLL_STD,
    _SWISSROLL_T_MAX,
    _SWISSROLL_T_MIN,
    _gaussian_centres,
)
from nflows_np.numerics import logsumexp

# Pinwheel points with |x| above 2·8 are given log p = −inf: there the number of
# preimages grows like e^{|x|/2} (hundreds per class at |x| = 16), and the
# probability of |x| > 16 is below exp(−(8 − 1)²/(2·0.3²)) = exp(−272).
_PINWHEEL_RHO_MAX = 8.0


def _log_ring_mixture(x: np.ndarray, radii: tuple[float, ...], std: float) -> np.ndarray:
    """log of (1/K) Σ_k (1/2π) ∫ N(x; R_k (cos θ, sin θ), std² I) dθ, in closed form."""
    from scipy.special import i0e  # imported on use: scipy.special takes 0.2 s to import

    norm = np.hypot(x[:, 0], x[:, 1])
    var = std * std
    terms = []
    for radius in radii:
        # exp(−(|x|² + R²)/2s²) I₀(R|x|/s²) = exp(−(|x| − R)²/2s²) I₀e(R|x|/s²): no overflow.
        log_ring = -((norm - radius) ** 2) / (2.0 * var) + np.log(i0e(radius * norm / var))
        terms.append(log_ring - np.log(2.0 * np.pi * var))
    return logsumexp(np.stack(terms, axis=1), axis=1) - np.log(len(radii))


def log_prob_eight_gaussians(x: np.ndarray) -> np.ndarray:
    std = _GAUSSIANS_STD / _GAUSSIANS_DIVISOR
    centres = _gaussian_centres()
    d2 = (x[:, 0, None] - centres[:, 0]) ** 2 + (x[:, 1, None] - centres[:, 1]) ** 2
    log_component = -d2 / (2.0 * std * std) - np.log(2.0 * np.pi * std * std)
    return logsumexp(log_component, axis=1) - np.log(8.0)


def log_prob_checkerboard(x: np.ndarray) -> np.ndarray:
    cell1 = np.floor(x[:, 0] / 2.0)
    cell2 = np.floor(x[:, 1] / 2.0)
    inside = (x[:, 0] >= -4.0) & (x[:, 0] < 4.0) & (x[:, 1] >= -4.0) & (x[:, 1] < 4.0)
    dark = np.mod(cell1 + cell2, 2.0) == 0.0
    return np.where(inside & dark, -np.log(_CHECKERBOARD_AREA), -np.inf)


@functools.lru_cache(maxsize=None)
def _moons_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta, weights = quadrature.curve_nodes(lambda t: np.full_like(t, 2.0), 0.0, np.pi, panel_length)
    cx = np.concatenate([2.0 * np.cos(theta) - 1.0, 1.0 - 2.0 * np.cos(theta)])
    cy = np.concatenate([2.0 * np.sin(theta) - 0.2, 0.8 - 2.0 * np.sin(theta)])
    # each moon has weight 1/2, its angle density 1/π
    log_w = np.log(np.concatenate([weights, weights]) / (2.0 * np.pi))
    return cx, cy, log_w


def log_prob_moons(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    cx, cy, log_w = _moons_nodes(quadrature.PANEL_LENGTH_IN_STDS * _MOONS_STD / refine)
    return quadrature.log_gaussian_tube(x, cx, cy, log_w, _MOONS_STD)


def _archimedean_nodes(t_lo: float, t_hi: float, divisor: float, mirror_x: bool,
                       panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parameters t, weights and points (c_x, c_y) and weights of the curve c(t) = t (±cos t, sin t) / divisor, t ∈ [t_lo, t_hi].

    Its speed is |c′(t)| = √(1 + t²) / divisor; the weights are the quadrature's, without the density of t.
    """
    def speed(t: np.ndarray) -> np.ndarray:
        return np.sqrt(1.0 + t * t) / divisor

    t, weights = quadrature.curve_nodes(speed, t_lo, t_hi, panel_length)
    cx = (-1.0 if mirror_x else 1.0) * t * np.cos(t) / divisor
    return t, weights, cx, t * np.sin(t) / divisor


@functools.lru_cache(maxsize=None)
def _swissroll_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, weights, cx, cy = _archimedean_nodes(_SWISSROLL_T_MIN, _SWISSROLL_T_MAX, _SWISSROLL_DIVISOR, False, panel_length)
    return cx, cy, np.log(weights / (_SWISSROLL_T_MAX - _SWISSROLL_T_MIN))     # t ~ U[t_min, t_max]


def log_prob_swissroll(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    cx, cy, log_w = _swissroll_nodes(quadrature.PANEL_LENGTH_IN_STDS * _SWISSROLL_STD / refine)
    return quadrature.log_gaussian_tube(x, cx, cy, log_w, _SWISSROLL_STD)


@functools.lru_cache(maxsize=None)
def _spiral_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tau, weights, cx, cy = _archimedean_nodes(0.0, _SPIRAL_TURN, _SPIRAL_DIVISOR, True, panel_length)
    return cx, cy, np.log(weights * 2.0 * tau / _SPIRAL_TURN**2)     # τ has density 2τ/(3π)²


def _log_box_kernel(u: np.ndarray, h: float, std: float) -> np.ndarray:
    """log k(u), k(u) = (1/h) [Φ(u/σ) − Φ((u − h)/σ)]: the density of U[0, h] + N(0, σ²)."""
    return quadrature.log_ndtr_diff(u / std, (u - h) / std) - np.log(h)


def _log_spiral_arm(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    """log q(x), q the density of (c(τ) + b)/3 + 0.1 ε for one (unmirrored) spiral.

    q(x) = ∫ 2τ/(3π)² k(x₁ − c₁(τ)/3) k(x₂ − c₂(τ)/3) dτ  with the box-blur kernel
    k(u) = (1/h) [Φ(u/σ) − Φ((u − h)/σ)],  h = 1/6, σ = 0.1, c(τ) = τ (−cos τ, sin τ).

    Only quadrature nodes that can matter are evaluated. With δ the distance
    from (u₁, u₂) to the box [0, h]², k(u₁) k(u₂) ≤ h⁻² e^{−δ²/2σ²}, and
    δ ≥ |u − box centre| − h/√2. A node is skipped when this bound is e^{−50}
    below an exactly evaluated term (the one at the nearest box centre): all
    skipped terms together change the sum by less than (nodes)·e^{−50} < 1e-18
    relative, below float64 resolution.
    """
    h = _SPIRAL_BOX / _SPIRAL_DIVISOR
    std = _SPIRAL_STD
    cx, cy, log_w = _spiral_nodes(quadrature.PANEL_LENGTH_IN_STDS * std / refine)
    log_w_max = log_w.max()
    out = np.empty(x.shape[0])
    rows = max(1, quadrature.CHUNK_ELEMENTS // cx.size)
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        d2 = quadrature.squared_distances(block, cx + 0.5 * h, cy + 0.5 * h)
        nearest = np.argmin(d2, axis=1)
        floor = (log_w[nearest]
                 + _log_box_kernel(block[:, 0] - cx[nearest], h, std)
                 + _log_box_kernel(block[:, 1] - cy[nearest], h, std))
        # keep a node unless h⁻² e^{−δ²/2σ²} w_max < e^{floor − 50}
        budget = np.maximum(log_w_max - 2.0 * np.log(h) - floor + 50.0, 0.0)
        reach = np.sqrt(2.0 * std * std * budget) + h / np.sqrt(2.0)
        keep_row, keep_col = np.nonzero(d2 <= (reach * reach)[:, None])
        terms = (log_w[keep_col]
                 + _log_box_kernel(block[keep_row, 0] - cx[keep_col], h, std)
                 + _log_box_kernel(block[keep_row, 1] - cy[keep_col], h, std))
        out[start:start + rows] = quadrature.group_logsumexp(terms, keep_row, block.shape[0])
    return out


def log_prob_two_spirals(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    # The mirrored spiral is the image of the first under x → −x, so p(x) = ½ (q(x) + q(−x)).
    return np.logaddexp(_log_spiral_arm(x, refine), _log_spiral_arm(-x, refine)) - np.log(2.0)


def _pinwheel_warp(phi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """h(φ) = φ − 0.25 exp(ρ cos φ): the output angle, up to the class offset."""
    return phi - _PINWHEEL_RATE * np.exp(rho * np.cos(phi))


def _pinwheel_warp_slope(phi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """h'(φ) = 1 + 0.25 ρ sin φ exp(ρ cos φ): the Jacobian determinant of the warp."""
    return 1.0 + _PINWHEEL_RATE * rho * np.sin(phi) * np.exp(rho * np.cos(phi))


def _pinwheel_pieces(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The monotone pieces of h on one turn: (lo, hi) of shape (N, 2) and whether h folds.

    Piece 0 is increasing, piece 1 decreasing (empty, lo = hi = 0, when h is monotone).
    """
    n_points = rho.size
    # Where h' is smallest: cos φ* = (√(1 + 4ρ²) − 1)/(2ρ), written without cancellation.
    cos_star = 2.0 * rho / (np.sqrt(1.0 + 4.0 * rho * rho) + 1.0)
    phi_star = np.arccos(cos_star)
    folds = _pinwheel_warp_slope(-phi_star, rho) < 0.0
    lo = np.stack([np.full(n_points, -np.pi), np.zeros(n_points)], axis=1)
    hi = np.stack([np.full(n_points, np.pi), np.zeros(n_points)], axis=1)
    if np.any(folds):
        rho_f = rho[folds]
        minus_pi = np.full(rho_f.size, -np.pi)

        def slope(phi: np.ndarray) -> np.ndarray:
            return _pinwheel_warp_slope(phi, rho_f)

        phi_a = quadrature.bisect(slope, minus_pi, -phi_star[folds], np.zeros(rho_f.size, dtype=bool))
        phi_b = quadrature.bisect(slope, -phi_star[folds], np.zeros(rho_f.size), np.ones(rho_f.size, dtype=bool))
        lo[folds] = np.stack([phi_b, phi_a], axis=1)
        hi[folds] = np.stack([phi_a + 2.0 * np.pi, phi_b], axis=1)
    return lo, hi, folds


def _pinwheel_preimages(rho: np.ndarray, psi: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                        folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every φ with h(φ) ≡ ψ + 2πk/5 (mod 2π), k = 0…4: (index of its point, φ), by bisection."""
    n_points = rho.size
    h_lo = _pinwheel_warp(lo, rho[:, None])
    h_hi = _pinwheel_warp(hi, rho[:, None])
    # Levels ψ + 2πk/5 + 2πm inside each piece's range (half-open at the folds).
    offsets = 2.0 * np.pi * np.arange(_PINWHEEL_CLASSES) / _PINWHEEL_CLASSES
    level = psi[:, None] + offsets                                    # (N, 5)
    two_pi = 2.0 * np.pi
    m_first = np.empty((n_points, _PINWHEEL_CLASSES, 2))
    m_last = np.empty((n_points, _PINWHEEL_CLASSES, 2))
    # increasing piece: h_lo ≤ level + 2πm < h_hi
    m_first[:, :, 0] = np.ceil((h_lo[:, None, 0] - level) / two_pi)
    m_last[:, :, 0] = np.ceil((h_hi[:, None, 0] - level) / two_pi) - 1.0
    # decreasing piece: h_hi < level + 2πm ≤ h_lo
    m_first[:, :, 1] = np.floor((h_hi[:, None, 1] - level) / two_pi) + 1.0
    m_last[:, :, 1] = np.floor((h_lo[:, None, 1] - level) / two_pi)
    # a monotone h covers exactly one turn: exactly one preimage per class
    m_last[~folds, :, 0] = m_first[~folds, :, 0]
    m_last[~folds, :, 1] = m_first[~folds, :, 1] - 1.0
    counts = np.maximum(m_last - m_first + 1.0, 0.0).astype(np.int64).ravel()

    # One bisection problem per preimage, flattened in (point, class, piece) order.
    cell = np.repeat(np.arange(counts.size), counts)
    start_of_cell = np.repeat(np.cumsum(counts) - counts, counts)
    m = m_first.ravel()[cell] + (np.arange(cell.size) - start_of_cell)
    point = cell // (2 * _PINWHEEL_CLASSES)
    piece = cell % 2
    target = level.ravel()[cell // 2] + two_pi * m
    problem_rho = rho[point]

    def residual(phi: np.ndarray) -> np.ndarray:
        return _pinwheel_warp(phi, problem_rho) - target

    return point, quadrature.bisect(residual, lo[point, piece], hi[point, piece], piece == 0)


def log_prob_pinwheel(x: np.ndarray) -> np.ndarray:
    """Exact pinwheel log-density by change of variables over all preimages.

    Write y = x/2 = ρ e^{iψ} and (r, s) = ρ e^{iφ}. Class k maps (r, s) to
    y = (r + is) e^{−ia}, a = 2πk/5 + 0.25 e^{r}: the radius is kept and the
    angle becomes ψ = h(φ) − 2πk/5 with h(φ) = φ − 0.25 exp(ρ cos φ). In polar
    coordinates the Jacobian is triangular, so |det| = |h'(φ)| and::

        p(x) = (1/4)(1/5) Σ_k Σ_{φ: h(φ) ≡ ψ + 2πk/5 (mod 2π)}
               N(ρ cos φ; 1, 0.3²) N(ρ sin φ; 0, 0.1²) / |h'(φ)|.

    h' = 1 + 0.25 ρ q(φ) with q = sin φ e^{ρ cos φ}; on (−π, 0) q falls to a
    single minimum at cos φ* = (√(1 + 4ρ²) − 1)/(2ρ) and is positive on (0, π).
    If 0.25 ρ q(−φ*) ≥ −1, h is increasing and there is one preimage per class.
    Otherwise h' = 0 at φ_a < −φ* < φ_b, h decreases on [φ_a, φ_b] and increases
    on [φ_b, φ_a + 2π]; on each monotone piece every level ψ + 2πk/5 + 2πm in
    its range has exactly one preimage, found by bisection to float64 accuracy.
    """
    y = x / _PINWHEEL_SCALE
    rho = np.hypot(y[:, 0], y[:, 1])
    psi = np.arctan2(y[:, 1], y[:, 0])
    out = np.full(x.shape[0], -np.inf)
    valid = np.nonzero(rho <= _PINWHEEL_RHO_MAX)[0]
    rho, psi = rho[valid], psi[valid]
    lo, hi, folds = _pinwheel_pieces(rho)
    point, phi = _pinwheel_preimages(rho, psi, lo, hi, folds)

    problem_rho = rho[point]
    r = problem_rho * np.cos(phi)
    s = problem_rho * np.sin(phi)
    var_r = _PINWHEEL_RADIAL_STD**2
    var_s = _PINWHEEL_TANGENTIAL_STD**2
    log_base = (-0.5 * (r - 1.0) ** 2 / var_r - 0.5 * s**2 / var_s
                - np.log(2.0 * np.pi * _PINWHEEL_RADIAL_STD * _PINWHEEL_TANGENTIAL_STD))
    with np.errstate(divide="ignore"):
        log_jacobian = np.log(np.abs(_pinwheel_warp_slope(phi, problem_rho)))
    log_sum = quadrature.group_logsumexp(log_base - log_jacobian, point, rho.size)
    out[valid] = log_sum - np.log(_PINWHEEL_CLASSES) - 2.0 * np.log(_PINWHEEL_SCALE)
    return out


def log_prob_circles(x: np.ndarray) -> np.ndarray:
    return _log_ring_mixture(x, _CIRCLES_RADII, _CIRCLES_STD)


def log_prob_rings(x: np.ndarray) -> np.ndarray:
    return _log_ring_mixture(x, _RINGS_RADII, _RINGS_STD)
