"""Residual flows (Planar, Radial, Sylvester): the claims the contract test does not cover.

The contract checks (round trip, log-det against a numerical Jacobian, backward against
finite differences, both directions) run on these layers through ``tests/cases_residual.py``.
Here: invertibility whatever the raw parameters, the planar constraint wᵀû ≥ −1 and the
fold of the unconstrained map, the scalar root-finder, the determinant lemma, and the
places where a naive formula would give −inf or NaN.

Accuracy of the root-finding direction. Every pass computes O(10) quantities each with a
relative rounding error of a few ε on terms no larger than
    S = (1 + ‖x‖∞ + ‖z‖∞)(1 + ‖∂g/∂z − I‖₂)
(the sizes of x, z and of the residual term, which ∂g/∂z − I bounds), so the backward
error ‖g(f(x)) − x‖∞ is a few dozen εS: we allow 64εS. To first order the error in z
is the backward error times ‖(∂g/∂z)⁻¹‖₂ (κ below): we allow 64εSκ. Measured over the
draws below: at most 9.9εS and 8.4εSκ (Sylvester-triangular; Radial 9.4εS, Planar 1.4εS).
"""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from nflows_np.flows.planar import Planar
from nflows_np.flows.radial import Radial
from nflows_np.flows.residual import NotConvergedError, solve_tanh_root, tanh_gate
from nflows_np.flows.sylvester import Sylvester
from nflows_np.gradcheck import randomize_params
from nflows_np.linalg import log_det_lemma
from nflows_np.numerics import logcosh, softplus

EPS = np.finfo(np.float64).eps
DRAWS, SCALE = 200, 5.0

LAYERS = {
    "Planar-D1": lambda rng: Planar(1, rng=rng),
    "Planar-D2": lambda rng: Planar(2, rng=rng),
    "Planar-D5": lambda rng: Planar(5, rng=rng),
    "Radial-D2": lambda rng: Radial(2, rng=rng),
    "Radial-D5": lambda rng: Radial(5, rng=rng),
    "Sylvester-orthogonal-D4-M2": lambda rng: Sylvester(4, m=2, variant="orthogonal", rng=rng),
    "Sylvester-householder-D4": lambda rng: Sylvester(4, variant="householder", rng=rng),
    "Sylvester-triangular-D3-reverse": lambda rng: Sylvester(3, variant="triangular", reverse=True, rng=rng),
}


def jacobian_of_inverse(layer, z):
    """∂g/∂z (N, D, D) from the layer's own VJPs (exact to rounding; the contract test checks them)."""
    n, dim = z.shape
    jac = np.empty((n, dim, dim))
    for i in range(dim):
        layer.inverse(z)
        unit = np.zeros((n, dim))
        unit[:, i] = 1.0
        jac[:, i, :] = layer.backward(unit, np.zeros(n))  # row i of J = Jᵀ e_i
    layer.zero_grad()
    return jac


def round_trip_errors(layer, z):
    """Per sample, ‖g(f(x)) − x‖∞ / (εS) and ‖f(g(z)) − z‖∞ / (εSκ) at x = g(z) (module docstring),
    after asserting that both log-dets are finite."""
    x, log_det_inverse = layer.inverse(z)
    z_back, log_det_forward = layer.forward(x)
    assert np.all(np.isfinite(log_det_inverse)) and np.all(np.isfinite(log_det_forward))
    x_back, _ = layer.inverse(z_back)
    jac = jacobian_of_inverse(layer, z)
    residual_term = np.linalg.norm(jac - np.eye(layer.dim), 2, axis=(1, 2))
    size = (1 + np.abs(x).max(axis=1) + np.abs(z).max(axis=1)) * (1 + residual_term)
    with np.errstate(divide="ignore"):  # κ = ‖J⁻¹‖₂ = 1/σ_min(J), inf where J is singular in float64
        kappa = 1.0 / np.linalg.svd(jac, compute_uv=False)[:, -1]
    return np.abs(x_back - x).max(axis=1) / (EPS * size), np.abs(z_back - z).max(axis=1) / (EPS * size * kappa)


# -- invertible whatever the raw parameters ----------------------------------------------

@pytest.mark.parametrize("name", LAYERS)
def test_invertible_whatever_the_raw_parameters(name):
    """200 draws of every raw parameter from N(0, 5²): finite log-dets, and forward undoes inverse
    within the stated tolerance (module docstring)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    for draw in range(DRAWS):
        layer = randomize_params(LAYERS[name](rng), rng, SCALE)
        backward_error, forward_error = round_trip_errors(layer, rng.standard_normal((16, layer.dim)))
        assert backward_error.max() <= 64, f"draw {draw}: ‖g(f(x)) − x‖ = {backward_error.max():.1f} εS"
        assert forward_error.max() <= 64, f"draw {draw}: ‖f(g(z)) − z‖ = {forward_error.max():.1f} εSκ"
        if isinstance(layer, Sylvester):
            _, R, R_tilde = layer.matrices()
            # tanh·tanh of diagonals beyond ±19 rounds to −1 exactly; the layer's 1 + R_ii R̃_ii stays > 0
            # (cosh ratio, test_sylvester_saturated_diagonals_keep_a_finite_log_det).
            assert np.all(np.diag(R) * np.diag(R_tilde) >= -1.0)


# -- planar: the constraint and the fold -------------------------------------------------

def test_planar_u_hat_satisfies_the_constraint():
    """wᵀû = m(wᵀu) = −1 + softplus(wᵀu) ≥ −1 for every draw (so 1 + h′wᵀû > 0)."""
    rng = np.random.default_rng(0)
    wrong_by_norm = 0
    for dim in (1, 2, 5):
        for _ in range(DRAWS):
            layer = randomize_params(Planar(dim, rng=rng), rng, SCALE)
            u, w = layer.params["u"], layer.params["w"]
            s = w @ u
            m = -1.0 + softplus(s)
            w_u_hat = w @ layer.u_hat
            # û = u + (m − s) w/‖w‖², so wᵀû = s + (m − s)·1 up to the rounding of two D-term dot
            # products and a few operations on terms of size ‖w‖‖u‖ + |m − s|: 4(D + 2)ε of it.
            rounding = 4 * (dim + 2) * EPS * (np.linalg.norm(w) * np.linalg.norm(u) + abs(m - s) + 1)
            assert abs(w_u_hat - m) <= rounding
            # m(s) ≥ −1 exactly; the computed wᵀû may dip below −1 by its rounding only (the layer never
            # uses it: its determinant factor takes 1 + wᵀû = softplus(wᵀu) > 0 directly).
            assert m >= -1.0 and w_u_hat >= -1.0 - rounding
            # The frequent bug, dividing by ‖w‖ instead of ‖w‖², gives wᵀû = s + (m − s)‖w‖ instead.
            wrong_by_norm += (s + (m - s) * np.linalg.norm(w)) < -1.0
    assert wrong_by_norm > 0, "these draws would catch û = u + (m − s) w/‖w‖ (it breaks wᵀû ≥ −1)"


def test_planar_without_reparametrisation_folds_space():
    """invertible=False with wᵀu = −2 < −1: reported as not invertible, forward refuses, and two
    different z map to the same x."""
    rng = np.random.default_rng(11)
    layer = Planar(3, rng=rng, invertible=False)
    layer.params["b"][...] = 0.3
    u, w = layer.params["u"], layer.params["w"]
    s = -2.0  # any wᵀu < −1 folds; −2 makes the fold wide
    u += (s - w @ u) * w / (w @ w)
    assert not layer.is_invertible
    with pytest.raises(ValueError, match="Planar: the map is not invertible"):
        layer.forward(np.zeros((2, 3)))
    # z₀ with a₀ = wᵀz₀ + b = 0 and z₁ = z₀ + τu have the same image iff τ + tanh(τ s) = 0 (u ≠ 0).
    # φ(τ) = τ + tanh(τ s) ≈ (1 + s)τ < 0 for small τ > 0 and φ(1) = 1 − tanh 2 > 0: a root in between.
    tau = scipy.optimize.brentq(lambda t: t + np.tanh(t * s), 1e-3, 1.0, xtol=1e-15)
    z0 = rng.standard_normal(3)
    z0 -= (w @ z0 + layer.params["b"]) * w / (w @ w)
    z = np.stack([z0, z0 + tau * u])
    x, _ = layer.inverse(z)
    # x₁ − x₀ = u φ(τ); |φ(τ)| ≤ |φ′| (xtol + 4ε τ) for brentq's root, |φ′| ≤ 1 + |s|; plus rounding of x.
    tol = np.linalg.norm(u) * (1 + abs(s)) * (1e-15 + 4 * EPS) + 8 * EPS * np.abs(z).max()
    assert np.abs(x[1] - x[0]).max() <= tol, f"x differ by {np.abs(x[1] - x[0]).max():.2e}"
    assert np.linalg.norm(z[1] - z[0]) > 0.5
    # The same raw parameters with the reparametrisation give an invertible map.
    fixed = Planar(3, invertible=True)
    for key in layer.params:
        fixed.params[key][...] = layer.params[key]
    assert fixed.is_invertible and fixed.params["w"] @ fixed.u_hat >= -1.0
    x, _ = fixed.inverse(z)
    np.testing.assert_allclose(fixed.forward(x)[0], z, rtol=0, atol=64 * EPS * 10)


def test_planar_is_a_translation_at_w_zero():
    """w = 0: the reparametrisation is undefined, û = u; the map is z + u tanh(b), log-det 0."""
    layer = randomize_params(Planar(3, rng=0), 0, 1.0)
    layer.params["w"][...] = 0.0
    z = np.random.default_rng(1).standard_normal((5, 3))
    x, log_det = layer.inverse(z)
    np.testing.assert_array_equal(x, z + layer.params["u"] * np.tanh(layer.params["b"]))
    np.testing.assert_array_equal(log_det, 0.0)
    z_back, log_det = layer.forward(x)
    assert np.abs(z_back - z).max() <= 4 * EPS * np.abs(x).max() and np.all(log_det == 0.0)


def test_planar_log_det_stays_finite_as_w_u_hat_approaches_minus_one():
    """wᵀu = −100: wᵀû = −1 + softplus(−100) rounds to −1, yet at a = 0 the log-det is
    log(softplus(−100)) ≈ −100, not log(1 − 1) = −inf (ψ = tanh²a + h′·softplus(wᵀu))."""
    layer = Planar(1)
    layer.params["w"][...] = 1.0
    layer.params["u"][...] = -100.0
    layer.params["b"][...] = 0.0
    _, log_det = layer.inverse(np.zeros((1, 1)))
    expected = np.log(softplus(-100.0))
    assert abs(log_det[0] - expected) <= 4 * EPS * abs(expected)
    # κ = 1/ψ is up to 1/softplus(−100) ≈ e¹⁰⁰ near a = 0 (J is singular in float64): the backward
    # error is what stays small.
    backward_error, _ = round_trip_errors(layer, np.array([[0.0], [1e-3], [-0.5]]))
    assert backward_error.max() <= 64


# -- the scalar root-finder ---------------------------------------------------------------

@pytest.mark.parametrize("e", [1e-30, 1e-6, 0.5, 1.0, 3.0, 50.0])
def test_solve_tanh_root_meets_its_stated_tolerance(e):
    """a + (e − 1) tanh a = y: residual ≤ 16ε(1 + |y| + |a|), and agreement with scipy's brentq."""
    rng = np.random.default_rng(int(e * 1000) % 97)
    y = np.concatenate([10.0 * rng.standard_normal(300), [0.0, 1e-12, -1e-8, 1e4, -1e4]])
    a, iterations = solve_tanh_root(y, e, "test")
    residual = np.abs(a + (e - 1.0) * np.tanh(a) - y)
    assert np.all(residual <= 16 * EPS * (1 + np.abs(y) + np.abs(a)))
    assert iterations.max() <= 200
    _, _, psi, _ = tanh_gate(a, e)
    for yi, ai, psi_i in zip(y[::20], a[::20], psi[::20]):
        reference = scipy.optimize.brentq(lambda t: t + (e - 1.0) * np.tanh(t) - yi,
                                          yi - abs(e - 1.0) - 1.0, yi + abs(e - 1.0) + 1.0, xtol=1e-300, rtol=4 * EPS)
        # Both roots have residuals ≤ 16ε(1 + |y| + |a|); F′ = ψ between them, so they differ by ≤ 2·that/ψ,
        # plus brentq's own step tolerance 4ε|a|.
        tol = 2 * 16 * EPS * (1 + abs(yi) + abs(ai)) / psi_i + 4 * EPS * abs(ai)
        assert abs(ai - reference) <= tol, f"y = {yi}: {ai!r} vs brentq {reference!r}"


def test_solve_tanh_root_raises_instead_of_returning_garbage():
    with pytest.raises(NotConvergedError, match="SomeLayer: root-finder"):
        solve_tanh_root(np.array([3.0, -2.0]), 0.01, "SomeLayer", max_iter=1)


# -- radial: the centre ------------------------------------------------------------------

def test_radial_at_its_centre_is_finite_with_the_slide_log_det():
    """z = z₀ (r = 0): x = z₀, log-det = D log(1 + β/α) (h′r = 0 there), and finite gradients both ways."""
    rng = np.random.default_rng(2)
    layer = randomize_params(Radial(3, rng=rng), rng, 1.0)
    z0 = layer.params["z0"].copy()
    z = np.stack([z0, z0 + 1e-300, z0 + rng.standard_normal(3)])
    x, log_det = layer.inverse(z)
    np.testing.assert_array_equal(x[0], z0)
    alpha, p = softplus(layer.params["alpha_raw"]), softplus(layer.params["beta_raw"])  # p = α + β
    expected = 3 * np.log(p / alpha)
    assert abs(log_det[0] - expected) <= 16 * EPS * (1 + abs(expected))
    assert np.all(np.isfinite(layer.backward(np.ones((3, 3)), np.ones(3))))
    z_back, log_det_back = layer.forward(x)
    np.testing.assert_array_equal(z_back[0], z0)
    assert np.all(np.isfinite(log_det_back)) and np.all(np.isfinite(layer.backward(np.ones((3, 3)), np.ones(3))))


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


# -- constructor arguments -------------------------------------------------------------------

@pytest.mark.parametrize("make, error, match", [
    (lambda: Sylvester(3, variant="qr"), ValueError, "Sylvester: variant"),
    (lambda: Sylvester(3, m=4, variant="orthogonal"), ValueError, "Sylvester: m"),
    (lambda: Sylvester(3, m=0, variant="orthogonal"), ValueError, "Sylvester: m"),
    (lambda: Sylvester(3, m=2, variant="householder"), ValueError, "Sylvester: variant 'householder' needs m"),
    (lambda: Sylvester(3, variant="triangular", num_householder=2), ValueError, "Sylvester: num_householder"),
    (lambda: Sylvester(3, num_householder=0), ValueError, "Sylvester: num_householder"),
    (lambda: Sylvester(3, variant="orthogonal", reverse=True), ValueError, "Sylvester: reverse"),
    (lambda: Sylvester(3, variant="triangular", reverse="yes"), TypeError, "Sylvester: reverse"),
    (lambda: Sylvester(0), ValueError, "Sylvester: dim"),
    (lambda: Planar(2, invertible="yes"), TypeError, "Planar: invertible"),
    (lambda: Planar(-1), ValueError, "Planar: dim"),
    (lambda: Radial(2.5), TypeError, "Radial: dim"),
])
def test_bad_constructor_arguments_name_the_layer(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_degenerate_parameters_are_refused_by_name():
    sylvester = Sylvester(3, variant="orthogonal", m=2, rng=0)
    sylvester.params["q"][...] = 1.0  # rank 1: no orthonormal polar factor
    with pytest.raises(ValueError, match="Sylvester"):
        sylvester.inverse(np.zeros((2, 3)))
    radial = Radial(2, rng=0)
    radial.params["alpha_raw"][...] = -800.0  # softplus underflows to 0
    with pytest.raises(ValueError, match="Radial"):
        radial.forward(np.zeros((2, 2)))
