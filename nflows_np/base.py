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
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

RngLike = None | int | np.random.Generator


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``None``, an int seed, or a Generator.

    Library code draws random numbers only through the returned generator,
    never through numpy's global state.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def check_int(value: Any, what: str, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer ≥ ``minimum`` (not a bool), else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{what} must be {bound}, got {value!r}")
    return int(value)


class NonFiniteError(ValueError):
    """An array that should be finite holds NaN or inf (training uses it to detect divergence)."""


def check_array(x: Any, dim: int, who: str, what: str = "input") -> np.ndarray:
    """Validate a batch ``x`` of shape (N, dim) and return it as float64.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong
    shape or non-finite values, naming ``who`` (the layer) in the message.
    """
    if type(x) is np.ndarray and x.dtype == np.float64:
        array = x  # the common case, inside a FlowModel: skip the dtype inspection
    else:
        try:
            array = np.asarray(x)
        except Exception as err:  # ragged lists and the like
            raise TypeError(f"{who}: {what} must be a numeric array, could not convert ({err})") from None
        if array.dtype == bool or array.dtype.kind not in "iuf":
            raise TypeError(f"{who}: {what} must be a real numeric array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{who}: {what} must have shape (N, {dim}), got shape {array.shape}")
    if array.shape[1] != dim:
        raise ValueError(f"{who}: {what} must have shape (N, {dim}), got shape {array.shape} (D = {array.shape[1]})")
    array = array.astype(np.float64, copy=False)
    # One reduction is cheaper than isfinite + all; a NaN or inf anywhere makes the sum
    # non-finite (so can an overflowing sum of huge finite values: then look closer).
    if not np.isfinite(np.sum(array)) and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise NonFiniteError(f"{who}: {what} contains non-finite values, e.g. {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array


class Flow(abc.ABC):
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
        self.dim = check_int(dim, f"{type(self).__name__}: dim")
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._last_pass: tuple[str, Any] | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def add_param(self, key: str, value: np.ndarray) -> np.ndarray:
        """Register a trainable array (float64) and its zeroed gradient."""
        self.params[key] = np.array(value, dtype=np.float64)
        self.grads[key] = np.zeros_like(self.params[key])
        return self.params[key]

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- public passes -------------------------------------------------------
    def forward(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """z = f(x) and log|det ∂f/∂x|, shapes (N, D) and (N,)."""
        return self._run("forward", check_array(x, self.dim, self.name, "x"))

    def inverse(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        """x = g(z) = f⁻¹(z) and log|det ∂g/∂z|, shapes (N, D) and (N,)."""
        return self._run("inverse", check_array(z, self.dim, self.name, "z"))

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
    def _run(self, direction: str, inp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pass ``direction`` ("forward" or "inverse") on a validated input; remembered for backward."""
        out, log_det, cache = (self._forward if direction == "forward" else self._inverse)(inp)
        self._last_pass = (direction, cache)
        return out, log_det

    def _vjp(self, grad_out: np.ndarray, grad_log_det: np.ndarray) -> np.ndarray:
        """The vector-Jacobian product of the remembered pass, on validated gradients."""
        if self._last_pass is None:
            raise RuntimeError(f"{self.name}.backward: no forward or inverse pass to differentiate; call forward(x) or inverse(z) first")
        direction, cache = self._last_pass
        vjp = self._forward_vjp if direction == "forward" else self._inverse_vjp
        return vjp(cache, grad_out, grad_log_det)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for grad in self.grads.values():
            grad.fill(0.0)

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
