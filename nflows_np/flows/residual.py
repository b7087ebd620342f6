"""Pieces shared by the residual flows (planar, radial, Sylvester).

These flows are written on the slides as x = g(z) = z + (a residual term): their
closed form is ``inverse`` (z → x), and ``forward`` (x → z) solves g(z) = x by a
root-finder to a stated tolerance.

- :func:`tanh_gate` — t = tanh(a), h′ = 1 − t² and ψ = 1 + h′(e − 1), the factor of
  the determinant of a tanh residual layer, written so that it stays accurate as e → 0.
- :func:`solve_tanh_root` — the scalar equation a + (e − 1) tanh(a) = y, to machine precision.
- :class:`NotConvergedError` — raised, naming the layer, when a root-finder fails.
"""
from __future__ import annotations

import numpy as np

from nflows_np.numerics import EPS


class NotConvergedError(RuntimeError):
    """A root-finder did not reach its stated tolerance; the message names the layer."""


def tanh_gate(a: np.ndarray, e: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """tanh, its derivative and the determinant factor of a tanh residual unit.

    For the unit a ↦ a + d·tanh(a) with d = e − 1 (e = 1 + d > 0 for invertibility):

        t = tanh(a),  h′ = 1 − t²,
        ψ = 1 + h′ d = t² + h′ e,        ∂ψ/∂a = 2 t h′ (1 − e),   ∂ψ/∂e = h′.

    Returns
    -------
    t, h′, ψ, ∂ψ/∂a : np.ndarray
        Broadcast over ``a`` and ``e``.
    """
    t = np.tanh(a)
    hp = 1.0 - t * t
    # ψ = t² + h′e instead of 1 + h′d: a sum of non-negative terms, no cancellation as d → −1.
    psi = t * t + hp * e
    return t, hp, psi, 2.0 * t * hp * (1.0 - e)


def solve_tanh_root(y: np.ndarray, e: float, who: str, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Solve F(a) = a + (e − 1) tanh(a) − y = 0 for a, elementwise over ``y``, with e ≥ 0.

    F′(a) = ψ(a) = t² + (1 − t²) e ≥ 0, so F is increasing and the root is unique;
    |tanh| ≤ 1 brackets it in [y − |e − 1|, y + |e − 1|]. Safeguarded Newton
    ("rtsafe", Numerical Recipes §9.4): a Newton step where it stays inside the
    bracket and at least halves the step before last, a bisection step otherwise;
    the bracket shrinks on every sign of F. Newton converges quadratically, so
    iteration stops once a Newton step is ≤ 4ε·max(1, |a|) (the step is still
    applied) or the bracket is that narrow.

    Tolerance: on return |F(a)| ≤ 16ε·(1 + |y| + |a|) — a residual at rounding level,
    checked, else :class:`NotConvergedError` naming ``who``. The error in a is then
    at most that residual divided by ψ(a).

    Cost: O(n) per iteration, a few iterations per element (Newton converges quadratically
    once inside the bracket).

    Returns
    -------
    a : np.ndarray
        The roots, shape of ``y``.
    iterations : np.ndarray
        Iterations each entry took.
    """
    y = np.asarray(y, dtype=np.float64)
    d = e - 1.0
    lo, hi = y - abs(d), y + abs(d)
    a = y - d * np.tanh(y)  # one fixed-point step: inside the bracket since |tanh| ≤ 1
    step_before_last = hi - lo
    last_step = hi - lo
    iterations = np.zeros(y.shape, dtype=np.int64)
    active = np.ones(y.shape, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        i = np.flatnonzero(active)
        ai, yi = a[i], y[i]
        t, _, psi, _ = tanh_gate(ai, e)
        value = ai + d * t - yi
        lo[i] = np.where(value < 0, ai, lo[i])
        hi[i] = np.where(value > 0, ai, hi[i])
        with np.errstate(divide="ignore", invalid="ignore"):  # ψ = 0 only where e = 0 and a = 0: bisect there
            newton_step = np.where(psi > 0, value / psi, np.inf)
        newton = ai - newton_step
        tol = 4.0 * EPS * np.maximum(1.0, np.abs(ai))
        small = np.abs(newton_step) <= tol
        slow = np.abs(newton_step) > 0.5 * np.abs(step_before_last[i])  # not converging fast: bisect instead
        bisect = ~small & ((newton < lo[i]) | (newton > hi[i]) | slow)
        new = np.where(bisect, 0.5 * (lo[i] + hi[i]), newton)
        step_before_last[i] = last_step[i]
        last_step[i] = new - ai
        a[i] = new
        iterations[i] += 1
        active[i] = ~(small | (value == 0) | (hi[i] - lo[i] <= tol))
    residual = np.abs(a + d * np.tanh(a) - y)
    bound = 16.0 * EPS * (1.0 + np.abs(y) + np.abs(a))
    if np.any(residual > bound):
        worst = int(np.argmax(residual / bound))
        raise NotConvergedError(f"{who}: root-finder for a + (e − 1) tanh(a) = y did not converge in {max_iter} "
                                f"iterations (e = {e:.3g}, y = {y.flat[worst]:.6g}: residual "
                                f"{residual.flat[worst]:.3g} > {bound.flat[worst]:.3g})")
    return a, iterations
