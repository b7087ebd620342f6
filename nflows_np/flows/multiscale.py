"""Multi-scale architecture (RealNVP, Glow): factor out half of the dimensions after each level.

A level is  squeeze → K steps of flow; then half of its channels are *factored
out*: they leave the flow as part of z, and the rest go on to the next level,
which works at half the resolution::

    f(x) = (f_next(h_{1:k}), h_{k+1:D}),   h = level(x).

Prior of the factored dimensions: the same standard normal N(0, I) as the
rest of z (the base density covers all D coordinates of z); Glow's learned,
conditional prior of the factored half is not used here. In the (N, D)
contract the factored coordinates simply pass the later levels unchanged.
"""
from __future__ import annotations

import numpy as np

from nflows_np.base import Flow
from nflows_np.validation import check_int

__all__ = ["FactorOut"]


class FactorOut(Flow):
    """z = (h(x_{1:k}), x_{k+1:D}): the inner flow h on the first k coordinates, the rest factored out.

    With images flattened channel-first, the first k coordinates are the first
    k/(H·W) channels, the ones that go on to the next level.
    Inverse: x = (h⁻¹(z_{1:k}), z_{k+1:D}).
    Log-det: that of h;  the factored coordinates contribute 0 here and are
    scored by the base density N(0, I) of the whole model.
    Cost: h's cost plus O(N·D).

    Parameters
    ----------
    inner : Flow
        h, of dimension k < D.
    dim : int
        D.
    """

    def __init__(self, inner: Flow, dim: int):
        dim = check_int(dim, "FactorOut: dim")
        if not isinstance(inner, Flow) or not 0 < inner.dim < dim:
            raise ValueError(f"FactorOut: inner must be a Flow of dimension k < D = {dim}, got {inner!r}")
        super().__init__(dim)
        self.inner = inner
        self.keep = inner.dim
        self.expose(inner, "inner")

    def _run(self, run, x):
        inner, log_det = run(x[:, :self.keep])
        return np.concatenate([inner, x[:, self.keep:]], axis=1), log_det, None

    def _vjp_rows(self, grad_out, grad_log_det):
        grad_inner = self.inner._vjp(grad_out[:, :self.keep], grad_log_det)
        return np.concatenate([grad_inner, grad_out[:, self.keep:]], axis=1)

    def _forward(self, x):
        return self._run(self.inner._forward_pass, x)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        return self._vjp_rows(grad_z, grad_log_det)

    def _inverse(self, z):
        return self._run(self.inner._inverse_pass, z)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        return self._vjp_rows(grad_x, grad_log_det)

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, keep={self.keep}, inner={self.inner.name}, params={self.num_params()})"
