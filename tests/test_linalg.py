"""nflows_np.linalg: the determinant lemma, Householder products and the polar factor.

References are independent: ``scipy.linalg.det`` of the full matrix, reflections
multiplied out one by one, ``scipy.linalg.polar``, and central differences
(``gradcheck.numerical_gradient``) for the VJPs.

Tolerances are derived from floating-point error bounds (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed.): γ_n = nε/(1 − nε) bounds the
relative rounding error of an n-term dot product (§3.1, ε in place of the unit
roundoff: a factor 2 of slack). VJPs use the project's finite-difference pass
mark, relative error ≤ 1e-6 (gradcheck's docstring: correct gradients show 1e-8 to 1e-10).
"""
import numpy as np
import pytest
import scipy.linalg

from nflows_np.gradcheck import numerical_gradient, rel_error
from nflows_np.linalg import (
    det_lemma,
    householder_apply,
    householder_apply_vjp,
    householder_product,
    householder_product_vjp,
    log_det_lemma,
    polar,
    polar_vjp,
)

EPS = np.finfo(np.float64).eps
GRAD_TOL = 1e-6


def gamma(n):
    """γ_n: bound on the relative rounding error of an n-term dot product."""
    return n * EPS / (1 - n * EPS)


# -- the matrix determinant lemma -----------------------------------------------------

@pytest.mark.parametrize("m, d", [(7, 3), (2, 6), (1, 5), (4, 1)])
def test_det_lemma_matches_scipy_det_on_both_sides(m, d):
    """det(I_m + V Wᵀ) = det(I_d + Wᵀ V), V, W ∈ R^{m×d}, m ≠ d, against scipy.linalg.det of each side."""
    rng = np.random.default_rng(m * 10 + d)
    for _ in range(20):
        V, W = rng.standard_normal((m, d)), rng.standard_normal((m, d))
        big, small = np.eye(m) + V @ W.T, np.eye(d) + W.T @ V
        mine = det_lemma(V, W)
        # Forming an n×n matrix with k-term products and taking its LU determinant makes it the exact
        # determinant of a matrix perturbed by ≤ γ_{3n+k} relatively (Higham Thm 9.3, growth ≈ 1 for
        # these small random matrices); det then moves by ≤ n κ₂ times that (∂ log det = tr(A⁻¹ δA)).
        for reference, matrix, k in ((scipy.linalg.det(big), big, d), (scipy.linalg.det(small), small, m)):
            n = matrix.shape[0]
            both_sides = (max(m, d) * np.linalg.cond(big) * gamma(3 * max(m, d) + k)
                          + n * np.linalg.cond(matrix) * gamma(3 * n + k))
            assert abs(mine - reference) <= both_sides * abs(reference), (
                f"det_lemma {mine!r} vs scipy.linalg.det {reference!r} (m={m}, d={d})")


def test_log_det_lemma_sign_and_stacks():
    """log_det_lemma works on stacks (..., m, d) and returns the sign (negative determinants included).

    m = 2 < d = 5, so the lemma takes the 2×2 side; the reference is the 5×5 side.
    """
    rng = np.random.default_rng(5)
    V, W = rng.standard_normal((3, 8, 2, 5)), 2.0 * rng.standard_normal((3, 8, 2, 5))
    sign, logabsdet = log_det_lemma(V, W)
    small = np.eye(2) + V @ np.swapaxes(W, -1, -2)
    big = np.eye(5) + np.swapaxes(W, -1, -2) @ V
    reference = np.linalg.det(big)
    assert sign.shape == logabsdet.shape == (3, 8)
    assert np.any(reference < 0) and np.all(sign == np.sign(reference)), "some draws must have det < 0, and signs agree"
    # log|det| within n κ γ_{3n+k} on each route (as above), κ of each matrix computed here.
    tol = 2 * np.linalg.cond(small) * gamma(3 * 2 + 5) + 5 * np.linalg.cond(big) * gamma(3 * 5 + 2)
    np.testing.assert_array_less(np.abs(logabsdet - np.log(np.abs(reference))), tol)


def test_det_lemma_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="det_lemma"):
        det_lemma(np.zeros((3, 2)), np.zeros((2, 3)))


# -- Householder reflections ----------------------------------------------------------

def reflections_multiplied_out(V):
    """Q = H_1 ⋯ H_K with H_k = I − 2 v vᵀ/(vᵀv) formed as matrices: the textbook definition."""
    Q = np.eye(V.shape[1])
    for v in V:
        Q = Q @ (np.eye(len(v)) - 2.0 * np.outer(v, v) / (v @ v))
    return Q


@pytest.mark.parametrize("num, dim", [(1, 3), (3, 3), (5, 4), (2, 6)])
def test_householder_product_is_the_product_of_reflections(num, dim):
    V = np.random.default_rng(num + dim).standard_normal((num, dim))
    Q = householder_product(V)
    # K reflections, each normwise backward stable with ≤ γ_{2D} per rank-1 update (Higham Lemma 19.3):
    # the products in two orders differ by ≤ 2 K γ_{2D} ‖Q‖_F = 2 K γ_{2D} √D.
    tol = 2 * num * gamma(2 * dim) * np.sqrt(dim)
    assert np.linalg.norm(Q - reflections_multiplied_out(V)) <= tol
    assert np.linalg.norm(Q.T @ Q - np.eye(dim)) <= 2 * tol
    assert np.linalg.slogdet(Q)[0] == (-1) ** num, "each reflection has det −1"


@pytest.mark.parametrize("transpose", [False, True])
def test_householder_apply_multiplies_rows_by_q(transpose):
    rng = np.random.default_rng(3)
    V, X = rng.standard_normal((3, 4)), rng.standard_normal((7, 4))
    Q = reflections_multiplied_out(V)
    expected = X @ Q if transpose else X @ Q.T
    # Same bound as above, relative to ‖X‖_F (both sides backward stable).
    assert np.linalg.norm(householder_apply(V, X, transpose) - expected) <= 4 * 3 * gamma(8) * np.linalg.norm(X)


@pytest.mark.parametrize("transpose", [False, True])
def test_householder_apply_vjp_matches_finite_differences(transpose):
    rng = np.random.default_rng(4)
    V, X, G = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    grad_V, grad_X = householder_apply_vjp(V, X, G, transpose)
    loss = lambda: float(np.sum(G * householder_apply(V, X, transpose)))  # noqa: E731
    assert rel_error(grad_V, numerical_gradient(loss, V)) <= GRAD_TOL
    assert rel_error(grad_X, numerical_gradient(loss, X)) <= GRAD_TOL


def test_householder_product_vjp_matches_finite_differences():
    rng = np.random.default_rng(6)
    V, G = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    numeric = numerical_gradient(lambda: float(np.sum(G * householder_product(V))), V)
    assert rel_error(householder_product_vjp(V, G), numeric) <= GRAD_TOL


def test_householder_refuses_a_zero_vector():
    V = np.ones((3, 4))
    V[1] = 0.0
    with pytest.raises(ValueError, match="vector 1"):
        householder_product(V)


# -- the polar factor -------------------------------------------------------------------

@pytest.mark.parametrize("dim, m", [(4, 2), (3, 3), (5, 1)])
def test_polar_matches_scipy_polar(dim, m):
    A = np.random.default_rng(dim * m).standard_normal((dim, m))
    Q = polar(A)
    reference, _ = scipy.linalg.polar(A)  # A = U P, U with orthonormal columns
    # The polar factor's condition number is ~1/σ_min(A) (Higham §8.1): a backward-stable SVD
    # (error ≤ γ_{cD} ‖A‖, c small; c = 4 here) moves Q by ≤ that / σ_min, for each of the two routes.
    sigma = np.linalg.svd(A, compute_uv=False)
    tol = 2 * gamma(4 * dim) * sigma[0] / sigma[-1] * np.sqrt(m)
    assert np.linalg.norm(Q - reference) <= tol
    assert np.linalg.norm(Q.T @ Q - np.eye(m)) <= tol


@pytest.mark.parametrize("dim, m", [(4, 2), (3, 3), (5, 1)])
def test_polar_vjp_matches_finite_differences(dim, m):
    rng = np.random.default_rng(dim + m)
    A, G = rng.standard_normal((dim, m)), rng.standard_normal((dim, m))
    numeric = numerical_gradient(lambda: float(np.sum(G * polar(A))), A)
    assert rel_error(polar_vjp(A, G), numeric) <= GRAD_TOL


def test_polar_refuses_a_rank_deficient_matrix():
    A = np.ones((4, 2))
    with pytest.raises(ValueError, match="rank-deficient"):
        polar(A)
