"""Numerical checks of hand-written gradients and log-determinants (CS231n style).

Finite differences live here and only here: the library's gradients are
analytic, and this module checks them.

- :func:`rel_error` — normwise relative error ‖a − b‖ / (‖a‖ + ‖b‖).
- :func:`numerical_gradient` — central differences of a scalar function of an array.
- :func:`numerical_vjp` — central-difference vector-Jacobian product.
- :func:`jacobian` — per-sample Jacobians of a batch map, by central differences
  or by ``scipy.differentiate.jacobian``.
- one small function per property of the flow contract (:data:`CHECKS`), each
  returning the :class:`CheckResult` lines it measured, and :func:`check_flow`,
  which runs them all on any object honouring the contract (a ``Flow`` subclass
  or a student's own class) and returns a readable :class:`FlowReport`.

In float64, central differences with h ≈ 1e-6 have truncation error O(h²) ≈
1e-12 and rounding error O(ε|L|/h) ≈ 1e-10·|L|, so a correct gradient shows a
relative error around 1e-8 to 1e-10; 1e-6 is the pass mark (CS231n: "≈1e-7 good").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nflows_np.base import FlowLike
from nflows_np.validation import RngLike, as_generator

DIRECTIONS = ("forward", "inverse")


def rel_error(a: Any, b: Any) -> float:
    """Normwise relative error ‖a − b‖₂ / (‖a‖₂ + ‖b‖₂); 0 when both are zero.

    Normwise rather than elementwise, so that entries that are tiny in both
    arrays (where finite differences are all noise) do not dominate.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(a - b) / denominator)


def numerical_gradient(f: Callable[[], float], array: np.ndarray, h: float = 1e-6,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``array``.

    ``array`` is perturbed in place, one entry at a time, and restored;
    ``f`` reads it (e.g. a layer parameter). With ``indices`` (flat indices),
    only those entries are differentiated; the others are left 0.
    """
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient: array must be C-contiguous (it is perturbed in place)")
    grad = np.zeros_like(array, dtype=np.float64)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size) if indices is None else indices:
        old = flat[i]
        flat[i] = old + h
        f_plus = f()
        flat[i] = old - h
        f_minus = f()
        flat[i] = old
        flat_grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def numerical_vjp(func: Callable[[np.ndarray], np.ndarray], x: np.ndarray, v: np.ndarray,
                  h: float = 1e-6) -> np.ndarray:
    """Central-difference ∂(Σ v ⊙ func(x))/∂x."""
    x = np.array(x, dtype=np.float64)
    return numerical_gradient(lambda: float(np.sum(v * func(x))), x, h)


def jacobian(func: Callable[[np.ndarray], np.ndarray], x: np.ndarray, method: str = "central",
             h: float = 1e-5) -> np.ndarray:
    """Per-sample Jacobians J[n, i, j] = ∂func(x)[n, i] / ∂x[n, j] of a batch map.

    ``func`` maps (N, D) → (N, D) row by row (rows independent, as in a flow),
    so one perturbation of column j of every row gives column j of every
    sample's Jacobian: 2·D calls in all.

    Parameters
    ----------
    method : {"central", "scipy"}
        ``"central"``: second-order central differences with step ``h``
        (error ≈ h² ≈ 1e-10). ``"scipy"``: ``scipy.differentiate.jacobian``
        (adaptive, high-order; slower, error ≈ 1e-12).
    """
    x = np.array(x, dtype=np.float64)
    n, dim = x.shape
    if method == "central":
        jac = np.empty((n, dim, dim))
        for j in range(dim):
            step = np.zeros(dim)
            step[j] = h
            jac[:, :, j] = (func(x + step) - func(x - step)) / (2.0 * h)
        return jac
    if method == "scipy":
        def columns(xi: np.ndarray) -> np.ndarray:
            # scipy passes xi of shape (D, N, ...): rows of the batch are its columns.
            flat = np.moveaxis(xi, 0, -1).reshape(-1, dim)
            out = func(flat)
            return np.moveaxis(out.reshape(*xi.shape[1:], dim), -1, 0)

        import scipy.differentiate  # imported on use: it pulls in half of scipy

        result = scipy.differentiate.jacobian(columns, x.T)
        return np.moveaxis(result.df, -1, 0)  # (D, D, N) → (N, D, D)
    raise ValueError(f"jacobian: method must be 'central' or 'scipy', got {method!r}")


def log_abs_det(jac: np.ndarray) -> np.ndarray:
    """log|det J| of each (D, D) matrix in a stack, by ``numpy.linalg.slogdet``."""
    return np.linalg.slogdet(jac)[1]


# -- the checks of the flow contract --------------------------------------------

@dataclass
class CheckResult:
    """One measured property: its name, direction, the measured error and the tolerance."""

    name: str
    direction: str
    passed: bool
    error: float = float("nan")
    tol: float = float("nan")
    detail: str = ""

    def line(self) -> str:
        status = "ok  " if self.passed else "FAIL"
        numbers = f"error {self.error:.2e} (tol {self.tol:.0e})" if np.isfinite(self.error) else ""
        return f"[{status}] {self.direction:8s} {self.name:32s} {numbers} {self.detail}".rstrip()


@dataclass
class FlowReport:
    """What :func:`check_flow` found: a list of :class:`CheckResult`."""

    flow_name: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.passed for result in self.results)

    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    def __str__(self) -> str:
        verdict = "all checks passed" if self.ok else f"{len(self.failures())} of {len(self.results)} checks FAILED"
        return "\n".join([f"check_flow({self.flow_name}): {verdict}"] + [r.line() for r in self.results])


@dataclass
class Probe:
    """One direction of one layer, at the points a check needs, with the tolerances.

    ``inp`` is x for ``"forward"`` and z = f(x) for ``"inverse"``, so both
    directions are checked at points of the layer's domain.
    """

    layer: FlowLike
    direction: str
    inp: np.ndarray
    rng: np.random.Generator
    grad_tol: float = 1e-6
    inverse_tol: float = 1e-10
    log_det_tol: float = 1e-6
    h: float = 1e-6
    jacobian_method: str = "central"
    max_entries: int | None = None

    def run(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The checked pass."""
        return (self.layer.forward if self.direction == "forward" else self.layer.inverse)(a)

    def run_back(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The opposite pass."""
        return (self.layer.inverse if self.direction == "forward" else self.layer.forward)(a)

    def result(self, name: str, passed: bool, error: float = float("nan"), tol: float = float("nan"),
               detail: str = "") -> CheckResult:
        return CheckResult(name, self.direction, bool(passed), error, tol, detail)


def _worst(a: np.ndarray, b: np.ndarray) -> str:
    """'worst at …: expected …, got …' for the largest difference of two arrays."""
    if a.size == 0:
        return ""
    index = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
    return f"worst at {tuple(int(i) for i in index)}: expected {b[index]:.6g}, got {a[index]:.6g}"


def _max_abs(a: np.ndarray) -> float:
    return float(np.max(np.abs(a), initial=0.0))


def check_shapes(probe: Probe) -> list[CheckResult]:
    """The pass returns (N, D) and (N,) arrays, all finite."""
    out, log_det = (np.asarray(a) for a in probe.run(probe.inp))
    n, dim = probe.inp.shape
    shapes_ok = out.shape == (n, dim) and log_det.shape == (n,)
    finite = shapes_ok and bool(np.all(np.isfinite(out)) and np.all(np.isfinite(log_det)))
    return [probe.result("shapes (N, D), (N,)", shapes_ok, detail="" if shapes_ok else f"got {out.shape}, {log_det.shape}"),
            probe.result("finite outputs", finite)]


def check_round_trip(probe: Probe) -> list[CheckResult]:
    """The opposite pass undoes this one: max |back − in| ≤ inverse_tol · max(1, max |in|)."""
    back, _ = probe.run_back(probe.run(probe.inp)[0])
    error = _max_abs(back - probe.inp) / max(1.0, _max_abs(probe.inp))
    return [probe.result("round trip", error <= probe.inverse_tol, error, probe.inverse_tol, _worst(back, probe.inp))]


def check_opposite_log_dets(probe: Probe) -> list[CheckResult]:
    """log|det ∂f/∂x| at x and log|det ∂g/∂z| at z = f(x) sum to zero."""
    out, log_det = probe.run(probe.inp)
    _, log_det_back = probe.run_back(out)
    error = _max_abs(log_det + log_det_back)
    return [probe.result("opposite log-dets", error <= probe.inverse_tol * max(1.0, _max_abs(log_det)),
                         error, probe.inverse_tol)]


def check_log_det(probe: Probe) -> list[CheckResult]:
    """log_det equals log|det J| of a numerical Jacobian, by ``numpy.linalg.slogdet``."""
    _, log_det = probe.run(probe.inp)
    reference = log_abs_det(jacobian(lambda a: probe.run(a)[0], probe.inp, method=probe.jacobian_method))
    error = _max_abs(log_det - reference)
    return [probe.result(f"log_det = slogdet(J) [{probe.jacobian_method}]", error <= probe.log_det_tol, error,
                         probe.log_det_tol, _worst(log_det, reference))]


def _analytic_vjp(probe: Probe, grad_out: np.ndarray, grad_log_det: np.ndarray) -> tuple[np.ndarray, dict]:
    """``backward`` after a fresh pass, from zeroed grads: (∂L/∂in, copies of ∂L/∂θ)."""
    probe.layer.zero_grad()
    probe.run(probe.inp)
    grad_in = np.array(probe.layer.backward(grad_out, grad_log_det))
    grads = {key: value.copy() for key, value in probe.layer.grads.items()}
    probe.layer.zero_grad()
    return grad_in, grads


def _cotangents(probe: Probe) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], float]]:
    """Random ∂L/∂out, ∂L/∂log_det and the scalar L(in) = Σ ∂L/∂out ⊙ out + Σ ∂L/∂log_det ⊙ log_det."""
    grad_out = probe.rng.standard_normal(probe.inp.shape)
    grad_log_det = probe.rng.standard_normal(probe.inp.shape[0])

    def loss(a: np.ndarray) -> float:
        out, log_det = probe.run(a)
        return float(np.sum(grad_out * out) + np.sum(grad_log_det * log_det))
    return grad_out, grad_log_det, loss


def check_backward_input(probe: Probe) -> list[CheckResult]:
    """``backward`` returns the finite-difference ∂L/∂in (normwise relative error ≤ grad_tol)."""
    grad_out, grad_log_det, loss = _cotangents(probe)
    grad_in, _ = _analytic_vjp(probe, grad_out, grad_log_det)
    point = probe.inp.copy()
    numeric = numerical_gradient(lambda: loss(point), point, probe.h)
    error = rel_error(grad_in, numeric)
    return [probe.result("backward: input", error <= probe.grad_tol, error, probe.grad_tol, _worst(grad_in, numeric))]


def check_backward_params(probe: Probe) -> list[CheckResult]:
    """``backward`` adds the finite-difference ∂L/∂θ into ``grads``, for every parameter."""
    grad_out, grad_log_det, loss = _cotangents(probe)
    _, analytic = _analytic_vjp(probe, grad_out, grad_log_det)
    results = []
    for key, value in probe.layer.params.items():
        indices = None
        if probe.max_entries is not None and value.size > probe.max_entries:
            indices = probe.rng.choice(value.size, probe.max_entries, replace=False)
        numeric = numerical_gradient(lambda: loss(probe.inp), value, probe.h, indices).reshape(-1)
        mine = analytic[key].reshape(-1)
        if indices is not None:
            numeric, mine = numeric[indices], mine[indices]
        error = rel_error(mine, numeric)
        results.append(probe.result(f"backward: {key}", error <= probe.grad_tol, error, probe.grad_tol,
                                    _worst(mine, numeric)))
    return results


def check_backward_accumulates(probe: Probe) -> list[CheckResult]:
    """``backward`` adds into ``grads``: two calls give twice one call's gradients."""
    grad_out, grad_log_det, _ = _cotangents(probe)
    _, once = _analytic_vjp(probe, grad_out, grad_log_det)
    for _ in range(2):
        probe.run(probe.inp)
        probe.layer.backward(grad_out, grad_log_det)
    error = max((rel_error(probe.layer.grads[key], 2.0 * once[key]) for key in once), default=0.0)
    probe.layer.zero_grad()
    return [probe.result("backward accumulates", error <= 1e-12, error, 1e-12)]


def check_refuses_bad_input(probe: Probe) -> list[CheckResult]:
    """A 1-D array, a wrong D, NaN and inf are each refused with a ValueError."""
    n, dim = probe.inp.shape
    bad_inputs = {"1-D input": probe.inp[0] if n else np.zeros(dim), "wrong D": np.zeros((2, dim + 1)),
                  "NaN": np.full((2, dim), np.nan), "inf": np.full((2, dim), np.inf)}
    results = []
    for label, bad in bad_inputs.items():
        try:
            probe.run(bad)
            results.append(probe.result(f"refuses {label}", False, detail="no error raised"))
        except ValueError:
            results.append(probe.result(f"refuses {label}", True))
        except Exception as err:  # noqa: BLE001 - the report says what was raised instead
            results.append(probe.result(f"refuses {label}", False, detail=f"raised {type(err).__name__}, expected ValueError"))
    return results


CHECKS: tuple[Callable[[Probe], list[CheckResult]], ...] = (
    check_shapes, check_round_trip, check_opposite_log_dets, check_log_det,
    check_backward_input, check_backward_params, check_backward_accumulates, check_refuses_bad_input,
)


def make_probe(layer: FlowLike, x: Any, direction: str, rng: RngLike = 0, **options: Any) -> Probe:
    """A :class:`Probe` of ``direction`` at x (forward) or at z = f(x) (inverse); ``options`` are its tolerances."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    x = np.array(x, dtype=np.float64)
    inp = x if direction == "forward" else np.asarray(layer.forward(x)[0], dtype=np.float64)
    return Probe(layer, direction, inp, as_generator(rng), **options)


def check_flow(layer: FlowLike, x: Any, *, directions: tuple[str, ...] = DIRECTIONS, rng: RngLike = 0,
               checks: tuple[Callable[[Probe], list[CheckResult]], ...] = CHECKS, **options: Any) -> FlowReport:
    """Run every check of the flow contract on ``layer`` at the data points ``x``.

    For each direction, each function of ``checks`` (default :data:`CHECKS`)
    measures one property; a check that raises is reported as failed with the
    error. Then ``params`` and ``grads`` must have kept their identity.
    Parameters are perturbed and restored; ``grads`` are zeroed at the end.

    Parameters
    ----------
    layer : object honouring the flow contract
    x : array_like, shape (N, D)
        Points of the layer's data domain.
    directions : tuple of {"forward", "inverse"}
    rng : None, int or numpy.random.Generator
        Draws the random cotangents of the gradient checks.
    **options
        Tolerances of :class:`Probe`: ``grad_tol`` (1e-6), ``inverse_tol`` (1e-10),
        ``log_det_tol`` (1e-6), ``h`` (1e-6), ``jacobian_method`` ("central" or
        "scipy"), ``max_entries`` (check at most this many random entries of each
        parameter; finite differences cost two passes an entry).

    Returns
    -------
    FlowReport
        ``report.ok`` tells whether all passed; ``str(report)`` is a table.
    """
    rng = as_generator(rng)
    report = FlowReport(type(layer).__name__)
    identity = ({k: id(v) for k, v in layer.params.items()}, {k: id(v) for k, v in layer.grads.items()})
    layer.zero_grad()
    for direction in directions:
        try:
            probe = make_probe(layer, x, direction, rng, **options)
        except Exception as err:  # noqa: BLE001 - the report says what went wrong
            report.results.append(CheckResult("runs", direction, False, detail=f"{type(err).__name__}: {err}"))
            continue
        for check in checks:
            try:
                report.results.extend(check(probe))
            except Exception as err:  # noqa: BLE001
                report.results.append(probe.result(check.__name__, False, detail=f"{type(err).__name__}: {err}"))
    kept = identity == ({k: id(v) for k, v in layer.params.items()}, {k: id(v) for k, v in layer.grads.items()})
    report.results.append(CheckResult("params/grads keep identity", "both", kept))
    layer.zero_grad()
    return report


def randomize_params(layer: FlowLike, rng: RngLike = None, scale: float = 0.5) -> FlowLike:
    """Set every parameter of ``layer`` to N(0, scale²) draws, in place; returns ``layer``.

    Tests use it to check layers away from their (often identity) initialisation.
    """
    rng = as_generator(rng)
    for value in layer.params.values():
        value[...] = scale * rng.standard_normal(value.shape)
    return layer
