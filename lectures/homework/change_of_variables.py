"""Homework: the change-of-variables formula (Lecture 5).

A flow maps data ``x`` to a latent ``z = f(x)`` with a simple density
``p_Z = N(0, I)``.  If ``f`` is invertible and differentiable,

    log p(x) = log p_Z(f(x)) + log |det ∂f(x)/∂x|.

Write the four functions below with numpy only (importing ``nflows_np`` is not
allowed in a graded submission).  Every function takes a batch: ``x`` or ``z``
has shape ``(N, D)`` and the result has shape ``(N,)``, one value per row.
Keep the names and signatures.

Grade your work with::

    python -m nflows_np grade change_of_variables.py --assignment change_of_variables

The student version ``lectures/homework/change_of_variables.py`` is generated
from the solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np


def standard_normal_log_prob(z):
    """Log-density of the standard normal ``N(0, I_D)`` at every row of ``z``.

    Parameters
    ----------
    z : ndarray, shape (N, D)

    Returns
    -------
    ndarray, shape (N,)
        ``log N(z_n; 0, I) = −½ ‖z_n‖² − (D/2) log 2π``.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def affine_log_prob(x, A, b):
    """Log-density of ``x = A z + b`` with ``z ~ N(0, I_D)``, by change of variables.

    Here ``f(x) = A⁻¹ (x − b)`` maps data to latent.  Do not use the Gaussian
    closed form: apply the formula above.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    A : ndarray, shape (D, D)
        Invertible (its determinant may be negative).
    b : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (N,)
        ``log p(x_n)``.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def elementwise_log_det(x, a):
    """``log|det ∂f/∂x|`` of the elementwise map ``f(x)_i = x_i + a_i tanh(x_i)``.

    With ``a_i > −1`` every ``f_i`` is strictly increasing, hence invertible.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    a : ndarray, shape (D,)
        Every entry ``> −1``.

    Returns
    -------
    ndarray, shape (N,)
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def triangular_log_prob(x, a, c, alpha, beta):
    """Log-density of ``x`` (2-D) under the flow ``z = f(x)``, ``z ~ N(0, I_2)``, where

        z₁ = a x₁ + c,
        z₂ = exp(α x₁) x₂ + β x₁²      (a ≠ 0).

    The Jacobian ``∂z/∂x`` is lower triangular.  (Sampling inverts it in
    closed form: ``x₁ = (z₁ − c)/a``, ``x₂ = (z₂ − β x₁²) exp(−α x₁)``.)

    Parameters
    ----------
    x : ndarray, shape (N, 2)
    a, c, alpha, beta : float

    Returns
    -------
    ndarray, shape (N,)
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: `python change_of_variables.py` once the functions are written.
    rng = np.random.default_rng(0)
    assert np.isclose(standard_normal_log_prob(np.zeros((1, 2)))[0], -np.log(2.0 * np.pi))

    # A density integrates to one: check it on a grid.
    axis = np.linspace(-12.0, 12.0, 401)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    cell = (axis[1] - axis[0]) ** 2
    A, b = np.array([[1.5, 0.3], [-0.4, 0.8]]), np.array([0.5, -1.0])
    assert abs(np.exp(affine_log_prob(grid, A, b)).sum() * cell - 1.0) < 1e-3
    assert abs(np.exp(triangular_log_prob(grid, 1.1, 0.2, 0.1, 0.2)).sum() * cell - 1.0) < 1e-3

    # A map with a = 0 is the identity: its log-det is zero.
    assert np.allclose(elementwise_log_det(rng.normal(size=(5, 3)), np.zeros(3)), 0.0)

    print("all self-checks passed")
