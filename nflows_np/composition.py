"""Composition of flows:  z = f(x) = f_K ∘ … ∘ f_1(x),  x = g_1 ∘ … ∘ g_K(z).

By the composition theorem (chain rule and det(AB) = det A det B),

    log|det ∂f/∂x| = Σ_k log|det ∂f_k/∂f_{k−1}|,

so a composition accumulates its layers' log-dets in one loop, and
log p(x) = log p_Z(f(x)) + log|det ∂f/∂x|.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nflows_np.base import Flow, NonFiniteError, RngLike
from nflows_np.distributions import StandardNormal


class FlowModel(Flow):
    """A sequence of flows, itself a :class:`Flow`, with a base density.

    ``forward`` applies ``layers[0]`` first (x → z); ``inverse`` applies them in
    reverse (z → x). ``params`` / ``grads`` are flat views of the layers'
    arrays under keys ``"{index}.{key}"`` (e.g. ``"3.net.W1"``); they are the
    same array objects, so an optimiser holding them updates the layers.

    Cost: the sum of the layers' costs.

    Parameters
    ----------
    layers : sequence of Flow
        All of the same ``dim``.
    base : object with ``log_prob``, ``grad_log_prob`` and ``sample``, optional
        Defaults to ``StandardNormal(dim)``.
    """

    def __init__(self, layers: Sequence[Flow], base: Any = None):
        layers = list(layers)
        if not layers:
            raise ValueError("FlowModel: needs at least one layer")
        for index, layer in enumerate(layers):
            if not isinstance(layer, Flow):
                raise TypeError(f"FlowModel: layer {index} is a {type(layer).__name__}, not a nflows_np.Flow; "
                                "subclass Flow and implement _forward/_forward_vjp/_inverse/_inverse_vjp")
        dims = {layer.dim for layer in layers}
        if len(dims) != 1:
            raise ValueError(f"FlowModel: layers have different dims {[layer.dim for layer in layers]}")
        super().__init__(dims.pop())
        self.layers = layers
        self.spec: dict | None = None  # how to rebuild it, set by nflows_np.models builders
        self.base = StandardNormal(self.dim) if base is None else base
        if getattr(self.base, "dim", self.dim) != self.dim:
            raise ValueError(f"FlowModel: base has dim {self.base.dim}, layers have dim {self.dim}")
        for index, layer in enumerate(layers):
            self.expose(layer, str(index))

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Flow:
        return self.layers[index]

    # Inside a composition the layers run on arrays the model has already checked:
    # the model validates its input once and its output once (see ``_check_output``),
    # instead of every layer validating every intermediate array.
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        log_det = np.zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer._forward_pass(x)
            log_det += layer_log_det
        return x, log_det, None

    def _forward_vjp(self, cache: None, grad_z: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        # log_det is a plain sum, so every layer receives the same ∂L/∂log_det.
        for layer in reversed(self.layers):
            grad_z = layer._vjp(grad_z, grad_log_det)
        return grad_z

    def _inverse(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        log_det = np.zeros(z.shape[0])
        for layer in reversed(self.layers):
            z, layer_log_det = layer._inverse_pass(z)
            log_det += layer_log_det
        return z, log_det, None

    def _inverse_vjp(self, cache: None, grad_x: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            grad_x = layer._vjp(grad_x, grad_log_det)
        return grad_x

    def _forward_pass(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, log_det = super()._forward_pass(x)
        self._check_output("forward", x, z, log_det)
        return z, log_det

    def _inverse_pass(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, log_det = super()._inverse_pass(z)
        self._check_output("inverse", z, x, log_det)
        return x, log_det

    def _check_output(self, direction: str, inp: np.ndarray, out: np.ndarray, log_det: np.ndarray) -> None:
        """Raise NonFiniteError naming the first layer whose output is NaN / inf (never a silent NaN)."""
        if np.isfinite(np.sum(out)) and np.isfinite(np.sum(log_det)):
            return
        order = self.layers if direction == "forward" else self.layers[::-1]
        h = inp
        for layer in order:
            with np.errstate(over="ignore", invalid="ignore"):
                h_next, layer_log_det = getattr(layer, direction)(h)
            if not (np.all(np.isfinite(h_next)) and np.all(np.isfinite(layer_log_det))):
                index = self.layers.index(layer)
                raise NonFiniteError(f"{self.name}.{direction}: layer {index} ({layer.name}) gave non-finite "
                                     f"values (its input had max |value| {np.max(np.abs(h), initial=0):.3g})")
            h = h_next
        raise NonFiniteError(f"{self.name}.{direction}: non-finite output or log-det")

    # -- densities and sampling ----------------------------------------------
    def log_prob(self, x: Any) -> np.ndarray:
        """log p(x|θ) = log p_Z(f(x)) + log|det ∂f/∂x|, shape (N,)."""
        z, log_det = self.forward(x)
        return self.base.log_prob(z) + log_det

    def sample(self, n: int, rng: RngLike = None, temperature: float = 1.0) -> np.ndarray:
        """x = g(z) with z ~ p_Z (scaled by ``temperature``), shape (n, D)."""
        return self.sample_with_log_prob(n, rng, temperature)[0]

    def sample_with_log_prob(self, n: int, rng: RngLike = None, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Samples x = g(z) and their log p(x|θ) = log p_Z(z) − log|det ∂g/∂z|.

        The log-density is that of the model (temperature 1), evaluated at
        the returned samples.
        """
        z = self.base.sample(n, rng, temperature) if temperature != 1.0 else self.base.sample(n, rng)
        x, log_det = self.inverse(z)
        return x, self.base.log_prob(z) - log_det

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"FlowModel(dim={self.dim}, params={self.num_params()}, layers=[\n  {inner}\n])"
