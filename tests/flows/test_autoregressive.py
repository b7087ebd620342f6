"""MAF layer with MADE masks: what the contract test does not cover.

Identity at initialisation, the autoregressive (lower-triangular) structure of
the Jacobian and of the mask product, D = 1, the cost of the inverse in network
passes, and the bounded log-scale at extreme inputs. (Gradients, round trips
and log-dets at random parameters are in the contract test, ``cases_coupling.py``.)
"""
import numpy as np
import pytest

from nflows_np.flows.autoregressive import MaskedAutoregressive, made_degrees, made_masks
from nflows_np.gradcheck import jacobian, randomize_params
from nflows_np.numerics import LOG_SCALE_BOUND


def _random_maf(dim, rng, order=None, hidden=(8, 8)):
    return randomize_params(MaskedAutoregressive(dim, hidden=hidden, rng=rng, order=order), rng, scale=0.3)


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_identity_at_initialisation(dim):
    layer = MaskedAutoregressive(dim, hidden=(16, 16), rng=0)
    x = np.random.default_rng(1).standard_normal((6, dim))
    for run in (layer.forward, layer.inverse):
        out, log_det = run(x)
        np.testing.assert_array_equal(out, x, err_msg=f"{run.__name__} is not the identity at initialisation")
        np.testing.assert_array_equal(log_det, np.zeros(6))


@pytest.mark.parametrize("order", [None, [3, 0, 4, 1, 2]])
def test_jacobian_is_lower_triangular_in_the_order(order):
    """z_i depends on x_{≤i} (in the order) only: above the diagonal the Jacobian is exactly 0.

    Exactly, not approximately: masked weights are exact zeros, so perturbing a later
    variable leaves earlier outputs bit-for-bit unchanged and the difference quotient is 0.
    The diagonal is e^{−α_i}, whose log-sum is the log-det (tolerance 1e-8: central
    differences with h = 1e-5 have error ≈ h² ≈ 1e-10).
    """
    rng = np.random.default_rng(2)
    layer = _random_maf(5, rng, order=order)
    perm = np.arange(5) if order is None else np.array(order)
    x = rng.standard_normal((4, 5))
    z, log_det = layer.forward(x)
    for run, points, ld in ((layer.forward, x, log_det), (layer.inverse, z, -log_det)):
        jac = jacobian(lambda v, run=run: run(v)[0], points)[:, perm][:, :, perm]  # rows, columns in the order
        upper = np.triu(np.ones((5, 5), dtype=bool), k=1)
        assert np.all(jac[:, upper] == 0.0), f"{run.__name__}: non-zero entries above the diagonal"
        assert np.all(np.abs(jac[:, ~upper & ~np.eye(5, dtype=bool)]) > 0), "missing dependencies below the diagonal"
        np.testing.assert_allclose(np.log(np.abs(np.diagonal(jac, axis1=1, axis2=2))).sum(axis=1), ld, atol=1e-8)


def test_made_mask_product_is_autoregressive():
    """Paths input j → output i exist iff m(j) < m(i): the product of the masks is strictly triangular.

    With hidden widths ≥ D − 1 every hidden degree 1..D−1 is present, so every allowed path exists.
    """
    rng = np.random.default_rng(3)
    dim = 6
    order = rng.permutation(dim)
    degrees = made_degrees(order, (7, 5))
    for hidden_degrees in degrees[1:]:
        assert set(hidden_degrees.tolist()) == set(range(1, dim)), "a hidden degree 1..D−1 is missing"
    masks = made_masks(degrees)
    paths = masks[0] @ masks[1] @ masks[2][:, :dim]  # (input j, output i): number of paths
    assert paths.shape == (dim, dim)
    allowed = degrees[0][:, None] < degrees[0][None, :]
    np.testing.assert_array_equal(paths > 0, allowed)
    np.testing.assert_array_equal(masks[2][:, :dim], masks[2][:, dim:])  # μ and ŝ share the output mask
    in_order = (paths > 0)[order][:, order]  # strictly upper triangular in the order (W is (in, out))
    np.testing.assert_array_equal(in_order, np.triu(np.ones((dim, dim), dtype=bool), k=1))


def test_dim_one_is_a_learned_affine_constant():
    """D = 1: no input may feed μ_1, α_1, so z = (x − b_μ)·e^{−α} with α = 3·tanh(b_α/3), the output biases."""
    rng = np.random.default_rng(4)
    layer = _random_maf(1, rng)
    assert np.all(made_masks(layer.degrees)[-1] == 0.0)
    x = rng.standard_normal((5, 1))
    z, log_det = layer.forward(x)
    b_mu, b_alpha = layer.params["net.b3"]
    alpha = LOG_SCALE_BOUND * np.tanh(b_alpha / LOG_SCALE_BOUND)
    np.testing.assert_allclose(z, (x - b_mu) * np.exp(-alpha), rtol=1e-14)
    np.testing.assert_allclose(log_det, np.full(5, -alpha), rtol=1e-14)
    layer.backward(np.ones((5, 1)), np.ones(5))
    for key in ("net.W1", "net.W2", "net.W3"):  # the hidden layers are cut off: their gradients are exactly 0
        assert np.all(layer.grads[key] == 0.0), f"{key} has a gradient although no output depends on it"
    assert np.all(layer.grads["net.b3"] != 0.0)  # the learned constants μ, α do


def test_inverse_costs_d_network_passes():
    """Forward: 1 MADE pass. Inverse (sampling): D passes, one variable at a time. Inverse backward:
    D + 1 backward passes of the network (D back-substitution steps, then the parameter gradients)."""
    dim = 5
    layer = _random_maf(dim, np.random.default_rng(5))
    counts = {"forward": 0, "backward": 0}
    forward, backward = layer.net.forward, layer.net.backward

    def counting_forward(h):
        counts["forward"] += 1
        return forward(h)

    def counting_backward(g, param_grads=True):
        counts["backward"] += 1
        return backward(g, param_grads)

    layer.net.forward, layer.net.backward = counting_forward, counting_backward
    x = np.random.default_rng(6).standard_normal((3, dim))
    z, _ = layer.forward(x)
    layer.backward(np.ones((3, dim)), np.ones(3))
    assert counts == {"forward": 1, "backward": 1}
    counts.update(forward=0, backward=0)
    layer.inverse(z)
    assert counts["forward"] == dim
    layer.backward(np.ones((3, dim)), np.ones(3))
    assert counts["backward"] == dim + 1


def test_huge_raw_log_scale_and_extreme_inputs_stay_finite():
    """Raw log-scale 1e6 at |x| = 1e4: finite both ways, α saturates at the bound (log-det = −3·D)."""
    rng = np.random.default_rng(7)
    dim = 3
    layer = _random_maf(dim, rng)
    layer.params["net.b3"][dim:] = 1e6  # the α̂ part of the last bias: exp(α̂) would be inf
    x = 1e4 * np.sign(rng.standard_normal((5, dim)))
    with np.errstate(all="raise"):  # any overflow or invalid operation would raise here
        z, log_det = layer.forward(x)
        back, log_det_back = layer.inverse(z)
        grad_z = layer.backward(np.ones_like(z), np.ones(5))
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(back)) and np.all(np.isfinite(grad_z))
    # tanh(1e6/3) == 1 in float64, so α == 3 exactly for every variable.
    np.testing.assert_array_equal(log_det, np.full(5, -LOG_SCALE_BOUND * dim))
    np.testing.assert_array_equal(log_det_back, -log_det)
    # Round trip: e^{±3} and μ = O(1) at |x| = 1e4 cost a few ulps, relative error ~1e-15; 1e-12 leaves margin.
    np.testing.assert_allclose(back, x, rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dim": 0}, ValueError, "dim"),
    ({"dim": 3, "order": [0, 1, 1]}, ValueError, "order"),
    ({"dim": 3, "order": [0, 1]}, ValueError, "order"),
    ({"dim": 2, "order": [0.0, 1.0]}, ValueError, "order"),
    ({"dim": 3, "hidden": (8, 0)}, ValueError, "hidden"),
    ({"dim": 3, "rng": "seed"}, TypeError, "rng"),
    ({"dim": 3, "activation": "elu"}, ValueError, "activation"),
])
def test_bad_arguments_name_the_layer(kwargs, error, match):
    with pytest.raises(error, match=f"MaskedAutoregressive.*{match}"):
        MaskedAutoregressive(**kwargs)


def test_parameter_names_and_relu_variant():
    layer = MaskedAutoregressive(3, hidden=(4,), rng=0, activation="relu")
    assert sorted(layer.params) == ["net.W1", "net.W2", "net.b1", "net.b2"]
    assert layer.params["net.W2"].shape == (4, 6)  # outputs (μ, α̂), each (N, D)
    assert all(layer.params[f"net.{key}"] is value for key, value in layer.net.params.items())
