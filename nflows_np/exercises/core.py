"""What a notebook exercise is, and how an answer is checked.

A student answers an exercise in a notebook with a function (``def
planar_log_det(z, u, w, b): ...``) or a value (``answer = 3``); the check
cell calls :func:`check`, which builds the exercise's inputs from a fixed
seed, calls the function, compares its outputs with the library's and prints
a one-line verdict, followed by what differs and, for a known mistake, its
diagnosis.

The comparison and the diagnoses are the homework grader's:
:func:`nflows_np.grading.assignments._flows.compare_named` and
:class:`~nflows_np.grading.assignments._flows.Diagnosis` (a sign flip, a sum
where a mean is meant and a transposed matrix are recognised for every
exercise, on top of the exercise's own diagnoses).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nflows_np.grading.assignments._flows import Diagnosis, compare_named

__all__ = ["Diagnosis", "Exercise", "Verdict", "evaluate", "evaluate_outputs"]

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lecture notebook.

    Attributes
    ----------
    key : str
        ``"<notebook>.<number>"``, e.g. ``"05.2"``: the heading reads "Exercise 05.2".
    title : str
        A few words, shown in the verdict.
    make_inputs : callable
        ``make_inputs(rng) -> dict``: the keyword arguments of the student's
        function (arrays, or library objects such as a flow); ``{}`` when the
        answer is a value.
    reference : callable
        ``reference(inputs) -> dict[str, ndarray]``, computed with the library.
    labels : mapping
        Output name -> what it is in the lecture's words, in the order the
        student's function returns them (a tuple when there are several).
    diagnoses : tuple of Diagnosis
        Known mistakes, each recomputing one output *with* the mistake.
    rtol, atol : float
        Tolerance of the comparison, entrywise.
    batch_key : str or None
        Input whose first dimension is the batch size (recognises a sum
        where a mean is meant).
    seed : int
        Seed of ``make_inputs``.
    """

    key: str
    title: str
    make_inputs: Callable[[np.random.Generator], Inputs]
    reference: Callable[[Inputs], dict[str, np.ndarray]]
    labels: Mapping[str, str]
    diagnoses: tuple[Diagnosis, ...] = ()
    rtol: float = 1e-6
    atol: float = 1e-8
    batch_key: str | None = None
    seed: int = 0

    def inputs(self) -> Inputs:
        """The inputs the check uses (the same every call)."""
        return self.make_inputs(np.random.default_rng(self.seed))


@dataclass(frozen=True)
class Verdict:
    """The result of a check: ``passed``, and the text shown to the student."""

    key: str
    passed: bool
    fraction: float
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message


def _verdict(exercise: Exercise, passed: bool, fraction: float, summary: str, detail: str = "") -> Verdict:
    mark = "✓" if passed else "✗"
    head = f"{mark} Exercise {exercise.key} ({exercise.title}): {summary}"
    return Verdict(exercise.key, passed, fraction, head + ("\n" + detail if detail else ""))


def evaluate_outputs(exercise: Exercise, inputs: Inputs, received: Mapping[str, Any]) -> Verdict:
    """Compare ``received`` outputs with the reference for ``inputs``."""
    expected = {name: np.asarray(value, dtype=np.float64) for name, value in exercise.reference(inputs).items()}
    arrays = {}
    for name, label in exercise.labels.items():
        value = received.get(name)
        if value is None:
            return _verdict(exercise, False, 0.0, f"no value for {label} yet: replace the stub with your answer")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return _verdict(exercise, False, 0.0, f"{label} must be numbers, got {type(value).__name__}")
        if array.shape != expected[name].shape:
            return _verdict(exercise, False, 0.0, f"{label} has shape {array.shape}, expected "
                                                  f"{expected[name].shape}")
        arrays[name] = array
    score = compare_named(exercise.labels, rtol=exercise.rtol, atol=exercise.atol,
                          diagnoses=exercise.diagnoses, batch_key=exercise.batch_key)
    outcome = score(inputs, expected, arrays)
    passed = outcome.fraction == 1.0
    summary = "correct" if passed else "not yet: see below"
    return _verdict(exercise, passed, outcome.fraction, summary, outcome.message)


def _call(exercise: Exercise, answer: Any, inputs: Inputs) -> tuple[dict[str, Any] | None, str]:
    """The student's outputs by name, or None and why not."""
    names: Sequence[str] = list(exercise.labels)
    if not callable(answer):
        if len(names) == 1:
            return {names[0]: answer}, ""
        if isinstance(answer, (tuple, list)) and len(answer) == len(names):
            return dict(zip(names, answer)), ""
        return None, f"give {len(names)} values: " + ", ".join(exercise.labels.values())
    try:
        result = answer(**inputs)
    except NotImplementedError:
        return None, "not done yet: the function still raises NotImplementedError; write its body"
    except Exception as error:  # noqa: BLE001 -- the student's code: any error is reported, none is fatal
        return None, f"your function raised {type(error).__name__}: {error}"
    if len(names) == 1:
        return {names[0]: result}, ""
    if not isinstance(result, tuple) or len(result) != len(names):
        return None, f"your function must return a tuple ({', '.join(names)})"
    return dict(zip(names, result)), ""


def evaluate(exercise: Exercise, answer: Any) -> Verdict:
    """Check ``answer`` (a function of the exercise's inputs, or a value) against the library."""
    inputs = exercise.inputs()
    received, problem = _call(exercise, answer, inputs)
    if received is None:
        return _verdict(exercise, False, 0.0, problem)
    return evaluate_outputs(exercise, inputs, received)


def const(value: Any) -> Callable[[Inputs], np.ndarray]:
    """A diagnosis alternative (or reference output) that does not depend on the inputs."""
    return lambda inputs: np.asarray(value, dtype=np.float64)


def no_inputs(rng: np.random.Generator) -> Inputs:
    """``make_inputs`` of an exercise answered by a value."""
    return {}


def value_exercise(key: str, title: str, label: str, value: Any, wrong: Mapping[Any, str],
                   rtol: float = 1e-6, atol: float = 1e-8) -> Exercise:
    """An exercise answered by one number (or array): ``wrong`` maps known wrong answers to their hint."""
    diagnoses = tuple(Diagnosis("value", const(answer), hint) for answer, hint in wrong.items())
    return Exercise(key, title, no_inputs, lambda inputs: {"value": np.asarray(value, dtype=np.float64)},
                    {"value": label}, diagnoses, rtol, atol)


def registry(*groups: Sequence[Exercise]) -> dict[str, Exercise]:
    """``{key: exercise}`` over ``groups``; a key used twice is an error."""
    table: dict[str, Exercise] = {}
    for group in groups:
        for exercise in group:
            if exercise.key in table:
                raise ValueError(f"exercise key {exercise.key!r} is defined twice")
            table[exercise.key] = exercise
    return table


