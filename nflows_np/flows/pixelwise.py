"""Flows applied at every pixel: Glow's invertible 1×1 convolution and per-channel ActNorm.

A 1×1 convolution, an ActNorm with one scale per channel, or a fixed channel
permutation acts on the C channels of each pixel separately, with the same
parameters at every pixel. On an image of shape (C, H, W) the Jacobian is then
block-diagonal (one C×C block per pixel), so

    log|det ∂z/∂x| = Σ_{pixels (i, j)} log|det ∂h/∂x_{:, i, j}|,

which is H·W·log|det W| for the 1×1 convolution z_{:, i, j} = W x_{:, i, j}.
:class:`PerPixel` runs any C-dimensional flow that way: the pixels become rows
of a batch of N·H·W vectors, and the gradient of the image's log-det reaches
every pixel's row.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.base import Flow, RngLike
from nflows_np.conv import check_shape, from_nhwc, to_nhwc
from nflows_np.flows.actnorm import ActNorm
from nflows_np.flows.linear import LULinear
from nflows_np.flows.permutation import Permutation

__all__ = ["ChannelActNorm", "ChannelPermutation", "InvertibleConv1x1", "PerPixel"]


class PerPixel(Flow):
    """z_{:, i, j} = h(x_{:, i, j}) at every pixel, for a C-dimensional flow h.

    Inverse: x_{:, i, j} = h⁻¹(z_{:, i, j}).
    Log-det: log|det ∂z/∂x| = Σ_{i, j} log|det ∂h/∂x_{:, i, j}| (block-diagonal Jacobian).
    Cost: h's cost on N·H·W vectors, plus two transpositions O(N·D).

    Parameters
    ----------
    layer : Flow
        h, of dimension C; its parameters appear here as ``"{prefix}.{key}"``.
    shape : (C, H, W)
    prefix : str
        Prefix of h's parameter names.
    """

    def __init__(self, layer: Flow, shape: Any, prefix: str = "h"):
        c, h, w = check_shape(shape, type(self).__name__)
        if not isinstance(layer, Flow) or layer.dim != c:
            raise ValueError(f"{type(self).__name__}: layer must be a Flow of dimension C = {c}, got {layer!r}")
        super().__init__(c * h * w)
        self.shape = (c, h, w)
        self.layer = layer
        self.expose(layer, prefix)

    def _rows(self, x: np.ndarray) -> np.ndarray:
        return to_nhwc(x, self.shape).reshape(x.shape[0] * self.shape[1] * self.shape[2], self.shape[0])

    def _image(self, rows: np.ndarray, n: int) -> np.ndarray:
        c, h, w = self.shape
        return from_nhwc(rows.reshape(n, h, w, c))

    def _run(self, run, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        n = x.shape[0]
        out, log_det = run(self._rows(x))
        return self._image(out, n), log_det.reshape(n, self.shape[1] * self.shape[2]).sum(axis=1), n

    def _vjp_rows(self, n: int, grad_out: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        # log_det[n] = Σ_pixels log_det_row ⇒ every pixel row of image n receives ∂L/∂log_det[n]
        pixels = self.shape[1] * self.shape[2]
        return self._image(self.layer._vjp(self._rows(grad_out), np.repeat(grad_log_det, pixels)), n)

    def _forward(self, x):
        return self._run(self.layer._forward_pass, x)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        return self._vjp_rows(cache, grad_z, grad_log_det)

    def _inverse(self, z):
        return self._run(self.layer._inverse_pass, z)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        return self._vjp_rows(cache, grad_x, grad_log_det)

    def __repr__(self) -> str:
        return f"{self.name}(shape={self.shape}, params={self.num_params()})"


class InvertibleConv1x1(PerPixel):
    """Glow's invertible 1×1 convolution  z_{:, i, j} = W x_{:, i, j},  W = P L (U + diag s)  (C × C).

    LU parametrisation (Kingma & Dhariwal 2018): P fixed; L unit lower
    triangular and U strictly upper triangular, trained; s = sign ⊙ exp(log|s|)
    with sign(s) fixed and log|s| trained (see :class:`~nflows_np.flows.linear.LULinear`).
    Inverse: x_{:, i, j} = W⁻¹ z_{:, i, j} by two triangular solves.
    Log-det: log|det ∂z/∂x| = H·W·log|det W| = H·W·Σ_c log|s_c|.
    Cost: O(N·H·W·C²) both ways; the log-det O(C).
    Starts from the LU factors of a random orthogonal W (Glow's initialisation).

    Parameters
    ----------
    shape : (C, H, W)
    rng : None, int or Generator
        For the initial W.

    Attributes
    ----------
    params : {"lu.lower": (C, C), "lu.upper": (C, C), "lu.log_s": (C,)}
    """

    def __init__(self, shape: Any, rng: RngLike = None):
        c, _, _ = check_shape(shape, "InvertibleConv1x1")
        super().__init__(LULinear(c, rng), shape, prefix="lu")

    def weight(self) -> np.ndarray:
        """W as a dense (C, C) matrix."""
        return self.layer.weight()

    # The training direction works on the channel-first rows directly: W is formed once (C × C,
    # O(C³)) and applied to every pixel by one broadcast product, no transposition of the batch.
    def _forward(self, x):
        lu, (c, h, w) = self.layer, self.shape
        lower = lu._lower()
        triangular, s = lu._triangular()
        weight = (lower @ triangular)[lu.perm]  # W = P L U′, (P b)_i = b_{perm[i]}
        x3 = x.reshape(x.shape[0], c, h * w)
        z = np.matmul(weight, x3).reshape(x.shape)
        return z, np.full(x.shape[0], h * w * lu.params["log_s"].sum()), (x3, weight, lower, triangular, s)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x3, weight, lower, triangular, s = cache
        lu = self.layer
        g3 = grad_z.reshape(x3.shape)
        # z_{:,p} = W x_{:,p} at every pixel p:  ∂L/∂x_{:,p} = Wᵀ ∂L/∂z_{:,p},  ∂L/∂W = Σ_{n,p} ∂L/∂z_{:,p} x_{:,p}ᵀ
        grad_weight = np.tensordot(g3, x3, axes=([0, 2], [0, 2]))
        # W = P A with A = L U′:  ∂L/∂A = Pᵀ ∂L/∂W;  ∂L/∂L = ∂L/∂A U′ᵀ,  ∂L/∂U′ = Lᵀ ∂L/∂A;
        # log_det = H·W·Σ log_s, so ∂L/∂(Σ log_s) = H·W·Σ_n ∂L/∂log_det_n
        grad_a = grad_weight[lu.inverse_perm]
        lu.grads["lower"] += np.tril(grad_a @ triangular.T, -1)  # only the strict lower part is a parameter
        lu._add_triangular_grad(lower.T @ grad_a, s, x3.shape[2] * grad_log_det.sum())
        return np.matmul(weight.T, g3).reshape(grad_z.shape)


class ChannelActNorm(PerPixel):
    """Glow's ActNorm with one scale and bias per channel:  z_{c, i, j} = x_{c, i, j}·exp(s_c) + t_c.

    Inverse: x_{c, i, j} = (z_{c, i, j} − t_c)·exp(−s_c).
    Log-det: log|det ∂z/∂x| = H·W·Σ_c s_c.  Cost: O(N·D).
    Data-dependent initialisation on the first ``forward`` batch: every channel
    gets mean 0 and variance 1 over the batch and all pixels (see
    :class:`~nflows_np.flows.actnorm.ActNorm`).

    Attributes
    ----------
    params : {"actnorm.s": (C,), "actnorm.t": (C,)}
    """

    def __init__(self, shape: Any, data_init: bool = True):
        c, _, _ = check_shape(shape, "ChannelActNorm")
        super().__init__(ActNorm(c, data_init=data_init), shape, prefix="actnorm")

    @property
    def initialized(self) -> bool:
        return self.layer.initialized

    # The training direction works on the channel-first rows directly (one broadcast per pass).
    def _forward(self, x):
        act, (c, h, w) = self.layer, self.shape
        if not act.initialized:
            act.initialize(self._rows(x))  # every pixel of every image is a sample of its channel
        scale = np.exp(act.params["s"])
        x3 = x.reshape(x.shape[0], c, h * w)
        z = x3 * scale[:, None] + act.params["t"][:, None]
        return z.reshape(x.shape), np.full(x.shape[0], h * w * act.params["s"].sum()), (x3, scale)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x3, scale = cache
        g3 = grad_z.reshape(x3.shape)
        # z_{c,p} = x_{c,p} e^{s_c} + t_c, log_det = H·W·Σ_c s_c:
        # ∂z/∂x = e^{s_c};  ∂z/∂s_c = x e^{s_c};  ∂z/∂t_c = 1;  ∂log_det/∂s_c = H·W
        grads = self.layer.grads
        grads["s"] += np.einsum("ncp,ncp->c", g3, x3) * scale + x3.shape[2] * grad_log_det.sum()
        grads["t"] += g3.sum(axis=(0, 2))
        return (g3 * scale[:, None]).reshape(grad_z.shape)


class ChannelPermutation(PerPixel):
    """A fixed permutation of the channels at every pixel: z_{c, i, j} = x_{perm[c], i, j};  log|det| = 0.

    Glow's ablation compares the 1×1 convolution with a reversal (perm = C−1, …, 0)
    and with a fixed random shuffle.
    """

    def __init__(self, shape: Any, perm: Any):
        super().__init__(Permutation(perm), shape, prefix="perm")
