"""The FFJORD 2-D toy datasets: exact samplers, exact log-densities, entropies.

The eight datasets of Grathwohl et al. (2019), FFJORD, file ``lib/toy_data.py``
of rtqichen/ffjord, with FFJORD's constants, written with NumPy only (no
scikit-learn, no downloads). ``sample(name, n, rng)`` draws, ``log_prob(name, x)``
evaluates the true log-density, and ``ENTROPY[name]`` is the differential
entropy H = −E[log p(x)] in nats: the best achievable expected test NLL of any
model, since E_p[−log q] = H(p) + KL(p‖q) ≥ H(p).

Notation: ε, ε₁, ε₂ ~ N(0, 1) (ε ∈ R² when bold-faced by context),
U{0..K−1} is the uniform distribution on classes, U[a, b] the uniform one
on an interval, and N(x; m, s² I) the isotropic 2-D Gaussian density.

=============  ==========================================================
name           generating process (each row independent)
=============  ==========================================================
moons          k ~ U{0,1}, θ ~ U[0, π],  x = m_k(θ) + 0.2 ε with
               m_0(θ) = (2 cos θ − 1, 2 sin θ − 0.2),
               m_1(θ) = (1 − 2 cos θ, 0.8 − 2 sin θ)
               (sklearn ``make_moons(noise=0.1)``, then ``x·2 + (−1, −0.2)``)
circles        k ~ U{0,1}, θ ~ U[0, 2π),  x = R_k (cos θ, sin θ) + 0.24 ε,
               R = (3, 1.5)  (``make_circles(factor=0.5, noise=0.08)``, ×3)
rings          k ~ U{0..3}, θ ~ U[0, 2π),  x = R_k (cos θ, sin θ) + 0.08 ε,
               R = (3, 2.25, 1.5, 0.75)  (radii 1, ¾, ½, ¼ times 3)
8gaussians     k ~ U{0..7},  x = (4 (cos πk/4, sin πk/4) + 0.5 ε) / 1.414
               (FFJORD divides by the literal 1.414, not √2)
pinwheel       k ~ U{0..4}, r = 1 + 0.3 ε₁, s = 0.1 ε₂,
               a = 2πk/5 + 0.25 exp(r),
               x = 2 (r cos a + s sin a,  −r sin a + s cos a)
2spirals       sign ~ U{+1, −1}, u ~ U[0, 1], τ = 3π √u, b ~ U[0, ½]²,
               x = sign · (τ (−cos τ, sin τ) + b) / 3 + 0.1 ε
checkerboard   u₁, u₂ ~ U[0, 1), B ~ U{0,1},  x₁' = 4u₁ − 2,
               x₂' = u₂ − 2B + (⌊x₁'⌋ mod 2),  x = 2 (x₁', x₂')
swissroll      t = 1.5π (1 + 2u), u ~ U[0, 1],
               x = (t cos t, t sin t) / 5 + 0.2 ε
               (``make_swiss_roll(noise=1.0)``, columns (0, 2), divided by 5)
=============  ==========================================================

One deliberate difference from FFJORD: FFJORD (through scikit-learn) puts the
angles of moons, circles and rings on an evenly spaced grid, splits the classes
of moons, circles, rings, pinwheel and 2spirals into exactly equal parts, and
returns ``5·⌊n/5⌋`` pinwheel points. Here every row is an independent draw from
the limiting distribution (uniform angle, uniform class), so that ``log_prob``
is the exact density of every row, ``sample`` returns exactly ``n`` rows, and
``ENTROPY`` is the expected NLL of a fresh test point.

Densities. Every dataset is a Gaussian (or Gaussian-smoothed box) noise around a
1-D or discrete latent, so the density is a finite mixture or a 1-D integral:

- 8gaussians: a mixture of eight Gaussians, in closed form;
- circles, rings: the angle integrates in closed form,
  (1/2π) ∫ N(x; R(cos θ, sin θ), s² I) dθ = exp(−(|x| − R)²/2s²) I₀e(R|x|/s²) / (2π s²),
  with I₀e(z) = e^{−z} I₀(z) the scaled Bessel function (no overflow);
- moons, swissroll, 2spirals: composite Gauss–Legendre quadrature (order 8)
  over the curve parameter, on panels of equal arc length, 1.5 noise standard
  deviations long. Against a rule with panels four times shorter the error in
  log p is below 1e-11 on samples (``benchmarks/dataset_entropies.py``); it
  grows in the far tails, to ~1e-7 where log p ≈ −40 and ~1e-5 where
  log p ≈ −80, as the integrand there narrows;
- pinwheel: a change of variables of the Gaussian (r, s) summed over all
  preimages, found exactly by bisection (see ``_log_prob_pinwheel``);
- checkerboard: uniform, 1/32 on eight 2×2 squares.

``ENTROPY`` holds −∫ p log p computed from ``log_prob`` by a converged 2-D
quadrature and confirmed by Monte Carlo over fresh samples (checkerboard:
exactly ln 32), both measured by ``benchmarks/dataset_entropies.py``; the
results, with Monte Carlo standard errors, are in
``benchmarks/results/dataset_entropies.txt``.
"""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import numpy as np
from scipy.special import i0e, log_ndtr, logsumexp

from nflows_np.base import RngLike, as_generator, check_array

__all__ = [
    "NAMES", "ENTROPY", "sample", "log_prob",
    "moons", "circles", "rings", "eight_gaussians", "pinwheel",
    "two_spirals", "checkerboard", "swissroll",
]

NAMES: tuple[str, ...] = (
    "moons", "circles", "rings", "8gaussians",
    "pinwheel", "2spirals", "checkerboard", "swissroll",
)

# Differential entropy H = −E[log p(x)] = −∫ p log p in nats of each generating
# distribution: the best achievable expected test NLL. Measured by
# benchmarks/dataset_entropies.py as −Σ p log p · (0.025)² over a grid on
# [−7, 7]² (converged: spacing 0.04 agrees to < 1e-7), and confirmed by Monte
# Carlo over 4,000,000 fresh samples each (standard errors ≤ 0.0005, results in
# benchmarks/results/dataset_entropies.txt). Checkerboard: exactly ln 32.
ENTROPY: dict[str, float] = {
    "moons": 2.393879,
    "circles": 3.268136,
    "rings": 2.623183,
    "8gaussians": 2.831880,
    "pinwheel": 2.317788,
    "2spirals": 2.645450,
    "checkerboard": math.log(32.0),
    "swissroll": 2.669646,
}

# FFJORD's constants (lib/toy_data.py), after FFJORD's own rescaling.
_MOONS_STD = 0.2                          # make_moons noise 0.1, times 2
_CIRCLES_RADII = (3.0, 1.5)               # make_circles factor 0.5, times 3
_CIRCLES_STD = 0.24                       # make_circles noise 0.08, times 3
_RINGS_RADII = (3.0, 2.25, 1.5, 0.75)     # (1, 0.75, 0.5, 0.25) times 3
_RINGS_STD = 0.08                         # noise added after the scaling
_GAUSSIANS_RADIUS = 4.0
_GAUSSIANS_STD = 0.5
_GAUSSIANS_DIVISOR = 1.414                # FFJORD's literal, not sqrt(2)
_PINWHEEL_CLASSES = 5
_PINWHEEL_RADIAL_STD = 0.3
_PINWHEEL_TANGENTIAL_STD = 0.1
_PINWHEEL_RATE = 0.25
_PINWHEEL_SCALE = 2.0
_SPIRAL_TURN = 3.0 * np.pi                # 540 degrees
_SPIRAL_BOX = 0.5                         # uniform offset U[0, 0.5]^2 before /3
_SPIRAL_DIVISOR = 3.0
_SPIRAL_STD = 0.1
_SWISSROLL_T_MIN = 1.5 * np.pi
_SWISSROLL_T_MAX = 4.5 * np.pi
_SWISSROLL_DIVISOR = 5.0
_SWISSROLL_STD = 0.2                      # make_swiss_roll noise 1.0, divided by 5
_CHECKERBOARD_AREA = 32.0                 # eight 2x2 squares

# Quadrature along the curves: Gauss-Legendre panels of this order, each at
# most this many noise standard deviations long (in arc length).
_GL_ORDER = 8
_PANEL_LENGTH_IN_STDS = 1.5
# Bisection halvings for the pinwheel preimages: an interval of width 2π is
# cut to 2π·2⁻⁵⁵ ≈ 2e-16, float64 resolution of an angle.
_BISECTION_STEPS = 55
# Pinwheel points with |x| above 2·8 are given log p = −inf: there the number of
# preimages grows like e^{|x|/2} (hundreds per class at |x| = 16), and the
# probability of |x| > 16 is below exp(−(8 − 1)²/(2·0.3²)) = exp(−272).
_PINWHEEL_RHO_MAX = 8.0
# Rows per chunk when a (rows × quadrature nodes) array is formed.
_CHUNK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------

def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, one of {NAMES}, got {type(name).__name__}")
    key = name.lower()
    if key not in NAMES:
        raise ValueError(f"unknown dataset name {name!r}; valid names are {', '.join(NAMES)}")
    return key


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n (number of samples) must be a non-negative int, got {n!r} of type {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n (number of samples) must be non-negative, got {n}")
    return int(n)


# --------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------

def moons(n: int, rng: RngLike = None) -> np.ndarray:
    """Two interleaved half circles ("moons").

    k ~ U{0,1}, θ ~ U[0, π], ε ~ N(0, I₂)::

        x = (2 cos θ − 1, 2 sin θ − 0.2) + 0.2 ε    if k = 0
        x = (1 − 2 cos θ, 0.8 − 2 sin θ) + 0.2 ε    if k = 1

    This is scikit-learn's ``make_moons(noise=0.1)`` rescaled by FFJORD
    (``x·2 + (−1, −0.2)``), with i.i.d. angles and classes.

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    k = gen.integers(0, 2, size=n)
    theta = gen.uniform(0.0, np.pi, size=n)
    noise = gen.standard_normal((n, 2))
    centre = np.where(
        (k == 0)[:, None],
        np.stack([2.0 * np.cos(theta) - 1.0, 2.0 * np.sin(theta) - 0.2], axis=1),
        np.stack([1.0 - 2.0 * np.cos(theta), 0.8 - 2.0 * np.sin(theta)], axis=1),
    )
    return centre + _MOONS_STD * noise


def _noisy_circles(n: int, gen: np.random.Generator, radii: tuple[float, ...], std: float) -> np.ndarray:
    k = gen.integers(0, len(radii), size=n)
    theta = gen.uniform(0.0, 2.0 * np.pi, size=n)
    noise = gen.standard_normal((n, 2))
    radius = np.asarray(radii)[k]
    centre = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return centre + std * noise


def circles(n: int, rng: RngLike = None) -> np.ndarray:
    """Two concentric noisy circles.

    k ~ U{0,1}, θ ~ U[0, 2π), ε ~ N(0, I₂), R = (3, 1.5)::

        x = R_k (cos θ, sin θ) + 0.24 ε

    scikit-learn's ``make_circles(factor=0.5, noise=0.08)`` times 3 (FFJORD).

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    return _noisy_circles(n, as_generator(rng), _CIRCLES_RADII, _CIRCLES_STD)


def rings(n: int, rng: RngLike = None) -> np.ndarray:
    """Four concentric thin rings.

    k ~ U{0..3}, θ ~ U[0, 2π), ε ~ N(0, I₂), R = (3, 2.25, 1.5, 0.75)::

        x = R_k (cos θ, sin θ) + 0.08 ε

    (FFJORD: circles of radii 1, ¾, ½, ¼ scaled by 3, then noise of std 0.08.)

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    return _noisy_circles(n, as_generator(rng), _RINGS_RADII, _RINGS_STD)


def _gaussian_centres() -> np.ndarray:
    angles = np.arange(8) * (np.pi / 4.0)
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _GAUSSIANS_RADIUS * unit / _GAUSSIANS_DIVISOR


def eight_gaussians(n: int, rng: RngLike = None) -> np.ndarray:
    """Eight Gaussians on a circle (dataset name ``"8gaussians"``).

    k ~ U{0..7}, ε ~ N(0, I₂)::

        x = (4 (cos πk/4, sin πk/4) + 0.5 ε) / 1.414

    so the centres lie on a circle of radius 4/1.414 ≈ 2.83 and each
    component has standard deviation 0.5/1.414 ≈ 0.354 (FFJORD's literal 1.414).

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    k = gen.integers(0, 8, size=n)
    noise = gen.standard_normal((n, 2))
    std = _GAUSSIANS_STD / _GAUSSIANS_DIVISOR
    return _gaussian_centres()[k] + std * noise


def pinwheel(n: int, rng: RngLike = None) -> np.ndarray:
    """Five spiral arms ("pinwheel").

    k ~ U{0..4}, ε₁, ε₂ ~ N(0, 1)::

        r = 1 + 0.3 ε₁,   s = 0.1 ε₂,   a = 2πk/5 + 0.25 exp(r),
        x = 2 (r cos a + s sin a,  −r sin a + s cos a)

    i.e. the point (r, s) rotated by the angle −a, which grows with r.

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    k = gen.integers(0, _PINWHEEL_CLASSES, size=n)
    noise = gen.standard_normal((n, 2))
    r = 1.0 + _PINWHEEL_RADIAL_STD * noise[:, 0]
    s = _PINWHEEL_TANGENTIAL_STD * noise[:, 1]
    angle = 2.0 * np.pi * k / _PINWHEEL_CLASSES + _PINWHEEL_RATE * np.exp(r)
    x1 = r * np.cos(angle) + s * np.sin(angle)
    x2 = -r * np.sin(angle) + s * np.cos(angle)
    return _PINWHEEL_SCALE * np.stack([x1, x2], axis=1)


def two_spirals(n: int, rng: RngLike = None) -> np.ndarray:
    """Two interleaved spirals (dataset name ``"2spirals"``).

    sign ~ U{+1, −1}, u ~ U[0, 1], b ~ U[0, ½]², ε ~ N(0, I₂)::

        τ = 3π √u                      (density 2τ / (3π)² on [0, 3π])
        x = sign · (τ (−cos τ, sin τ) + b) / 3 + 0.1 ε

    The uniform offset b is added before the mirroring, as in FFJORD.

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    sign = np.where(gen.integers(0, 2, size=n) == 0, 1.0, -1.0)
    tau = _SPIRAL_TURN * np.sqrt(gen.uniform(0.0, 1.0, size=n))
    box = gen.uniform(0.0, _SPIRAL_BOX, size=(n, 2))
    noise = gen.standard_normal((n, 2))
    curve = tau[:, None] * np.stack([-np.cos(tau), np.sin(tau)], axis=1)
    return sign[:, None] * (curve + box) / _SPIRAL_DIVISOR + _SPIRAL_STD * noise


def checkerboard(n: int, rng: RngLike = None) -> np.ndarray:
    """Uniform on the dark squares of a 4×4 checkerboard of side 8.

    u₁, u₂ ~ U[0, 1), B ~ U{0,1}::

        x₁' = 4 u₁ − 2,   x₂' = u₂ − 2B + (⌊x₁'⌋ mod 2),   x = 2 (x₁', x₂')

    The density is 1/32 on the eight 2×2 squares of [−4, 4)² where
    ⌊x₁/2⌋ + ⌊x₂/2⌋ is even, and 0 elsewhere.

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    x1 = 4.0 * gen.uniform(0.0, 1.0, size=n) - 2.0
    shift = 2.0 * gen.integers(0, 2, size=n)
    x2 = gen.uniform(0.0, 1.0, size=n) - shift + np.mod(np.floor(x1), 2.0)
    return 2.0 * np.stack([x1, x2], axis=1)


def swissroll(n: int, rng: RngLike = None) -> np.ndarray:
    """A 2-D Swiss roll.

    u ~ U[0, 1], ε ~ N(0, I₂)::

        t = 1.5π (1 + 2u)                    (t ~ U[1.5π, 4.5π])
        x = (t cos t, t sin t) / 5 + 0.2 ε

    scikit-learn's ``make_swiss_roll(noise=1.0)`` keeps columns 0 and 2 and
    divides by 5 (FFJORD); its unused middle column is not drawn.

    Parameters
    ----------
    n : int
        Number of points, n ≥ 0.
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64.
    """
    n = _check_n(n)
    gen = as_generator(rng)
    t = gen.uniform(_SWISSROLL_T_MIN, _SWISSROLL_T_MAX, size=n)
    noise = gen.standard_normal((n, 2))
    curve = t[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return curve / _SWISSROLL_DIVISOR + _SWISSROLL_STD * noise


_SAMPLERS: dict[str, Callable[[int, RngLike], np.ndarray]] = {
    "moons": moons,
    "circles": circles,
    "rings": rings,
    "8gaussians": eight_gaussians,
    "pinwheel": pinwheel,
    "2spirals": two_spirals,
    "checkerboard": checkerboard,
    "swissroll": swissroll,
}


def sample(name: str, n: int, rng: RngLike = None) -> np.ndarray:
    """Draw ``n`` independent points of the dataset ``name``.

    Parameters
    ----------
    name : str
        One of ``NAMES`` (case-insensitive): moons, circles, rings,
        8gaussians, pinwheel, 2spirals, checkerboard, swissroll.
    n : int
        Number of points, n ≥ 0 (n = 0 gives an empty (0, 2) array).
    rng : None, int or numpy.random.Generator
        Source of randomness; an int seeds a new Generator, None uses fresh
        OS entropy. numpy's global random state is never used.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2), float64. The same seed gives the same array.

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the valid names), or n < 0.
    TypeError
        ``n`` not an integer, or ``rng`` not None / int / Generator.
    """
    key = _check_name(name)
    return _SAMPLERS[key](n, rng)


# --------------------------------------------------------------------------
# Densities
# --------------------------------------------------------------------------

def _log_ring_mixture(x: np.ndarray, radii: tuple[float, ...], std: float) -> np.ndarray:
    """log of (1/K) Σ_k (1/2π) ∫ N(x; R_k (cos θ, sin θ), std² I) dθ, in closed form."""
    norm = np.hypot(x[:, 0], x[:, 1])
    var = std * std
    terms = []
    for radius in radii:
        # exp(−(|x|² + R²)/2s²) I₀(R|x|/s²) = exp(−(|x| − R)²/2s²) I₀e(R|x|/s²): no overflow.
        log_ring = -((norm - radius) ** 2) / (2.0 * var) + np.log(i0e(radius * norm / var))
        terms.append(log_ring - np.log(2.0 * np.pi * var))
    return logsumexp(np.stack(terms, axis=1), axis=1) - np.log(len(radii))


def _log_prob_8gaussians(x: np.ndarray) -> np.ndarray:
    std = _GAUSSIANS_STD / _GAUSSIANS_DIVISOR
    centres = _gaussian_centres()
    d2 = (x[:, 0, None] - centres[:, 0]) ** 2 + (x[:, 1, None] - centres[:, 1]) ** 2
    log_component = -d2 / (2.0 * std * std) - np.log(2.0 * np.pi * std * std)
    return logsumexp(log_component, axis=1) - np.log(8.0)


def _log_prob_checkerboard(x: np.ndarray) -> np.ndarray:
    cell1 = np.floor(x[:, 0] / 2.0)
    cell2 = np.floor(x[:, 1] / 2.0)
    inside = (x[:, 0] >= -4.0) & (x[:, 0] < 4.0) & (x[:, 1] >= -4.0) & (x[:, 1] < 4.0)
    dark = np.mod(cell1 + cell2, 2.0) == 0.0
    return np.where(inside & dark, -np.log(_CHECKERBOARD_AREA), -np.inf)


def _curve_nodes(speed: Callable[[np.ndarray], np.ndarray], t_lo: float, t_hi: float,
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
    unit_nodes, unit_weights = np.polynomial.legendre.leggauss(_GL_ORDER)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * unit_nodes).ravel()
    weights = (half[:, None] * unit_weights).ravel()
    return nodes, weights


def _row_logsumexp(a: np.ndarray) -> np.ndarray:
    """log Σ_j exp(a[:, j]) per row; overwrites ``a`` (it is a scratch array)."""
    top = a.max(axis=1)
    a -= top[:, None]
    np.exp(a, out=a)
    return np.log(a.sum(axis=1)) + top


def _squared_distances(points: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """(rows × nodes) array of |points_n − (cx_j, cy_j)|², built with two temporaries."""
    d2 = np.subtract.outer(points[:, 0], cx)
    np.square(d2, out=d2)
    dy = np.subtract.outer(points[:, 1], cy)
    np.square(dy, out=dy)
    d2 += dy
    return d2


def _log_gaussian_tube(x: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                       log_w: np.ndarray, std: float) -> np.ndarray:
    """log Σ_j w_j N(x; (cx_j, cy_j), std² I): a quadrature of a Gaussian along a curve."""
    out = np.empty(x.shape[0])
    rows = max(1, _CHUNK_ELEMENTS // cx.size)
    for start in range(0, x.shape[0], rows):
        log_terms = _squared_distances(x[start:start + rows], cx, cy)
        log_terms *= -1.0 / (2.0 * std * std)
        log_terms += log_w
        out[start:start + rows] = _row_logsumexp(log_terms)
    return out - np.log(2.0 * np.pi * std * std)


@functools.lru_cache(maxsize=None)
def _moons_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta, weights = _curve_nodes(lambda t: np.full_like(t, 2.0), 0.0, np.pi, panel_length)
    cx = np.concatenate([2.0 * np.cos(theta) - 1.0, 1.0 - 2.0 * np.cos(theta)])
    cy = np.concatenate([2.0 * np.sin(theta) - 0.2, 0.8 - 2.0 * np.sin(theta)])
    # each moon has weight 1/2, its angle density 1/π
    log_w = np.log(np.concatenate([weights, weights]) / (2.0 * np.pi))
    return cx, cy, log_w


def _log_prob_moons(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    cx, cy, log_w = _moons_nodes(_PANEL_LENGTH_IN_STDS * _MOONS_STD / refine)
    return _log_gaussian_tube(x, cx, cy, log_w, _MOONS_STD)


@functools.lru_cache(maxsize=None)
def _swissroll_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def speed(t: np.ndarray) -> np.ndarray:
        return np.sqrt(1.0 + t * t) / _SWISSROLL_DIVISOR

    t, weights = _curve_nodes(speed, _SWISSROLL_T_MIN, _SWISSROLL_T_MAX, panel_length)
    cx = t * np.cos(t) / _SWISSROLL_DIVISOR
    cy = t * np.sin(t) / _SWISSROLL_DIVISOR
    log_w = np.log(weights / (_SWISSROLL_T_MAX - _SWISSROLL_T_MIN))
    return cx, cy, log_w


def _log_prob_swissroll(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    cx, cy, log_w = _swissroll_nodes(_PANEL_LENGTH_IN_STDS * _SWISSROLL_STD / refine)
    return _log_gaussian_tube(x, cx, cy, log_w, _SWISSROLL_STD)


def _group_logsumexp(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """log Σ exp(values) within each group; −inf for an empty group."""
    top = np.full(n_groups, -np.inf)
    np.maximum.at(top, group, values)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    total = np.bincount(group, weights=np.exp(values - safe_top[group]), minlength=n_groups)
    with np.errstate(divide="ignore"):
        return np.log(total) + safe_top


def _log_ndtr_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(a) − Φ(b)) for a > b, accurate in both tails."""
    # In the upper tail Φ(a) − Φ(b) = Φ(−b) − Φ(−a), whose terms do not round to 1.
    upper = b > 0.0
    big = log_ndtr(np.where(upper, -b, a))
    small = log_ndtr(np.where(upper, -a, b))
    return big + np.log1p(-np.exp(small - big))


@functools.lru_cache(maxsize=None)
def _spiral_nodes(panel_length: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def speed(tau: np.ndarray) -> np.ndarray:
        return np.sqrt(1.0 + tau * tau) / _SPIRAL_DIVISOR

    tau, weights = _curve_nodes(speed, 0.0, _SPIRAL_TURN, panel_length)
    cx = -tau * np.cos(tau) / _SPIRAL_DIVISOR
    cy = tau * np.sin(tau) / _SPIRAL_DIVISOR
    log_w = np.log(weights * 2.0 * tau / _SPIRAL_TURN**2)     # τ has density 2τ/(3π)²
    return cx, cy, log_w


def _log_box_kernel(u: np.ndarray, h: float, std: float) -> np.ndarray:
    """log k(u), k(u) = (1/h) [Φ(u/σ) − Φ((u − h)/σ)]: the density of U[0, h] + N(0, σ²)."""
    return _log_ndtr_diff(u / std, (u - h) / std) - np.log(h)


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
    cx, cy, log_w = _spiral_nodes(_PANEL_LENGTH_IN_STDS * std / refine)
    log_w_max = log_w.max()
    out = np.empty(x.shape[0])
    rows = max(1, _CHUNK_ELEMENTS // cx.size)
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        d2 = _squared_distances(block, cx + 0.5 * h, cy + 0.5 * h)
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
        out[start:start + rows] = _group_logsumexp(terms, keep_row, block.shape[0])
    return out


def _log_prob_2spirals(x: np.ndarray, refine: float = 1.0) -> np.ndarray:
    # The mirrored spiral is the image of the first under x → −x, so p(x) = ½ (q(x) + q(−x)).
    return np.logaddexp(_log_spiral_arm(x, refine), _log_spiral_arm(-x, refine)) - np.log(2.0)


def _pinwheel_warp(phi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """h(φ) = φ − 0.25 exp(ρ cos φ): the output angle, up to the class offset."""
    return phi - _PINWHEEL_RATE * np.exp(rho * np.cos(phi))


def _pinwheel_warp_slope(phi: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """h'(φ) = 1 + 0.25 ρ sin φ exp(ρ cos φ): the Jacobian determinant of the warp."""
    return 1.0 + _PINWHEEL_RATE * rho * np.sin(phi) * np.exp(rho * np.cos(phi))


def _bisect(func: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
            increasing: np.ndarray) -> np.ndarray:
    """Elementwise root of a function monotone on [lo, hi] (sign change assumed)."""
    lo = lo.copy()
    hi = hi.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        root_is_right = (func(mid) < 0.0) == increasing
        lo = np.where(root_is_right, mid, lo)
        hi = np.where(root_is_right, hi, mid)
    return 0.5 * (lo + hi)


def _log_prob_pinwheel(x: np.ndarray) -> np.ndarray:
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
    rho = rho[valid]
    psi = psi[valid]
    n_points = rho.size

    # Where h' is smallest: cos φ* = (√(1 + 4ρ²) − 1)/(2ρ), written without cancellation.
    cos_star = 2.0 * rho / (np.sqrt(1.0 + 4.0 * rho * rho) + 1.0)
    phi_star = np.arccos(cos_star)
    folds = _pinwheel_warp_slope(-phi_star, rho) < 0.0

    # Piece 0 is increasing, piece 1 decreasing (empty when h is monotone).
    lo = np.stack([np.full(n_points, -np.pi), np.zeros(n_points)], axis=1)
    hi = np.stack([np.full(n_points, np.pi), np.zeros(n_points)], axis=1)
    if np.any(folds):
        rho_f = rho[folds]
        minus_pi = np.full(rho_f.size, -np.pi)

        def slope(phi: np.ndarray) -> np.ndarray:
            return _pinwheel_warp_slope(phi, rho_f)

        phi_a = _bisect(slope, minus_pi, -phi_star[folds], np.zeros(rho_f.size, dtype=bool))
        phi_b = _bisect(slope, -phi_star[folds], np.zeros(rho_f.size), np.ones(rho_f.size, dtype=bool))
        lo[folds] = np.stack([phi_b, phi_a], axis=1)
        hi[folds] = np.stack([phi_a + 2.0 * np.pi, phi_b], axis=1)
    h_lo = _pinwheel_warp(lo, rho[:, None])
    h_hi = _pinwheel_warp(hi, rho[:, None])

    # Levels ψ + 2πk/5 + 2πm inside each piece's range (half-open at the folds).
    offsets = 2.0 * np.pi * np.arange(_PINWHEEL_CLASSES) / _PINWHEEL_CLASSES
    level = (psi[:, None] + offsets)[:, :, None]                     # (N, 5, 1)
    two_pi = 2.0 * np.pi
    m_first = np.empty((n_points, _PINWHEEL_CLASSES, 2))
    m_last = np.empty((n_points, _PINWHEEL_CLASSES, 2))
    # increasing piece: h_lo ≤ level + 2πm < h_hi
    m_first[:, :, 0] = np.ceil((h_lo[:, None, 0] - level[:, :, 0]) / two_pi)
    m_last[:, :, 0] = np.ceil((h_hi[:, None, 0] - level[:, :, 0]) / two_pi) - 1.0
    # decreasing piece: h_hi < level + 2πm ≤ h_lo
    m_first[:, :, 1] = np.floor((h_hi[:, None, 1] - level[:, :, 0]) / two_pi) + 1.0
    m_last[:, :, 1] = np.floor((h_lo[:, None, 1] - level[:, :, 0]) / two_pi)
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

    phi = _bisect(residual, lo[point, piece], hi[point, piece], piece == 0)

    r = problem_rho * np.cos(phi)
    s = problem_rho * np.sin(phi)
    var_r = _PINWHEEL_RADIAL_STD**2
    var_s = _PINWHEEL_TANGENTIAL_STD**2
    log_base = (-0.5 * (r - 1.0) ** 2 / var_r - 0.5 * s**2 / var_s
                - np.log(2.0 * np.pi * _PINWHEEL_RADIAL_STD * _PINWHEEL_TANGENTIAL_STD))
    with np.errstate(divide="ignore"):
        log_jacobian = np.log(np.abs(_pinwheel_warp_slope(phi, problem_rho)))
    terms = log_base - log_jacobian
    log_sum = _group_logsumexp(terms, point, n_points)
    out[valid] = log_sum - np.log(_PINWHEEL_CLASSES) - 2.0 * np.log(_PINWHEEL_SCALE)
    return out


_LOG_PROBS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "moons": _log_prob_moons,
    "circles": lambda x: _log_ring_mixture(x, _CIRCLES_RADII, _CIRCLES_STD),
    "rings": lambda x: _log_ring_mixture(x, _RINGS_RADII, _RINGS_STD),
    "8gaussians": _log_prob_8gaussians,
    "pinwheel": _log_prob_pinwheel,
    "2spirals": _log_prob_2spirals,
    "checkerboard": _log_prob_checkerboard,
    "swissroll": _log_prob_swissroll,
}


def log_prob(name: str, x: np.ndarray) -> np.ndarray:
    """True log-density log p(x) of the dataset ``name`` at the rows of ``x``.

    Closed form for 8gaussians, circles, rings and checkerboard; 1-D
    Gauss–Legendre quadrature over the curve parameter for moons, swissroll
    and 2spirals (error in log p below 1e-11 where the data lie, ~1e-7 at
    log p ≈ −40); exact change of variables with bisection for pinwheel
    (see the module docstring for each formula).

    Parameters
    ----------
    name : str
        One of ``NAMES`` (case-insensitive).
    x : array_like
        Points, shape (N, 2), finite.

    Returns
    -------
    numpy.ndarray
        Shape (N,), float64. ``-inf`` where the density is zero (outside the
        checkerboard's squares) and, for pinwheel only, at |x| > 16, where the
        density is not computed (the total probability there is below e^{−272}).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the valid names), or ``x`` not of
        shape (N, 2) or not finite.
    """
    key = _check_name(name)
    points = check_array(x, 2, f"datasets.log_prob({key!r})", "x")
    if points.shape[0] == 0:
        return np.empty(0)
    return _LOG_PROBS[key](points)
