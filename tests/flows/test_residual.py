"""Residual flows (Planar, Radial, Sylvester) together: invertibility, the root-finder, bad arguments.

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
from cases_residual import round_trip_errors
from flow_cases import all_cases

from nflows_np.flows.planar import Planar
from nflows_np.flows.radial import Radial
from nflows_np.flows.residual import NotConvergedError, solve_tanh_root, tanh_gate
from nflows_np.flows.sylvester import Sylvester
from nflows_np.gradcheck import randomize_params

EPS = np.finfo(np.float64).eps
DRAWS, SCALE = 200, 5.0

# The residual layers of the contract registry whose map is invertible for every raw parameter.
INVERTIBLE = [case for case in all_cases()
              if case.name.split("-")[0] in ("Planar", "Radial", "Sylvester") and "plain" not in case.name]


# -- invertible whatever the raw parameters ----------------------------------------------

@pytest.mark.parametrize("case", INVERTIBLE, ids=[case.name for case in INVERTIBLE])
def test_invertible_whatever_the_raw_parameters(case):
    """200 draws of every raw parameter from N(0, 5²): finite log-dets, and forward undoes inverse
    within the stated tolerance (module docstring)."""
    rng = np.random.default_rng(sum(map(ord, case.name)))
    for draw in range(DRAWS):
        layer = randomize_params(case.make(rng), rng, SCALE)
        backward_error, forward_error = round_trip_errors(layer, rng.standard_normal((16, layer.dim)))
        assert backward_error.max() <= 64, f"draw {draw}: ‖g(f(x)) − x‖ = {backward_error.max():.1f} εS"
        assert forward_error.max() <= 64, f"draw {draw}: ‖f(g(z)) − z‖ = {forward_error.max():.1f} εSκ"
        if isinstance(layer, Sylvester):
            _, R, R_tilde = layer.matrices()
            # tanh·tanh of diagonals beyond ±19 rounds to −1 exactly; the layer's 1 + R_ii R̃_ii stays > 0
            # (cosh ratio, test_sylvester_saturated_diagonals_keep_a_finite_log_det).
            assert np.all(np.diag(R) * np.diag(R_tilde) >= -1.0)


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
