"""The linear Gaussian LVM: exact quantities against closed forms and quadrature, estimators against them."""
import numpy as np
import pytest
from scipy import integrate

from nflows_np import gradcheck, lvm, optim

X = 1.5  # the issue's reference point, for z ~ N(0, 1), x | z ~ N(z, 1)


def close(got, expected, tol, what):
    error = np.max(np.abs(np.asarray(got) - np.asarray(expected)))
    assert error <= tol, f"{what}: expected {expected}, got {got}, max error {error:.3e} (tol {tol:.0e})"


def test_reference_numbers_from_the_issue():
    model = lvm.LinearGaussianLVM()
    # log N(1.5 | 0, 2) and E_{z~N(0,1)} log N(1.5 | z, 1) = −½ log 2π − (1.5² + 1)/2
    close(model.log_marginal(X), -0.5 * np.log(4 * np.pi) - X ** 2 / 4, 1e-15, "log p(x)")
    close(model.log_marginal(X), -1.828012, 5e-7, "log p(1.5)")
    elbo_prior = model.objective(X, lvm.Normal(0.0, 1.0))
    close(elbo_prior, -0.5 * np.log(2 * np.pi) - (X ** 2 + 1) / 2, 1e-15, "L_1, q = prior")
    close(elbo_prior, -2.543939, 5e-7, "L_1, q = prior")


@pytest.mark.parametrize("a, c, sigma", [(1.0, 0.0, 1.0), (-0.7, 0.3, 0.4), (0.0, 1.0, 2.0)])
def test_marginal_and_posterior_against_quadrature(a, c, sigma):
    model = lvm.LinearGaussianLVM(a, c, sigma)
    for x in (-1.0, 0.2, 2.5):
        evidence, _ = integrate.quad(lambda z, x=x: np.exp(model.log_joint(x, z)), -np.inf, np.inf, epsabs=1e-13)
        close(model.log_marginal(x), np.log(evidence), 1e-9, f"log p({x}) vs quadrature")
        post = model.posterior(x)
        z = np.linspace(-3, 3, 7)
        close(post.log_prob(z), model.log_joint(x, z) - model.log_marginal(x), 1e-12, "Bayes' rule")
    total, _ = integrate.quad(lambda x: np.exp(model.log_marginal(x)), -np.inf, np.inf)
    close(total, 1.0, 1e-9, "∫ p(x) dx")


def test_elbo_gap_is_kl_to_posterior_and_vanishes_at_posterior():
    model = lvm.LinearGaussianLVM(0.8, -0.2, 0.6)
    x = np.array([-1.0, 0.0, 2.0])
    q = lvm.Normal([0.3, -1.0, 0.5], [0.5, 2.0, 0.1])
    gap = model.log_marginal(x) - model.objective(x, q)
    close(gap, q.kl(model.posterior(x)), 1e-12, "log p − ELBO = KL(q ‖ posterior)")
    assert np.all(gap > 0)
    close(model.objective(x, model.posterior(x)), model.log_marginal(x), 1e-12, "ELBO at the posterior")


def test_normal_kl_against_quadrature():
    q, p = lvm.Normal(0.4, 0.7), lvm.Normal(-0.5, 1.3)
    value, _ = integrate.quad(lambda z: np.exp(q.log_prob(z)) * (q.log_prob(z) - p.log_prob(z)), -np.inf, np.inf)
    close(q.kl(p), value, 1e-9, "KL(q ‖ p)")
    close(q.kl(), q.kl(lvm.Normal(0.0, 1.0)), 1e-15, "KL to the prior")


def test_monte_carlo_elbo_matches_closed_form():
    model = lvm.LinearGaussianLVM()
    q = lvm.Normal(0.3, 0.8)
    estimate = model.elbo(X, q, 100_000, rng=0)
    exact = model.objective(X, q)
    assert abs(estimate.value - exact) <= 5 * estimate.stderr, (estimate, exact)


def test_iwae_bounds_are_ordered_and_approach_log_p():
    model = lvm.LinearGaussianLVM()
    prior = lvm.Normal(0.0, 1.0)
    rng = np.random.default_rng(1)
    bounds = {k: model.iwae_bound(X, prior, k, 200_000 // k, rng) for k in (1, 10, 100)}
    log_p = float(model.log_marginal(X))
    close(bounds[1].value, model.objective(X, prior), 5 * bounds[1].stderr, "L_1 = ELBO")
    for small, large in ((1, 10), (10, 100)):
        difference = bounds[large].value - bounds[small].value
        assert difference > 4 * np.hypot(bounds[large].stderr, bounds[small].stderr), (small, large, bounds)
    assert bounds[100].value < log_p + 4 * bounds[100].stderr
    assert log_p - bounds[100].value < 0.01  # the gap is ≈ Var(w) / (2 K E[w]²) ≈ 0.0034 at K = 100


def test_iwae_with_the_posterior_is_exact_for_every_k():
    model = lvm.LinearGaussianLVM(0.5, 1.0, 0.3)
    x = np.array([0.0, 2.0])
    estimate = model.iwae_bound(x, model.posterior(x), 3, 10, rng=0)
    close(estimate.draws, np.broadcast_to(model.log_marginal(x), estimate.draws.shape), 1e-12, "w = p(x) exactly")


@pytest.mark.parametrize("beta, free_bits", [(1.0, 0.0), (0.3, 0.0), (1.0, 0.05), (1.0, 5.0)])
def test_loss_step_gradient_matches_finite_differences(beta, free_bits):
    model = lvm.LinearGaussianLVM(0.9, 0.1, 0.7)
    x = np.array([-0.5, 1.0, 2.0])
    q = lvm.Normal(np.array([0.1, -0.3, 0.8]), np.array([0.9, 0.5, 1.2]))
    q.zero_grad()
    model.loss_step(x, q, beta, free_bits)
    for key in q.params:
        numeric = gradcheck.numerical_gradient(lambda: model.loss_step(x, lvm.Normal(
            q.params["mean"], log_std=q.params["log_std"]), beta, free_bits), q.params[key])
        error = gradcheck.rel_error(q.grads[key], numeric)
        assert error <= 1e-7, f"∂loss/∂{key}: expected {numeric}, got {q.grads[key]}, rel error {error:.1e}"


def test_shared_encoder_gradient_sums_over_data():
    model = lvm.LinearGaussianLVM()
    x = np.array([0.0, 1.0, 3.0])
    q = lvm.Normal(0.2, 0.9)
    model.loss_step(x, q)
    mean = q.params["mean"].copy()
    numeric = gradcheck.numerical_gradient(lambda: model.loss_step(x, lvm.Normal(mean, 0.9)), mean)
    close(q.grads["mean"], numeric, 1e-6, "∂loss/∂m summed over x")


def test_adam_finds_the_posterior_and_collapses_to_the_prior_when_the_decoder_ignores_z():
    for model, target in ((lvm.LinearGaussianLVM(), lvm.LinearGaussianLVM().posterior(X)),
                          (lvm.LinearGaussianLVM(a=0.0), lvm.Normal(0.0, 1.0))):
        q = lvm.Normal(-1.0, 0.3)
        opt = optim.Adam(q, lr=0.05)
        for _ in range(600):
            q.zero_grad()
            model.loss_step(X, q)
            opt.step()
        assert q.kl(target) < 1e-6, (model, q, target)


def test_free_bits_stop_the_kl_at_lambda():
    model = lvm.LinearGaussianLVM(a=0.0)
    q = lvm.Normal(2.0, 0.5)
    opt = optim.SGD(q, lr=0.01)
    for _ in range(2000):
        q.zero_grad()
        model.loss_step(X, q, free_bits=0.5)
        opt.step()
    kl = float(q.kl())
    assert 0.45 < kl <= 0.5, kl


def test_sample_and_shapes_and_errors():
    model = lvm.LinearGaussianLVM(2.0, 1.0, 0.5)
    x, z = model.sample(50_000, rng=0)
    assert x.shape == z.shape == (50_000,)
    close(np.var(x), model.marginal_variance, 0.1, "Var x")  # sd of the sample variance ≈ 4.25·√(2/5e4) ≈ 0.027
    q = lvm.Normal(np.zeros(4))
    assert q.sample((3, 5), rng=0).shape == (3, 5, 4)
    assert model.iwae_bound(np.zeros(4), q, 2, 3, rng=0).draws.shape == (3, 4)
    for bad in (lambda: lvm.LinearGaussianLVM(sigma=0.0), lambda: lvm.Normal(0.0, -1.0),
                lambda: model.log_marginal(np.nan), lambda: model.iwae_bound(X, q, 0, 3),
                lambda: model.objective(X, q, beta=-1.0), lambda: lvm.Normal(0.0, 1.0, 0.0)):
        with pytest.raises(ValueError):
            bad()


def test_one_encoder_per_beta():
    model = lvm.LinearGaussianLVM()
    beta = np.array([0.2, 1.0])
    q = lvm.Normal([0.5, 0.5], [0.7, 0.7])
    values = model.objective(X, q, beta)
    close(values, [model.objective(X, lvm.Normal(0.5, 0.7), b) for b in beta], 1e-15, "array β")


def test_same_seed_same_estimate():
    model = lvm.LinearGaussianLVM()
    q = lvm.Normal(0.0, 1.0)
    assert model.iwae_bound(X, q, 5, 100, rng=3).value == model.iwae_bound(X, q, 5, 100, rng=3).value
