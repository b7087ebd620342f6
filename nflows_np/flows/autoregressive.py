"""Masked autoregressive flow (MAF; Papamakarios et al. 2017) with a MADE conditioner (Germain et al. 2015).

Jacobian-structure slide, case 4: let z_i depend only on x_{1:i}. Then ∂z/∂x
is triangular and log|det ∂z/∂x| = Σ_i log|∂z_i/∂x_i|. MADE gets every
μ_i(x_{<i}), α_i(x_{<i}) from ONE network pass by masking its weights.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from nflows_np.base import Flow, RngLike
from nflows_np.flows.mlp import MLP, check_hidden
from nflows_np.numerics import bounded_log_scale, bounded_log_scale_slope


def made_degrees(order: np.ndarray, hidden: Sequence[int]) -> list[np.ndarray]:
    """MADE degrees: inputs, then each hidden layer.

    Input i has degree m(i) = 1 + (position of i in ``order``), so the first
    variable in the order has degree 1. Hidden units get degrees 1, …, D−1
    cyclically (deterministic; every degree present when the width ≥ D−1, so
    every allowed dependency exists). For D = 1 there is no degree in [1, D−1]:
    the hidden units get degree 1 and the output mask is all zero, so μ, α are
    learned constants (the output biases) — the right model for one variable.
    """
    dim = order.size
    in_degrees = np.empty(dim, dtype=int)
    in_degrees[order] = np.arange(1, dim + 1)
    return [in_degrees] + [np.arange(width) % max(1, dim - 1) + 1 for width in hidden]


def made_masks(degrees: list[np.ndarray]) -> list[np.ndarray]:
    """Weight masks (fan_in, fan_out) from the degrees of :func:`made_degrees`.

    Hidden layers: unit k sees unit j of the layer below iff m(k) ≥ m(j).
    Output i (the same degree as input i) sees hidden unit j iff m(i) > m(j):
    the strict inequality makes output i depend on inputs of degree < m(i) only.
    The output mask is tiled twice: the network outputs (μ, α̂), both (N, D).
    """
    masks = [(later[None, :] >= earlier[:, None]).astype(np.float64)
             for earlier, later in pairwise(degrees)]
    out_degrees = degrees[0]
    output = (out_degrees[None, :] > degrees[-1][:, None]).astype(np.float64)
    return masks + [np.hstack([output, output])]


class MaskedAutoregressive(Flow):
    """MAF affine autoregressive layer:  z_i = (x_i − μ_i(x_{<i})) · exp(−α_i(x_{<i})).

    ``<i`` means earlier in ``order`` (default 0, 1, …, D−1). In the density
    direction (f: x → z) all μ, α come from ONE masked MLP pass, and
    log|det ∂z/∂x| = −Σ_i α_i  (∂z/∂x is lower-triangular in the order, with
    diagonal exp(−α_i)).

    Inverse (sampling, g: z → x): x_i = z_i · exp(α_i(x_{<i})) + μ_i(x_{<i}),
    one variable at a time in the order: D sequential MLP passes;
    log|det ∂x/∂z| = +Σ_i α_i.

    The log-scale is bounded, α = 3·tanh(α̂/3) (the coupling layers' choice,
    :func:`~nflows_np.numerics.bounded_log_scale`), so exp(±α) never overflows.
    The last layer starts at 0: μ = α = 0, the layer starts as the identity.
    For D = 1, μ and α are learned constants (see :func:`made_degrees`).

    Cost, hidden width H: forward O(N·(D·H + H²)) (one pass) and its backward
    the same; inverse D passes, O(N·D·(D·H + H²)), and its backward D + 1
    backward passes of the network (see ``_inverse_vjp``).

    Parameters
    ----------
    dim : int
        D ≥ 1.
    hidden : sequence of int
        Hidden widths of the MADE network (≥ D − 1 for every dependency to exist).
    rng : None, int or numpy.random.Generator
        Initial weights.
    order : sequence of int, optional
        The autoregressive order, a permutation of 0..D−1.
    activation : {"tanh", "relu"}
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64), rng: RngLike = None,
                 order: Sequence[int] | None = None, activation: str = "tanh"):
        super().__init__(dim)
        hidden = check_hidden(hidden, self.name)
        order_array = np.arange(self.dim) if order is None else np.asarray(order)
        if order_array.shape != (self.dim,) or not np.issubdtype(order_array.dtype, np.integer) or \
                not np.array_equal(np.sort(order_array), np.arange(self.dim)):
            raise ValueError(f"{self.name}: order must be a permutation of 0..{self.dim - 1}, got {order!r}")
        self.order = order_array.astype(np.intp)
        self.degrees = made_degrees(self.order, hidden)
        self.net = MLP(self.dim, 2 * self.dim, hidden, activation, rng, zero_last=True,
                       masks=made_masks(self.degrees), name=f"{self.name}.net")
        self.expose(self.net, "net")

    def _conditioner(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(μ, α) at every coordinate from one MADE pass; μ_i, α_i depend on x_{<i} only."""
        out = self.net.forward(x)
        return out[:, :self.dim], bounded_log_scale(out[:, self.dim:])

    def _net_backward(self, grad_mu: np.ndarray, grad_alpha: np.ndarray, alpha: np.ndarray,
                      param_grads: bool = True) -> np.ndarray:
        """(∂μ/∂x)ᵀ grad_mu + (∂α/∂x)ᵀ grad_alpha at the last MADE pass (and ∂L/∂θ into ``grads``)."""
        grad_out = np.empty((grad_mu.shape[0], 2 * self.dim))
        grad_out[:, :self.dim] = grad_mu
        # α = bound·tanh(α̂/bound) ⇒ ∂L/∂α̂ = ∂L/∂α ⊙ (1 − (α/bound)²)
        np.multiply(grad_alpha, bounded_log_scale_slope(alpha), out=grad_out[:, self.dim:])
        return self.net.backward(grad_out, param_grads)

    # -- f: x → z (density direction, one pass) --------------------------------
    def _forward(self, x):
        mu, alpha = self._conditioner(x)
        inv_scale = np.exp(-alpha)  # |α| ≤ bound: cannot overflow
        z = x - mu
        z *= inv_scale
        return z, -alpha.sum(axis=1), (z, alpha, inv_scale)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        z, alpha, inv_scale = cache
        # z = (x − μ) ⊙ e^{−α}, log_det = −Σ α:
        # ∂z/∂x (direct) = e^{−α};  ∂z/∂μ = −e^{−α};  ∂z/∂α = −z;  ∂log_det/∂α = −1
        direct = grad_z * inv_scale
        return direct + self._net_backward(-direct, -(grad_z * z) - grad_log_det[:, None], alpha)

    # -- g: z → x (sampling direction, D passes) -------------------------------
    def _inverse(self, z):
        x = np.zeros_like(z)
        for i in self.order:
            # μ_i, α_i depend only on the variables before i in the order, already in x.
            mu, alpha = self._conditioner(x)
            x[:, i] = z[:, i] * np.exp(alpha[:, i]) + mu[:, i]
        # The last pass is the pass at the final x: it saw every variable but the last in the
        # order, whose input degree D feeds no hidden unit, so μ, α and the net's cache
        # are those of f at the final x.
        return x, alpha.sum(axis=1), (z, alpha)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        z, alpha = cache
        # Implicit differentiation instead of backprop through the D passes. x = g(z, θ) solves
        # f(x, θ) = z with f(x) = (x − μ(x)) e^{−α(x)}, J = ∂f/∂x lower-triangular (diagonal e^{−α}),
        # and log_det = Σ α(x). With B(a, b) = (∂μ/∂x)ᵀa + (∂α/∂x)ᵀb (the network's input-VJP):
        #   dx = J⁻¹(dz − ∂f/∂θ dθ),  Jᵀw = e^{−α} ⊙ w − B(e^{−α} ⊙ w, z ⊙ w).
        # Let v = ∂L/∂x + B(0, ∂L/∂log_det) (the total derivative at x). Then
        #   ∂L/∂z = w := J⁻ᵀ v,  i.e.  w = e^{α} ⊙ (∂L/∂x + B(e^{−α} ⊙ w, ∂L/∂log_det + z ⊙ w)),
        #   ∂L/∂θ = −wᵀ ∂f/∂θ + ∂L/∂log_det · ∂Σα/∂θ = the θ-part of the same network VJP at the solution w.
        # B maps output i to inputs of lower degree only, so that fixed point is a back-substitution:
        # from w = 0, iteration k fixes the k last variables of the order; D iterations are exact.
        scale, inv_scale = np.exp(alpha), np.exp(-alpha)
        w = np.zeros_like(grad_x)
        for _ in range(self.dim):
            w = scale * (grad_x + self._net_backward(inv_scale * w, grad_log_det[:, None] + z * w, alpha,
                                                     param_grads=False))
        self._net_backward(inv_scale * w, grad_log_det[:, None] + z * w, alpha)
        return w

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, hidden={self.net.sizes[1:-1]}, order={self.order.tolist()}, " \
               f"params={self.num_params()})"
