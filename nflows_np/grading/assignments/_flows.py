"""What the flow assignments share (planar, RealNVP coupling, LU linear, Sylvester).

A helper module, not an assignment (its name starts with ``_``).

Child side -- driver sources
    :data:`DRIVER_PRELUDE` holds the functions every flow driver uses: find the
    student's class, copy the grader's parameters into ``layer.params`` *in
    place*, zero and collect ``layer.grads``, check that a pass returns
    ``(out, log_det)``.  :func:`layer_driver` writes the driver of one pass
    (``forward`` / ``inverse``, optionally followed by ``backward``), of a round
    trip, or of a method call such as ``u_hat()``.  Driver input names:
    ``"p.<key>"`` for ``params[key]``, ``"in"`` for the pass input,
    ``"grad_out"`` / ``"grad_log_det"`` for the upstream gradients.  Outputs:
    ``"out"``, ``"log_det"``, ``"grad_in"``, ``"grad.<key>"``, ``"value"``.

Grader side -- scoring
    :func:`compare_named` compares every expected output like
    :func:`~nflows_np.grading.cases.compare_arrays` and says, in the style of
    :func:`nflows_np.gradcheck.check_flow`, *which* quantity differs (its
    lecture name), by how much against which tolerance, where, expected versus
    received -- and, when the received values equal what a known mistake
    produces (a :class:`Diagnosis`: the grader recomputes the quantity with
    that mistake), which mistake it is.  A sign flip, a missing ``1/N`` and a
    transposed matrix are recognised for every quantity.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nflows_np.grading.cases import Arrays, Outcome, Scorer, compare_arrays

RTOL = 1e-6
ATOL = 1e-8
_MATCH = 0.95  # fraction of entries a known mistake must explain to be named

DRIVER_PRELUDE = '''\
def _student_class(namespace, name):
    cls = namespace.get(name)
    if not isinstance(cls, type):
        raise NameError(f"your file defines no class {name}: keep the names and "
                        "signatures of the template")
    return cls


def _student_function(namespace, name):
    function = namespace.get(name)
    if not callable(function):
        raise NameError(f"your file defines no function {name}(): keep the names and "
                        "signatures of the template")
    return function


def _dicts(layer):
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), dict):
            raise TypeError(f"{type(layer).__name__}.{attr} must be a dict of arrays "
                            "(keep the Flow base class of the template)")


def _set_params(layer, inputs, prefix="p."):
    """Copy the grader's parameters into layer.params, in place where possible."""
    _dicts(layer)
    name = type(layer).__name__
    for input_name, value in inputs.items():
        if not input_name.startswith(prefix):
            continue
        key = input_name[len(prefix):]
        if key not in layer.params:
            raise KeyError(f"{name}.params has no entry {key!r} (it has {sorted(layer.params)}): "
                           "keep the parameter names of the template")
        current = layer.params[key]
        if np.shape(current) != value.shape:
            raise ValueError(f"{name}.params[{key!r}] has shape {np.shape(current)}; the template "
                             f"gives it shape {value.shape}")
        if isinstance(current, np.ndarray) and current.dtype == np.float64 and current.flags.writeable:
            current[...] = value  # in place: every reference the layer keeps sees the new values
        else:
            layer.params[key] = np.array(value, dtype=np.float64)


def _zero_grads(layer):
    _dicts(layer)
    for key in layer.params:
        grad = layer.grads.get(key)
        if isinstance(grad, np.ndarray) and grad.flags.writeable and grad.shape == np.shape(layer.params[key]):
            grad[...] = 0.0
        else:
            raise TypeError(f"{type(layer).__name__}.grads[{key!r}] must be an array shaped like "
                            f"params[{key!r}] (keep add_param of the template)")


def _grads(layer, prefix="grad."):
    return {prefix + key: layer.grads[key] for key in layer.params}


def _pass(layer, method, argument):
    result = getattr(layer, method)(argument)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{type(layer).__name__}.{method} must return a tuple (output, log_det), "
                        f"got {type(result).__name__}")
    return result
'''

_LAYER_DRIVER = '''
def drive(namespace, inputs):
    cls = _student_class(namespace, {class_name!r})
    layer = {construct}
    _set_params(layer, inputs)
{configure}    mode, want = {mode!r}, {want!r}
    out = {{}}
    if mode == "round_trip":
        x, log_det_g = _pass(layer, "inverse", inputs["in"].copy())
        z, log_det_f = _pass(layer, "forward", np.array(x, dtype=float))
        out["out"], out["log_det"] = z, np.asarray(log_det_f) + np.asarray(log_det_g)
        out["x"] = x
    elif mode in ("forward", "inverse"):
        out["out"], out["log_det"] = _pass(layer, mode, inputs["in"].copy())
        if any(name.startswith("grad") for name in want):
            _zero_grads(layer)
            out["grad_in"] = layer.backward(inputs["grad_out"].copy(), inputs["grad_log_det"].copy())
            out.update(_grads(layer))
    else:
        out["value"] = getattr(layer, mode)()
    return {{name: out[name] for name in want}}
'''


def layer_driver(class_name: str, construct: str, mode: str, want: Sequence[str],
                 configure: str = "") -> str:
    """Driver source for one pass of the student's flow class.

    Parameters
    ----------
    class_name : str
        The template's class, e.g. ``"PlanarFlow"``.
    construct : str
        Python expression building it from ``cls`` and ``inputs``, e.g.
        ``"cls(int(inputs['dim']))"``.
    mode : str
        ``"forward"`` or ``"inverse"`` (then ``backward`` if ``want`` names a
        gradient), ``"round_trip"`` (``forward(inverse(z))``: ``out`` should be
        ``z`` and ``log_det`` the sum of both log-dets, 0), or the name of a
        method without arguments (its result is ``value``).
    want : sequence of str
        The outputs the case reads.
    configure : str
        Extra driver lines run after the parameters are set (indented by 4).
    """
    return DRIVER_PRELUDE + _LAYER_DRIVER.format(class_name=class_name, construct=construct,
                                                 configure=configure, mode=mode, want=tuple(want))


def pass_inputs(params: Mapping[str, np.ndarray], point: np.ndarray,
                rng: np.random.Generator | None = None, **extra: np.ndarray) -> dict[str, np.ndarray]:
    """Inputs of :func:`layer_driver`: ``p.<key>``, ``in``, and upstream gradients if ``rng``."""
    inputs = {f"p.{key}": np.asarray(value, dtype=np.float64) for key, value in params.items()}
    inputs["in"] = np.asarray(point, dtype=np.float64)
    if rng is not None:
        inputs["grad_out"] = rng.standard_normal(point.shape)
        inputs["grad_log_det"] = rng.standard_normal(point.shape[0])
    inputs.update(extra)
    return inputs


def params_of(inputs: Arrays, prefix: str = "p.") -> dict[str, np.ndarray]:
    """The ``p.<key>`` inputs as ``{key: array}``."""
    return {name[len(prefix):]: value for name, value in inputs.items() if name.startswith(prefix)}


def set_params(layer, params: Mapping[str, np.ndarray]):
    """Copy ``params`` into a library layer's ``params`` in place; returns the layer."""
    for key, value in params.items():
        layer.params[key][...] = value
    return layer


def run_pass(layer, inputs: Arrays, direction: str) -> dict[str, np.ndarray]:
    """The library layer's outputs for a :func:`layer_driver` case: out, log_det, grads."""
    out, log_det = getattr(layer, direction)(inputs["in"])
    result = {"out": out, "log_det": log_det}
    if "grad_out" in inputs:
        layer.zero_grad()
        result["grad_in"] = layer.backward(inputs["grad_out"], inputs["grad_log_det"])
        result.update({f"grad.{key}": grad.copy() for key, grad in layer.grads.items()})
    return result


# ---- scoring ------------------------------------------------------------------------

@dataclass(frozen=True)
class Diagnosis:
    """A known mistake: what it does to one output, and what to tell the student.

    Attributes
    ----------
    output : str
        The output it affects (e.g. ``"log_det"``).
    alternative : callable
        ``alternative(inputs) -> ndarray``: that output computed *with* the mistake.
    hint : str
        Shown when the received values match ``alternative``.
    """

    output: str
    alternative: Callable[[Arrays], np.ndarray]
    hint: str


def _matches(received: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    candidate = np.asarray(candidate, dtype=np.float64)
    if candidate.shape != received.shape or candidate.size == 0:
        return False
    return compare_arrays(candidate, received, rtol, atol).fraction >= _MATCH


def _generic_diagnoses(expected: np.ndarray, received: np.ndarray, rtol: float, atol: float,
                       batch: int | None) -> list[str]:
    """Mistakes recognisable from the numbers alone."""
    found = []
    if np.any(np.abs(expected) > 10 * atol) and _matches(received, -expected, rtol, atol):
        found.append("your values are the expected ones with the opposite sign")
    if batch and batch > 1 and np.any(expected != 0):
        if _matches(received, expected * batch, rtol, atol):
            found.append(f"your values are {batch} (N) times the expected ones: a sum where a mean is meant?")
        elif _matches(received, expected / batch, rtol, atol):
            found.append(f"your values are 1/{batch} (1/N) of the expected ones: a mean where a sum is meant?")
    if expected.ndim == 2 and expected.shape[0] == expected.shape[1] and not np.allclose(expected, expected.T) \
            and _matches(received, expected.T, rtol, atol):
        found.append("your matrix is the transpose of the expected one")
    if np.any(np.abs(expected) > 10 * atol) and not np.any(received):
        found.append("your values are all zero (a gradient: did backward add into the same grads array, "
                     "in place with +=?)")
    return found


ROUND_TRIP_GATE = "x"
ROUND_TRIP_LABELS = {"out": "forward(inverse(z))", "log_det": "log-det of inverse + log-det of forward",
                     ROUND_TRIP_GATE: "x = inverse(z) (the round trip counts only with the right inverse)"}


def compare_named(labels: Mapping[str, str], *, rtol: float = RTOL, atol: float = ATOL,
                  diagnoses: Sequence[Diagnosis] = (), batch_key: str | None = "in") -> Scorer:
    """Scorer: each expected output compared under its lecture name, with diagnoses.

    Parameters
    ----------
    labels : mapping
        Output name -> what it is, e.g. ``{"log_det": "log|det ∂g/∂z|"}``.
    rtol, atol : float
        An entry passes if ``|received − expected| ≤ atol + rtol·|expected|``.
    diagnoses : sequence of Diagnosis
        Known mistakes, tried in order on every output that differs.
    batch_key : str or None
        Input whose first dimension is the batch size N (for the 1/N check).

    The case earns the mean over outputs of the fraction of entries within
    tolerance -- times the fraction of :data:`ROUND_TRIP_GATE` if it is one of
    the outputs: a round trip counts only with the right inverse, so that an
    identity map (which trivially round-trips) earns nothing.
    """
    def score(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
        batch = inputs[batch_key].shape[0] if batch_key and batch_key in inputs \
            and np.ndim(inputs[batch_key]) >= 1 else None
        fractions, lines = [], []
        for name, label in labels.items():
            outcome = compare_arrays(expected[name], received[name], rtol, atol)
            fractions.append(outcome.fraction)
            status = "ok" if outcome.fraction == 1.0 else "FAIL"
            lines.append(f"[{status}] {label}: {outcome.message}")
            if outcome.fraction == 1.0:
                continue
            found = []
            for diagnosis in diagnoses:
                if diagnosis.output != name:
                    continue
                try:
                    candidate = diagnosis.alternative(inputs)
                except Exception:
                    continue
                if _matches(received[name], candidate, rtol, atol):
                    found.append(diagnosis.hint)
            if not found:  # the specific diagnoses say more than the generic ones
                found = _generic_diagnoses(np.asarray(expected[name], dtype=np.float64),
                                           received[name], rtol, atol, batch)
            lines.extend(f"       diagnosis: {text}" for text in found)
        names = list(labels)
        if ROUND_TRIP_GATE in names and len(names) > 1:
            gate = fractions.pop(names.index(ROUND_TRIP_GATE))
            return Outcome(float(np.mean(fractions)) * gate, "\n".join(lines))
        return Outcome(float(np.mean(fractions)), "\n".join(lines))
    return score


def threshold_score(value: float, full: float, partial: float, what: str, unit: str = "") -> Outcome:
    """Full marks for ``value ≤ full``, half for ``value ≤ partial``, else 0 (NaN: 0)."""
    shown = f"{value:.4f}{unit}"
    if np.isfinite(value) and value <= full:
        return Outcome(1.0, f"{what} = {shown} ≤ {full:g}{unit}: full marks")
    if np.isfinite(value) and value <= partial:
        return Outcome(0.5, f"{what} = {shown}: above {full:g}{unit} (full marks), below "
                            f"{partial:g}{unit} (half marks)")
    return Outcome(0.0, f"{what} = {shown}: above {partial:g}{unit}; full marks need ≤ {full:g}{unit}")
