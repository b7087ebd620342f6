"""The FFJORD 2-D toy datasets: exact samplers, exact log-densities, entropies.

The eight datasets of Grathwohl et al. (2019), FFJORD, file ``lib/toy_data.py``
of rtqichen/ffjord, with FFJORD's constants, written with NumPy only. ``sample(name, n, rng)`` draws, ``log_prob(name, x)``
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
exactly ln 32), both by ``benchmarks/dataset_entropies.py`` (results with
their Monte Carlo standard errors in ``benchmarks/results/``).

Each dataset is one :class:`Dataset` record of :data:`REGISTRY` (sampler, exact
log-density, entropy, description); :func:`sample` and :func:`log_prob` look a
name up there. The samplers live in :mod:`~nflows_np.datasets.toys`, the
densities in :mod:`~nflows_np.datasets.densities` (their numerics in
:mod:`~nflows_np.datasets.quadrature`), real images in
:mod:`~nflows_np.datasets.digits`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nflows_np.datasets import densities
from nflows_np.datasets.digits import load_digits
from nflows_np.datasets.toys import (
    checkerboard,
    circles,
    eight_gaussians,
    moons,
    pinwheel,
    rings,
    swissroll,
    two_spirals,
)
from nflows_np.validation import RngLike, check_array, lookup

__all__ = [
    "Dataset", "REGISTRY", "NAMES", "ENTROPY", "get", "sample", "log_prob", "load_digits",
    "moons", "circles", "rings", "eight_gaussians", "pinwheel", "two_spirals", "checkerboard", "swissroll",
]


@dataclass(frozen=True)
class Dataset:
    """One toy dataset: how to draw it, its exact log-density, its entropy, and what it is.

    Attributes
    ----------
    name : str
        The name ``sample`` and ``log_prob`` take.
    sampler : callable
        ``sampler(n, rng) -> (n, 2)`` independent rows.
    log_prob : callable
        ``log_prob(x) -> (N,)`` on validated float64 points of shape (N, 2).
    entropy : float
        H = −E[log p(x)] in nats: the best achievable expected test NLL of any model.
    description : str
        One line for listings.
    """

    name: str
    sampler: Callable[[int, RngLike], np.ndarray]
    log_prob: Callable[[np.ndarray], np.ndarray]
    entropy: float
    description: str


# Entropies measured by benchmarks/dataset_entropies.py: −Σ p log p · (0.025)² over a grid
# on [−7, 7]² (spacing 0.04 agrees to < 1e-7), confirmed by Monte Carlo over 4·10⁶ samples.
REGISTRY: dict[str, Dataset] = {record.name: record for record in (
    Dataset("moons", moons, densities.log_prob_moons, 2.393879, "two interleaved half circles"),
    Dataset("circles", circles, densities.log_prob_circles, 3.268136, "two concentric noisy circles"),
    Dataset("rings", rings, densities.log_prob_rings, 2.623183, "four concentric thin rings"),
    Dataset("8gaussians", eight_gaussians, densities.log_prob_eight_gaussians, 2.831880,
            "eight Gaussians on a circle"),
    Dataset("pinwheel", pinwheel, densities.log_prob_pinwheel, 2.317788, "five spiral arms"),
    Dataset("2spirals", two_spirals, densities.log_prob_two_spirals, 2.645450, "two interleaved spirals"),
    Dataset("checkerboard", checkerboard, densities.log_prob_checkerboard, math.log(32.0),
            "uniform on the dark squares of a 4×4 checkerboard"),
    Dataset("swissroll", swissroll, densities.log_prob_swissroll, 2.669646, "a 2-D Swiss roll"),
)}

NAMES: tuple[str, ...] = tuple(REGISTRY)
ENTROPY: dict[str, float] = {name: record.entropy for name, record in REGISTRY.items()}


def get(name: str) -> Dataset:
    """The :class:`Dataset` record of ``name`` (case-insensitive; ValueError listing the valid names)."""
    return REGISTRY[lookup(name, REGISTRY, "dataset name")]


def sample(name: str, n: int, rng: RngLike = None) -> np.ndarray:
    """Draw ``n`` independent points of the dataset ``name``.

    Parameters
    ----------
    name : str
        One of ``NAMES`` (case-insensitive).
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
        ``name`` not a str, ``n`` not an integer, or ``rng`` not None / int / Generator.
    """
    return get(name).sampler(n, rng)


def log_prob(name: str, x: np.ndarray) -> np.ndarray:
    """True log-density log p(x) of the dataset ``name`` at the rows of ``x``.

    Closed form for 8gaussians, circles, rings and checkerboard; 1-D
    Gauss–Legendre quadrature over the curve parameter for moons, swissroll
    and 2spirals (error in log p below 1e-11 where the data lie, ~1e-7 at
    log p ≈ −40); exact change of variables with bisection for pinwheel.

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
    record = get(name)
    points = check_array(x, 2, f"datasets.log_prob({record.name!r})", "x")
    if points.shape[0] == 0:
        return np.empty(0)
    return record.log_prob(points)
