"""Affine coupling over channels with a convolutional conditioner (RealNVP / Glow on images).

Split the C channels of an image into x_A (the first ⌊C/2⌋) and x_B (the rest)::

    z_A = x_A,   z_B = x_B ⊙ exp(s(x_A)) + t(x_A)   ⇔   x_B = (z_B − t(z_A)) ⊙ exp(−s(z_A)),

with (ŝ, t) = NN(x_A) a small CNN and s = 3·tanh(ŝ/3) (the soft clamp of
:func:`~nflows_np.numerics.bounded_log_scale`). The Jacobian is block-triangular:
log|det ∂z/∂x| = Σ_{c∈B, i, j} s_{c, i, j}(x_A). Weight sharing across pixels is
what lets a flow learn from 1297 8×8 images without memorising them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from nflows_np.base import Flow, Module, RngLike, as_generator
from nflows_np.conv import check_shape, conv2d, conv2d_vjp, from_nhwc, to_nhwc
from nflows_np.numerics import bounded_log_scale, bounded_log_scale_slope
from nflows_np.validation import check_int, lookup

__all__ = ["ConvAffineCoupling", "ConvNet"]


def _activate(a: np.ndarray, activation: str) -> np.ndarray:
    """h = act(a), written over a: ReLU h = max(a, 0) or tanh h = tanh a."""
    if activation == "relu":
        return np.maximum(a, 0.0, out=a)
    return np.tanh(a, out=a)


def _through_activation(grad_h: np.ndarray, h: np.ndarray, activation: str) -> np.ndarray:
    """∂L/∂a = ∂L/∂h ⊙ act′(a), in place, with act′ read off h: ReLU 1[h > 0] (h > 0 ⇔ a > 0), tanh 1 − h²."""
    if activation == "relu":
        return np.multiply(grad_h, h > 0, out=grad_h)
    grad_h *= 1.0 - h * h
    return grad_h


# The backward pass's large arrays are used up within one backward call, so networks of the same
# shapes share them (bounded: the last few shapes): they stay in cache from one coupling to the next.
# One set per thread: two threads' backward passes never write the same arrays.
_THREAD = threading.local()


def _backward_buffers(key: tuple) -> tuple[dict, dict, dict]:
    shared: OrderedDict[tuple, tuple[dict, dict, dict]] = _THREAD.__dict__.setdefault("buffers", OrderedDict())
    buffers = shared.pop(key, None) or ({}, {}, {})
    shared[key] = buffers
    while len(shared) > 8:
        shared.popitem(last=False)
    return buffers


class ConvNet(Module):
    """Glow's coupling network:  3×3 conv → act → 1×1 conv → act → 3×3 conv (zero-initialised).

    Channels-last input (N, H, W, C_in) → (N, H, W, C_out), "same" padding.
    The hidden layers start with He-normal weights N(0, 2/fan_in); the last
    layer starts at exactly 0, so a coupling using it starts as the identity.
    The network keeps its large arrays between calls (the buffers of
    :mod:`nflows_np.conv`): the output and cache of :meth:`forward` are valid
    until its next :meth:`forward`; the array :meth:`backward` returns, until
    the next :meth:`backward` of a network of the same shapes (they share the
    backward's arrays; a coupling copies what it keeps).
    Cost: O(N·H·W·(9·C_in·K + K² + 9·K·C_out)) each way, K hidden channels.
    ``activation``: "relu" (Glow) or "tanh" (smooth: what adaptive finite
    differences with large steps, e.g. scipy's, need to be exact).

    Attributes
    ----------
    params : {"W1": (3, 3, C_in, K), "b1": (K,), "W2": (1, 1, K, K), "b2": (K,), "W3": (3, 3, K, C_out), "b3": (C_out,)}
    """

    def __init__(self, c_in: int, c_out: int, hidden: int = 64, rng: RngLike = None, activation: str = "relu"):
        super().__init__()
        self.activation = lookup(activation, ("relu", "tanh"), "ConvNet: activation")
        c_in, c_out, hidden = (check_int(v, f"ConvNet: {n}") for n, v in (("c_in", c_in), ("c_out", c_out),
                                                                            ("hidden", hidden)))
        rng = as_generator(rng)
        self.add_param("W1", rng.standard_normal((3, 3, c_in, hidden)) * np.sqrt(2.0 / (9 * c_in)))
        self.add_param("b1", np.zeros(hidden))
        self.add_param("W2", rng.standard_normal((1, 1, hidden, hidden)) * np.sqrt(2.0 / hidden))
        self.add_param("b2", np.zeros(hidden))
        self.add_param("W3", np.zeros((3, 3, hidden, c_out)))
        self.add_param("b3", np.zeros(c_out))
        self._buffers: tuple[dict, dict, dict] = ({}, {}, {})  # the forward's, one per convolution

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """The network's output and the cache for :meth:`backward`."""
        p, buffers = self.params, self._buffers
        a1, c1 = conv2d(x, p["W1"], p["b1"], buffers[0])
        h1 = _activate(a1, self.activation)
        a2, c2 = conv2d(h1, p["W2"], p["b2"], buffers[1])
        h2 = _activate(a2, self.activation)
        out, c3 = conv2d(h2, p["W3"], p["b3"], buffers[2])
        return out, (c1, c2, c3, h1, h2)

    def backward(self, cache: Any, grad_out: np.ndarray, need_x: bool = True) -> np.ndarray | None:
        """∂L/∂x from ∂L/∂out; adds ∂L/∂θ into ``grads`` (through h = act(a): ∂L/∂a = ∂L/∂h ⊙ act′(a))."""
        c1, c2, c3, h1, h2 = cache
        g, buffers = self.grads, _backward_buffers((grad_out.shape, self.params["W1"].shape))
        grad_h2, gw, gb = conv2d_vjp(c3, grad_out, buffers=buffers[2])
        g["W3"] += gw
        g["b3"] += gb
        _through_activation(grad_h2, h2, self.activation)
        grad_h1, gw, gb = conv2d_vjp(c2, grad_h2, buffers=buffers[1])
        g["W2"] += gw
        g["b2"] += gb
        _through_activation(grad_h1, h1, self.activation)
        grad_x, gw, gb = conv2d_vjp(c1, grad_h1, need_x, buffers[0])
        g["W1"] += gw
        g["b1"] += gb
        return grad_x


class ConvAffineCoupling(Flow):
    """Affine coupling over channels:  z_A = x_A,  z_B = x_B ⊙ exp(s(x_A)) + t(x_A), (ŝ, t) = ConvNet(x_A).

    x_A: the first ⌊C/2⌋ channels, x_B: the other ⌈C/2⌉ (C ≥ 2).
    Inverse: x_A = z_A,  x_B = (z_B − t(z_A)) ⊙ exp(−s(z_A)).
    Log-det: log|det ∂z/∂x| = Σ_{B, i, j} s(x_A);  log|det ∂x/∂z| = −Σ s(z_A).
    s = 3·tanh(ŝ/3) keeps exp(±s) finite. Identity at initialisation.
    Cost: one ConvNet pass each way, O(N·H·W·K·(9C + K)) for K hidden channels.

    Parameters
    ----------
    shape : (C, H, W)
    hidden : int
        K, the hidden channels of the conditioner.
    rng : None, int or Generator
    activation : {"relu", "tanh"}
        The conditioner's hidden activation (Glow: ReLU).

    Attributes
    ----------
    params : the ConvNet's, as ``"net.W1"``, …, ``"net.b3"``
    """

    def __init__(self, shape: Any, hidden: int = 64, rng: RngLike = None, activation: str = "relu"):
        c, h, w = check_shape(shape, "ConvAffineCoupling")
        if c < 2:
            raise ValueError(f"ConvAffineCoupling: needs C ≥ 2 channels to split, got shape {(c, h, w)}; squeeze first")
        super().__init__(c * h * w)
        self.shape = (c, h, w)
        self.c_a, self.c_b = c // 2, c - c // 2
        self.d_a, self.d_b = self.c_a * h * w, self.c_b * h * w  # x_A = x[:, :d_a] (channels first)
        self.net = ConvNet(self.c_a, 2 * self.c_b, hidden, rng, activation)
        self.expose(self.net, "net")

    def _conditioner(self, part_a: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """(s, t) = NN(x_A), as (N, d_B) arrays in C order, and the network's cache."""
        raw, cache = self.net.forward(to_nhwc(part_a, (self.c_a, *self.shape[1:])))
        raw = from_nhwc(raw)  # channels 0..c_B−1 are ŝ, the next c_B are t
        return bounded_log_scale(raw[:, :self.d_b]), raw[:, self.d_b:], cache

    def _backward(self, grad_out_a, grad_s, grad_t, s, net_cache) -> np.ndarray:
        """∂L/∂in_A = ∂L/∂out_A + (∂NN/∂in_A)ᵀ ∂L/∂(ŝ, t);  s = 3 tanh(ŝ/3) ⇒ ∂s/∂ŝ = 1 − (s/3)²."""
        grad_raw = np.concatenate([grad_s * bounded_log_scale_slope(s), grad_t], axis=1)
        grad_a = self.net.backward(net_cache, to_nhwc(grad_raw, (2 * self.c_b, *self.shape[1:])))
        return grad_out_a + from_nhwc(grad_a)

    # -- f: x → z ---------------------------------------------------------------
    def _forward(self, x):
        x_a, x_b = x[:, :self.d_a], x[:, self.d_a:]
        s, t, net_cache = self._conditioner(x_a)
        scale = np.exp(s)  # |s| < 3: no overflow
        z = np.concatenate([x_a, x_b * scale + t], axis=1)
        return z, s.sum(axis=1), (x_b, s, scale, net_cache)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x_b, s, scale, net_cache = cache
        # z_B = x_B e^s + t, log_det = Σ s:  ∂z_B/∂x_B = e^s, ∂z_B/∂s = x_B e^s, ∂z_B/∂t = 1, ∂log_det/∂s = 1
        grad_z_b = grad_z[:, self.d_a:]
        grad_x_b = grad_z_b * scale
        grad_s = grad_x_b * x_b + grad_log_det[:, None]
        grad_x_a = self._backward(grad_z[:, :self.d_a], grad_s, grad_z_b, s, net_cache)
        return np.concatenate([grad_x_a, grad_x_b], axis=1)

    # -- g: z → x ---------------------------------------------------------------
    def _inverse(self, z):
        z_a, z_b = z[:, :self.d_a], z[:, self.d_a:]
        s, t, net_cache = self._conditioner(z_a)
        inv_scale = np.exp(-s)
        x_b = (z_b - t) * inv_scale
        return np.concatenate([z_a, x_b], axis=1), -s.sum(axis=1), (x_b, s, inv_scale, net_cache)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x_b, s, inv_scale, net_cache = cache
        # x_B = (z_B − t) e^{−s}, log_det = −Σ s:
        # ∂x_B/∂z_B = e^{−s}, ∂x_B/∂t = −e^{−s}, ∂x_B/∂s = −x_B, ∂log_det/∂s = −1
        grad_x_b = grad_x[:, self.d_a:]
        grad_z_b = grad_x_b * inv_scale
        grad_s = -(grad_x_b * x_b) - grad_log_det[:, None]
        grad_z_a = self._backward(grad_x[:, :self.d_a], grad_s, -grad_z_b, s, net_cache)
        return np.concatenate([grad_z_a, grad_z_b], axis=1)

    def __repr__(self) -> str:
        return f"{self.name}(shape={self.shape}, hidden={self.net.params['b1'].size}, params={self.num_params()})"
