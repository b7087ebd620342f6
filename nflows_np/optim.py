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


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _flat_view(first: np.ndarray, size: int) -> np.ndarray | None:
    """A 1-D view of ``size`` elements of memory starting at ``first``'s, or None if there is none."""
    root = _root(first)
    if not (root.flags.c_contiguous and root.dtype == first.dtype):
        return None
    offset, remainder = divmod(_address(first) - _address(root), root.itemsize)
    if remainder or offset < 0 or offset + size > root.size:
        return None
    return root.reshape(-1)[offset:offset + size]


def contiguous_runs(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray, slice]]:
    """(param, grad, slice of the flat vector) per run of (param, grad) pairs that lie end to end in memory.

    A network that keeps its arrays in one buffer (as :class:`~nflows_np.flows.mlp.MLP`)
    is then one run: one copy and one subtraction per step instead of one per array.
    A pair that starts no run (non-contiguous, or away from its neighbour) is its own run.
    """
    runs: list[list] = []  # [first param, first grad, size, arrays] per run
    for param, grad in pairs:
        adjacent = (runs and param.flags.c_contiguous and grad.flags.c_contiguous
                    and runs[-1][3][-1][0].flags.c_contiguous and runs[-1][3][-1][1].flags.c_contiguous
                    and _address(param) == _address(runs[-1][0]) + runs[-1][2] * param.itemsize
                    and _address(grad) == _address(runs[-1][1]) + runs[-1][2] * grad.itemsize
                    and _root(param) is _root(runs[-1][0]) and _root(grad) is _root(runs[-1][1]))
        if adjacent:
            runs[-1][2] += param.size
            runs[-1][3].append((param, grad))
        else:
            runs.append([param, grad, param.size, [(param, grad)]])
    out, offset = [], 0
    for first_param, first_grad, size, arrays in runs:
        flat = (_flat_view(first_param, size), _flat_view(first_grad, size)) if len(arrays) > 1 else (None, None)
        if flat[0] is not None and flat[1] is not None:
            out.append((flat[0], flat[1], slice(offset, offset + size)))
            offset += size
            continue
        for param, grad in arrays:
            out.append((param, grad, slice(offset, offset + param.size)))
            offset += param.size
    return out


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
        self._slices = contiguous_runs([(param, self.grads[key]) for key, param in self.params.items()])
        size = self._slices[-1][2].stop if self._slices else 0
        self._grad = np.zeros(size)
        self._update = np.zeros(size)

    def _gather_grads(self) -> np.ndarray:
        """All gradients as one flat vector (a buffer reused from step to step)."""
        for _, grad, part in self._slices:
            self._grad[part] = grad.reshape(-1)
        return self._grad

    def _apply(self, update: np.ndarray) -> None:
        """θ ← θ − update, run by run, in place."""
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
        # The update buffer holds each temporary in turn: the step allocates nothing.
        np.multiply(g, 1.0 - self.beta1, out=update)
        m *= self.beta1
        m += update
        np.multiply(g, g, out=update)
        update *= 1.0 - self.beta2
        v *= self.beta2
        v += update
        np.sqrt(v, out=update)
        update += eps_hat
        np.divide(m, update, out=update)
        update *= step_size
        self._apply(update)
