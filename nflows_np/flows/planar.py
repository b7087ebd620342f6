"""Planar flow (Rezende & Mohamed, 2015), written on the slides as x = g(z):

    x = g(z) = z + û h(wᵀz + b),   h = tanh,   b a scalar,

with the determinant by the matrix determinant lemma,
log|det ∂g/∂z| = log|det(I + h′ û wᵀ)| = log|1 + h′(wᵀz + b) wᵀû|.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nflows_np.base import Flow, RngLike, as_generator
from nflows_np.flows.residual import solve_tanh_root, tanh_gate
from nflows_np.numerics import sigmoid, softplus
from nflows_np.validation import check_bool


@dataclass
class _Reparam:
    """û, e = 1 + wᵀû, and the coefficients of their derivatives (see ``Planar._reparam``)."""

    u: np.ndarray        # the parameters of the pass (copies)
    w: np.ndarray
    u_hat: np.ndarray
    e: float
    k: float             # û = u + k w
    dk_ds: float         # ∂k/∂s, s = wᵀu
    k_over_norm2: float  # k / ‖w‖² (∂k/∂‖w‖² = −k/‖w‖²)
    de_ds: float         # ∂e/∂s


class Planar(Flow):
    """Planar flow  x = g(z) = z + û tanh(wᵀz + b)  with wᵀû > −1 (a diffeomorphism).

    Reparametrisation (Rezende & Mohamed, 2015, appendix A):

        û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,   m(s) = −1 + softplus(s),

    so that wᵀû = m(wᵀu) > −1; with h′ ∈ (0, 1], 1 + h′ wᵀû > 0 and g is a bijection.
    (Note ‖w‖², not ‖w‖: only then is wᵀû = m(wᵀu).) At w = 0 exactly the
    reparametrisation is undefined; there û = u and the map is the translation z + u tanh(b).

    inverse (z → x), closed form:
        x = z + û tanh(a),  a = wᵀz + b,
        log|det ∂g/∂z| = log(1 + h′(a) wᵀû), computed as log(tanh²a + h′(a)(1 + wᵀû)).
    forward (x → z), by a root-finder: a = wᵀz + b solves the scalar equation
        wᵀx + b = a + wᵀû tanh(a)
    (safeguarded Newton in the bracket |a − (wᵀx + b)| ≤ |wᵀû|, to |residual| ≤ 16ε(1 + |a| + |wᵀx + b|));
        z = x − û tanh(a),   log|det ∂f/∂x| = −log(1 + h′(a) wᵀû).
    Gradients are analytic both ways; through the root-finder by implicit differentiation.

    Cost: inverse O(N·D); forward O(N·D + N·k), k ≈ 3–6 scalar Newton iterations.

    Parameters
    ----------
    dim : int
        D.
    rng : None, int or numpy.random.Generator
        Initialisation: w ~ N(0, I), b ~ N(0, 0.5²), and u such that û = 0, so the
        layer starts as the identity (see ``__init__``).
    invertible : bool
        True (default): the reparametrisation above. False: û = u, the plain map of
        the slide, which is a bijection only if wᵀu ≥ −1 (:attr:`is_invertible`);
        ``forward`` refuses with a ValueError when it is not.

    Attributes
    ----------
    params : "u" (D,), "w" (D,), "b" () — a scalar bias.
    last_iterations : np.ndarray
        Root-finder iterations per sample of the last ``forward``.
    """

    def __init__(self, dim: int, rng: RngLike = None, invertible: bool = True):
        super().__init__(dim)
        self.invertible = check_bool(invertible, "Planar: invertible")
        rng = as_generator(rng)
        # Every layer starts as the identity (û = 0), its hyperplane wᵀz + b = 0 placed at random
        # over the base's core (w ~ N(0, I), b ~ N(0, 0.5²)): a deep stack starts at q = p_Z and
        # each layer bends space only as far as the gradient asks, where random u, w (û ≠ 0)
        # start a K-layer stack far from the identity. With the reparametrisation û = 0 needs
        # u ∥ w and m(wᵀu) = 0, i.e. u = log(e − 1) w/‖w‖²: then k = −log(e − 1)/‖w‖² and
        # û = u + k w = 0. Without it (û = u), u = 0. The measurements that chose it:
        # benchmarks/results/recipes.md.
        w = rng.standard_normal(self.dim)
        b = 0.5 * rng.standard_normal()
        norm2 = float(w @ w)
        u = np.log(np.e - 1.0) * w / norm2 if (self.invertible and norm2 > 0) else np.zeros(self.dim)
        self.add_param("u", u)
        self.add_param("w", w)
        self.add_param("b", np.float64(b))
        self.last_iterations = np.zeros(0, dtype=np.int64)

    # -- the reparametrisation -------------------------------------------------
    def _reparam(self) -> _Reparam:
        u, w = self.params["u"].copy(), self.params["w"].copy()
        s, norm2 = float(w @ u), float(w @ w)
        if self.invertible and norm2 > 0:
            # m(s) − s = softplus(s) − s − 1 = softplus(−s) − 1: no cancellation for large s.
            k = (float(softplus(-s)) - 1.0) / norm2
            slope = float(sigmoid(s))  # m′(s) = σ(s)
            # e = 1 + wᵀû = softplus(s) directly: no cancellation in 1 + m(s) as m(s) → −1.
            return _Reparam(u, w, u + k * w, float(softplus(s)), k, (slope - 1.0) / norm2, k / norm2, slope)
        if self.invertible:  # w = 0: û = u, wᵀû = 0
            return _Reparam(u, w, u, 1.0, 0.0, 0.0, 0.0, 0.0)
        return _Reparam(u, w, u, 1.0 + s, 0.0, 0.0, 0.0, 1.0)

    def _reparam_vjp(self, rp: _Reparam, grad_u_hat: np.ndarray, grad_e: float) -> None:
        """Add ∂L/∂u, ∂L/∂w from ∂L/∂û and ∂L/∂e, e = 1 + wᵀû."""
        u, w = rp.u, rp.w
        along_w = grad_u_hat @ w
        # û = u + k(s, ‖w‖²) w, s = wᵀu:  ∂û/∂u = I + w (∂k/∂s) wᵀ;
        # ∂û/∂w = k I + w [(∂k/∂s) uᵀ − 2 (k/‖w‖²) wᵀ];  e = e(s): ∂e/∂u = e′ w, ∂e/∂w = e′ u.
        self.grads["u"] += grad_u_hat + (along_w * rp.dk_ds + grad_e * rp.de_ds) * w
        self.grads["w"] += (rp.k * grad_u_hat + along_w * (rp.dk_ds * u - 2.0 * rp.k_over_norm2 * w)
                            + grad_e * rp.de_ds * u)

    @property
    def u_hat(self) -> np.ndarray:
        """û, the vector the map actually uses (a copy)."""
        return self._reparam().u_hat

    @property
    def is_invertible(self) -> bool:
        """True if g is a bijection: always with the reparametrisation, else iff wᵀu ≥ −1.

        At wᵀu = −1 exactly, g is a bijection but not a diffeomorphism: its Jacobian is
        singular on the hyperplane wᵀz + b = 0 (log|det| = −∞ there); the reparametrisation
        keeps wᵀû > −1 strictly.
        """
        return self.invertible or float(self.params["w"] @ self.params["u"]) >= -1.0

    # -- inverse: z → x, the closed form -----------------------------------------
    def _inverse(self, z):
        rp = self._reparam()
        a = z @ rp.w + self.params["b"]
        t, hp, psi, dpsi = tanh_gate(a, rp.e)
        x = z + t[:, None] * rp.u_hat
        with np.errstate(divide="ignore"):  # ψ = 0 only on the fold of a non-invertible map: log|det| = −inf there
            log_det = np.log(np.abs(psi))
        return x, log_det, (rp, z, t, hp, psi, dpsi)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        rp, z, t, hp, psi, dpsi = cache
        # x = z + û t(a), log_det = log ψ(a, e), a = wᵀz + b:  ∂L/∂a = (g·û) h′ + g_ld ∂ψ/∂a / ψ
        grad_a = (grad_x @ rp.u_hat) * hp + grad_log_det * dpsi / psi
        self.grads["w"] += grad_a @ z
        self.grads["b"] += grad_a.sum()
        # ∂x/∂û = t I;  ∂log_det/∂e = h′/ψ
        self._reparam_vjp(rp, t @ grad_x, float(np.sum(grad_log_det * hp / psi)))
        return grad_x + grad_a[:, None] * rp.w

    # -- forward: x → z, by the scalar root-finder ----------------------------------
    def _forward(self, x):
        if not self.is_invertible:
            s = float(self.params["w"] @ self.params["u"])
            raise ValueError(f"Planar: the map is not invertible (invertible=False and wᵀu = {s:.4g} < −1, "
                             "so 1 + h′ wᵀu ≤ 0 somewhere): forward (x → z) is not defined")
        rp = self._reparam()
        y = x @ rp.w + self.params["b"]
        a, self.last_iterations = solve_tanh_root(y, rp.e, self.name)
        t, hp, psi, dpsi = tanh_gate(a, rp.e)
        z = x - t[:, None] * rp.u_hat
        return z, -np.log(psi), (rp, x, t, hp, psi, dpsi)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        rp, x, t, hp, psi, dpsi = cache
        # Explicit: z = x − û t(a), log_det = −log ψ(a, e):  ∂L/∂a = −(g·û) h′ − g_ld ∂ψ/∂a / ψ.
        grad_a = -(grad_z @ rp.u_hat) * hp - grad_log_det * dpsi / psi
        # Implicit: F(a) = a + (e − 1) tanh(a) − (wᵀx + b) = 0, ∂F/∂a = ψ, so
        # ∂a/∂(wᵀx + b) = 1/ψ and ∂a/∂e = −t/ψ.
        lam = grad_a / psi
        self.grads["w"] += lam @ x
        self.grads["b"] += lam.sum()
        grad_e = float(np.sum(-grad_log_det * hp / psi - lam * t))
        self._reparam_vjp(rp, -(t @ grad_z), grad_e)
        return grad_z + lam[:, None] * rp.w

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, invertible={self.invertible})"
