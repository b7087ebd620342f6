"""Sylvester flow: structure of Q, R, R̃, the determinant lemma, saturated diagonals (the contract test covers the rest)."""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from cases_residual import round_trip_errors

from nflows_np.flows.sylvester import Sylvester
from nflows_np.gradcheck import randomize_params
from nflows_np.linalg import log_det_lemma
from nflows_np.numerics import logcosh

EPS = np.finfo(np.float64).eps


# -- Sylvester: structure, the determinant lemma, saturated diagonals -----------------------

@pytest.mark.parametrize("variant, kwargs", [("orthogonal", {"m": 2}), ("householder", {"num_householder": 3}),
                                             ("triangular", {"reverse": True})])
def test_sylvester_structure_and_log_det_by_the_determinant_lemma(variant, kwargs):
    """QᵀQ = I, R and R̃ upper-triangular, |R_ii R̃_ii| < 1; the layer's log-det (product of the
    triangular diagonal) equals the determinant lemma's det(I_M + H R̃ Qᵀ Q R) and scipy's det of
    the D×D Jacobian I + Q R H R̃ Qᵀ."""
    rng = np.random.default_rng(8)
    dim = 4
    layer = randomize_params(Sylvester(dim, variant=variant, rng=rng, **kwargs), rng, 1.0)
    Q, R, R_tilde = layer.matrices()
    m = Q.shape[1]
    # ‖QᵀQ − I‖_F: Householder/polar are backward stable, within a few γ_{4D} (Higham Lemma 19.3, §8.1).
    assert np.linalg.norm(Q.T @ Q - np.eye(m)) <= 8 * dim * 4 * dim * EPS
    if variant == "triangular":
        np.testing.assert_array_equal(Q, np.eye(dim)[:, ::-1])
    np.testing.assert_array_equal(np.tril(R, -1), 0.0)
    np.testing.assert_array_equal(np.tril(R_tilde, -1), 0.0)
    assert np.all(np.abs(np.diag(R) * np.diag(R_tilde)) < 1.0)
    z = rng.standard_normal((6, dim))
    _, log_det = layer.inverse(z)
    h_prime = 1.0 - np.tanh(z @ Q @ R_tilde.T + layer.params["b"]) ** 2  # the slide's map, written out
    V = (Q @ R)[None] * h_prime[:, None, :]                              # Q R H   (N, D, M)
    W = np.broadcast_to((R_tilde @ Q.T).T, V.shape)                      # (R̃ Qᵀ)ᵀ (N, D, M)
    sign, lemma = log_det_lemma(V, W)
    full = np.array([np.log(abs(scipy.linalg.det(np.eye(dim) + v @ w.T))) for v, w in zip(V, W)])
    assert np.all(sign > 0)
    # Dense determinants of D×D / M×M matrices with κ ≤ 10 here: within D κ γ_{4D} of each other (Higham Thm 9.3).
    kappa = max(np.linalg.cond(np.eye(dim) + v @ w.T) for v, w in zip(V, W))
    tol = 2 * dim * kappa * 4 * dim * EPS
    np.testing.assert_allclose(log_det, lemma, rtol=0, atol=tol)
    np.testing.assert_allclose(log_det, full, rtol=0, atol=tol)


def test_sylvester_saturated_diagonals_keep_a_finite_log_det():
    """R_ii = tanh 30, R̃_ii = tanh(−30): the product rounds to −1, but 1 + R_ii R̃_ii = cosh 0/cosh²30
    is kept, so at a = 0 the log-det is −2 log cosh 30 (finite), not log 0."""
    layer = Sylvester(1, variant="triangular")
    layer.params["r"][...] = 30.0
    layer.params["r_tilde"][...] = -30.0
    layer.params["b"][...] = 0.0
    assert np.tanh(30.0) * np.tanh(-30.0) == -1.0
    _, log_det = layer.inverse(np.zeros((1, 1)))
    expected = -2.0 * logcosh(30.0)
    assert abs(log_det[0] - expected) <= 8 * EPS * abs(expected)
    backward_error, _ = round_trip_errors(layer, np.array([[0.0], [1e-3], [0.7], [-2.0]]))
    assert backward_error.max() <= 64


