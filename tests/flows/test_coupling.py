"""NICE / RealNVP coupling layers: what the contract test does not cover.

Identity at initialisation, the mask convention and the block-triangular
Jacobian it implies, refused masks, parameter naming, and the bounded
log-scale at extreme inputs. (Gradients, round trips and log-dets at random
parameters are in the contract test, registered in ``cases_coupling.py``.)
"""
import numpy as np
import pytest

from nflows_np.composition import FlowModel
from nflows_np.flows.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.gradcheck import jacobian, randomize_params
from nflows_np.numerics import LOG_SCALE_BOUND, bounded_log_scale, bounded_log_scale_slope

CLASSES = [AdditiveCoupling, AffineCoupling]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("mask", [[1, 0], [0, 1], [1, 0, 1, 1, 0]])
def test_identity_at_initialisation(cls, mask):
    layer = cls(mask, hidden=(16, 16), rng=0)
    x = np.random.default_rng(1).standard_normal((7, len(mask)))
    for run in (layer.forward, layer.inverse):
        out, log_det = run(x)
        np.testing.assert_array_equal(out, x, err_msg=f"{cls.__name__}.{run.__name__} is not the identity at init")
        np.testing.assert_array_equal(log_det, np.zeros(7))


@pytest.mark.parametrize("cls", CLASSES)
def test_mask_convention_and_block_triangular_jacobian(cls):
    """mask 1 = conditioning part A (z_A = x_A exactly), 0 = transformed part B.

    ∂z/∂x has ∂z_A/∂x_A = I, ∂z_A/∂x_B = 0, and ∂z_B/∂x_B diagonal, with entries e^{s}
    (1 for NICE): the log-det is their log-sum. Tolerance 1e-8 on the finite-difference
    Jacobian (central differences, h = 1e-5: error ≈ h²·|f'''| ≈ 1e-10).
    """
    rng = np.random.default_rng(2)
    mask = np.array([1, 0, 1, 1, 0])
    a, b = np.flatnonzero(mask == 1), np.flatnonzero(mask == 0)
    layer = randomize_params(cls(mask, hidden=(8, 8), rng=rng), rng, scale=0.5)
    x = rng.standard_normal((4, 5))
    z, log_det = layer.forward(x)
    np.testing.assert_array_equal(z[:, a], x[:, a])
    assert np.all(np.abs(z[:, b] - x[:, b]) > 0), "the transformed part did not change at random parameters"
    jac = jacobian(lambda v: layer.forward(v)[0], x)
    np.testing.assert_array_equal(jac[:, a][:, :, b], 0.0)  # z_A does not depend on x_B at all
    np.testing.assert_allclose(jac[:, a][:, :, a], np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-8)
    jac_bb = jac[:, b][:, :, b]
    diag = np.diagonal(jac_bb, axis1=1, axis2=2)
    np.testing.assert_allclose(jac_bb - np.einsum("ni,ij->nij", diag, np.eye(2)), 0.0, atol=1e-8)
    np.testing.assert_allclose(np.log(diag).sum(axis=1), log_det, atol=1e-8)


def test_additive_coupling_preserves_volume():
    rng = np.random.default_rng(3)
    layer = randomize_params(AdditiveCoupling([0, 1, 1], hidden=(8,), rng=rng), rng, scale=0.5)
    x = rng.standard_normal((5, 3))
    assert np.all(layer.forward(x)[1] == 0.0) and np.all(layer.inverse(x)[1] == 0.0)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("mask, error, match", [
    ([1, 2], ValueError, "only 0 and 1"),
    ([0.5, 1], ValueError, "only 0 and 1"),
    ([1, 1, 1], ValueError, "transformed part x_B is empty"),
    ([0, 0], ValueError, "conditioning part x_A is empty"),
    ([1], ValueError, "transformed part x_B is empty"),
    ([], ValueError, "conditioning part x_A is empty"),
    ([[1, 0], [0, 1]], ValueError, "1-D"),
    (1, ValueError, "1-D"),
    (["a", "b"], TypeError, "binary"),
])
def test_bad_masks_are_refused(cls, mask, error, match):
    with pytest.raises(error, match=f"{cls.__name__}: .*{match}"):
        cls(mask)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_hidden_or_rng_names_the_layer(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}.net: hidden"):
        cls([1, 0], hidden=(8, -1))
    with pytest.raises(TypeError, match=f"{cls.__name__}.net: rng"):
        cls([1, 0], rng=1.5)


def test_boolean_mask_is_accepted():
    layer = AffineCoupling(np.array([True, False, True]), hidden=(4,), rng=0)
    assert layer.index_a.tolist() == [0, 2] and layer.index_b.tolist() == [1]


def test_parameter_names_are_shared_arrays():
    """One conditioner ``net`` outputs (s, t): keys "net.W1", …; a FlowModel shows them as "3.net.W1"."""
    affine = AffineCoupling([1, 0, 0], hidden=(8, 8), rng=0)
    assert sorted(affine.params) == ["net.W1", "net.W2", "net.W3", "net.b1", "net.b2", "net.b3"]
    assert affine.params["net.W3"].shape == (8, 2 * 2) and affine.params["net.W1"].shape == (1, 8)
    assert AdditiveCoupling([1, 0, 0], hidden=(8, 8), rng=0).params["net.W3"].shape == (8, 2)
    for key in affine.net.params:
        assert affine.params[f"net.{key}"] is affine.net.params[key]
        assert affine.grads[f"net.{key}"] is affine.net.grads[key]
    layers = [AffineCoupling([1, 0, 0] if k % 2 else [0, 1, 1], hidden=(4,), rng=k) for k in range(4)]
    model = FlowModel(layers)
    assert model.params["3.net.W1"] is layers[3].net.params["W1"]


def test_bounded_log_scale_never_overflows():
    """s = 3·tanh(ŝ/3): |s| ≤ 3 for any ŝ (even ±1e300, where exp(ŝ) is inf), slope in [0, 1]."""
    raw = np.array([[-1e300, -1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4, 1e300]])
    with np.errstate(all="raise"):  # any overflow or invalid operation would raise here
        s = bounded_log_scale(raw)
        slope = bounded_log_scale_slope(s)
        scale = np.exp(s)
    assert np.all(np.abs(s) <= LOG_SCALE_BOUND) and np.all(np.isfinite(scale))
    assert np.all((slope >= 0) & (slope <= 1))
    # Near 0 the clamp is nearly the identity (s = ŝ − ŝ³/27 + …), so ordinary log-scales are not capped.
    small = np.linspace(-1, 1, 11)[None, :]
    assert np.max(np.abs(bounded_log_scale(small) - small)) <= 1.0 / 27  # the cubic term at |ŝ| = 1 bounds it
    # The slope is the derivative of the clamp: compare with central differences (h = 1e-6, error ≈ 1e-10).
    x = np.linspace(-8, 8, 33)[None, :]
    numeric = (bounded_log_scale(x + 1e-6) - bounded_log_scale(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(bounded_log_scale_slope(bounded_log_scale(x)), numeric, rtol=0, atol=1e-8)


def test_huge_raw_log_scale_and_extreme_inputs_stay_finite():
    """A conditioner gone wild (raw log-scale 1e6) at |x| = 1e4: finite, |s| saturates at the bound."""
    rng = np.random.default_rng(4)
    layer = randomize_params(AffineCoupling([1, 0, 1, 0], hidden=(8, 8), rng=rng), rng, scale=0.3)
    n_b = 2
    layer.params["net.b3"][:n_b] = 1e6  # the ŝ part of the last bias: exp(ŝ) would be inf
    x = 1e4 * np.sign(rng.standard_normal((6, 4)))
    with np.errstate(all="raise"):
        z, log_det = layer.forward(x)
        back, log_det_back = layer.inverse(z)
        grad_x = layer.backward(np.ones_like(z), np.ones(6))
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(back)) and np.all(np.isfinite(grad_x))
    # Saturated: tanh(1e6/3) == 1 in float64, so s == 3 exactly and log_det = 3·|B|.
    np.testing.assert_array_equal(log_det, np.full(6, LOG_SCALE_BOUND * n_b))
    np.testing.assert_array_equal(log_det_back, -log_det)
    # Round trip: a few ulps (~1e-15 relative) amplified by at most e^{3}·e^{3} ≈ 400 stays below 1e-12.
    np.testing.assert_allclose(back, x, rtol=1e-12)
