"""Numerical checks of hand-written gradients and log-determinants (CS231n style).

Finite differences live here and only here: the library's gradients are
analytic, and this module checks them.

- :func:`rel_error` — normwise relative error ‖a − b‖ / (‖a‖ + ‖b‖).
- :func:`numerical_gradient` — central differences of a scalar function of an array.
- :func:`numerical_vjp` — central-difference vector-Jacobian product.
- :func:`jacobian` — per-sample Jacobians of a batch map, by central differences
  or by ``scipy.differentiate.jacobian``.
- :func:`check_flow` — every check of DESIGN §5 on any object that honours the
  flow contract, returned as a readable :class:`FlowReport`.

In float64, central differences with h ≈ 1e-6 have truncation error O(h²) ≈
1e-12 and rounding error O(ε|L|/h) ≈ 1e-10·|L|, so a correct gradient shows a
relative error around 1e-8 to 1e-10; 1e-6 is the pass mark (CS231n: "≈1e-7 good").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.differentiate

from nflows_np.base import RngLike, as_generator

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

        result = scipy.differentiate.jacobian(columns, x.T)
        return np.moveaxis(result.df, -1, 0)  # (D, D, N) → (N, D, D)
    raise ValueError(f"jacobian: method must be 'central' or 'scipy', got {method!r}")


def log_abs_det(jac: np.ndarray) -> np.ndarray:
    """log|det J| of each (D, D) matrix in a stack, by ``numpy.linalg.slogdet``."""
    return np.linalg.slogdet(jac)[1]


# -- check_flow -----------------------------------------------------------------

@dataclass
class CheckResult:
    """One check: its name, direction, the measured error and the tolerance."""

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

    def add(self, *args: Any, **kwargs: Any) -> CheckResult:
        self.results.append(CheckResult(*args, **kwargs))
        return self.results[-1]

    def __str__(self) -> str:
        verdict = "all checks passed" if self.ok else f"{len(self.failures())} of {len(self.results)} checks FAILED"
        return "\n".join([f"check_flow({self.flow_name}): {verdict}"] + [r.line() for r in self.results])


def _pass(layer: Any, direction: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return layer.forward if direction == "forward" else layer.inverse


def _worst(a: np.ndarray, b: np.ndarray) -> str:
    """'at index …: expected …, got …' for the largest difference of two arrays."""
    if a.size == 0:
        return ""
    index = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
    return f"worst at {tuple(int(i) for i in index)}: expected {b[index]:.6g}, got {a[index]:.6g}"


def check_flow(layer: Any, x: Any, *, directions: tuple[str, ...] = DIRECTIONS, rng: RngLike = 0,
               grad_tol: float = 1e-6, inverse_tol: float = 1e-10, log_det_tol: float = 1e-6,
               h: float = 1e-6, jacobian_method: str = "central",
               max_entries: int | None = None) -> FlowReport:
    """Run every check of DESIGN §5 on ``layer`` at the data points ``x``.

    The inverse direction is checked at ``z = layer.forward(x)[0]``, so both
    directions see points of the layer's domain. Parameters are perturbed and
    restored; ``grads`` are zeroed at the end.

    Checks, per direction: output shapes and finiteness; ``inverse(forward(x))
    ≈ x`` (max error ≤ ``inverse_tol``·max(1, max|x|)); opposite log-dets at
    matching points; log_det = log|det J| of a finite-difference Jacobian
    (``jacobian_method``) by ``slogdet`` (≤ ``log_det_tol``); ``backward``
    against finite-difference vector-Jacobian products for the input and every
    parameter (normwise relative error ≤ ``grad_tol``); ``backward`` adds into
    ``grads`` (twice gives double); ``grads`` keep their identity; bad input
    (1-D, wrong D, NaN, inf) raises ``ValueError``.

    Parameters
    ----------
    max_entries : int, optional
        Check at most this many randomly chosen entries of each parameter
        array (all when None): finite differences cost two passes an entry.

    Returns
    -------
    FlowReport
        ``report.ok`` tells whether all passed; ``str(report)`` is a table.
    """
    rng = as_generator(rng)
    report = FlowReport(type(layer).__name__)
    x = np.array(x, dtype=np.float64)
    n, dim = x.shape
    grad_ids = {key: id(value) for key, value in layer.grads.items()}
    param_ids = {key: id(value) for key, value in layer.params.items()}
    layer.zero_grad()

    try:
        z, log_det_f = layer.forward(x)
    except Exception as err:  # noqa: BLE001 - the report says what went wrong
        report.add("forward runs", "forward", False, detail=f"{type(err).__name__}: {err}")
        return report
    inputs = {"forward": x, "inverse": z}

    for direction in directions:
        run = _pass(layer, direction)
        inp = inputs[direction]
        try:
            out, log_det = run(inp)
        except Exception as err:  # noqa: BLE001
            report.add("runs", direction, False, detail=f"{type(err).__name__}: {err}")
            continue
        out, log_det = np.asarray(out), np.asarray(log_det)
        shapes_ok = out.shape == (n, dim) and log_det.shape == (n,)
        report.add("shapes (N, D), (N,)", direction, shapes_ok,
                   detail="" if shapes_ok else f"got {out.shape}, {log_det.shape}")
        finite = bool(np.all(np.isfinite(out)) and np.all(np.isfinite(log_det)))
        report.add("finite outputs", direction, finite)
        if not (shapes_ok and finite):
            continue

        # Round trip and opposite log-dets at matching points.
        back, log_det_back = _pass(layer, "inverse" if direction == "forward" else "forward")(out)
        scale = max(1.0, float(np.max(np.abs(inp)))) if inp.size else 1.0
        error = float(np.max(np.abs(back - inp))) / scale if inp.size else 0.0
        report.add("round trip", direction, error <= inverse_tol, error, inverse_tol, _worst(back, inp))
        error = float(np.max(np.abs(log_det + log_det_back))) if n else 0.0
        report.add("opposite log-dets", direction, error <= inverse_tol * max(1.0, float(np.max(np.abs(log_det), initial=0.0))),
                   error, inverse_tol)

        # log_det against slogdet of a numerical Jacobian.
        jac = jacobian(lambda a: run(a)[0], inp, method=jacobian_method)
        reference = log_abs_det(jac)
        error = float(np.max(np.abs(log_det - reference))) if n else 0.0
        report.add(f"log_det = slogdet(J) [{jacobian_method}]", direction, error <= log_det_tol, error, log_det_tol,
                   _worst(log_det, reference))

        # backward against finite differences, for the input and every parameter.
        grad_out = rng.standard_normal((n, dim))
        grad_log_det = rng.standard_normal(n)

        def loss(a: np.ndarray = inp) -> float:
            o, ld = run(a)
            return float(np.sum(grad_out * o) + np.sum(grad_log_det * ld))

        layer.zero_grad()
        run(inp)
        grad_in = np.array(layer.backward(grad_out, grad_log_det))
        analytic = {key: value.copy() for key, value in layer.grads.items()}
        probe = inp.copy()
        numeric_in = numerical_gradient(lambda: loss(probe), probe, h)
        report.add("backward: input", direction, rel_error(grad_in, numeric_in) <= grad_tol,
                   rel_error(grad_in, numeric_in), grad_tol, _worst(grad_in, numeric_in))
        for key, value in layer.params.items():
            indices = None
            if max_entries is not None and value.size > max_entries:
                indices = rng.choice(value.size, max_entries, replace=False)
            numeric = numerical_gradient(loss, value, h, indices)
            mine = analytic[key] if indices is None else analytic[key].reshape(-1)[indices]
            numeric = numeric if indices is None else numeric.reshape(-1)[indices]
            error = rel_error(mine, numeric)
            report.add(f"backward: {key}", direction, error <= grad_tol, error, grad_tol, _worst(mine, numeric))

        # backward adds into grads: a second call doubles them.
        run(inp)
        layer.backward(grad_out, grad_log_det)
        doubled = max((rel_error(layer.grads[k], 2 * analytic[k]) for k in analytic), default=0.0)
        report.add("backward accumulates", direction, doubled <= 1e-12, doubled, 1e-12)
        layer.zero_grad()

        # Bad input is refused with a ValueError.
        bad_inputs = {"1-D input": inp[0] if n else np.zeros(dim), "wrong D": np.zeros((2, dim + 1)),
                      "NaN": np.full((2, dim), np.nan), "inf": np.full((2, dim), np.inf)}
        for label, bad in bad_inputs.items():
            try:
                run(bad)
                report.add(f"refuses {label}", direction, False, detail="no error raised")
            except ValueError:
                report.add(f"refuses {label}", direction, True)
            except Exception as err:  # noqa: BLE001
                report.add(f"refuses {label}", direction, False, detail=f"raised {type(err).__name__}, expected ValueError")

    same = {k: id(v) for k, v in layer.grads.items()} == grad_ids and \
        {k: id(v) for k, v in layer.params.items()} == param_ids
    report.add("params/grads keep identity", "both", same)
    layer.zero_grad()
    return report


def randomize_params(layer: Any, rng: RngLike = None, scale: float = 0.5) -> Any:
    """Set every parameter of ``layer`` to N(0, scale²) draws, in place; returns ``layer``.

    Tests use it to check layers away from their (often identity) initialisation.
    """
    rng = as_generator(rng)
    for value in layer.params.values():
        value[...] = scale * rng.standard_normal(value.shape)
    return layer
