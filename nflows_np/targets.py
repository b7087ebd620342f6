"""Target densities π(x) = exp(−U(x)) / Z for reverse-KL training.

Reverse KL fits a flow to a density known only up to its normaliser Z
(lecture, "Reverse KL for flow model")::

    KL(p‖π) = E_{p(z)}[ log p(z) − log|det ∂g/∂z| − log π̃(g(z)) ] + log Z,

so a target provides the *unnormalised* log density ``log_prob(x) = −U(x)``,
its analytic gradient ``grad_log_prob(x) = −∇U(x)`` (hand-written), and, as a
reference, ``log_z = log ∫ exp(−U)`` with ``log_z_domain`` saying over which
region that integral is taken.

Available targets (``get(name)``, names case-insensitive, listed in ``NAMES``):

- ``"U1"`` … ``"U4"``: the four energies of Rezende & Mohamed (2015), Table 1.
  The paper writes their argument as z = (z₁, z₂); here it is the point x at
  which the target is evaluated (in reverse KL, x = g(z)). The docstrings keep
  the paper's z₁, z₂.
- ``"mog2"``: ½ N((−2, 0), 0.5² I) + ½ N((2, 0), 0.5² I).
- ``"mog8"``: (1/8) Σ_k N(4 (cos 2πk/8, sin 2πk/8), 0.5² I), k = 0..7.
  Neighbouring centres are 2·4·sin(π/8) ≈ 3.06 = 6.1 std apart, so the modes
  are well separated and mode-seeking (reverse KL) versus mode-covering
  (forward KL) is visible. Both mixtures are exactly normalised: ``log_z = 0``.

Normalisation of U2–U4. U2, U3 and U4 do not grow in z₁, so ∫ exp(−U) over
the plane diverges; the paper draws them on the box [−4, 4]². Reverse KL
against such a target is not bounded below: a flow lowers the loss by
spreading along z₁ without end (fits put 64–73 % of their mass outside the box).
So ``get("U2")`` … ``get("U4")`` return the paper's energy inside the strip
|z₁| ≤ 4 with a soft Gaussian wall beyond it::

    U_wall(z) = U(z) + ½ ((|z₁| − 4)₊ / σ)²,   σ = WALL_WIDTH = 0.5,

the scale of the bands' own widths (0.35–0.6), so the wall is no stiffer than
the target. In z₂ every U2–U4 is a sum of Gaussian bumps of widths s_b around
curves m_b(z₁), so the integral is closed form: ∫ e^{−U} dz₂ = Σ_b s_b √(2π)
for every z₁, ∫ e^{−wall} dz₁ = 8 + σ √(2π), and

    Z = (Σ_b s_b √(2π)) · (8 + σ √(2π))      (``log_z_domain == "plane"``).

Reverse KL against it is a KL, ≥ 0. The paper's version, −U on the whole plane
with log Z of the box, stays available as ``get(name, wall=False)``
(``log_z_domain == "box [-4,4]^2"``); against it ``loss + log_z`` is a KL only
while the flow's mass stays in the box. ``benchmarks/target_log_z.py`` checks both
normalisers by quadrature.

``sample(n, rng)`` draws exact samples for every target here: the mixtures
directly; the walled U2–U4 directly too (z₁ from e^{−wall}, a branch b with
probability ∝ s_b, z₂ = m_b(z₁) + s_b ε); U1 and the unwalled U2–U4 by
rejection from the uniform density on [−4, 4]² (exact draws of the density
*restricted to the box*; for U1 the box holds all but a relative 9e-9 of the
mass, measured by ``benchmarks/target_log_z.py``).
A ``Target`` subclass without an exact sampler inherits a ``sample`` that
raises ``NotImplementedError``.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np

from nflows_np.numerics import sigmoid
from nflows_np.validation import RngLike, as_generator, check_array, check_int

__all__ = ["NAMES", "WALL_WIDTH", "Target", "EnergyTarget", "GaussianMixture", "get", "walled_log_z"]

NAMES: tuple[str, ...] = ("U1", "U2", "U3", "U4", "mog2", "mog8")

Bounds = tuple[tuple[float, float], tuple[float, float]]
BOX: Bounds = ((-4.0, 4.0), (-4.0, 4.0))

WALL_WIDTH = 0.5  # σ of the soft wall of U2–U4 beyond |z₁| = 4 (module docstring)

# log ∫ exp(−U), measured by benchmarks/target_log_z.py (its output, with the
# quadrature error estimates, is in benchmarks/results/target_log_z.txt).
# Issue references (Simpson on [−4, 4]²): 1.87750, 2.08209, 2.64171, 2.68457.
_LOG_Z = {
    "U1": 1.877501626110,  # whole plane (the box [−4, 4]² alone: 1.877501616798)
    "U2": 2.082089343010,  # box [−4, 4]², the paper's energy (wall=False)
    "U3": 2.641705130859,  # box [−4, 4]²
    "U4": 2.684567670243,  # box [−4, 4]²
}

# The z₂-widths s_b of the Gaussian bumps of U2–U4 (see _energy_u2 … _energy_u4).
_BUMP_WIDTHS = {"U2": (0.4,), "U3": (0.35, 0.35), "U4": (0.4, 0.35)}


def walled_log_z(name: str, width: float = WALL_WIDTH) -> float:
    """log Z of the walled U2–U4 on the plane: log(Σ_b s_b √(2π)) + log(8 + σ √(2π)) (closed form)."""
    root_2pi = np.sqrt(2.0 * np.pi)
    return float(np.log(sum(_BUMP_WIDTHS[name]) * root_2pi) + np.log(8.0 + width * root_2pi))


class Target(abc.ABC):
    """A 2-D target density π(x) = exp(−U(x)) / Z, known up to Z.

    Attributes
    ----------
    name : str
        The name ``get`` knows it by.
    dim : int
        Dimension of x (always 2 here).
    log_z : float or None
        Reference log Z = log ∫ exp(−U(x)) dx over ``log_z_domain``.
    log_z_domain : str
        ``"plane"`` or ``"box [-4,4]^2"``: the region ``log_z`` integrates over.
    bounds : ((xmin, xmax), (ymin, ymax))
        A window that shows the density, for plotting.

    Subclasses implement ``_log_prob_and_grad(x)`` for validated float64 x of
    shape (N, 2), and ``sample`` if they can draw exact samples.
    """

    dim = 2

    def __init__(self, name: str, bounds: Bounds, log_z: float | None, log_z_domain: str):
        self.name = name
        self.bounds = bounds
        self.log_z = log_z
        self.log_z_domain = log_z_domain

    def log_prob(self, x: Any) -> np.ndarray:
        """Unnormalised log density log π̃(x) = −U(x), shape (N,).

        Computed in the same pass as the gradient (one code path for both);
        cost O(N), O(N·K) for a K-component mixture.
        """
        return self.log_prob_and_grad(x)[0]

    def grad_log_prob(self, x: Any) -> np.ndarray:
        """Analytic gradient ∇ₓ log π̃(x) = −∇U(x), shape (N, 2)."""
        return self.log_prob_and_grad(x)[1]

    def log_prob_and_grad(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Both ``log_prob(x)`` and ``grad_log_prob(x)`` in one pass.

        Raises
        ------
        TypeError
            If x is not a real numeric array.
        ValueError
            If x is not of shape (N, 2) or has non-finite entries; the message
            names the target.
        """
        return self._log_prob_and_grad(check_array(x, self.dim, f"target {self.name!r}", "x"))

    @abc.abstractmethod
    def _log_prob_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(−U(x), −∇U(x)) for validated float64 x of shape (N, 2)."""

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """Exact samples, shape (n, 2); this base version has none and raises."""
        raise NotImplementedError(f"target {self.name!r} has no exact sampler")

    def _check_n(self, n: Any) -> int:
        return check_int(n, f"target {self.name!r}: sample size n", minimum=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, log_z={self.log_z}, log_z_domain={self.log_z_domain!r})"


# --------------------------------------------------------------------------
# Shared pieces: log-sum-exp with its gradient, the paper's w-functions.
# A gradient is an (N, 2) array (∂/∂z₁, ∂/∂z₂).


def _log_sum_exp(a: np.ndarray, grad_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ℓ = log Σ_k exp(a_k) and ∇ℓ = Σ_k softmax(a)_k ∇a_k.

    a : (N, K) exponents; grad_a : (N, K, 2) their gradients. Cost O(N·K).
    """
    # logaddexp adds pairwise as max + log1p(exp(−|a − b|)): no exp of a large number.
    lse = np.logaddexp.reduce(a, axis=1)
    weights = np.exp(a - lse[:, None])  # softmax; a_k ≤ ℓ, so no overflow
    return lse, np.einsum("nk,nkd->nd", weights, grad_a)


_WaveFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # z₁ ↦ (w(z₁), w'(z₁))


def _w1(z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w₁ = sin(2π z₁ / 4),  w₁' = (π/2) cos(2π z₁ / 4)."""
    return np.sin(0.5 * np.pi * z1), 0.5 * np.pi * np.cos(0.5 * np.pi * z1)


def _w2(z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w₂ = 3 exp(−½((z₁ − 1)/0.6)²),  w₂' = −w₂ (z₁ − 1)/0.6²."""
    w = 3.0 * np.exp(-0.5 * ((z1 - 1.0) / 0.6) ** 2)
    return w, -w * (z1 - 1.0) / 0.6**2


def _w3(z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w₃ = 3 σ((z₁ − 1)/0.3),  w₃' = 3 σ(t) σ(−t) / 0.3 with t = (z₁ − 1)/0.3."""
    t = (z1 - 1.0) / 0.3
    return 3.0 * sigmoid(t), 3.0 * sigmoid(t) * sigmoid(-t) / 0.3


def _bump_exponent(u: np.ndarray, grad_u: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """a = −½(u/s)² and ∇a = −(u/s²) ∇u (the exponent of a Gaussian bump)."""
    return -0.5 * (u / s) ** 2, -(u / s**2)[:, None] * grad_u


# --------------------------------------------------------------------------
# The energies of Rezende & Mohamed (2015), Table 1. Each returns (U, ∇U).


def _energy_u1(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U₁(z) = ½((‖z‖ − 2)/0.4)² − ln(e^{−½((z₁−2)/0.6)²} + e^{−½((z₁+2)/0.6)²}).

    ∇U₁ = ((‖z‖ − 2)/0.4²) z/‖z‖ − Σ_± s_± ∇a_±,  a_± = −½((z₁ ∓ 2)/0.6)²,
    s = softmax(a₊, a₋). At z = 0, where ‖z‖ has no gradient, z/‖z‖ is taken
    as 0 (the symmetric, minimum-norm choice from the cone's subdifferential);
    the second term's gradient is also 0 there, so ∇U₁(0) = 0.
    """
    r = np.hypot(z[:, 0], z[:, 1])
    safe_r = np.where(r > 0.0, r, 1.0)
    unit = np.where((r > 0.0)[:, None], z / safe_r[:, None], 0.0)  # z/‖z‖, 0 at z = 0
    ring, grad_ring = _bump_exponent(r - 2.0, unit, 0.4)
    e1 = np.broadcast_to([1.0, 0.0], z.shape)
    a_plus, grad_plus = _bump_exponent(z[:, 0] - 2.0, e1, 0.6)
    a_minus, grad_minus = _bump_exponent(z[:, 0] + 2.0, e1, 0.6)
    # −ln(e^a + e^b) via log-sum-exp: the two exponents underflow far from z₁ = ±2.
    lse, grad_lse = _log_sum_exp(np.stack([a_plus, a_minus], 1), np.stack([grad_plus, grad_minus], 1))
    return -ring - lse, -grad_ring - grad_lse


def _offset_from_wave(z: np.ndarray, shift: _WaveFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """u = z₂ − w₁(z₁) + w(z₁) and ∇u = (−w₁' + w', 1); w = 0 if ``shift`` is None."""
    w1, dw1 = _w1(z[:, 0])
    u, du1 = z[:, 1] - w1, -dw1
    if shift is not None:
        w, dw = shift(z[:, 0])
        u, du1 = u + w, du1 + dw
    return u, np.stack([du1, np.ones_like(du1)], axis=1)


def _energy_u2(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U₂(z) = ½((z₂ − w₁)/0.4)²,  ∇U₂ = ((z₂ − w₁)/0.4²) (−w₁', 1)."""
    a, grad_a = _bump_exponent(*_offset_from_wave(z), 0.4)
    return -a, -grad_a


def _two_branch_energy(z: np.ndarray, shift: _WaveFn, s1: float, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """U = −ln(e^{−½((z₂ − w₁)/s₁)²} + e^{−½((z₂ − w₁ + w)/s₂)²}),  w = ``shift``(z₁).

    ∇U = −Σ_k s_k ∇a_k with a_k the two exponents and s = softmax(a₁, a₂).
    """
    a1, grad_a1 = _bump_exponent(*_offset_from_wave(z), s1)
    a2, grad_a2 = _bump_exponent(*_offset_from_wave(z, shift), s2)
    # −ln(e^a + e^b) via log-sum-exp: both exponents can underflow far from the curves.
    lse, grad_lse = _log_sum_exp(np.stack([a1, a2], 1), np.stack([grad_a1, grad_a2], 1))
    return -lse, -grad_lse


def _bump_centres(name: str, z1: np.ndarray) -> list[np.ndarray]:
    """m_b(z₁): the z₂ at which each bump of U2–U4 peaks (w₁, and w₁ − w₂ or w₁ − w₃)."""
    w1 = _w1(z1)[0]
    return {"U2": lambda: [w1], "U3": lambda: [w1, w1 - _w2(z1)[0]], "U4": lambda: [w1, w1 - _w3(z1)[0]]}[name]()


def _energy_u3(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U₃(z) = −ln(e^{−½((z₂ − w₁)/0.35)²} + e^{−½((z₂ − w₁ + w₂)/0.35)²})."""
    return _two_branch_energy(z, _w2, 0.35, 0.35)


def _energy_u4(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U₄(z) = −ln(e^{−½((z₂ − w₁)/0.4)²} + e^{−½((z₂ − w₁ + w₃)/0.35)²})."""
    return _two_branch_energy(z, _w3, 0.4, 0.35)


# exp(−U) ≤ 2 for U1–U4: each is a product/sum of at most two factors e^{a}, a ≤ 0,
# with U1 = (one factor ≤ 1)·(sum of two ≤ 2). This bounds the rejection sampler.
_EXP_NEG_U_MAX = 2.0


class EnergyTarget(Target):
    """π(z) ∝ exp(−U(z)) for one of Rezende & Mohamed's energies U1–U4, optionally walled.

    ``wall`` (U2–U4 only): the width σ of the soft wall ½((|z₁| − 4)₊/σ)² added to
    U (module docstring); None: ``log_prob`` = −U on the whole plane.
    ``sample`` draws exactly: from the walled density directly (see the module
    docstring); otherwise from exp(−U) restricted to the box [−4, 4]², by
    rejection: propose z ~ Uniform([−4, 4]²), accept with probability exp(−U(z)) / 2
    (exp(−U) ≤ 2 for all four). The acceptance rate is Z_box / (64·2), 5–12 %; the
    expected cost is O(n / rate).
    """

    def __init__(self, name: str, energy: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 log_z: float, log_z_domain: str, wall: float | None = None):
        super().__init__(name, BOX, log_z, log_z_domain)
        self._energy = energy
        self.wall = wall

    def _log_prob_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        energy, grad_energy = self._energy(x)
        if self.wall is not None:
            # wall = ½(d/σ)², d = (|z₁| − 4)₊:  ∂wall/∂z₁ = sign(z₁) d/σ²  (0 inside the strip)
            depth = np.maximum(np.abs(x[:, 0]) - BOX[0][1], 0.0)
            energy = energy + 0.5 * (depth / self.wall) ** 2
            grad_energy = grad_energy.copy()
            grad_energy[:, 0] += np.sign(x[:, 0]) * depth / self.wall**2
        return -energy, -grad_energy

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """n exact draws, shape (n, 2): from the walled density, or from exp(−U) restricted to [−4, 4]²."""
        n, rng = self._check_n(n), as_generator(rng)
        return self._sample_walled(n, rng) if self.wall is not None else self._sample_box(n, rng)

    def _sample_walled(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """z₁ ∝ e^{−wall} (uniform on [−4, 4] w.p. 8/(8 + σ√(2π)), else 4 + σ|ε| on a random side);
        branch b w.p. s_b / Σ s; z₂ = m_b(z₁) + s_b ε."""
        half, root_2pi = BOX[0][1], np.sqrt(2.0 * np.pi)
        inside = rng.uniform(size=n) < 2.0 * half / (2.0 * half + self.wall * root_2pi)
        side = rng.choice([-1.0, 1.0], size=n)
        z1 = np.where(inside, rng.uniform(-half, half, size=n),
                      side * (half + self.wall * np.abs(rng.standard_normal(n))))
        widths = np.array(_BUMP_WIDTHS[self.name])
        branch = rng.choice(widths.size, size=n, p=widths / widths.sum())
        centre = np.choose(branch, _bump_centres(self.name, z1))
        return np.stack([z1, centre + widths[branch] * rng.standard_normal(n)], axis=1)

    def _sample_box(self, n: int, rng: np.random.Generator) -> np.ndarray:
        (x_lo, x_hi), (y_lo, y_hi) = BOX
        # Expected acceptance rate Z / (area · max exp(−U)); it only sizes the batches.
        rate = np.exp(self.log_z) / ((x_hi - x_lo) * (y_hi - y_lo) * _EXP_NEG_U_MAX)
        accepted, count = [], 0
        while count < n:
            m = int(1.2 * (n - count) / rate) + 64
            proposal = rng.uniform((x_lo, y_lo), (x_hi, y_hi), size=(m, 2))
            keep = rng.uniform(size=m) * _EXP_NEG_U_MAX < np.exp(-self._energy(proposal)[0])
            accepted.append(proposal[keep])
            count += int(keep.sum())
        return np.concatenate(accepted)[:n] if accepted else np.empty((0, 2))


class GaussianMixture(Target):
    """Equal-weight mixture of isotropic Gaussians, exactly normalised.

    π(x) = (1/K) Σ_k N(x | μ_k, σ² I),
    log π(x) = log Σ_k exp(a_k) − log K − log(2πσ²),  a_k = −‖x − μ_k‖² / (2σ²),
    ∇ log π(x) = Σ_k r_k (μ_k − x) / σ²,  r = softmax(a) (the responsibilities).
    Mean m = (1/K) Σ μ_k;  covariance σ² I + (1/K) Σ μ_k μ_kᵀ − m mᵀ.
    ``log_z = 0``. Cost O(N·K) for the density, O(n) to sample.
    """

    def __init__(self, name: str, means: Any, std: float, bounds: Bounds):
        super().__init__(name, bounds, 0.0, "plane")
        self.means = np.array(means, dtype=np.float64).reshape(-1, self.dim)
        self.std = float(std)

    def _log_prob_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diff = self.means[None, :, :] - x[:, None, :]  # μ_k − x, (N, K, 2)
        a = -0.5 * np.einsum("nkd,nkd->nk", diff, diff) / self.std**2
        lse, grad = _log_sum_exp(a, diff / self.std**2)
        log_norm = np.log(len(self.means)) + np.log(2.0 * np.pi * self.std**2)
        return lse - log_norm, grad

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """n exact draws: k ~ Uniform{1..K}, x = μ_k + σ ε with ε ~ N(0, I)."""
        n, rng = self._check_n(n), as_generator(rng)
        k = rng.integers(len(self.means), size=n)
        return self.means[k] + self.std * rng.standard_normal((n, self.dim))

    @property
    def mean(self) -> np.ndarray:
        """Mixture mean (1/K) Σ_k μ_k, shape (2,)."""
        return self.means.mean(axis=0)

    @property
    def cov(self) -> np.ndarray:
        """Mixture covariance σ² I + (1/K) Σ_k μ_k μ_kᵀ − m mᵀ, shape (2, 2)."""
        centred = self.means - self.mean
        return self.std**2 * np.eye(self.dim) + centred.T @ centred / len(self.means)


def _mog8() -> GaussianMixture:
    angles = 2.0 * np.pi * np.arange(8) / 8
    return GaussianMixture("mog8", 4.0 * np.stack([np.cos(angles), np.sin(angles)], 1), 0.5,
                           ((-6.0, 6.0), (-6.0, 6.0)))


_ENERGIES = {"U2": _energy_u2, "U3": _energy_u3, "U4": _energy_u4}


def _strip_target(name: str, wall: bool) -> EnergyTarget:
    if wall:
        return EnergyTarget(name, _ENERGIES[name], walled_log_z(name), "plane", WALL_WIDTH)
    return EnergyTarget(name, _ENERGIES[name], _LOG_Z[name], "box [-4,4]^2")


_BUILDERS: dict[str, Callable[[bool], Target]] = {
    "U1": lambda wall: EnergyTarget("U1", _energy_u1, _LOG_Z["U1"], "plane"),
    "U2": lambda wall: _strip_target("U2", wall),
    "U3": lambda wall: _strip_target("U3", wall),
    "U4": lambda wall: _strip_target("U4", wall),
    "mog2": lambda wall: GaussianMixture("mog2", [[-2.0, 0.0], [2.0, 0.0]], 0.5, BOX),
    "mog8": lambda wall: _mog8(),
}


def get(name: str, wall: bool = True) -> Target:
    """The target called ``name`` (one of ``NAMES``, case-insensitive), a new object.

    ``wall`` (U2–U4 only, ignored for the others): True, the walled density,
    normalisable on the plane; False, the paper's −U with log Z of the box
    [−4, 4]² (module docstring).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    canonical = {key.lower(): key for key in NAMES}.get(name.lower() if isinstance(name, str) else None)
    if canonical is None:
        raise ValueError(f"unknown target {name!r}; valid names (case-insensitive): {', '.join(NAMES)}")
    if not isinstance(wall, (bool, np.bool_)):
        raise TypeError(f"get: wall must be True or False, got {wall!r}")
    return _BUILDERS[canonical](bool(wall))
