"""Assignment ``change_of_variables``: densities through invertible maps (numpy only).

Lecture notation: data ``x``, latent ``z = f(x)``, ``p_Z = N(0, I)``::

    log p(x) = log p_Z(f(x)) + log |det ∂f/∂x|

The student writes four functions (see ``lectures/homework/solutions/
change_of_variables.py``):

* ``standard_normal_log_prob(z)`` -- ``log N(z; 0, I)`` per row;
* ``affine_log_prob(x, A, b)`` -- ``x = A z + b``, so ``f(x) = A⁻¹(x − b)`` and
  ``log|det ∂f/∂x| = −log|det A|``;
* ``elementwise_log_det(x, a)`` -- ``f(x)_i = x_i + a_i tanh(x_i)``:
  ``Σ_i log(1 + a_i (1 − tanh² x_i))``;
* ``triangular_log_prob(x, a, c, alpha, beta)`` -- 2-D map with a lower
  triangular Jacobian: ``z₁ = a x₁ + c``, ``z₂ = exp(α x₁) x₂ + β x₁²``, so
  ``log|det ∂f/∂x| = log|a| + α x₁``.

The references below are the grader's own, independent of the solution file;
they run in the grader's process only.
"""
from __future__ import annotations

import numpy as np

from nflows_np.grading.cases import Arrays, Assignment, Case, Outcome, compare_arrays, compare_outputs, function_driver

_LOG_2PI = float(np.log(2.0 * np.pi))
_VALUES = compare_outputs(rtol=1e-6, atol=1e-8)
_TIMEOUT = 10.0
_NORMALISATION_TOLERANCE = 1e-3


# ---- references (grader side) ------------------------------------------------

def _standard_normal(z: np.ndarray) -> np.ndarray:
    return -0.5 * np.einsum("nd,nd->n", z, z) - 0.5 * z.shape[1] * _LOG_2PI


def _affine(inputs: Arrays) -> dict[str, np.ndarray]:
    x, A, b = inputs["x"], inputs["A"], inputs["b"]
    z = np.linalg.solve(A, (x - b).T).T
    _, log_abs_det = np.linalg.slogdet(A)
    return {"log_prob": _standard_normal(z) - log_abs_det}


def _elementwise(inputs: Arrays) -> dict[str, np.ndarray]:
    x, a = inputs["x"], inputs["a"]
    # 1 − tanh² rather than 1/cosh²: no overflow of cosh for large |x|.
    return {"log_det": np.sum(np.log1p(a * (1.0 - np.tanh(x) ** 2)), axis=1)}


def _triangular(inputs: Arrays) -> dict[str, np.ndarray]:
    x = inputs["x"]
    a, c, alpha, beta = (float(inputs[key]) for key in ("a", "c", "alpha", "beta"))
    x1, x2 = x[:, 0], x[:, 1]
    z = np.stack([a * x1 + c, np.exp(alpha * x1) * x2 + beta * x1**2], axis=1)
    return {"log_prob": _standard_normal(z) + np.log(abs(a)) + alpha * x1}


# ---- inputs (drawn with the grader's secret seed) ----------------------------

def _matrix(rng: np.random.Generator, dim: int, sign: float) -> np.ndarray:
    """Random well-conditioned ``dim × dim`` matrix with determinant of the given sign."""
    q1, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    q2, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    A = q1 @ np.diag(rng.uniform(0.5, 1.5, size=dim)) @ q2
    if np.sign(np.linalg.det(A)) != sign:
        A[:, 0] *= -1.0
    return A


def _grid(half_widths: tuple[float, float], counts: tuple[int, int]) -> tuple[np.ndarray, float]:
    axes = [np.linspace(-h, h, n) for h, n in zip(half_widths, counts, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    return points, float(np.prod([axis[1] - axis[0] for axis in axes]))


_AFFINE_GRID = ((10.0, 10.0), (201, 201))
_TRIANGULAR_GRID = ((8.0, 30.0), (201, 601))


def _normal_points(n: int, dim: int, scale: float):
    return lambda rng: {"z": scale * rng.normal(size=(n, dim))}


def _affine_inputs(dim: int, sign: float, grid: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        A = _matrix(rng, dim, sign)
        b = rng.uniform(-1.0, 1.0, size=dim)
        x = _grid(*_AFFINE_GRID)[0] if grid else b + 2.0 * rng.normal(size=(40, dim))
        return {"x": x, "A": A, "b": b}
    return make


def _elementwise_inputs(extreme: bool):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not extreme:
            return {"x": 2.0 * rng.normal(size=(40, 3)), "a": rng.uniform(-0.8, 2.0, size=3)}
        a = np.array([-0.99, -0.5, 0.0, 5.0])
        x = np.concatenate([3.0 * rng.normal(size=(30, 4)),
                            np.array([[0.0] * 4, [30.0, -30.0, 400.0, -800.0]])])
        return {"x": x, "a": a[rng.permutation(4)]}
    return make


def _triangular_inputs(sign_a: float, grid: bool = False):
    def make(rng: np.random.Generator) -> dict[str, np.ndarray]:
        alpha = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.2)
        x = _grid(*_TRIANGULAR_GRID)[0] if grid else 2.0 * rng.normal(size=(50, 2))
        return {"x": x, "a": np.array(sign_a * rng.uniform(0.8, 1.25)),
                "c": np.array(rng.uniform(-0.5, 0.5)), "alpha": np.array(alpha),
                "beta": np.array(rng.uniform(-0.25, 0.25))}
    return make


# ---- scoring -------------------------------------------------------------------

def _integrates_to_one(grid_spec: tuple, hint: str):
    """Scorer: the received log-density, exponentiated and summed on the grid, must be 1.

    It counts only as far as the values are the right ones: a constant density
    scaled to the grid also integrates to 1.
    """
    _, cell_area = _grid(*grid_spec)
    (h1, h2), (n1, n2) = grid_spec

    def score(inputs: Arrays, expected: Arrays, received: Arrays) -> Outcome:
        with np.errstate(over="ignore", invalid="ignore"):
            integral = float(np.sum(np.exp(received["log_prob"])) * cell_area)
        box = f"[-{h1:g}, {h1:g}] × [-{h2:g}, {h2:g}] ({n1}×{n2} points)"
        values = compare_arrays(expected["log_prob"], received["log_prob"], 1e-6, 1e-8)
        error = abs(integral - 1.0)
        if error <= _NORMALISATION_TOLERANCE:
            fraction, message = 1.0, f"your density integrates to {integral:.6f} on the grid {box}"
        else:
            fraction = 0.5 if error <= 10 * _NORMALISATION_TOLERANCE else 0.0
            message = (f"your density integrates to {integral:.6g} on the grid {box}; "
                       f"expected 1 ± {_NORMALISATION_TOLERANCE:g}. {hint}")
        return Outcome(fraction * values.fraction, f"{message}; and its values on the grid: {values.message}")
    return score


# ---- the cases -------------------------------------------------------------------

def _case(name: str, weight: float, function: str, args: tuple[str, ...], output: str,
          make_inputs, reference, *, hidden: bool = False, hint: str = "", score=_VALUES) -> Case:
    return Case(name=name, weight=weight, make_inputs=make_inputs, reference=reference,
                driver=function_driver(function, args, (output,)), score=score,
                hidden=hidden, timeout=_TIMEOUT, hint=hint)


_HINT_NORMAL = "log N(z; 0, I) = −½‖z‖² − (D/2) log 2π: one value per row, for any D"
_HINT_AFFINE = ("log p(x) = log p_Z(f(x)) + log|det ∂f/∂x| with f(x) = A⁻¹(x − b), "
                "so the log-det term is −log|det A| (mind the absolute value)")
_HINT_ELEMENTWISE = ("∂f_i/∂x_i = 1 + a_i (1 − tanh² x_i); the Jacobian is diagonal, so "
                     "log|det| is the sum over i of the logs, one value per row")
_HINT_TRIANGULAR = ("the Jacobian is lower triangular: log|det ∂f/∂x| = log|a| + α x₁ "
                    "(the product of its diagonal; mind |a|)")

ASSIGNMENT = Assignment(
    name="change_of_variables",
    title="the change-of-variables formula",
    solution="lectures/homework/solutions/change_of_variables.py",
    student="lectures/homework/change_of_variables.py",
    budget=25.0,
    cases=(
        _case("standard_normal_log_prob: 2-D points", 1, "standard_normal_log_prob", ("z",),
              "log_prob", _normal_points(40, 2, 1.5),
              lambda inputs: {"log_prob": _standard_normal(inputs["z"])}, hint=_HINT_NORMAL),
        _case("standard_normal_log_prob: 7-D points", 1, "standard_normal_log_prob", ("z",),
              "log_prob", _normal_points(30, 7, 2.0),
              lambda inputs: {"log_prob": _standard_normal(inputs["z"])},
              hidden=True, hint=_HINT_NORMAL),
        _case("affine_log_prob: 2-D, det A > 0", 3, "affine_log_prob", ("x", "A", "b"),
              "log_prob", _affine_inputs(2, +1.0), _affine, hint=_HINT_AFFINE),
        _case("affine_log_prob: 3-D, det A < 0", 2, "affine_log_prob", ("x", "A", "b"),
              "log_prob", _affine_inputs(3, -1.0), _affine, hidden=True, hint=_HINT_AFFINE),
        _case("affine_log_prob: the density integrates to 1", 1, "affine_log_prob",
              ("x", "A", "b"), "log_prob", _affine_inputs(2, -1.0, grid=True), _affine,
              hidden=True, score=_integrates_to_one(_AFFINE_GRID, _HINT_AFFINE)),
        _case("elementwise_log_det: 3-D, moderate inputs", 3, "elementwise_log_det",
              ("x", "a"), "log_det", _elementwise_inputs(extreme=False), _elementwise,
              hint=_HINT_ELEMENTWISE),
        _case("elementwise_log_det: a near -1, large |x|", 2, "elementwise_log_det",
              ("x", "a"), "log_det", _elementwise_inputs(extreme=True), _elementwise,
              hidden=True, hint=_HINT_ELEMENTWISE),
        _case("triangular_log_prob: a > 0", 3, "triangular_log_prob",
              ("x", "a", "c", "alpha", "beta"), "log_prob", _triangular_inputs(+1.0),
              _triangular, hint=_HINT_TRIANGULAR),
        _case("triangular_log_prob: a < 0", 2, "triangular_log_prob",
              ("x", "a", "c", "alpha", "beta"), "log_prob", _triangular_inputs(-1.0),
              _triangular, hidden=True, hint=_HINT_TRIANGULAR),
        _case("triangular_log_prob: the density integrates to 1", 2, "triangular_log_prob",
              ("x", "a", "c", "alpha", "beta"), "log_prob", _triangular_inputs(+1.0, grid=True),
              _triangular, score=_integrates_to_one(_TRIANGULAR_GRID, _HINT_TRIANGULAR)),
    ),
)
