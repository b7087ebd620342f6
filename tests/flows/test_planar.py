"""Planar flow: the constraint wᵀû > −1, the fold of the unconstrained map, and its limits (the contract test covers the rest)."""
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from cases_residual import round_trip_errors

from nflows_np.flows.planar import Planar
from nflows_np.gradcheck import randomize_params
from nflows_np.numerics import softplus

EPS = np.finfo(np.float64).eps
DRAWS, SCALE = 200, 5.0


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


