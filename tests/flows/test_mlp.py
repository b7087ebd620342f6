"""The conditioner MLP: hand-written backward against finite differences, masks, initialisation, conventions.

Gradient tolerance: 1e-6 normwise relative error (``gradcheck.rel_error``), the
pass mark of ``nflows_np.gradcheck``: central differences with h = 1e-6 in
float64 have truncation error O(h²) ≈ 1e-12 and rounding error ≈ ε·|L|/h ≈
1e-10·|L|, so a correct gradient measures ~1e-9, a wrong one ~1e-1.
"""
from itertools import pairwise

import numpy as np
import pytest

from nflows_np.flows.mlp import MLP
from nflows_np.gradcheck import numerical_gradient, numerical_vjp, randomize_params, rel_error

GRAD_TOL = 1e-6


def _made_like_masks(rng, sizes):
    """Random binary masks of the right shapes (any fixed pattern is a valid MADE-style mask)."""
    return [(rng.random((a, b)) < 0.6).astype(float) for a, b in pairwise(sizes)]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_finite_differences(activation, masked):
    rng = np.random.default_rng(0)
    sizes = (3, 7, 5, 4)
    masks = _made_like_masks(rng, sizes) if masked else None
    net = randomize_params(MLP(3, 4, hidden=(7, 5), activation=activation, rng=rng, zero_last=False, masks=masks),
                           rng, scale=0.5)
    h = rng.standard_normal((6, 3))
    v = rng.standard_normal((6, 4))  # the cotangent ∂L/∂out of L = Σ v ⊙ MLP(h)
    net.zero_grad()
    net.forward(h)
    grad_h = net.backward(v)
    errors = {"input": rel_error(grad_h, numerical_vjp(net.forward, h, v))}
    for key, value in net.params.items():
        numeric = numerical_gradient(lambda: float(np.sum(v * net.forward(h))), value)
        errors[key] = rel_error(net.grads[key], numeric)
    assert max(errors.values()) <= GRAD_TOL, f"relative errors (tol {GRAD_TOL}): {errors}"
    if masked:
        for k, mask in enumerate(masks, start=1):
            assert np.all(net.grads[f"W{k}"][mask == 0] == 0.0), f"masked entries of grads['W{k}'] are not exactly 0"


def test_masked_weights_do_not_act_and_start_at_zero():
    rng = np.random.default_rng(1)
    sizes = (4, 6, 3)
    masks = _made_like_masks(rng, sizes)
    net = MLP(4, 3, hidden=(6,), rng=rng, zero_last=False, masks=masks)
    for k, mask in enumerate(masks, start=1):
        assert np.all(net.params[f"W{k}"][mask == 0] == 0.0), f"W{k} is not zero where masked at initialisation"
    h = rng.standard_normal((5, 4))
    before = net.forward(h).copy()
    for k, mask in enumerate(masks, start=1):  # whatever sits under the mask has no effect
        net.params[f"W{k}"][mask == 0] = rng.standard_normal(int(np.sum(mask == 0)))
    np.testing.assert_array_equal(net.forward(h), before, err_msg="masked weight entries changed the output")


def test_zero_last_layer_outputs_zero_and_init_scale():
    rng = np.random.default_rng(2)
    net = MLP(64, 5, hidden=(64, 64), rng=rng)
    out = net.forward(rng.standard_normal((8, 64)))
    assert np.all(out == 0.0) and np.all(net.params["W3"] == 0.0) and np.all(net.params["b3"] == 0.0)
    # Glorot normal for tanh: std √(2/(fan_in + fan_out)) = √(2/128) for W2. The sample std of
    # n = 4096 normal draws has relative standard deviation ≈ 1/√(2n) ≈ 1.1%; allow 5 of them.
    expected = np.sqrt(2.0 / 128)
    measured = net.params["W2"].std()
    assert abs(measured / expected - 1) < 5 / np.sqrt(2 * 4096), f"Glorot std: expected {expected}, got {measured}"
    assert np.all(net.params["b1"] == 0.0)
    relu = MLP(64, 5, hidden=(64, 64), activation="relu", rng=rng, zero_last=False)
    expected = np.sqrt(2.0 / 64)  # He normal: √(2/fan_in)
    measured = relu.params["W2"].std()
    assert abs(measured / expected - 1) < 5 / np.sqrt(2 * 4096), f"He std: expected {expected}, got {measured}"
    assert np.any(relu.forward(rng.standard_normal((3, 64))) != 0.0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_uniform_init_draws_weights_and_biases(activation):
    """init="uniform": W and b ~ U(±1/√fan_in); for W2 (fan_in 64) the limit is 1/8, the std 1/(8√3).

    The sample std of n = 4096 uniform draws has relative standard deviation
    √((9/5 − 1)/(4n)) ≈ 0.7 %; allow 5 of them. The last layer still starts at 0.
    """
    rng = np.random.default_rng(3)
    net = MLP(64, 5, hidden=(64, 64), activation=activation, rng=rng, init="uniform")
    weight, bias = net.params["W2"], net.params["b2"]
    assert np.abs(weight).max() <= 1 / 8 and np.abs(bias).max() <= 1 / 8
    expected = 1 / (8 * np.sqrt(3))
    assert abs(weight.std() / expected - 1) < 5 * 0.0071, f"std {weight.std()} vs {expected}"
    assert net.params["b1"].std() > 0.5 * expected  # spread, not 0
    assert np.all(net.params["W3"] == 0.0) and np.all(net.params["b3"] == 0.0)
    with pytest.raises(ValueError, match="init"):
        MLP(2, 2, init="xavier")


def test_same_seed_same_weights():
    a, b = MLP(2, 3, hidden=(4,), rng=7, zero_last=False), MLP(2, 3, hidden=(4,), rng=7, zero_last=False)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_grads_keep_identity_and_accumulate():
    rng = np.random.default_rng(3)
    net = randomize_params(MLP(2, 3, hidden=(5, 5), rng=rng, zero_last=False), rng, scale=0.5)
    ids = {key: id(value) for key, value in net.grads.items()}
    h, v = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    net.forward(h)
    net.backward(v)
    once = {key: value.copy() for key, value in net.grads.items()}
    net.backward(v)  # the cache is only read: a second backward adds the same again
    for key, value in once.items():
        np.testing.assert_allclose(net.grads[key], 2 * value, rtol=1e-14, atol=0)
    net.zero_grad()
    assert {key: id(value) for key, value in net.grads.items()} == ids
    assert all(np.all(value == 0.0) for value in net.grads.values())
    grad_h = net.backward(v, param_grads=False)  # input gradient only: grads untouched
    assert all(np.all(value == 0.0) for value in net.grads.values())
    np.testing.assert_array_equal(grad_h, net.backward(v))


def test_outputs_are_fresh_arrays_and_batch_size_can_change():
    """Hidden buffers are reused between calls; what the caller receives must not be."""
    rng = np.random.default_rng(4)
    net = randomize_params(MLP(2, 3, hidden=(5,), rng=rng, zero_last=False), rng, scale=0.5)
    h1, h2 = rng.standard_normal((4, 2)), rng.standard_normal((7, 2))
    out1 = net.forward(h1)
    kept = out1.copy()
    out2 = net.forward(h2)
    np.testing.assert_array_equal(out1, kept, err_msg="a later forward overwrote an earlier output")
    v = rng.standard_normal((7, 3))
    grad2 = net.backward(v)
    assert out2.shape == (7, 3) and grad2.shape == (7, 2)
    assert rel_error(grad2, numerical_vjp(net.forward, h2, v)) <= GRAD_TOL


def test_zero_samples():
    net = MLP(2, 3, hidden=(4,), rng=0, zero_last=False)
    out = net.forward(np.zeros((0, 2)))
    assert out.shape == (0, 3)
    assert net.backward(np.zeros((0, 3))).shape == (0, 2)
    assert all(np.all(value == 0.0) for value in net.grads.values())


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="MLP.backward: no forward"):
        MLP(2, 3).backward(np.zeros((1, 3)))


ONE_HIDDEN = {"in_dim": 2, "out_dim": 2, "hidden": (3,)}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"in_dim": 0, "out_dim": 2}, ValueError, "in_dim"),
    ({"in_dim": 2, "out_dim": 2.5}, TypeError, "out_dim"),
    ({"in_dim": 2, "out_dim": 2, "hidden": 64}, TypeError, "hidden"),
    ({"in_dim": 2, "out_dim": 2, "hidden": (8, 0)}, ValueError, "hidden"),
    ({"in_dim": 2, "out_dim": 2, "activation": "sigmoid"}, ValueError, "activation"),
    ({"in_dim": 2, "out_dim": 2, "rng": "seed"}, TypeError, "rng"),
    ({**ONE_HIDDEN, "masks": [np.ones((2, 3))]}, ValueError, "one mask per weight"),
    ({**ONE_HIDDEN, "masks": [np.ones((2, 3)), np.ones((2, 3))]}, ValueError, "shape"),
    ({**ONE_HIDDEN, "masks": [np.ones((2, 3)), np.full((3, 2), 0.5)]}, ValueError, "binary"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=f"MLP.*{match}"):
        MLP(**kwargs)
