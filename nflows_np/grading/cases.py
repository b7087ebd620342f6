"""What an assignment is made of: cases, their drivers and their scorers.

Everything here runs in the grader's process except the *driver*, a short
Python source text that the harness runs in the child next to the submission.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """A scored case: the fraction of its weight earned, and why.

    Attributes
    ----------
    fraction : float
        In ``[0, 1]``; the case earns ``fraction * weight`` points.
    message : str
        What matched or what differs, for the student.
    """

    fraction: float
    message: str


Scorer = Callable[[Arrays, Arrays, Arrays], Outcome]
"""``score(inputs, expected, received) -> Outcome``, run in the grader's process."""


@dataclass(frozen=True)
class Case:
    """One graded check.

    Attributes
    ----------
    name : str
        Shown to the student, e.g. ``"affine_log_prob: 2-D, det A > 0"``.
    weight : float
        Points for a full pass.
    make_inputs : callable
        ``make_inputs(rng) -> dict[str, ndarray]``; ``rng`` is seeded by the
        grader with a seed the submission cannot know.  Inputs whose name
        starts with ``_`` are private: ``reference`` and ``score`` see them,
        the child never does (held-out test data, the seed of an evaluation).
    reference : callable
        ``reference(inputs) -> dict[str, ndarray]``: the expected outputs,
        computed in the grader's process.  Their shapes are the only shapes
        the grader accepts back from the child.
    driver : str
        Python source defining ``drive(namespace, inputs) -> dict[str, array]``,
        run in the child after the submission (``namespace`` is the
        submission's globals).  See :func:`function_driver`.
    score : callable
        ``score(inputs, expected, received) -> Outcome``.
    hidden : bool
        Hidden cases are shown to students only after the due date.
    timeout : float
        Wall-clock seconds for this case (the CLI's ``--timeout`` caps it).
    hint : str
        Added to the feedback when the case is not passed.
    """

    name: str
    weight: float
    make_inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    reference: Callable[[Arrays], dict[str, np.ndarray]]
    driver: str
    score: Scorer
    hidden: bool = False
    timeout: float = 10.0
    hint: str = ""


@dataclass(frozen=True)
class Assignment:
    """A gradable assignment: one module in :mod:`nflows_np.grading.assignments`.

    Attributes
    ----------
    name : str
        Equal to the module's name; what ``grade --assignment`` takes.
    title : str
        One line, for the report.
    cases : tuple of Case
    solution : str
        Path of the solution source, relative to the repository root.
    student : str
        Path of the generated student version, relative to the repository root.
    budget : float
        Wall-clock seconds for the whole run (the CLI's ``--budget`` overrides).
    limits : dict
        Resource limits for the child, overriding :data:`DEFAULT_LIMITS` entries.
    """

    name: str
    title: str
    cases: tuple[Case, ...]
    solution: str
    student: str
    budget: float = 25.0
    limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        """Sum of the case weights."""
        return float(sum(case.weight for case in self.cases))


_FUNCTION_DRIVER = '''\
def drive(namespace, inputs):
    function = namespace.get({function!r})
    if not callable(function):
        raise NameError("your file defines no function {function}(): keep the "
                        "names and signatures of the template")
    # 0-d arrays are passed as Python floats, everything else as a fresh array.
    args = [float(inputs[key]) if inputs[key].ndim == 0 else inputs[key].copy()
            for key in {args!r}]
    result = function(*args)
    outputs = {outputs!r}
    if len(outputs) == 1:
        return {{outputs[0]: result}}
    if not isinstance(result, tuple) or len(result) != len(outputs):
        raise TypeError("{function}() must return a tuple " + repr(outputs))
    return dict(zip(outputs, result))
'''


def function_driver(function: str, args: tuple[str, ...], outputs: tuple[str, ...]) -> str:
    """Driver source that calls ``function(*inputs[args])`` and names its result(s).

    Parameters
    ----------
    function : str
        Name of a module-level function of the submission.
    args : tuple of str
        Input names, passed positionally in this order.
    outputs : tuple of str
        Names of the returned values: one name for a single return value,
        several for a tuple.

    Returns
    -------
    str
        Python source defining ``drive(namespace, inputs)``.
    """
    return _FUNCTION_DRIVER.format(function=function, args=tuple(args), outputs=tuple(outputs))


def _format_index(index: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"


def compare_arrays(expected: np.ndarray, received: np.ndarray,
                   rtol: float = 1e-6, atol: float = 1e-8) -> Outcome:
    """Fraction of entries with ``|received - expected| <= atol + rtol |expected|``.

    The message names the worst entry: max abs error, its index, expected and
    received values; NaN or inf where a finite value is expected counts as
    wrong.  Both arrays are float64 of the same shape (checked on loading).
    """
    expected = np.asarray(expected, dtype=np.float64)
    received = np.asarray(received, dtype=np.float64)
    if expected.size == 0:
        return Outcome(1.0, "nothing to compare")
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(received - expected)
        close = (error <= atol + rtol * np.abs(expected)) | (received == expected)
    close &= np.isfinite(received) | ~np.isfinite(expected)
    fraction = float(np.mean(close))
    error = np.where(np.isnan(error), np.inf, error)
    worst = np.unravel_index(int(np.argmax(error)), expected.shape) if expected.ndim else ()
    where = f" at index {_format_index(worst)}" if expected.ndim else ""
    detail = (f"max abs error {error[worst]:.3g}{where}: "
              f"expected {expected[worst]:.10g}, received {received[worst]:.10g}")
    if fraction == 1.0:
        return Outcome(1.0, f"all {expected.size} values match ({detail})")
    return Outcome(fraction, f"{int(close.sum())}/{expected.size} values within tolerance "
                             f"(atol={atol:g}, rtol={rtol:g}); {detail}")


def compare_outputs(rtol: float = 1e-6, atol: float = 1e-8) -> Scorer:
    """Scorer comparing every expected output with :func:`compare_arrays`.

    The case earns the mean of the per-output fractions.
    """
    def score(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
        outcomes = {name: compare_arrays(expected[name], received[name], rtol, atol)
                    for name in expected}
        fraction = float(np.mean([outcome.fraction for outcome in outcomes.values()]))
        if len(outcomes) == 1:
            return Outcome(fraction, next(iter(outcomes.values())).message)
        return Outcome(fraction, "; ".join(f"{name}: {outcome.message}"
                                           for name, outcome in outcomes.items()))
    return score
