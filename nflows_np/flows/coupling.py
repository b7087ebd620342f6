"""Coupling flows (NICE, RealNVP): split x into two parts, transform one conditioned on the other.

Slide (RealNVP), with the split written by a binary mask (x_A ↔ x_{1:d}, x_B ↔ x_{d:m})::

    z_A = x_A,  z_B = τ(x_B, c(x_A))   ⇔   x_A = z_A,  x_B = τ⁻¹(z_B, c(z_A)).

The Jacobian is block-triangular (∂z_A/∂x_B = 0, ∂z_A/∂x_A = I), so
log|det ∂z/∂x| = log|det ∂z_B/∂x_B|, and c may be any network — here an
:class:`~nflows_np.flows.mlp.MLP`. One layer leaves x_A unchanged: permute (or
alternate masks) between layers so that every coordinate gets transformed.

Both layers take the same arguments:

mask : array of 0/1 (or bool), shape (D,)
    ``mask[i] = 1``: x_i is in the conditioning part A, passed through
    unchanged (z_i = x_i); ``mask[i] = 0``: x_i is in the transformed part B.
    Both parts must be non-empty; anything else is refused with a ValueError.
hidden : sequence of int, default (64, 64)
    Hidden widths of the conditioner MLP.
rng : None, int or numpy.random.Generator
    Initial weights and biases of the conditioner, uniform on ±1/√fan_in (the last
    layer starts at 0: the layer starts as the identity).
activation : {"tanh", "relu"}, default "relu"
    Hidden activation of the conditioner. ReLU by default: on the lecture's
    RealNVP recipe (moons, 3000 steps at lr 1e-3) it ends about half as far from
    the entropy as tanh (benchmarks/results/recipes.md).
scale : {"tanh", "exp", "sigmoid"}, default "tanh"  (AffineCoupling only)
    How the conditioner's raw output ŝ becomes the log-scale s (the layer scales x_B by e^s):
    ``"tanh"``: s = c·tanh(ŝ/c), |s| < c = ``scale_bound`` (the soft clamp of
    :func:`~nflows_np.numerics.bounded_log_scale`); ``"exp"``: s = ŝ, unbounded, as
    RealNVP's paper and normflows (a large ŝ overflows e^s: the FlowModel then stops
    training with a DivergenceWarning and keeps the last good parameters);
    ``"sigmoid"``: e^s = σ(ŝ + 2), i.e. s = −softplus(−ŝ − 2) < 0, as Glow.
scale_bound : float, default 3
    The bound c of ``scale="tanh"``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nflows_np.base import Flow, RngLike
from nflows_np.flows.mlp import MLP
from nflows_np.numerics import LOG_SCALE_BOUND, bounded_log_scale, bounded_log_scale_slope, softplus
from nflows_np.validation import NonFiniteError, check_real, lookup

SCALES = ("tanh", "exp", "sigmoid")
EXP_LIMIT = float(np.log(np.finfo(np.float64).max))  # ≈ 709.78: e^s is finite below it


def check_mask(mask: Any, who: str) -> np.ndarray:
    """A coupling mask as an int array of 0/1 with both parts non-empty, or a clear error naming ``who``."""
    try:
        array = np.asarray(mask)
    except Exception as err:  # noqa: BLE001 - ragged lists and the like
        raise TypeError(f"{who}: mask must be a 1-D binary vector, could not convert ({err})") from None
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{who}: mask must be a 1-D binary (0/1) vector, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{who}: mask must be a 1-D binary vector of length D, got shape {array.shape}")
    if not np.all((array == 0) | (array == 1)):
        raise ValueError(f"{who}: mask must contain only 0 and 1, got values {np.unique(array).tolist()}")
    if not np.any(array == 1):
        raise ValueError(f"{who}: mask {array.astype(int).tolist()} has no 1: the conditioning part x_A is empty")
    if np.all(array == 1):
        raise ValueError(f"{who}: mask {array.astype(int).tolist()} has no 0: the transformed part x_B is empty "
                         "(the layer would be the identity)")
    return array.astype(int)


def rows_of(index: np.ndarray) -> slice | np.ndarray:
    """A slice for a contiguous run of indices (indexing by it gives a view), else the index array."""
    if index[-1] - index[0] == index.size - 1:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


class AffineCoupling(Flow):
    """RealNVP affine coupling (Dinh et al. 2017):  z_A = x_A,  z_B = x_B ⊙ exp(s(x_A)) + t(x_A).

    Inverse: x_A = z_A,  x_B = (z_B − t(z_A)) ⊙ exp(−s(z_A)).
    log|det ∂z/∂x| = Σ_{i∈B} s_i(x_A);  log|det ∂x/∂z| = −Σ_{i∈B} s_i(z_A).

    One MLP ``net`` (|A| → 2|B|) outputs (ŝ, t); by default the log-scale is the
    soft clamp s = 3·tanh(ŝ/3) of :func:`~nflows_np.numerics.bounded_log_scale`, so
    exp(±s) never overflows (``scale`` chooses another map, see the module docstring).
    The last layer starts at 0: t = 0 and s = 0 (s = log σ(2) for ``scale="sigmoid"``),
    so the layer starts as the identity (as a fixed scaling by σ(2) ≈ 0.88 for "sigmoid"). A variant (e.g. :class:`AdditiveCoupling`) overrides
    the two hooks ``_scale_and_shift`` and ``_scale_and_shift_vjp``.

    Cost: one MLP pass each way, O(N·(D·H + H²)) for hidden width H.

    Parameters
    ----------
    mask, hidden, rng, activation, scale, scale_bound
        See the module docstring: ``mask[i] = 1`` puts x_i in the conditioning
        part A (unchanged), ``0`` in the transformed part B; ``hidden`` are the conditioner's widths;
        ``scale`` maps the raw output to the log-scale ("tanh", "exp" or "sigmoid").
    """

    outputs_per_coordinate = 2  # (ŝ, t) for every coordinate of B

    def __init__(self, mask: Any, hidden: Sequence[int] = (64, 64), rng: RngLike = None, activation: str = "relu",
                 scale: str = "tanh", scale_bound: float = LOG_SCALE_BOUND):
        self.scale = lookup(scale, SCALES, f"{type(self).__name__}: scale")
        self.scale_bound = check_real(scale_bound, f"{type(self).__name__}: scale_bound", 0.0, inclusive=False)
        mask = check_mask(mask, type(self).__name__)
        super().__init__(mask.size)
        self.mask = mask
        self.index_a = np.flatnonzero(mask == 1)
        self.index_b = np.flatnonzero(mask == 0)
        self._rows_a, self._rows_b = rows_of(self.index_a), rows_of(self.index_b)
        out_dim = self.outputs_per_coordinate * self.index_b.size
        # Uniform ±1/√fan_in weights and biases: on the RealNVP recipe, half the gap of He / Glorot
        # normal with zero biases (benchmarks/results/recipes.md)
        self.net = MLP(self.index_a.size, out_dim, hidden, activation, rng, zero_last=True, name=f"{self.name}.net",
                       init="uniform")
        self.expose(self.net, "net")

    # -- the hooks a variant overrides -----------------------------------------
    # Both work in the transposed layout of the passes: one row per coordinate of B,
    # one column per sample.
    def _scale_and_shift(self, net_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, t), each (|B|, N), from the conditioner's output (2|B|, N): the log-scale and the shift."""
        n_b = self.index_b.size
        raw = net_out[:n_b]
        if self.scale == "tanh":
            s = bounded_log_scale(raw, self.scale_bound)
        elif self.scale == "exp":
            s = raw  # a view of net_out, which is a fresh array of this call
        else:
            s = -softplus(-2.0 - raw)  # e^s = σ(ŝ + 2) ⇔ s = log σ(ŝ + 2) = −softplus(−(ŝ + 2))
        return s, net_out[n_b:]

    def _scale_and_shift_vjp(self, s: np.ndarray, grad_s: np.ndarray, grad_t: np.ndarray) -> np.ndarray:
        """∂L/∂(conditioner output) (2|B|, N) from ∂L/∂s and ∂L/∂t."""
        n_b = self.index_b.size
        grad_net = np.empty((2 * n_b, grad_t.shape[1]))
        if self.scale == "tanh":
            # s = c·tanh(ŝ/c) ⇒ ∂L/∂ŝ = ∂L/∂s ⊙ (1 − (s/c)²)
            np.multiply(grad_s, bounded_log_scale_slope(s, self.scale_bound), out=grad_net[:n_b])
        elif self.scale == "exp":
            grad_net[:n_b] = grad_s  # s = ŝ
        else:
            # s = log σ(u), u = ŝ + 2 ⇒ ds/dŝ = σ′(u)/σ(u) = 1 − σ(u) = 1 − e^s
            slope = np.exp(s)
            np.subtract(1.0, slope, out=slope)
            np.multiply(grad_s, slope, out=grad_net[:n_b])
        grad_net[n_b:] = grad_t
        return grad_net

    def _exp(self, s: np.ndarray, sign: float) -> np.ndarray:
        """e^{±s}; a NonFiniteError naming the layer where it would overflow (only unbounded maps can).

        "tanh" keeps |s| < c; "exp" leaves s unbounded either way, "sigmoid" below (its inverse
        divides by σ(ŝ + 2) → 0): a bad step or a huge |x| can take ŝ to the float limit.
        """
        if self.scale != "tanh":
            peak = float(np.max(s if sign > 0 else -s, initial=-np.inf))
            if not peak < EXP_LIMIT:
                raise NonFiniteError(f"{self.name}: the log-scale reached {sign * peak:.4g}, e^(±s) overflows "
                                     f"float64 (scale={self.scale!r} is unbounded: lower the learning rate or "
                                     "use scale='tanh')")
        return np.exp(s) if sign > 0 else np.exp(-s)

    # -- split, merge, and the shared backward -----------------------------------
    # The passes work on transposed views (D, N) of the (N, D) batches: a part is a
    # block of rows, a view without a copy when its coordinates are contiguous.
    def _split(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(part_Aᵀ, part_Bᵀ), shapes (|A|, N) and (|B|, N), of an (N, D) batch."""
        rows = batch.T
        return rows[self._rows_a], rows[self._rows_b]

    def _merge(self, part_a: np.ndarray, part_b: np.ndarray) -> np.ndarray:
        """The (N, D) array with part_aᵀ in the columns of A and part_bᵀ in those of B."""
        whole = np.empty((part_a.shape[1], self.dim))
        whole.T[self._rows_a] = part_a
        whole.T[self._rows_b] = part_b
        return whole

    def _backward(self, grad_out_a: np.ndarray, grad_in_b: np.ndarray, grad_s: np.ndarray,
                  grad_t: np.ndarray, s: np.ndarray) -> np.ndarray:
        """∂L/∂in from ∂L/∂out_A, ∂L/∂in_B (direct path) and ∂L/∂(s, t); adds ∂L/∂θ into ``grads``.

        in_A = out_A and it also feeds c, so ∂L/∂in_A = ∂L/∂out_A + (∂c/∂in_A)ᵀ ∂L/∂(s, t).
        """
        grad_in_a = self.net.backward_t(self._scale_and_shift_vjp(s, grad_s, grad_t))
        grad_in_a += grad_out_a
        return self._merge(grad_in_a, grad_in_b)

    # -- f: x → z --------------------------------------------------------------
    def _forward(self, x):
        x_a, x_b = self._split(x)
        s, t = self._scale_and_shift(self.net.forward_t(x_a))
        scale = self._exp(s, 1.0)
        z_b = x_b * scale
        z_b += t
        # x_B is copied into the cache: x_b may be a view of the caller's x
        return self._merge(x_a, z_b), s.sum(axis=0), (x_b.copy(), s, scale)

    def _forward_vjp(self, cache, grad_z, grad_log_det):
        x_b, s, scale = cache
        # z_B = x_B ⊙ e^s + t, log_det = Σ s:  ∂z_B/∂x_B = e^s;  ∂z_B/∂t = 1;  ∂z_B/∂s = x_B ⊙ e^s;  ∂log_det/∂s = 1
        grad_z_a, grad_z_b = self._split(grad_z)
        grad_x_b = grad_z_b * scale
        grad_s = grad_x_b * x_b
        grad_s += grad_log_det  # (N,) against (|B|, N): the same ∂L/∂log_det for every row
        return self._backward(grad_z_a, grad_x_b, grad_s, grad_z_b, s)

    # -- g: z → x --------------------------------------------------------------
    def _inverse(self, z):
        z_a, z_b = self._split(z)
        s, t = self._scale_and_shift(self.net.forward_t(z_a))
        inv_scale = self._exp(s, -1.0)
        x_b = z_b - t
        x_b *= inv_scale
        return self._merge(z_a, x_b), -s.sum(axis=0), (x_b, s, inv_scale)

    def _inverse_vjp(self, cache, grad_x, grad_log_det):
        x_b, s, inv_scale = cache
        # x_B = (z_B − t) ⊙ e^{−s}, log_det = −Σ s:
        # ∂x_B/∂z_B = e^{−s};  ∂x_B/∂t = −e^{−s};  ∂x_B/∂s = −x_B;  ∂log_det/∂s = −1
        grad_x_a, grad_x_b = self._split(grad_x)
        grad_z_b = grad_x_b * inv_scale
        grad_s = grad_x_b * x_b
        grad_s += grad_log_det
        np.negative(grad_s, out=grad_s)
        return self._backward(grad_x_a, grad_z_b, grad_s, -grad_z_b, s)

    def __repr__(self) -> str:
        scale = "" if self.scale == "tanh" and self.scale_bound == LOG_SCALE_BOUND else \
            f", scale={self.scale!r}" + (f", scale_bound={self.scale_bound:g}" if self.scale == "tanh" else "")
        return (f"{self.name}(mask={self.mask.tolist()}, hidden={self.net.sizes[1:-1]}{scale}, "
                f"params={self.num_params()})")


class AdditiveCoupling(AffineCoupling):
    """NICE additive coupling (Dinh et al. 2014):  z_A = x_A,  z_B = x_B + t(x_A).

    Inverse: x_A = z_A,  x_B = z_B − t(z_A).  Volume preserving:
    log|det ∂z/∂x| = log|det ∂x/∂z| = 0.  The affine coupling with s ≡ 0: the
    MLP (|A| → |B|) outputs t only, and its last layer starts at 0, so the layer
    starts as the identity.

    Cost: one MLP pass each way, O(N·(D·H + H²)) for hidden width H.

    Parameters
    ----------
    mask, hidden, rng, activation
        See the module docstring: ``mask[i] = 1`` puts x_i in the conditioning
        part A (unchanged), ``0`` in the transformed part B; ``hidden`` are t's widths.
    """

    outputs_per_coordinate = 1  # t only

    def __init__(self, mask: Any, hidden: Sequence[int] = (64, 64), rng: RngLike = None, activation: str = "relu"):
        super().__init__(mask, hidden, rng, activation)  # no scale to parametrise: s ≡ 0

    def _scale_and_shift(self, net_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros_like(net_out), net_out  # (|B|, N) each, as the affine hook

    def _scale_and_shift_vjp(self, s: np.ndarray, grad_s: np.ndarray, grad_t: np.ndarray) -> np.ndarray:
        return grad_t  # s is the constant 0: no gradient flows through it
