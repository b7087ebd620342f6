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
    # BEGIN SOLUTION
    z = np.asarray(z, dtype=float)
    return -0.5 * np.sum(z**2, axis=1) - 0.5 * z.shape[1] * np.log(2.0 * np.pi)
    # END SOLUTION


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
    # BEGIN SOLUTION
    z = np.linalg.solve(A, (x - b).T).T
    _, log_abs_det_A = np.linalg.slogdet(A)
    # ∂f/∂x = A⁻¹, so log|det ∂f/∂x| = −log|det A|.
    return standard_normal_log_prob(z) - log_abs_det_A
    # END SOLUTION


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
    # BEGIN SOLUTION
    # The Jacobian is diagonal with entries 1 + a_i (1 − tanh² x_i) > 0.
    # (1 − tanh² rather than 1 / cosh², which overflows for large |x|.)
    return np.sum(np.log1p(a * (1.0 - np.tanh(x) ** 2)), axis=1)
    # END SOLUTION


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
    # BEGIN SOLUTION
    x1, x2 = x[:, 0], x[:, 1]
    z = np.stack([a * x1 + c, np.exp(alpha * x1) * x2 + beta * x1**2], axis=1)
    # log|det| of a triangular Jacobian: the sum of the logs of its diagonal |a|, exp(α x₁).
    return standard_normal_log_prob(z) + np.log(abs(a)) + alpha * x1
    # END SOLUTION


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

    # BEGIN HIDDEN TESTS
    # The affine density is the Gaussian N(b, A Aᵀ): compare with its closed form.
    x = rng.normal(size=(10, 2))
    cov = A @ A.T
    diff = x - b
    closed = (-0.5 * np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
              - np.log(2.0 * np.pi) - 0.5 * np.log(np.linalg.det(cov)))
    assert np.allclose(affine_log_prob(x, A, b), closed)

    # Central differences of f_i(x) = x_i + a_i tanh(x_i) give the diagonal Jacobian.
    a, x, h = np.array([0.5, -0.9, 2.0]), rng.normal(size=(4, 3)), 1e-6
    slope = ((x + h + a * np.tanh(x + h)) - (x - h + a * np.tanh(x - h))) / (2.0 * h)
    assert np.allclose(elementwise_log_det(x, a), np.log(slope).sum(axis=1), atol=1e-6)
    # END HIDDEN TESTS
    print("all self-checks passed")
