"""Optimisers: the in-place updates equal the textbook formulas, step by step."""
import numpy as np
import pytest

from nflows_np import optim


class Quadratic:
    """L(θ) = ½ Σ a ⊙ (θ − c)²: a toy 'model' with params / grads."""

    def __init__(self, rng):
        self.a = rng.uniform(0.5, 2.0, size=(3, 2))
        self.c = rng.standard_normal((3, 2))
        self.params = {"theta": rng.standard_normal((3, 2))}
        self.grads = {"theta": np.zeros((3, 2))}

    def compute_grad(self):
        self.grads["theta"][...] = self.a * (self.params["theta"] - self.c)


def test_adam_matches_textbook():
    model = Quadratic(np.random.default_rng(0))
    theta = model.params["theta"].copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    opt = optim.Adam(model, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    grads_id = id(model.grads["theta"])
    for t in range(1, 21):
        model.compute_grad()
        g = model.a * (theta - model.c)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        opt.step()
        # 1e-13: the two forms differ only in where the bias corrections are folded in.
        np.testing.assert_allclose(model.params["theta"], theta, rtol=1e-13, atol=1e-13)
    assert id(model.grads["theta"]) == grads_id


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_textbook(momentum):
    model = Quadratic(np.random.default_rng(1))
    theta = model.params["theta"].copy()
    velocity = np.zeros_like(theta)
    opt = optim.SGD(model, lr=0.05, momentum=momentum)
    for _ in range(20):
        model.compute_grad()
        velocity = momentum * velocity + model.a * (theta - model.c)
        theta = theta - 0.05 * velocity
        opt.step()
        np.testing.assert_allclose(model.params["theta"], theta, rtol=1e-14, atol=1e-14)


def test_optimisers_converge_on_a_quadratic():
    for make in (lambda m: optim.Adam(m, lr=0.05), lambda m: optim.SGD(m, lr=0.1, momentum=0.9)):
        model = Quadratic(np.random.default_rng(2))
        opt = make(model)
        for _ in range(500):
            model.compute_grad()
            opt.step()
        np.testing.assert_allclose(model.params["theta"], model.c, atol=1e-6)


def test_clip_grad_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    norm = optim.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(5.0, rel=1e-15)
    assert optim.grad_norm(grads) == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    untouched = {"a": np.array([0.3, 0.4])}
    assert optim.clip_grad_norm(untouched, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(untouched["a"], [0.3, 0.4])


@pytest.mark.parametrize("make, match", [
    (lambda m: optim.Adam(m, lr=-1.0), "lr"),
    (lambda m: optim.Adam(m, lr=float("nan")), "lr"),
    (lambda m: optim.Adam(m, betas=(1.0, 0.9)), "beta1"),
    (lambda m: optim.SGD(m, momentum=1.0), "momentum"),
    (lambda m: optim.Adam(object()), "params and grads"),
])
def test_bad_hyperparameters_are_refused(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(Quadratic(np.random.default_rng(0)))


@pytest.mark.parametrize("make", [lambda m: optim.Adam(m, lr=0.01), lambda m: optim.SGD(m, lr=0.01, momentum=0.9)])
def test_update_over_one_buffer_equals_update_per_array(make):
    """An MLP keeps all its arrays in one buffer (one run for the optimiser); separate copies give the same steps."""
    from nflows_np.flows.mlp import MLP

    rng = np.random.default_rng(3)
    net = MLP(3, 2, hidden=(5, 4), rng=rng, zero_last=False)
    twin = Quadratic(rng)
    twin.params = {key: value.copy() for key, value in net.params.items()}
    twin.grads = {key: np.zeros_like(value) for key, value in net.params.items()}
    opt, twin_opt = make(net), make(twin)
    assert len(opt._slices) == 1 and len(twin_opt._slices) == len(net.params), "expected one run vs one per array"
    for _ in range(5):
        for key in net.grads:
            net.grads[key][...] = twin.grads[key][...] = rng.standard_normal(net.grads[key].shape)
        opt.step()
        twin_opt.step()
    for key in net.params:  # the same elementwise arithmetic: equal to the last bit
        np.testing.assert_array_equal(net.params[key], twin.params[key], err_msg=key)
