"""Elementwise flows: z_i depends on x_i only, so the Jacobian is diagonal and

    log|det ∂f/∂x| = Σ_i log|f_i′(x_i)|      (cost O(N·D)).
"""
from __future__ import annotations

import numpy as np

from nflows_np.base import Flow
from nflows_np.numerics import logcosh


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


class SinhArcsinh(Flow):
    """Elementwise sinh-arcsinh flow (Jones & Pewsey, 2009)  z_i = sinh(b_i · asinh(x_i) − a_i),  b = exp(log_b).

    A nonlinear f_i of one variable, monotone for b > 0, with a closed form both ways:
    inverse x_i = sinh((asinh(z_i) + a_i) / b_i). Its derivative varies with x, so the
    log-determinant does too (slide "Jacobian structure", case 3):

        log|det ∂f/∂x| = Σ_i log f_i′(x_i) = Σ_i [log b_i + log cosh(v_i) − ½ log(1 + x_i²)],
        v_i = b_i asinh(x_i) − a_i.

    a skews, b changes the tails (b > 1 heavier, b < 1 lighter). Starts as the
    identity (a = 0, log_b = 0). Cost: O(N·D) both ways.
    """

    def __init__(self, dim: int):
        super().__init__(dim)
        self.add_param("a", np.zeros(dim))
        self.add_param("log_b", np.zeros(dim))

    def _forward(self, x):
        b = np.exp(self.params["log_b"])
        u = np.arcsinh(x)
        v = b * u - self.params["a"]
        z = np.sinh(v)
        log_det = (self.params["log_b"] + logcosh(v) - 0.5 * np.log1p(x * x)).sum(axis=1)
        return z, log_det, (x, u, v, b)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x, u, v, b = cache
        # z = sinh(v), v = b asinh(x) − a:  ∂z/∂v = cosh v;  ∂v/∂x = b/√(1+x²);  ∂v/∂a = −1;  ∂v/∂b = u.
        # log_det terms ℓ = log b + log cosh v − ½ log(1+x²):  ∂ℓ/∂v = tanh v;  ∂ℓ/∂x|direct = −x/(1+x²);  ∂ℓ/∂b|direct = 1/b.
        grad_v = grad_z * np.cosh(v) + grad_log_det[:, None] * np.tanh(v)
        inv_norm = 1.0 / np.sqrt(1.0 + x * x)
        self.grads["a"] -= grad_v.sum(axis=0)
        # ∂/∂log_b = b ∂/∂b = b (Σ grad_v u + Σ gld / b) = b Σ grad_v u + Σ gld
        self.grads["log_b"] += b * np.einsum("nd,nd->d", grad_v, u) + grad_log_det.sum()
        return grad_v * b * inv_norm - grad_log_det[:, None] * x * inv_norm * inv_norm

    def _inverse(self, z):
        b = np.exp(self.params["log_b"])
        w = np.arcsinh(z)
        u = (w + self.params["a"]) / b
        x = np.sinh(u)
        # log|det ∂x/∂z| = Σ [log cosh u − log b − ½ log(1 + z²)]  (cosh(asinh z) = √(1+z²))
        log_det = (logcosh(u) - self.params["log_b"] - 0.5 * np.log1p(z * z)).sum(axis=1)
        return x, log_det, (z, u, b)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        z, u, b = cache
        # x = sinh(u), u = (asinh z + a)/b:  ∂x/∂u = cosh u;  ∂u/∂z = 1/(b√(1+z²));  ∂u/∂a = 1/b;  ∂u/∂b = −u/b.
        # log_det terms ℓ = log cosh u − log b − ½ log(1+z²):  ∂ℓ/∂u = tanh u;  ∂ℓ/∂z|direct = −z/(1+z²);  ∂ℓ/∂b|direct = −1/b.
        grad_u = grad_x * np.cosh(u) + grad_log_det[:, None] * np.tanh(u)
        inv_norm = 1.0 / np.sqrt(1.0 + z * z)
        self.grads["a"] += grad_u.sum(axis=0) / b
        self.grads["log_b"] -= np.einsum("nd,nd->d", grad_u, u) + grad_log_det.sum()
        return grad_u * inv_norm / b - grad_log_det[:, None] * z * inv_norm * inv_norm
