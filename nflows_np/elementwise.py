"""Elementwise flows: z_i depends on x_i only, so the Jacobian is diagonal and

    log|det ∂f/∂x| = Σ_i log|f_i′(x_i)|      (cost O(N·D)).
"""
from __future__ import annotations

import numpy as np

from nflows_np.base import Flow


class ElementwiseAffine(Flow):
    """Elementwise affine flow  z = x ⊙ exp(s) + t.

    log|det ∂z/∂x| = Σ_i s_i (the same for every sample).
    Inverse: x = (z − t) ⊙ exp(−s),  log|det ∂x/∂z| = −Σ_i s_i.
    Starts as the identity (s = t = 0). Cost: O(N·D) both ways.
    """

    def __init__(self, dim: int):
        super().__init__(dim)
        self.add_param("s", np.zeros(dim))
        self.add_param("t", np.zeros(dim))

    def _forward(self, x):
        scale = np.exp(self.params["s"])
        z = x * scale + self.params["t"]
        return z, np.full(x.shape[0], self.params["s"].sum()), (x, scale)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x, scale = cache
        # ∂z/∂x = exp(s);  ∂z/∂s = x ⊙ exp(s);  ∂z/∂t = 1;  ∂log_det/∂s = 1
        self.grads["s"] += np.einsum("nd,nd->d", grad_z, x) * scale + grad_log_det.sum()
        self.grads["t"] += grad_z.sum(axis=0)
        return grad_z * scale

    def _inverse(self, z):
        inv_scale = np.exp(-self.params["s"])
        x = (z - self.params["t"]) * inv_scale
        return x, np.full(z.shape[0], -self.params["s"].sum()), (x, inv_scale)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x, inv_scale = cache
        # x = (z − t) e^{−s}:  ∂x/∂z = e^{−s};  ∂x/∂t = −e^{−s};  ∂x/∂s = −x;  ∂log_det/∂s = −1
        grad_z = grad_x * inv_scale
        self.grads["s"] -= np.einsum("nd,nd->d", grad_x, x) + grad_log_det.sum()
        self.grads["t"] -= grad_z.sum(axis=0)
        return grad_z
