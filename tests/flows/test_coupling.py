"""NICE / RealNVP coupling layers: what the contract test does not cover.

Identity at initialisation, the mask convention and the block-triangular
Jacobian it implies, refused masks, parameter naming, and the bounded
log-scale at extreme inputs. (Gradients, round trips and log-dets at random
parameters are in the contract test, registered in ``cases_coupling.py``.)
"""
import numpy as np
import pytest

from nflows_np import train
from nflows_np.composition import FlowModel
from nflows_np.flows.coupling import AdditiveCoupling, AffineCoupling
from nflows_np.gradcheck import jacobian, randomize_params
from nflows_np.numerics import LOG_SCALE_BOUND, bounded_log_scale, bounded_log_scale_slope
from nflows_np.validation import NonFiniteError

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


@pytest.mark.parametrize("mask", [[1, 0], [0, 1, 1]])
def test_the_other_scale_maps_at_initialisation(mask):
    """scale="exp" starts as the identity (s = ŝ = 0); "sigmoid" as the scaling by σ(2) of x_B (Glow's init)."""
    x = np.random.default_rng(1).standard_normal((7, len(mask)))
    z, log_det = AffineCoupling(mask, hidden=(16, 16), rng=0, scale="exp").forward(x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(log_det, np.zeros(7))
    z, log_det = AffineCoupling(mask, hidden=(16, 16), rng=0, scale="sigmoid").forward(x)
    b = np.asarray(mask) == 0
    sigma2 = 1.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(z[:, b], sigma2 * x[:, b], rtol=1e-14)
    np.testing.assert_array_equal(z[:, ~b], x[:, ~b])
    np.testing.assert_allclose(log_det, np.full(7, b.sum() * np.log(sigma2)), rtol=1e-14)  # a few ulps


def test_the_scale_options_are_checked():
    with pytest.raises(ValueError, match="AffineCoupling: scale"):
        AffineCoupling([1, 0], scale="softplus")
    with pytest.raises(ValueError, match="scale_bound"):
        AffineCoupling([1, 0], scale_bound=0.0)
    with pytest.raises(TypeError, match="scale_bound"):
        AffineCoupling([1, 0], scale_bound="3")
    assert "scale='exp'" in repr(AffineCoupling([1, 0], scale="exp"))
    assert "scale" not in repr(AffineCoupling([1, 0]))


@pytest.mark.parametrize("scale, raw, direction", [("exp", 800.0, "forward"), ("exp", -800.0, "inverse"),
                                                   ("sigmoid", -800.0, "inverse")])
def test_an_unbounded_log_scale_that_overflows_is_refused_by_name(scale, raw, direction):
    """e^{±s} beyond float64 (s past ≈ 709.8): a NonFiniteError naming the layer, never a silent inf."""
    layer = AffineCoupling([1, 0], hidden=(4,), rng=0, scale=scale)
    layer.params["net.b2"][0] = raw  # the ŝ row of the last bias: a conditioner gone wild
    x = np.ones((3, 2))
    with pytest.raises(NonFiniteError, match=r"AffineCoupling.*overflows"):
        getattr(layer, direction)(x)
    # just below the limit it is a (huge) finite scale
    layer.params["net.b2"][0] = np.sign(raw) * 700.0
    out, log_det = getattr(layer, direction)(x if direction == "forward" else 1e-300 * x)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(log_det))


def test_training_an_exp_coupling_stops_at_an_overflow_and_keeps_the_last_good_parameters():
    """A step that sends ŝ past the float limit: fit_mle warns, stops and restores the step before."""
    rng = np.random.default_rng(0)
    model = FlowModel([AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(8,), rng=rng, scale="exp")
                       for k in range(4)])
    data = rng.standard_normal((256, 2))
    snapshots, original_step = [], train.mle_step

    def step_gone_wild(m, x):
        snapshots.append({k: v.copy() for k, v in m.params.items()})
        if len(snapshots) == 4:
            m.params["2.net.b2"][0] = 1e3  # as a bad update would: e^ŝ overflows in layer 2
        return original_step(m, x)

    train.mle_step = step_gone_wild
    try:
        with pytest.warns(train.DivergenceWarning, match=r"diverged at step 3: non-finite loss \(AffineCoupling: the log-scale reached 1000, e\^\(±s\) overflows"):
            history = train.fit_mle(model, data, steps=20, batch_size=64, lr=1e-3, rng=0, progress=False)
    finally:
        train.mle_step = original_step
    assert history.diverged and len(history.loss) == 3
    # step 3 met the overflow; the last good parameters are those step 2 evaluated its finite loss at
    for key, value in model.params.items():
        np.testing.assert_array_equal(value, snapshots[2][key])
    assert np.all(np.isfinite(model.log_prob(data)))


def test_a_huge_learning_rate_with_exp_couplings_diverges_cleanly():
    """A real blow-up of the unbounded scale (SGD at lr 1e4): a DivergenceWarning, finite parameters, no exception."""
    rng = np.random.default_rng(0)
    model = FlowModel([AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(8,), rng=rng, scale="exp")
                       for k in range(4)])
    data = 10.0 * rng.standard_normal((512, 2))
    with pytest.warns(train.DivergenceWarning):
        history = train.fit_mle(model, data, steps=200, batch_size=64, lr=1e4, optimizer="sgd", rng=0,
                                progress=False)
    assert history.diverged
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert np.isfinite(model.log_prob(data[:10])).all()
