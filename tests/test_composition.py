"""FlowModel: the composition theorem, normalisation, sampling, and the flat params view."""
import numpy as np
import pytest
import scipy.integrate
from flow_cases import one_of_every_family

import nflows_np as nf
from nflows_np.gradcheck import jacobian, randomize_params


def random_model(rng, dim=2):
    """A composition of one layer of every family (the registry of tests/cases_*.py), at random parameters."""
    return nf.FlowModel(one_of_every_family(dim, rng))


def test_composition_theorem():
    """log|det ∂f/∂x| of the composition = log|det(J_K ⋯ J_1)| = Σ_k log|det J_k|."""
    rng = np.random.default_rng(0)
    model = random_model(rng, dim=3)
    x = rng.standard_normal((7, 3))
    assert len(model) == 12
    _, log_det = model.forward(x)
    product = np.broadcast_to(np.eye(3), (7, 3, 3)).copy()
    h = x
    for layer in model.layers:
        product = jacobian(lambda a, layer=layer: layer.forward(a)[0], h) @ product
        h = layer.forward(h)[0]
    # 1e-8: each layer's Jacobian is a central difference with error ~1e-10.
    np.testing.assert_allclose(log_det, np.linalg.slogdet(product)[1], atol=1e-8)


def test_density_integrates_to_one():
    """∫ exp(log p(x)) dx = 1 over the plane.

    Simpson's rule on [−15, 15]² with spacing 0.025: measured 1 − 3.8e-7 for this model
    ([−20, 20]² agrees to 3e-10, so the mass outside the square is negligible; [−12, 12]²
    misses 1e-7); the bound 1e-5 leaves a margin of 26.
    """
    model = random_model(np.random.default_rng(1))
    grid = np.linspace(-15, 15, 1201)
    xx, yy = np.meshgrid(grid, grid)
    density = np.exp(model.log_prob(np.column_stack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    mass = scipy.integrate.simpson(scipy.integrate.simpson(density, x=grid), x=grid)
    assert abs(mass - 1.0) < 1e-5, mass


def test_sample_with_log_prob_agrees_with_log_prob():
    rng = np.random.default_rng(2)
    model = random_model(rng)
    x, log_p = model.sample_with_log_prob(100, rng=3)
    np.testing.assert_allclose(log_p, model.log_prob(x), atol=1e-12)
    np.testing.assert_array_equal(model.sample(100, rng=3), x)


def test_sampling_uses_only_the_given_generator():
    model = random_model(np.random.default_rng(0))
    state = np.random.get_state()[1].copy()
    a = model.sample(10, rng=np.random.default_rng(5))
    b = model.sample(10, rng=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_temperature_scales_the_base_samples():
    model = nf.FlowModel([nf.Reverse(2)])  # volume-preserving, so x has the base's scale
    x = model.sample(20_000, rng=0, temperature=0.5)
    # the std of 20 000 N(0, 0.25) draws has standard error 0.5/√40 000 = 0.0025
    np.testing.assert_allclose(x.std(axis=0), 0.5, atol=0.01)


def test_flat_params_are_views_of_the_layers():
    model = random_model(np.random.default_rng(0))
    coupling = next(i for i, layer in enumerate(model.layers) if isinstance(layer, nf.AffineCoupling))
    planar = next(i for i, layer in enumerate(model.layers) if isinstance(layer, nf.Planar))
    assert isinstance(model.layers[0], nf.ElementwiseAffine)
    assert {"0.s", "0.t", f"{coupling}.net.W1", f"{planar}.u", f"{planar}.w", f"{planar}.b"} <= set(model.params)
    assert len(model.params) == sum(len(layer.params) for layer in model.layers)
    assert model.params[f"{coupling}.net.W1"] is model.layers[coupling].params["net.W1"]
    assert model.grads["0.s"] is model.layers[0].grads["s"]
    model.params[f"{planar}.u"][0] = 42.0
    assert model.layers[planar].params["u"][0] == 42.0


def test_nested_models_flatten_keys():
    inner = nf.FlowModel([nf.ElementwiseAffine(2), nf.Reverse(2)])
    outer = nf.FlowModel([nf.ElementwiseAffine(2), inner])
    assert set(outer.params) == {"0.s", "0.t", "1.0.s", "1.0.t"}


def test_bad_compositions_are_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        nf.FlowModel([])
    with pytest.raises(ValueError, match="different dims"):
        nf.FlowModel([nf.ElementwiseAffine(2), nf.ElementwiseAffine(3)])
    with pytest.raises(TypeError, match="not a nflows_np.Flow"):
        nf.FlowModel([object()])
    with pytest.raises(ValueError, match="base has dim"):
        nf.FlowModel([nf.ElementwiseAffine(2)], base=nf.StandardNormal(3))


def test_standard_normal():
    base = nf.StandardNormal(2)
    z = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(base.log_prob(z), [-np.log(2 * np.pi), -2.5 - np.log(2 * np.pi)], rtol=1e-15)
    np.testing.assert_array_equal(base.grad_log_prob(z), -z)
    with pytest.raises(ValueError, match="StandardNormal"):
        base.sample(-1)
    with pytest.raises(ValueError, match="StandardNormal"):
        base.log_prob(np.zeros(2))


def test_uniform_base():
    """A FlowModel over a uniform base: the density integrates to 1 (Rezende & Mohamed, Figure 1)."""
    base = nf.Uniform(2, -1.0, 1.0)
    z = base.sample(1000, rng=0)
    assert z.min() >= -1.0 and z.max() <= 1.0
    np.testing.assert_allclose(base.log_prob(z), -2 * np.log(2.0))
    assert base.log_prob(np.array([[1.5, 0.0]]))[0] == -np.inf
    np.testing.assert_array_equal(base.grad_log_prob(z), 0.0)
    model = nf.FlowModel([randomize_params(nf.ElementwiseAffine(2), np.random.default_rng(0), 0.3)], base=base)
    x, log_p = model.sample_with_log_prob(100, rng=1)
    np.testing.assert_allclose(log_p, model.log_prob(x), atol=1e-12)
    grid = np.linspace(-4, 4, 1601)
    xx, yy = np.meshgrid(grid, grid)
    density = np.exp(model.log_prob(np.column_stack([xx.ravel(), yy.ravel()])))
    # a box with a discontinuous edge: the midpoint sum's error is about edge length × cell size ≈ 1e-2
    assert abs(density.sum() * (grid[1] - grid[0]) ** 2 - 1.0) < 2e-2
    with pytest.raises(ValueError, match="Uniform"):
        nf.Uniform(2, 1.0, -1.0)


def test_a_layer_that_overflows_inside_a_model_is_named():
    """Never a silent NaN: the model checks its output and names the layer that broke."""
    blow_up = nf.ElementwiseAffine(2)
    blow_up.params["s"][...] = 800.0  # exp(800) overflows to inf
    model = nf.FlowModel([nf.Reverse(2), blow_up, nf.Reverse(2)])
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"layer 1 \(ElementwiseAffine\)"):
        model.forward(np.ones((3, 2)))


def test_a_duck_typed_layer_is_refused_with_what_to_do():
    """FlowModel runs only what it can run: a look-alike without the Flow base is a TypeError, not an AttributeError later."""
    class LookAlike:
        dim, params, grads = 2, {}, {}

        def forward(self, x):
            return x, np.zeros(len(x))

        inverse = forward

        def backward(self, grad_out, grad_log_det):
            return grad_out

    with pytest.raises(TypeError, match="LookAlike, not a nflows_np.Flow; subclass Flow"):
        nf.FlowModel([LookAlike()])
