"""Emerging convolutions (Hoogeboom, van den Berg & Welling 2019): an invertible k×k convolution.

A k×k convolution whose kernel is masked so that output (i, j, o) reads only the
pixels before (i, j) in raster order, and at (i, j) itself only the channels c ≤ o,
is *autoregressive*: ordering the coordinates by (row, column, channel), its
Jacobian is lower triangular, with diagonal d_o = exp(log_d_o) (the kernel's centre
weight from channel o to itself), the same at every pixel. So

    log|det ∂z/∂x| = H·W·Σ_o log_d_o,

and the inverse is a triangular solve (back-substitution) in that order. One such
convolution sees only "half" a neighbourhood; the emerging convolution composes a
lower one and an upper one (the mirror-image mask), whose product has a full k×k
receptive field: ``EmergingConv = MaskedConv2d("upper") ∘ MaskedConv2d("lower")``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nflows_np.base import Flow, RngLike, as_generator
from nflows_np.composition import FlowModel
from nflows_np.conv import check_shape, conv2d, conv2d_vjp, from_nhwc, to_nhwc
from nflows_np.linalg import triangular_solve
from nflows_np.validation import check_int, lookup

__all__ = ["EmergingConv", "MaskedConv2d"]


def _mask(k: int, channels: int, order: str) -> np.ndarray:
    """(k, k, C, C) 0/1 mask: offsets before the centre (raster order) and, at the centre, c_in < c_out.

    ``order="upper"`` mirrors it: offsets after the centre and, at the centre, c_in > c_out.
    The centre diagonal (c_in = c_out) is excluded: it is exp(log_d), set separately.
    """
    offsets = np.arange(k * k).reshape(k, k) - (k * k) // 2  # raster position relative to the centre
    before = (offsets < 0) if order == "lower" else (offsets > 0)
    mask = np.broadcast_to(before[:, :, None, None], (k, k, channels, channels)).astype(float)
    c_in, c_out = np.meshgrid(np.arange(channels), np.arange(channels), indexing="ij")
    mask[k // 2, k // 2] = (c_in < c_out) if order == "lower" else (c_in > c_out)
    return mask


class MaskedConv2d(Flow):
    """Autoregressive k×k convolution  z = x ⋆ K,  K = w ⊙ M + centre diag(exp(log_d)).

    Map: z_{o, i, j} = Σ_{a, b, c} K[a, b, c, o] x_{c, i+a−p, j+b−p} ("same" zero padding), with
    the mask M of the module docstring, so that ∂z/∂x is triangular in (row, column, channel) order.
    Log-det: log|det ∂z/∂x| = H·W·Σ_o log_d_o;  inverse: −H·W·Σ_o log_d_o.
    Inverse: x = A⁻¹ z by back-substitution (``nflows_np.linalg.triangular_solve``) on the dense
    D×D matrix A of the convolution, in (row, column, channel) order.
    Cost: forward O(N·D·k²·C); inverse O(D²) to build A and O(N·D²) to solve: for small images.

    Parameters
    ----------
    shape : (C, H, W)
    kernel_size : int, odd
    order : {"lower", "upper"}
        Which half of the neighbourhood it reads (raster order or its reverse).
    rng : None, int or Generator
        Initial w ~ N(0, 0.05²) (masked), log_d = 0: close to the identity.

    Attributes
    ----------
    params : {"w": (k, k, C, C), "log_d": (C,)}  (masked entries of w are ignored, zero gradient)
    """

    def __init__(self, shape: Any, kernel_size: int = 3, order: str = "lower", rng: RngLike = None):
        c, h, w = check_shape(shape, "MaskedConv2d")
        k = check_int(kernel_size, "MaskedConv2d: kernel_size")
        if k % 2 == 0:
            raise ValueError(f"MaskedConv2d: kernel_size must be odd, got {k}")
        super().__init__(c * h * w)
        self.shape, self.k = (c, h, w), k
        self.order = lookup(order, ("lower", "upper"), "MaskedConv2d: order")
        self.mask = _mask(k, c, self.order)
        self.add_param("w", 0.05 * as_generator(rng).standard_normal((k, k, c, c)) * self.mask)
        self.add_param("log_d", np.zeros(c))
        self._rows, self._cols, self._taps = self._dense_indices()

    def kernel(self) -> np.ndarray:
        """K = w ⊙ M with exp(log_d) on the centre diagonal, (k, k, C, C)."""
        kernel = self.params["w"] * self.mask
        p = self.k // 2
        kernel[p, p][np.diag_indices(self.shape[0])] = np.exp(self.params["log_d"])
        return kernel

    def _dense_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entries of A: row (i, j, o), column (u, v, c), flat kernel index (a, b, c, o), u = i + a − p."""
        c, h, w = self.shape
        k, p = self.k, self.k // 2
        i, j, a, b, ci, co = np.meshgrid(*(np.arange(n) for n in (h, w, k, k, c, c)), indexing="ij")
        u, v = i + a - p, j + b - p
        keep = (u >= 0) & (u < h) & (v >= 0) & (v < w) & (self.mask[a, b, ci, co] > 0) | \
               ((a == p) & (b == p) & (ci == co) & (u >= 0) & (u < h) & (v >= 0) & (v < w))
        rows = ((i * w + j) * c + co)[keep]
        cols = ((u * w + v) * c + ci)[keep]
        taps = np.ravel_multi_index((a[keep], b[keep], ci[keep], co[keep]), (k, k, c, c))
        return rows, cols, taps

    def matrix(self) -> np.ndarray:
        """The dense (D, D) matrix A of the convolution in (row, column, channel) order: triangular."""
        dense = np.zeros((self.dim, self.dim))
        dense[self._rows, self._cols] = self.kernel().reshape(-1)[self._taps]
        return dense

    def _add_kernel_grad(self, grad_kernel: np.ndarray, grad_sum_log_d: float) -> None:
        # K = w ⊙ M + diag(exp(log_d)) at the centre: ∂L/∂w = ∂L/∂K ⊙ M;
        # ∂L/∂log_d = exp(log_d) ⊙ diag(∂L/∂K[centre]) + H·W·∂L/∂(log_det / (H·W))
        p = self.k // 2
        self.grads["w"] += grad_kernel * self.mask
        self.grads["log_d"] += np.exp(self.params["log_d"]) * np.diag(grad_kernel[p, p]) + grad_sum_log_d

    def _hw_log_d(self) -> float:
        return self.shape[1] * self.shape[2] * float(self.params["log_d"].sum())

    def _forward(self, x):
        y, cache = conv2d(to_nhwc(x, self.shape), self.kernel())
        return from_nhwc(y), np.full(x.shape[0], self._hw_log_d()), cache

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        grad_x, grad_kernel, _ = conv2d_vjp(cache, to_nhwc(grad_z, self.shape))
        self._add_kernel_grad(grad_kernel, self.shape[1] * self.shape[2] * grad_log_det.sum())
        return from_nhwc(grad_x)

    def _inverse(self, z):
        dense = self.matrix()
        z_pixels = to_nhwc(z, self.shape).reshape(z.shape[0], self.dim)  # (row, column, channel) order
        x_pixels = triangular_solve(dense, z_pixels, lower=self.order == "lower")
        x_nhwc = x_pixels.reshape(z.shape[0], *self.shape[1:], self.shape[0])
        return from_nhwc(x_nhwc), np.full(z.shape[0], -self._hw_log_d()), (x_nhwc, dense)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x_nhwc, dense = cache
        n = x_nhwc.shape[0]
        # x = A⁻¹ z:  ∂L/∂z = A⁻ᵀ ∂L/∂x;  dx = −A⁻¹ dA x ⇒ ∂L/∂K = (∂(z = x ⋆ K)/∂K)ᵀ (−∂L/∂z)
        grad_pixels = to_nhwc(grad_x, self.shape).reshape(n, self.dim)
        grad_z_pixels = triangular_solve(dense, grad_pixels, lower=self.order == "lower", transpose=True)
        grad_z_nhwc = grad_z_pixels.reshape(x_nhwc.shape)
        _, cache_x = conv2d(x_nhwc, self.kernel())
        _, grad_kernel, _ = conv2d_vjp(cache_x, -grad_z_nhwc, need_x=False)
        self._add_kernel_grad(grad_kernel, -self.shape[1] * self.shape[2] * grad_log_det.sum())
        return from_nhwc(grad_z_nhwc)

    def __repr__(self) -> str:
        return f"{self.name}(shape={self.shape}, kernel_size={self.k}, order={self.order!r})"


class EmergingConv(FlowModel):
    """Emerging k×k convolution: z = U ⋆ (L ⋆ x), L and U masked autoregressive convolutions.

    Log-det: H·W·Σ_o (log_d^L_o + log_d^U_o).  Inverse: two back-substitutions, U's then L's.
    Receptive field: the full k×k neighbourhood (each factor reads one half of it).
    Cost: see :class:`MaskedConv2d`, twice.
    """

    def __init__(self, shape: Any, kernel_size: int = 3, rng: RngLike = None):
        rng = as_generator(rng)
        super().__init__([MaskedConv2d(shape, kernel_size, "lower", rng), MaskedConv2d(shape, kernel_size, "upper", rng)])
        self.shape = tuple(shape)
