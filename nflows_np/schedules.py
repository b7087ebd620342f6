"""Schedules of a training run: the annealing weight β(t) and the learning-rate factor.

Each is a function of the step t (0-based) returning a float: ``beta=`` of
:func:`nflows_np.train.fit_reverse_kl` takes β(t); ``schedule=`` of the ``fit``
functions multiplies the learning rate by factor(t).
"""
from __future__ import annotations

import math
from collections.abc import Callable

from nflows_np.validation import check_int, check_real

__all__ = ["linear_beta", "warmup_cosine"]


def linear_beta(start: float = 0.01, end: float = 1.0, steps: int = 1000) -> Callable[[int], float]:
    """β(t) rising linearly from ``start`` to ``end`` over ``steps`` steps, then constant."""
    if steps < 0:
        raise ValueError(f"linear_beta: steps must be >= 0, got {steps}")
    return lambda t: end if steps == 0 or t >= steps else start + (end - start) * t / steps


def warmup_cosine(steps: int, warmup: int = 0, final: float = 0.0) -> Callable[[int], float]:
    """Learning-rate factor: a linear warm-up over ``warmup`` steps, then a cosine decay to ``final``.

    The lr of step t is ``lr · factor(t)``, with (T = ``steps``, W = ``warmup``, m = ``final``)::

        factor(t) = (t + 1) / W                                       for t < W,
        factor(t) = m + (1 − m) · ½ (1 + cos(π (t − W) / (T − W)))    for W ≤ t < T,

    and m from step T on. ``final`` is the last factor as a fraction of the peak lr.
    """
    steps = check_int(steps, "warmup_cosine: steps")
    warmup = check_int(warmup, "warmup_cosine: warmup", minimum=0)
    if warmup >= steps:
        raise ValueError(f"warmup_cosine: warmup must be smaller than steps ({steps}), got {warmup}")
    final = check_real(final, "warmup_cosine: final", minimum=0.0)
    if final > 1.0:
        raise ValueError(f"warmup_cosine: final is a fraction of the peak lr, in [0, 1], got {final}")

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        progress = min(1.0, (t - warmup) / (steps - warmup))
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
