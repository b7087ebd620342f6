"""Exercises of the lecture notebooks, checked automatically.

In a notebook::

    from nflows_np import exercises

    def planar_log_det(z, u, w, b):
        ...

    exercises.check("05.2", planar_log_det)   # prints ✓ / ✗, what differs, and a diagnosis

:func:`check` prints the verdict; :func:`evaluate` returns it (a
:class:`~nflows_np.exercises.core.Verdict`, true when the answer passes).
``python lectures/make_students.py`` writes the student notebooks, the
reference notebooks with the solutions removed.
"""
from __future__ import annotations

from typing import Any

from nflows_np.exercises import early, images, late
from nflows_np.exercises.core import Exercise, Verdict, registry
from nflows_np.exercises.core import evaluate as _evaluate

__all__ = ["EXERCISES", "Exercise", "Verdict", "check", "evaluate", "get"]

EXERCISES: dict[str, Exercise] = registry(early.RECAP, early.CHANGE_OF_VARIABLES, early.FITTING, early.KL,
                                          late.JACOBIANS, late.RESIDUAL, late.COUPLING, late.SUMMARY,
                                          images.IMAGES)


def get(key: str) -> Exercise:
    """The exercise ``key`` (e.g. ``"05.2"``); KeyError naming the known keys otherwise."""
    if key not in EXERCISES:
        raise KeyError(f"no exercise {key!r}; known: {', '.join(EXERCISES)}")
    return EXERCISES[key]


def evaluate(key: str, answer: Any) -> Verdict:
    """The verdict on ``answer`` (a function of the exercise's inputs, or a value) for exercise ``key``."""
    return _evaluate(get(key), answer)


def check(key: str, answer: Any) -> None:
    """Print the verdict on ``answer`` for exercise ``key``: one line, then what differs and why."""
    print(evaluate(key, answer))
