"""The FFJORD 2-D toy datasets: exact samplers (Grathwohl et al., 2019, ``lib/toy_data.py``).

Each sampler draws ``n`` independent rows of its generating process, with
FFJORD's constants, NumPy only. Notation: ε ~ N(0, I₂), U{0..K−1} the uniform
distribution on classes, U[a, b] the uniform one on an interval.

One deliberate difference from FFJORD: FFJORD (through scikit-learn) puts the
angles of moons, circles and rings on an evenly spaced grid, splits the classes
into exactly equal parts and returns ``5·⌊n/5⌋`` pinwheel points. Here every row
is an independent draw from the limiting distribution, so that the exact
densities of :mod:`nflows_np.datasets.densities` are the density of every row
and ``sample`` returns exactly ``n`` rows.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nflows_np.validation import RngLike, as_generator, check_int

SAMPLER_PARAMETERS = """
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


def _sampler(function: Callable[[int, RngLike], np.ndarray]) -> Callable[[int, RngLike], np.ndarray]:
    """Append the parameters every sampler shares to its docstring (written once, here)."""
    function.__doc__ = (function.__doc__ or "").rstrip() + "\n" + SAMPLER_PARAMETERS
    return function


@_sampler
def moons(n: int, rng: RngLike = None) -> np.ndarray:
    """Two interleaved half circles ("moons").

    k ~ U{0,1}, θ ~ U[0, π], ε ~ N(0, I₂)::

        x = (2 cos θ − 1, 2 sin θ − 0.2) + 0.2 ε    if k = 0
        x = (1 − 2 cos θ, 0.8 − 2 sin θ) + 0.2 ε    if k = 1

    This is scikit-learn's ``make_moons(noise=0.1)`` rescaled by FFJORD
    (``x·2 + (−1, −0.2)``), with i.i.d. angles and classes.
    """
    n = check_int(n, "n (number of samples)", minimum=0)
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


@_sampler
def circles(n: int, rng: RngLike = None) -> np.ndarray:
    """Two concentric noisy circles.

    k ~ U{0,1}, θ ~ U[0, 2π), ε ~ N(0, I₂), R = (3, 1.5)::

        x = R_k (cos θ, sin θ) + 0.24 ε

    scikit-learn's ``make_circles(factor=0.5, noise=0.08)`` times 3 (FFJORD).
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    return _noisy_circles(n, as_generator(rng), _CIRCLES_RADII, _CIRCLES_STD)


@_sampler
def rings(n: int, rng: RngLike = None) -> np.ndarray:
    """Four concentric thin rings.

    k ~ U{0..3}, θ ~ U[0, 2π), ε ~ N(0, I₂), R = (3, 2.25, 1.5, 0.75)::

        x = R_k (cos θ, sin θ) + 0.08 ε

    (FFJORD: circles of radii 1, ¾, ½, ¼ scaled by 3, then noise of std 0.08.)
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    return _noisy_circles(n, as_generator(rng), _RINGS_RADII, _RINGS_STD)


def _gaussian_centres() -> np.ndarray:
    angles = np.arange(8) * (np.pi / 4.0)
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _GAUSSIANS_RADIUS * unit / _GAUSSIANS_DIVISOR


@_sampler
def eight_gaussians(n: int, rng: RngLike = None) -> np.ndarray:
    """Eight Gaussians on a circle (dataset name ``"8gaussians"``).

    k ~ U{0..7}, ε ~ N(0, I₂)::

        x = (4 (cos πk/4, sin πk/4) + 0.5 ε) / 1.414

    so the centres lie on a circle of radius 4/1.414 ≈ 2.83 and each
    component has standard deviation 0.5/1.414 ≈ 0.354 (FFJORD's literal 1.414).
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    gen = as_generator(rng)
    k = gen.integers(0, 8, size=n)
    noise = gen.standard_normal((n, 2))
    std = _GAUSSIANS_STD / _GAUSSIANS_DIVISOR
    return _gaussian_centres()[k] + std * noise


@_sampler
def pinwheel(n: int, rng: RngLike = None) -> np.ndarray:
    """Five spiral arms ("pinwheel").

    k ~ U{0..4}, ε₁, ε₂ ~ N(0, 1)::

        r = 1 + 0.3 ε₁,   s = 0.1 ε₂,   a = 2πk/5 + 0.25 exp(r),
        x = 2 (r cos a + s sin a,  −r sin a + s cos a)

    i.e. the point (r, s) rotated by the angle −a, which grows with r.
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    gen = as_generator(rng)
    k = gen.integers(0, _PINWHEEL_CLASSES, size=n)
    noise = gen.standard_normal((n, 2))
    r = 1.0 + _PINWHEEL_RADIAL_STD * noise[:, 0]
    s = _PINWHEEL_TANGENTIAL_STD * noise[:, 1]
    angle = 2.0 * np.pi * k / _PINWHEEL_CLASSES + _PINWHEEL_RATE * np.exp(r)
    x1 = r * np.cos(angle) + s * np.sin(angle)
    x2 = -r * np.sin(angle) + s * np.cos(angle)
    return _PINWHEEL_SCALE * np.stack([x1, x2], axis=1)


@_sampler
def two_spirals(n: int, rng: RngLike = None) -> np.ndarray:
    """Two interleaved spirals (dataset name ``"2spirals"``).

    sign ~ U{+1, −1}, u ~ U[0, 1], b ~ U[0, ½]², ε ~ N(0, I₂)::

        τ = 3π √u                      (density 2τ / (3π)² on [0, 3π])
        x = sign · (τ (−cos τ, sin τ) + b) / 3 + 0.1 ε

    The uniform offset b is added before the mirroring, as in FFJORD.
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    gen = as_generator(rng)
    sign = np.where(gen.integers(0, 2, size=n) == 0, 1.0, -1.0)
    tau = _SPIRAL_TURN * np.sqrt(gen.uniform(0.0, 1.0, size=n))
    box = gen.uniform(0.0, _SPIRAL_BOX, size=(n, 2))
    noise = gen.standard_normal((n, 2))
    curve = tau[:, None] * np.stack([-np.cos(tau), np.sin(tau)], axis=1)
    return sign[:, None] * (curve + box) / _SPIRAL_DIVISOR + _SPIRAL_STD * noise


@_sampler
def checkerboard(n: int, rng: RngLike = None) -> np.ndarray:
    """Uniform on the dark squares of a 4×4 checkerboard of side 8.

    u₁, u₂ ~ U[0, 1), B ~ U{0,1}::

        x₁' = 4 u₁ − 2,   x₂' = u₂ − 2B + (⌊x₁'⌋ mod 2),   x = 2 (x₁', x₂')

    The density is 1/32 on the eight 2×2 squares of [−4, 4)² where
    ⌊x₁/2⌋ + ⌊x₂/2⌋ is even, and 0 elsewhere.
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    gen = as_generator(rng)
    x1 = 4.0 * gen.uniform(0.0, 1.0, size=n) - 2.0
    shift = 2.0 * gen.integers(0, 2, size=n)
    x2 = gen.uniform(0.0, 1.0, size=n) - shift + np.mod(np.floor(x1), 2.0)
    return 2.0 * np.stack([x1, x2], axis=1)


@_sampler
def swissroll(n: int, rng: RngLike = None) -> np.ndarray:
    """A 2-D Swiss roll.

    u ~ U[0, 1], ε ~ N(0, I₂)::

        t = 1.5π (1 + 2u)                    (t ~ U[1.5π, 4.5π])
        x = (t cos t, t sin t) / 5 + 0.2 ε

    scikit-learn's ``make_swiss_roll(noise=1.0)`` keeps columns 0 and 2 and
    divides by 5 (FFJORD); its unused middle column is not drawn.
    """
    n = check_int(n, "n (number of samples)", minimum=0)
    gen = as_generator(rng)
    t = gen.uniform(_SWISSROLL_T_MIN, _SWISSROLL_T_MAX, size=n)
    noise = gen.standard_normal((n, 2))
    curve = t[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return curve / _SWISSROLL_DIVISOR + _SWISSROLL_STD * noise
