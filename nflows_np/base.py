"""The flow contract (DESIGN §2), written once.

A flow is an invertible map between data ``x`` and latent ``z`` (``f: x → z``,
the "normalizing" direction; ``g = f⁻¹: z → x``, the generative one)::

    z, log_det = layer.forward(x)    # log_det[n] = log|det ∂f/∂x| at x[n]
    x, log_det = layer.inverse(z)    # log_det[n] = log|det ∂g/∂z| at z[n]
    grad_in = layer.backward(grad_out, grad_log_det)

``backward`` is the vector-Jacobian product of the most recent pass (forward
or inverse, whichever came last): given ∂L/∂out (N, D) and ∂L/∂log_det (N,),
it returns ∂L/∂in (N, D) and *adds* ∂L/∂θ into ``grads``.

A layer implements four private methods, each pass next to its backward:

- ``_forward(x) -> (z, log_det, cache)`` and ``_forward_vjp(cache, grad_z, grad_log_det) -> grad_x``
- ``_inverse(z) -> (x, log_det, cache)`` and ``_inverse_vjp(cache, grad_x, grad_log_det) -> grad_z``

The public methods here validate input, remember the cache, and dispatch.

:class:`Module` is the parameter base shared by flows, conditioner networks and
the latent-variable models: ``params``, ``grads``, ``add_param``, ``zero_grad``,
``num_params``, and ``expose`` to show a child's arrays under a prefix.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nflows_np.validation import NonFiniteError, RngLike, as_generator, check_array, check_int

__all__ = ["Flow", "FlowLike", "Module", "NonFiniteError", "RngLike", "as_generator", "check_array", "check_int"]


@runtime_checkable
class FlowLike(Protocol):
    """The flow contract as a type: what training, optimisers, plotting and gradient checks rely on.

    :class:`Flow` and every composition satisfy it; so does a student's own class
    with these members, which ``gradcheck.check_flow`` can then check.
    """

    dim: int
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]

    def forward(self, x: Any) -> tuple[np.ndarray, np.ndarray]: ...

    def inverse(self, z: Any) -> tuple[np.ndarray, np.ndarray]: ...

    def backward(self, grad_out: Any, grad_log_det: Any) -> np.ndarray: ...

    def zero_grad(self) -> None: ...


class Module:
    """Trainable arrays and their gradients, by name (micrograd's ``Module``).

    Attributes
    ----------
    params : dict[str, np.ndarray]
        Trainable float64 arrays, updated in place by the optimisers.
    grads : dict[str, np.ndarray]
        Same keys and shapes; each array keeps its identity for the life of the
        module (gradients are added with ``+=`` / ``out=``), so a parent's view of
        a child's arrays stays valid.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def add_param(self, key: str, value: Any) -> np.ndarray:
        """Register a trainable array (as a float64 copy) and its zeroed gradient; return the array."""
        if key in self.params:
            raise ValueError(f"{type(self).__name__}: parameter {key!r} is already registered")
        self.params[key] = np.array(value, dtype=np.float64)
        self.grads[key] = np.zeros_like(self.params[key])
        return self.params[key]

    def expose(self, child: Module, prefix: str) -> None:
        """Show ``child``'s arrays in this module's ``params`` / ``grads`` as ``"{prefix}.{key}"`` (same objects)."""
        for key in child.params:
            name = f"{prefix}.{key}"
            if name in self.params:
                raise ValueError(f"{type(self).__name__}: parameter {name!r} is already registered")
            self.params[name] = child.params[key]
            self.grads[name] = child.grads[key]

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for grad in self.grads.values():
            grad.fill(0.0)

    def num_params(self) -> int:
        """The number of trainable scalars."""
        return int(sum(p.size for p in self.params.values()))


class Flow(Module, abc.ABC):
    """Base class of every invertible layer and of every composition of layers.

    Attributes
    ----------
    dim : int
        The dimension D of x and z.
    params : dict[str, np.ndarray]
        Trainable arrays, updated in place by the optimisers.
    grads : dict[str, np.ndarray]
        Same keys and shapes as ``params``; ``backward`` adds into them in
        place, and each array keeps its identity for the life of the layer.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_int(dim, f"{type(self).__name__}: dim")
        # The vector-Jacobian product of the most recent pass and what it needs.
        self._last_pass: tuple[Callable[[Any, np.ndarray, np.ndarray], np.ndarray], Any] | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- public passes -------------------------------------------------------
    def forward(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """z = f(x) and log|det ∂f/∂x|, shapes (N, D) and (N,)."""
        return self._forward_pass(check_array(x, self.dim, self.name, "x"))

    def inverse(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        """x = g(z) = f⁻¹(z) and log|det ∂g/∂z|, shapes (N, D) and (N,)."""
        return self._inverse_pass(check_array(z, self.dim, self.name, "z"))

    def backward(self, grad_out: Any, grad_log_det: Any) -> np.ndarray:
        """Vector-Jacobian product of the most recent ``forward`` or ``inverse``.

        Returns ∂L/∂in (N, D) and adds ∂L/∂θ into ``grads``.
        """
        grad_out = check_array(grad_out, self.dim, self.name, "grad_out")
        grad_log_det = np.asarray(grad_log_det, dtype=np.float64)
        if grad_log_det.shape != (grad_out.shape[0],):
            raise ValueError(f"{self.name}.backward: grad_log_det must have shape ({grad_out.shape[0]},), got {grad_log_det.shape}")
        return self._vjp(grad_out, grad_log_det)

    # -- the same, on arrays already validated (a composition calls these) ----
    def _forward_pass(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``forward`` on a validated x; remembered for backward."""
        z, log_det, cache = self._forward(x)
        self._last_pass = (self._forward_vjp, cache)
        return z, log_det

    def _inverse_pass(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``inverse`` on a validated z; remembered for backward."""
        x, log_det, cache = self._inverse(z)
        self._last_pass = (self._inverse_vjp, cache)
        return x, log_det

    def _vjp(self, grad_out: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        """The vector-Jacobian product of the remembered pass, on validated gradients."""
        if self._last_pass is None:
            raise RuntimeError(f"{self.name}.backward: no forward or inverse pass to differentiate; call forward(x) or inverse(z) first")
        vjp, cache = self._last_pass
        return vjp(cache, grad_out, grad_log_det)

    # -- what a layer implements ---------------------------------------------
    @abc.abstractmethod
    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """z, log|det ∂f/∂x|, and what ``_forward_vjp`` needs."""

    @abc.abstractmethod
    def _forward_vjp(self, cache: Any, grad_z: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        """∂L/∂x from ∂L/∂z and ∂L/∂log_det; adds ∂L/∂θ into ``grads``."""

    @abc.abstractmethod
    def _inverse(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """x, log|det ∂g/∂z|, and what ``_inverse_vjp`` needs."""

    @abc.abstractmethod
    def _inverse_vjp(self, cache: Any, grad_x: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        """∂L/∂z from ∂L/∂x and ∂L/∂log_det; adds ∂L/∂θ into ``grads``."""

    def __repr__(self) -> str:
        return f"{self.name}(dim={self.dim}, params={self.num_params()})"
