"""The reverse-KL gradient estimators of fit_reverse_kl: antithetic pairs and the path gradient.

Both must be unbiased (their mean over many batches is the plain estimator's mean, within
Monte Carlo error) and the path gradient must vanish when the model equals the target.
"""
import copy

import numpy as np
import pytest

import nflows_np as nf
from nflows_np import estimators, train


def _model(seed=0):
    return nf.FlowModel([nf.Planar(2, rng=seed + k) for k in range(3)] + [nf.Radial(2, rng=10 + seed)])


class _ModelTarget:
    """π̃ = the density of a fixed copy of a model (log Z = 0)."""

    log_z = 0.0

    def __init__(self, model):
        self.model = model

    def log_prob(self, x):
        return self.model.log_prob(x)

    def grad_log_prob(self, x):
        # ∇_x log q(x) = Jᵀ ∇_z log p_Z(z) + ∇_x log|det J| (the input gradient of log_prob)
        n = x.shape[0]
        z, _ = self.model.forward(x)
        grad = self.model.backward(self.model.base.grad_log_prob(z), np.ones(n))
        self.model.zero_grad()
        return grad


def _gradient(model, target, z, path_gradient):
    model.zero_grad()
    train.reverse_kl_step(model, target, z)
    if path_gradient:
        estimators.subtract_score(model, model.inverse(z)[0])
    return np.concatenate([g.ravel() for g in model.grads.values()]).copy()


def test_path_gradient_vanishes_when_the_model_is_the_target():
    model = _model()
    target = _ModelTarget(copy.deepcopy(model))
    z = np.random.default_rng(1).standard_normal((256, 2))
    plain = _gradient(model, target, z, path_gradient=False)
    path = _gradient(model, target, z, path_gradient=True)
    # the plain estimator's minibatch gradient is the score's sample mean: O(1/√N), not 0
    assert np.max(np.abs(plain)) > 1e-3
    assert np.max(np.abs(path)) < 1e-10, path


def test_subtract_score_subtracts_the_score_from_the_gradients_already_there():
    """grads −= the score: the same as 1.5 minus the score computed alone from zeroed gradients."""
    model = _model()
    x = np.random.default_rng(2).standard_normal((64, 2))
    model.zero_grad()
    estimators.subtract_score(model, x)
    minus_score = {key: grad.copy() for key, grad in model.grads.items()}
    assert max(np.max(np.abs(g)) for g in minus_score.values()) > 1e-3  # a score that is not 0
    model.zero_grad()
    for grad in model.grads.values():
        grad += 1.5
    estimators.subtract_score(model, x)
    for key, grad in model.grads.items():
        np.testing.assert_allclose(grad, 1.5 + minus_score[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize("path_gradient", [False, True])
def test_estimators_are_unbiased(path_gradient):
    """Mean gradient over 400 batches of 64, antithetic and/or path, equals the plain one within 4 SE."""
    model, target = _model(3), nf.targets.get("U1")
    rng = np.random.default_rng(4)
    centre = estimators.reflection_centre(model.base)
    plain = np.array([_gradient(model, target, rng.standard_normal((64, 2)), False) for _ in range(400)])
    other = np.array([_gradient(model, target, estimators.antithetic_sample(model.base, 64, rng, centre), path_gradient)
                      for _ in range(400)])
    se = np.sqrt(plain.var(axis=0) / 400 + other.var(axis=0) / 400)
    assert np.all(np.abs(plain.mean(axis=0) - other.mean(axis=0)) <= 4 * se + 1e-12)


def test_antithetic_sample_pairs_reflections():
    base = nf.distributions.StandardNormal(2)
    z = estimators.antithetic_sample(base, 7, np.random.default_rng(0), estimators.reflection_centre(base))
    assert z.shape == (7, 2)
    np.testing.assert_array_equal(z[4:], -z[:3])
    box = nf.distributions.Uniform(2, 0.0, 3.0)
    z = estimators.antithetic_sample(box, 6, np.random.default_rng(0), estimators.reflection_centre(box))
    np.testing.assert_allclose(z[3:], 3.0 - z[:3])


def test_antithetic_refuses_a_base_it_cannot_reflect():
    model = nf.FlowModel([nf.Planar(2, rng=0)], base=type("Other", (), {
        "dim": 2, "sample": lambda self, n, rng=None: np.zeros((n, 2)),
        "log_prob": lambda self, z: np.zeros(len(z)), "grad_log_prob": lambda self, z: np.zeros_like(z)})())
    with pytest.raises(ValueError, match="antithetic"):
        train.fit_reverse_kl(model, "U1", steps=1, antithetic=True, eval_samples=10, progress=False)
