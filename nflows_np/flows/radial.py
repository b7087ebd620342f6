"""Radial flow (Rezende & Mohamed, 2015), written as x = g(z):

    x = g(z) = z + β h(α, r) (z − z₀),   r = ‖z − z₀‖,   h(α, r) = 1/(α + r),

a contraction (β < 0) or expansion (β > 0) around the centre z₀. Both directions
are in closed form: ‖x − z₀‖ is a monotone function of r whose inverse is the
positive root of a quadratic.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nflows_np.base import Flow, RngLike, as_generator
from nflows_np.numerics import sigmoid, softplus


class _Coefficients(NamedTuple):
    alpha: float        # α = softplus(α̂)
    p: float            # p = α + β = softplus(β̂)
    alpha_slope: float  # ∂α/∂α̂ = σ(α̂)
    p_slope: float      # ∂p/∂β̂ = σ(β̂)


def _log_det_terms(r: np.ndarray, alpha: float, p: float, dim: int) -> tuple[np.ndarray, ...]:
    """L = log|det ∂g/∂z| at radius r and its partial derivatives L_r, L_α, L_p (p = α + β).

    With 1 + βh = (r + p)/(α + r) and 1 + βh + βh′r = q/(α + r)², q = r(2α + r) + αp:
        L = (D − 1) [log(r + p) − log(α + r)] + log q − 2 log(α + r),
    every argument a sum of positive terms (no cancellation as β → −α).
    """
    q = r * (2.0 * alpha + r) + alpha * p
    s = alpha + r
    value = (dim - 1) * (np.log(r + p) - np.log(s)) + np.log(q) - 2.0 * np.log(s)
    d_r = (dim - 1) * (1.0 / (r + p) - 1.0 / s) + 2.0 * s / q - 2.0 / s
    d_alpha = -(dim - 1) / s + (2.0 * r + p) / q - 2.0 / s
    d_p = (dim - 1) / (r + p) + alpha / q
    return value, d_r, d_alpha, d_p


def _unit(v: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """v/‖v‖ per row, and 0 where v = 0 (there the radius has no gradient: the subgradient 0 is used)."""
    safe = np.where(norm > 0, norm, 1.0)
    return v / safe[:, None]


class Radial(Flow):
    """Radial flow  x = g(z) = z + β/(α + r) (z − z₀),  r = ‖z − z₀‖.

    Reparametrisation: α = softplus(α̂) > 0 and β = −α + softplus(β̂) ≥ −α, so
    with p = α + β = softplus(β̂) > 0, 1 + βh = (r + p)/(α + r) > 0 and r ↦ r(1 + βh) is
    strictly increasing: g is a bijection.

    inverse (z → x), closed form:
        x = z₀ + (z − z₀)(r + p)/(α + r),
        log|det ∂g/∂z| = (D − 1) log(1 + βh) + log(1 + βh + βh′r),  h′ = −1/(α + r)².
    forward (x → z), closed form too, no iteration: with y = x − z₀, ρ = ‖y‖,
        ρ = r (1 + β/(α + r))  ⇔  r² + (α + β − ρ) r − αρ = 0,
    whose non-negative root is taken in the form free of cancellation,
        r = (ρ − p + √Δ)/2 if ρ ≥ p,  else r = 2αρ / (√Δ + p − ρ),   √Δ = hypot(ρ − p, 2√(αρ)),
    then z = z₀ + y (α + r)/(r + p),  log|det ∂f/∂x| = −(log-det above at r).
    Accurate to rounding (inverse(forward(x)) = x to ~1e-15 relative).
    At z = z₀ (r = 0) the log-det has a cone-shaped kink; its gradient there is the subgradient 0.

    Cost: O(N·D) both ways.

    Parameters
    ----------
    dim : int
        D.
    rng : None, int or numpy.random.Generator
        Initialisation (normflows' Radial): z₀ ~ N(0, I), α ~ U(0, 1/2) and
        p = α + β = softplus(β̂), β̂ ~ U(−3/2, −1/2) (see ``__init__``).

    Attributes
    ----------
    params : "z0" (D,), "alpha_raw" () = α̂, "beta_raw" () = β̂ (scalars).
    """

    def __init__(self, dim: int, rng: RngLike = None):
        super().__init__(dim)
        rng = as_generator(rng)
        # Centres over the base's mass (z₀ ~ N(0, I)); small α (a sharp bump, h = 1/(α + r)),
        # α ~ U(0, 1/2), stored as α̂ = softplus⁻¹(α) = log(expm1(α)); and p = α + β ∈ (0.20, 0.47),
        # so each layer starts as a mild contraction or expansion (|β| < 1/2). This is normflows'
        # Radial initialisation (its α = |α̂| with α̂ ~ U(±1/2), its β̂ ~ U(−3/2, −1/2)); the
        # measurements that chose it over α̂, β̂ ~ N(0, 1): benchmarks/results/recipes.md.
        self.add_param("z0", rng.standard_normal(self.dim))
        alpha = 0.5 * (1.0 - rng.random())  # in (0, 1/2]: softplus⁻¹ is finite
        self.add_param("alpha_raw", np.float64(np.log(np.expm1(alpha))))
        self.add_param("beta_raw", np.float64(rng.uniform(-1.5, -0.5)))

    def _coefficients(self) -> _Coefficients:
        """α = softplus(α̂), p = α + β = softplus(β̂), and their derivatives σ(α̂), σ(β̂)."""
        alpha, p = float(softplus(self.params["alpha_raw"])), float(softplus(self.params["beta_raw"]))
        if not (alpha > 0 and p > 0):
            raise ValueError(f"Radial: softplus of alpha_raw = {float(self.params['alpha_raw']):.4g} or beta_raw = "
                             f"{float(self.params['beta_raw']):.4g} underflows to 0; the map is then singular at z0")
        return _Coefficients(alpha, p, float(sigmoid(self.params["alpha_raw"])),
                             float(sigmoid(self.params["beta_raw"])))

    def _raw_vjp(self, coefficients: _Coefficients, grad_alpha: float, grad_p: float) -> None:
        # α = softplus(α̂), p = softplus(β̂):  softplus′ = σ
        self.grads["alpha_raw"] += grad_alpha * coefficients.alpha_slope
        self.grads["beta_raw"] += grad_p * coefficients.p_slope

    def _centred(self, points: np.ndarray) -> tuple[_Coefficients, float, float, np.ndarray, np.ndarray]:
        """The coefficients (and α, p), the offsets from z₀ and their norms."""
        coefficients = self._coefficients()
        offset = points - self.params["z0"]
        return coefficients, coefficients.alpha, coefficients.p, offset, np.linalg.norm(offset, axis=1)

    # -- inverse: z → x ---------------------------------------------------------
    def _inverse(self, z):
        coefficients, alpha, p, v, r = self._centred(z)
        scale = (r + p) / (alpha + r)
        log_det, d_r, d_alpha, d_p = _log_det_terms(r, alpha, p, self.dim)
        return self.params["z0"] + v * scale[:, None], log_det, (coefficients, v, r, scale, d_r, d_alpha, d_p)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        coefficients, v, r, scale, d_r, d_alpha, d_p = cache
        alpha, p = coefficients.alpha, coefficients.p
        along = np.einsum("nd,nd->n", grad_x, v)
        # x = z₀ + v φ(r), φ = (r + p)/(α + r):  φ_r = (α − p)/(α + r)², φ_α = −φ/(α + r), φ_p = 1/(α + r);
        # r = ‖v‖: ∂r/∂v = v/r.
        grad_r = along * (alpha - p) / (alpha + r) ** 2 + grad_log_det * d_r
        grad_v = grad_x * scale[:, None] + grad_r[:, None] * _unit(v, r)
        self.grads["z0"] += (grad_x - grad_v).sum(axis=0)
        self._raw_vjp(coefficients, float(np.sum(-along * scale / (alpha + r) + grad_log_det * d_alpha)),
                      float(np.sum(along / (alpha + r) + grad_log_det * d_p)))
        return grad_v

    # -- forward: x → z, the positive root of a quadratic --------------------------
    def _forward(self, x):
        coefficients, alpha, p, y, rho = self._centred(x)
        sqrt_disc = np.hypot(rho - p, 2.0 * np.sqrt(alpha * rho))  # √Δ without overflow of (ρ − p)²
        # The two root formulas are equal; each avoids subtracting nearly equal numbers on its side.
        r = np.where(rho >= p, 0.5 * (rho - p + sqrt_disc), 2.0 * alpha * rho / (sqrt_disc + np.abs(p - rho)))
        scale = (alpha + r) / (r + p)
        log_det, d_r, d_alpha, d_p = _log_det_terms(r, alpha, p, self.dim)
        cache = (coefficients, y, rho, r, sqrt_disc, scale, d_r, d_alpha, d_p)
        return self.params["z0"] + y * scale[:, None], -log_det, cache

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        coefficients, y, rho, r, sqrt_disc, scale, d_r, d_alpha, d_p = cache
        alpha, p = coefficients.alpha, coefficients.p
        along = np.einsum("nd,nd->n", grad_z, y)
        # r solves G = r² + (p − ρ) r − αρ = 0, ∂G/∂r = 2r + p − ρ = √Δ:
        # ∂r/∂ρ = (r + α)/√Δ,  ∂r/∂α = ρ/√Δ,  ∂r/∂p = −r/√Δ.
        # z = z₀ + y ψ(r), ψ = (α + r)/(r + p):  ψ_r = (p − α)/(r + p)², ψ_α = 1/(r + p), ψ_p = −ψ/(r + p);
        # log_det = −L(r, α, p).
        grad_r = along * (p - alpha) / (r + p) ** 2 - grad_log_det * d_r
        grad_rho = grad_r * (r + alpha) / sqrt_disc
        grad_y = grad_z * scale[:, None] + grad_rho[:, None] * _unit(y, rho)
        self.grads["z0"] += (grad_z - grad_y).sum(axis=0)
        self._raw_vjp(coefficients, float(np.sum(along / (r + p) - grad_log_det * d_alpha + grad_r * rho / sqrt_disc)),
                      float(np.sum(-along * scale / (r + p) - grad_log_det * d_p - grad_r * r / sqrt_disc)))
        return grad_y
