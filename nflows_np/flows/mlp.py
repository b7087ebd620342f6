"""The conditioner network of coupling and autoregressive flows: a multilayer perceptron.

    a_0 = h,   a_k = σ(a_{k−1} (W_k ⊙ M_k) + b_k)  (k < L),   out = a_{L−1} (W_L ⊙ M_L) + b_L

with rows as samples (``h`` is (N, in_dim)), σ = tanh or relu, and optional
fixed binary masks M_k (MADE; all-ones when absent). It is *not* a flow (it
need not be invertible), but it follows the flow's parameter conventions, so a
layer can expose its arrays as ``"net.W1"``, … and a FlowModel as ``"3.net.W1"``.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from nflows_np.base import Module
from nflows_np.validation import RngLike, as_generator, check_int

ACTIVATIONS = ("tanh", "relu")
INITS = ("scaled-normal", "uniform")
_SCRATCH = threading.local()


def _scratch(sizes: tuple[int, ...], n: int) -> dict[str, list[np.ndarray]]:
    """Buffers for the temporaries of one backward pass, shared by every MLP of these sizes in this thread.

    A backward pass's hidden gradients are dead once it returns, so one set of
    buffers serves all the networks of a model: it stays in cache from layer to
    layer, where per-network buffers would each be written cold.
    """
    pool = _SCRATCH.__dict__.setdefault("pool", {})
    if pool.get(sizes, (None,))[0] != n:  # one batch size per architecture is kept: the pool does not grow
        hidden = sizes[1:-1]
        pool[sizes] = (n, {"grad": [np.empty((width, n)) for width in hidden],
                           "slope": [np.empty((width, n)) for width in hidden],
                           "active": [np.empty((width, n), dtype=bool) for width in hidden],
                           "block": [np.empty((fan_in + 1, fan_out)) for fan_in, fan_out in pairwise(sizes)]})
    return pool[sizes][1]


def check_hidden(hidden: Any, who: str) -> tuple[int, ...]:
    """The hidden widths as a tuple of ints; ``ValueError`` naming ``who`` otherwise."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (Sequence, np.ndarray)):
        raise TypeError(f"{who}: hidden must be a sequence of positive integers, got {hidden!r}")
    return tuple(check_int(width, f"{who}: hidden width") for width in hidden)


class MLP(Module):
    """Fully connected network ``out = MLP(h)`` with hand-written backward.

    Parameters ``"W1", "b1", …, "WL", "bL"``; ``W_k`` has shape (fan_in, fan_out)
    so that a batch is ``h @ W_k + b_k``. Weights are drawn from ``rng`` by
    ``init``: ``"scaled-normal"`` (default), Glorot normal (std √(2/(fan_in + fan_out)))
    for tanh, He normal (std √(2/fan_in)) for relu, biases 0; ``"uniform"``, weights
    *and biases* uniform on ±1/√fan_in (PyTorch's ``nn.Linear`` default). Random
    biases matter for a conditioner with a 1-D input (a 2-D coupling): with b = 0
    every first-layer unit switches (relu's kink, tanh's centre) at the same input
    0, and the network starts as a function of two pieces. With ``zero_last`` the
    last layer (weights and bias) starts at 0, so the network outputs 0 and the
    flow built on it starts as the identity.

    Gradients (backward, for ∂L/∂out = G_L):
    ∂L/∂W_k = (a_{k−1}ᵀ G_k) ⊙ M_k,  ∂L/∂b_k = Σ_n G_k,  ∂L/∂a_{k−1} = G_k (W_k ⊙ M_k)ᵀ,
    G_{k−1} = ∂L/∂a_{k−1} ⊙ σ′, with σ′ = 1 − a² (tanh) or [a > 0] (relu).
    Masked entries of W_k get exactly zero gradient, so they never move under
    gradient descent (and do not matter anyway: the effective weight is W ⊙ M).

    Layout: W_k and b_k are views of one block [W_k; b_k] (fan_in + 1, fan_out), and
    the passes run transposed (features × samples, :meth:`forward_t`, :meth:`backward_t`)
    on activations with an appended row of ones, so the bias add and the bias
    gradient ride along in the products. ``forward`` / ``backward`` take and return
    the usual (N, ·) arrays.

    Cost: O(N·(in·H + H² + H·out)) per pass (forward or backward), H the
    hidden width; memory O(N·H·L) for the cached activations.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths (≥ 1).
    hidden : sequence of int
        Hidden widths; ``()`` gives an affine map.
    activation : {"tanh", "relu"}
    rng : None, int or numpy.random.Generator
    zero_last : bool
        Initialise the last layer to zero.
    init : {"scaled-normal", "uniform"}
        How the weights (and, for "uniform", the biases) are drawn; see above.
    masks : sequence of arrays, optional
        One binary (fan_in, fan_out) array per weight matrix (MADE).
    name : str
        Used in error messages (a layer passes e.g. ``"AffineCoupling.net"``).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                 rng: RngLike = None, zero_last: bool = True, masks: Sequence[Any] | None = None,
                 name: str = "MLP", init: str = "scaled-normal"):
        self.name = name
        check_int(in_dim, f"{name}: in_dim")
        check_int(out_dim, f"{name}: out_dim")
        hidden = check_hidden(hidden, name)
        if activation not in ACTIVATIONS:
            raise ValueError(f"{name}: activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"{name}: init must be one of {INITS}, got {init!r}")
        try:
            rng = as_generator(rng)
        except TypeError as err:
            raise TypeError(f"{name}: {err}") from None
        self.sizes = [int(in_dim), *hidden, int(out_dim)]
        self._sizes = tuple(self.sizes)
        self.activation = activation
        self.masks = self._check_masks(masks)
        super().__init__()
        self._register_params(rng, init, zero_last)
        self._cache: list[np.ndarray] | None = None
        self._workspace_n = -1

    def _register_params(self, rng: np.random.Generator, init: str, zero_last: bool) -> None:
        """W_k and b_k as views of one (fan_in + 1, fan_out) block [W_k; b_k], all blocks in one flat buffer.

        The block is the affine map on the augmented input [a, 1]: a W + b = [a, 1] [W; b], so one
        product does the bias add and one the bias sum. One buffer for all blocks, in the order of
        ``params``, lets an optimiser update them as one vector.
        """
        shapes = [(fan_in + 1, fan_out) for fan_in, fan_out in pairwise(self.sizes)]
        flat = np.zeros(sum(a * b for a, b in shapes))
        flat_grad = np.zeros_like(flat)
        self._blocks, self._grad_blocks, self._block_masks = [], [], []
        offset = 0
        for k, (rows, fan_out) in enumerate(shapes, start=1):
            block = flat[offset:offset + rows * fan_out].reshape(rows, fan_out)
            grad_block = flat_grad[offset:offset + rows * fan_out].reshape(rows, fan_out)
            offset += rows * fan_out
            weight, bias = self._initial_layer(rng, rows - 1, fan_out, init, self.activation)
            if not (k == len(shapes) and zero_last):
                block[:-1], block[-1] = weight, bias
            mask = self.masks[k - 1]
            if mask is not None:
                mask = np.vstack([mask, np.ones((1, fan_out))])  # the bias row is never masked
                block *= mask
            for key, rows_of in ((f"W{k}", slice(0, -1)), (f"b{k}", -1)):
                self.params[key], self.grads[key] = block[rows_of], grad_block[rows_of]
            self._blocks.append(block)
            self._grad_blocks.append(grad_block)
            self._block_masks.append(mask)

    @staticmethod
    def _initial_layer(rng: np.random.Generator, fan_in: int, fan_out: int, init: str,
                       activation: str) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) of one layer drawn as ``init`` says (see the class docstring)."""
        if init == "uniform":
            limit = 1.0 / np.sqrt(fan_in)
            return rng.uniform(-limit, limit, (fan_in, fan_out)), rng.uniform(-limit, limit, fan_out)
        std = np.sqrt(2.0 / (fan_in + fan_out)) if activation == "tanh" else np.sqrt(2.0 / fan_in)
        return std * rng.standard_normal((fan_in, fan_out)), np.zeros(fan_out)

    def _check_masks(self, masks: Sequence[Any] | None) -> list[np.ndarray | None]:
        n_layers = len(self.sizes) - 1
        if masks is None:
            return [None] * n_layers
        if len(masks) != n_layers:
            raise ValueError(f"{self.name}: needs one mask per weight matrix ({n_layers}), got {len(masks)}")
        checked = []
        for k, mask in enumerate(masks):
            mask = np.asarray(mask, dtype=np.float64)
            shape = (self.sizes[k], self.sizes[k + 1])
            if mask.shape != shape or not np.all((mask == 0.0) | (mask == 1.0)):
                raise ValueError(f"{self.name}: mask {k + 1} must be a binary array of shape {shape}, "
                                 f"got shape {mask.shape}")
            checked.append(mask)
        return checked

    @property
    def in_dim(self) -> int:
        return self.sizes[0]

    @property
    def out_dim(self) -> int:
        return self.sizes[-1]

    def _workspace(self, n: int) -> None:
        """(Re)allocate the buffers of the passes when the batch size changes.

        Activations are stored transposed, one row per unit and one column per
        sample, with a last row of ones: A_k = [a_kᵀ; 1ᵀ], shape (width + 1, N), so
        [W; b]ᵀ A_{k−1} is the next pre-activation and A_{k−1} Gᵀ is [∂L/∂W; ∂L/∂b],
        each one contiguous product. Reusing the buffers keeps the hot path free of
        large temporaries, whose allocation costs as much as a small product.
        """
        if self._workspace_n == n:
            return
        self._activations = [np.ones((width + 1, n)) for width in self.sizes[:-1]]
        self._workspace_n = n

    def forward(self, h: np.ndarray) -> np.ndarray:
        """out = MLP(h), shape (N, out_dim), a new array; caches what ``backward`` needs.

        ``h`` must be a float (N, in_dim) array (the calling layer validates it);
        it is copied into the first activation buffer. The result is the transpose
        of :meth:`forward_t`'s (a view with samples along its columns in memory).
        """
        return self.forward_t(h.T).T

    def forward_t(self, h_t: np.ndarray) -> np.ndarray:
        """outᵀ = MLP(h)ᵀ, shape (out_dim, N), from hᵀ (in_dim, N): the transposed layout the passes use.

        Hidden activations live in buffers that the next ``forward`` overwrites.
        """
        self._workspace(h_t.shape[1])
        acts = self._activations
        acts[0][:-1] = h_t
        blocks = self._blocks if self.masks[0] is None else \
            [block if mask is None else block * mask for block, mask in zip(self._blocks, self._block_masks)]
        for k in range(len(blocks) - 1):
            # a_kᵀ = σ([W_k; b_k]ᵀ A_{k−1}), into the rows above A_k's row of ones
            pre = np.dot(blocks[k].T, acts[k], out=acts[k + 1][:-1])
            if self.activation == "tanh":
                np.tanh(pre, out=pre)
            else:
                np.maximum(pre, 0.0, out=pre)
        self._cache = blocks
        return np.dot(blocks[-1].T, acts[-1])

    def backward(self, grad_out: np.ndarray, param_grads: bool = True) -> np.ndarray:
        """∂L/∂h (N, in_dim) from ∂L/∂out (N, out_dim) for the most recent ``forward``.

        Adds ∂L/∂θ into ``grads`` unless ``param_grads`` is False (then only the
        input gradient is computed, about 2/3 of the cost). The cache is only
        read, so ``backward`` may be called several times for one ``forward``.
        """
        return self.backward_t(grad_out.T, param_grads).T

    def backward_t(self, grad_out_t: np.ndarray, param_grads: bool = True) -> np.ndarray:
        """(∂L/∂h)ᵀ (in_dim, N), a new array, from (∂L/∂out)ᵀ (out_dim, N): :meth:`backward` transposed."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}.backward: no forward pass to differentiate; call forward(h) first")
        blocks, acts = self._cache, self._activations
        scratch = _scratch(self._sizes, grad_out_t.shape[1])
        grad = grad_out_t
        for k in range(len(blocks) - 1, 0, -1):
            if param_grads:
                self._add_param_grads(k, grad, scratch["block"][k])
            # G_{k−1}ᵀ = (W_k ⊙ M_k) G_kᵀ ⊙ σ′(a_{k−1})ᵀ, in a buffer (grad_out is never written)
            grad = np.dot(blocks[k][:-1], grad, out=scratch["grad"][k - 1])
            a_prev = acts[k][:-1]
            if self.activation == "tanh":
                # tanh′ = 1 − a², from the cached output a: no second tanh
                slope = np.multiply(a_prev, a_prev, out=scratch["slope"][k - 1])
                np.subtract(1.0, slope, out=slope)
                grad *= slope
            else:
                # relu′ = [a > 0], as a boolean buffer (a float mask would be a second pass)
                grad *= np.greater(a_prev, 0.0, out=scratch["active"][k - 1])
        if param_grads:
            self._add_param_grads(0, grad, scratch["block"][0])
        # (∂L/∂h)ᵀ = (W_1 ⊙ M_1) G_1ᵀ, a fresh array for the caller
        return np.dot(blocks[0][:-1], grad)

    def _add_param_grads(self, k: int, grad_t: np.ndarray, buffer: np.ndarray) -> None:
        """Layer k + 1: out = [a_prev, 1] [W ⊙ M; b]  ⇒  [∂L/∂W; ∂L/∂b] = (A_prev Gᵀ) ⊙ [M; 1].

        A_prev = [a_prevᵀ; 1ᵀ] is the cached activation buffer; its row of ones gives Σ_n G as the last row.
        """
        grad_block = np.dot(self._activations[k], grad_t.T, out=buffer)
        if self._block_masks[k] is not None:
            grad_block *= self._block_masks[k]
        self._grad_blocks[k] += grad_block

    def __repr__(self) -> str:
        masked = ", masked" if self.masks[0] is not None else ""
        return f"{self.name}(sizes={self.sizes}, activation={self.activation!r}{masked})"
