"""Optimisers that update a flow's ``params`` in place from its ``grads``.

Both take any object with ``params`` and ``grads`` dicts (a layer or a
FlowModel) and keep one state array per parameter, updated in place, so a
step allocates nothing: a training step is a hot path.
"""
from __future__ import annotations

import abc

import numpy as np

from nflows_np.base import Module
from nflows_np.validation import check_real


def grad_norm(grads: dict[str, np.ndarray]) -> float:
    """The global Euclidean norm ‖(∂L/∂θ_1, …, ∂L/∂θ_P)‖₂ over every gradient array."""
    return float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``.

    Returns the norm before clipping (as ``torch.nn.utils.clip_grad_norm_`` does).
    """
    max_norm = check_real(max_norm, "clip_grad_norm: max_norm", minimum=0.0, inclusive=False)
    norm = grad_norm(grads)
    if norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


class Optimizer(abc.ABC):
    """Base class: holds the model's ``params`` and ``grads`` (the same arrays).

    The optimiser's state lives in flat vectors over all parameters, so an
    update is a handful of vector operations, not a handful per parameter
    array: a FlowModel of 16 planar layers has 48 small arrays, and per-array
    work made Adam the largest cost of a training step. Each step gathers the
    gradients into one vector and subtracts the update from each parameter in
    place (``params`` keep their identity).
    """

    def __init__(self, model: Module, lr: float):
        if not (hasattr(model, "params") and hasattr(model, "grads")):
            raise TypeError(f"{type(self).__name__}: needs an object with params and grads, got {type(model).__name__}")
        self.params: dict[str, np.ndarray] = model.params
        self.grads: dict[str, np.ndarray] = model.grads
        self.lr = check_real(lr, f"{type(self).__name__}: lr", minimum=0.0, inclusive=False)
        self.steps = 0
        self._slices: list[tuple[np.ndarray, np.ndarray, slice]] = []
        offset = 0
        for key, param in self.params.items():
            self._slices.append((param, self.grads[key], slice(offset, offset + param.size)))
            offset += param.size
        self._grad = np.zeros(offset)
        self._update = np.zeros(offset)

    def _gather_grads(self) -> np.ndarray:
        """All gradients as one flat vector (a buffer reused from step to step)."""
        for _, grad, part in self._slices:
            self._grad[part] = grad.reshape(-1)
        return self._grad

    def _apply(self, update: np.ndarray) -> None:
        """θ ← θ − update, parameter by parameter, in place."""
        for param, _, part in self._slices:
            param -= update[part].reshape(param.shape)

    @abc.abstractmethod
    def step(self) -> None:
        """Update every parameter in place from its gradient."""


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    v ← μ v + ∇θ;   θ ← θ − η v        (μ = 0: plain SGD).
    """

    def __init__(self, model: Module, lr: float = 1e-2, momentum: float = 0.0):
        super().__init__(model, lr)
        self.momentum = check_real(momentum, "SGD: momentum", minimum=0.0)
        if self.momentum >= 1.0:
            raise ValueError(f"SGD: momentum must be < 1, got {momentum!r}")
        self.velocity = np.zeros_like(self._grad)

    def step(self) -> None:
        self.velocity *= self.momentum
        self.velocity += self._gather_grads()
        np.multiply(self.velocity, self.lr, out=self._update)
        self._apply(self._update)
        self.steps += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015).

    m ← β₁ m + (1 − β₁) g;   v ← β₂ v + (1 − β₂) g²;
    θ ← θ − η m̂ / (√v̂ + ε),  with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
    """

    def __init__(self, model: Module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(model, lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        for name, beta in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Adam: {name} must be in [0, 1), got {beta!r}")
        self.eps = check_real(eps, "Adam: eps", minimum=0.0, inclusive=False)
        self.m = np.zeros_like(self._grad)
        self.v = np.zeros_like(self._grad)

    def step(self) -> None:
        self.steps += 1
        g, m, v, update = self._gather_grads(), self.m, self.v, self._update
        # Fold both bias corrections into the step size: η √(1 − β₂ᵗ) / (1 − β₁ᵗ).
        step_size = self.lr * np.sqrt(1.0 - self.beta2 ** self.steps) / (1.0 - self.beta1 ** self.steps)
        eps_hat = self.eps * np.sqrt(1.0 - self.beta2 ** self.steps)
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        np.sqrt(v, out=update)
        update += eps_hat
        np.divide(m, update, out=update)
        update *= step_size
        self._apply(update)
