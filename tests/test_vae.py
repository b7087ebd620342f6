"""The VAE pieces: gradients by finite differences, the IWAE bounds' order, active units, the masks."""
from __future__ import annotations

import numpy as np
import pytest

from nflows_np import vae
from nflows_np.gradcheck import numerical_gradient, rel_error

D, L, N = 10, 3, 7
TOL = 1e-6  # float64 central differences give ~1e-8 on a correct gradient (see nflows_np.gradcheck)

ARCHS = {
    "factorised": {"decoder": "factorised", "decoder_hidden": (6,)},
    "autoregressive": {"decoder": "autoregressive", "decoder_hidden": (12, 11)},
    "autoregressive, window 2": {"decoder": "autoregressive", "decoder_hidden": (12,), "window": 2},
}


def small_vae(arch: str, seed: int = 0) -> vae.VAE:
    """A small VAE with random (non-zero, non-initial) parameters."""
    model = vae.make_vae(data_dim=D, latent_dim=L, encoder_hidden=(5,), rng=seed, **ARCHS[arch])
    rng = np.random.default_rng(seed + 100)
    for key, value in model.params.items():
        value += 0.4 * rng.standard_normal(value.shape) * (value != 0.0 if key.endswith(("W1", "W2", "W3")) else 1.0)
    return model


def binary_data(n: int = N, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, D)) < 0.4).astype(np.float64)


def assert_gradients(model: vae.VAE, loss, step) -> None:
    """Every parameter's analytic gradient (from ``step``) against central differences of ``loss``."""
    model.zero_grad()
    step()
    for key, param in model.params.items():
        numeric = numerical_gradient(loss, param)
        error = rel_error(model.grads[key], numeric)
        assert error < TOL, f"{key}: relative error {error:.2e} (max |analytic − numeric| " \
                            f"{np.max(np.abs(model.grads[key] - numeric)):.2e})"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_elbo_gradient_matches_finite_differences(arch, beta):
    model, x = small_vae(arch), binary_data()
    eps = vae.draw_eps(N, L, rng=2)
    assert_gradients(model, lambda: -model.objective_step(x, eps, beta, grad=False).objective,
                     lambda: model.objective_step(x, eps, beta))


@pytest.mark.parametrize("arch", ARCHS)
def test_free_bits_gradient_matches_finite_differences(arch):
    model, x = small_vae(arch), binary_data()
    eps = vae.draw_eps(N, L, rng=2)
    kl_dims = model.objective_step(x, eps, grad=False).kl_per_dim
    free_bits = float(np.median(kl_dims))  # one dimension at the kink's flat side, one on each side
    free_bits += 0.05 if np.min(np.abs(kl_dims - free_bits - 0.05)) > 1e-3 else 0.1
    assert np.any(kl_dims < free_bits) and np.any(kl_dims > free_bits), (kl_dims, free_bits)
    assert np.min(np.abs(kl_dims - free_bits)) > 1e-3  # away from the kink, where max is not differentiable
    assert_gradients(model, lambda: -model.objective_step(x, eps, 0.8, free_bits, grad=False).objective,
                     lambda: model.objective_step(x, eps, 0.8, free_bits))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("k", [1, 4])
def test_iwae_gradient_matches_finite_differences(arch, k):
    model, x = small_vae(arch), binary_data()
    eps = vae.draw_eps(N, L, k, rng=3)
    assert_gradients(model, lambda: -model.iwae_step(x, eps, grad=False), lambda: model.iwae_step(x, eps))


def test_l1_is_the_elbo():
    """At one draw, L_1 = log p(x|z) + log p(z) − log q(z|x); in expectation it is the closed-form-KL ELBO."""
    model, x = small_vae("autoregressive"), binary_data()
    eps = vae.draw_eps(N, L, rng=4)
    mean, log_var = model.encoder.forward(x)
    z = mean + np.exp(0.5 * log_var) * eps
    log_px_z = vae.bernoulli_log_likelihood(x, model.decoder.forward(z, x))
    log_pz = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    log_qz = -0.5 * np.sum(eps ** 2 + log_var + np.log(2 * np.pi), axis=1)
    by_hand = float(np.mean(log_px_z + log_pz - log_qz))
    assert model.iwae_step(x, eps[:, None, :], grad=False) == pytest.approx(by_hand, rel=1e-12)

    reps = 20_000
    many = np.tile(x, (reps, 1))                                   # every point, 20 000 times
    draws = model.iwae_bounds(many, 1, rng=5).reshape(reps, N).mean(axis=1)
    eps = vae.draw_eps(reps * N, L, rng=6)
    mean, log_var = model.encoder.forward(many)
    z = mean + np.exp(0.5 * log_var) * eps
    closed_form = (vae.bernoulli_log_likelihood(many, model.decoder.forward(z, many))
                   - vae.kl_per_dim(mean, log_var).sum(axis=1)).reshape(reps, N).mean(axis=1)
    assert closed_form.mean() == pytest.approx(model.objective_step(many, eps, grad=False).elbo, rel=1e-12)
    stderr = np.hypot(draws.std(ddof=1), closed_form.std(ddof=1)) / np.sqrt(reps)
    assert abs(draws.mean() - closed_form.mean()) < 4 * stderr, (draws.mean(), closed_form.mean(), stderr)


def test_iwae_bound_increases_with_k():
    """L_1 < L_2 < L_5 < L_20 on a fixed model, each step by more than 4 Monte Carlo standard errors."""
    model, x = small_vae("factorised"), binary_data()
    estimates = {}
    for k in (1, 2, 5, 20):
        reps = 4000
        draws = model.iwae_bounds(np.tile(x, (reps, 1)), k, rng=k).reshape(reps, N).mean(axis=1)
        estimates[k] = (draws.mean(), draws.std(ddof=1) / np.sqrt(draws.size))
    for small, large in ((1, 2), (2, 5), (5, 20)):
        gap = estimates[large][0] - estimates[small][0]
        stderr = np.hypot(estimates[large][1], estimates[small][1])
        assert gap > 4 * stderr, f"L_{large} − L_{small} = {gap:.4f} ± {stderr:.4f}"


def test_iwae_weights_are_normalised_in_log_space():
    """Log-weights of −1000 (exp underflows to 0) still give a finite bound and gradient."""
    model, x = small_vae("factorised"), binary_data()
    model.params["decoder.net.b2"][...] = 200.0 * (2 * x[0] - 1) * -1.0   # every pixel of x[0] very unlikely
    eps = vae.draw_eps(N, L, 3, rng=6)
    assert np.all(model.log_weights(x, eps)[0] < -500)
    model.zero_grad()
    value = model.iwae_step(x, eps)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in model.grads.values())


def test_active_units_on_a_constructed_encoder():
    """An affine encoder μ = x W + b: Var_x μ_j = w_jᵀ Cov(x) w_j, counted against Burda's 0.01."""
    model = vae.make_vae("factorised", data_dim=D, latent_dim=4, encoder_hidden=(), decoder_hidden=(3,), rng=0)
    x = binary_data(500)
    cov = np.cov(x, rowvar=False, ddof=0)
    weight = model.params["encoder.net.W1"]
    weight[...] = 0.0
    direction = np.random.default_rng(7).standard_normal(D)
    direction /= np.sqrt(direction @ cov @ direction)            # unit variance of xᵀd over the data
    weight[:, 0] = np.sqrt(0.5) * direction                       # Var μ_0 = 0.5: active
    weight[:, 2] = np.sqrt(0.005) * direction                     # Var μ_2 = 0.005: below the threshold
    model.params["encoder.net.b1"][...] = 3.0                     # a constant mean is not activity
    count, variances = model.active_units(x)
    np.testing.assert_allclose(variances, [0.5, 0.0, 0.005, 0.0], atol=1e-12)
    assert count == 1


@pytest.mark.parametrize("window", [None, 2])
def test_autoregressive_decoder_sees_only_previous_pixels(window):
    """ℓ_i changes with x_j only for j < i (and, with one hidden layer and window w, j ≥ i − 2w + 1)."""
    hidden = (20,) if window else (20, 20)
    decoder = vae.AutoregressiveDecoder(D, L, hidden, window, rng=0)
    rng = np.random.default_rng(1)
    z, x = rng.standard_normal((1, L)), binary_data(1)
    base = decoder.forward(z, x)
    depends = np.zeros((D, D), dtype=bool)                        # depends[i, j]: ℓ_i moves with x_j
    for j in range(D):
        flipped = x.copy()
        flipped[0, j] = 1.0 - flipped[0, j]
        depends[:, j] = np.abs(decoder.forward(z, flipped) - base)[0] > 1e-12
    i, j = np.indices((D, D))
    allowed = (j < i) if window is None else (j < i) & (j >= i - 2 * window + 1)
    assert not np.any(depends & ~allowed), np.argwhere(depends & ~allowed)
    assert np.all(depends[allowed]), np.argwhere(allowed & ~depends)   # every allowed dependency exists
    z_moves = np.abs(decoder.forward(z + 1.0, x) - base)[0] > 1e-12
    assert np.all(z_moves)                                        # every conditional sees z


def test_bad_input_is_refused():
    model = small_vae("factorised")
    x = binary_data()
    with pytest.raises(ValueError, match="binary"):
        model.objective_step(x * 0.5, vae.draw_eps(N, L, rng=0))
    with pytest.raises(ValueError, match="eps"):
        model.objective_step(x, vae.draw_eps(N, L + 1, rng=0))
    with pytest.raises(ValueError, match="eps"):
        model.iwae_step(x, vae.draw_eps(N, L, rng=0))
    with pytest.raises(ValueError, match="free_bits"):
        model.objective_step(x, vae.draw_eps(N, L, rng=0), free_bits=-1.0)
    with pytest.raises(ValueError, match=r"\(k = 1\) only"):
        vae.fit_vae(model, x, steps=1, k=2, free_bits=0.5)
    with pytest.raises(ValueError, match="decoder"):
        vae.make_vae("pixelcnn")


def test_save_load_round_trip(tmp_path):
    model, x = small_vae("autoregressive, window 2"), binary_data()
    path = tmp_path / "vae.npz"
    vae.save_vae(model, path)
    loaded = vae.load_vae(path)
    eps = vae.draw_eps(N, L, 2, rng=0)
    assert loaded.spec == model.spec
    np.testing.assert_array_equal(loaded.log_weights(x, eps), model.log_weights(x, eps))


def test_training_on_digits_raises_the_elbo():
    """200 Adam steps of the factorised VAE on binarised digits raise the test ELBO by more than 10 nats."""
    from nflows_np.datasets.digits import load_digits

    x_train = vae.binarize(load_digits("train").images)
    x_test = vae.binarize(load_digits("test").images)
    model = vae.make_vae("factorised", latent_dim=4, decoder_hidden=(32,), rng=0)
    before = model.iwae_bounds(x_test, 1, n_rep=5, rng=1).mean()
    history = vae.fit_vae(model, x_train, steps=200, lr=3e-3, eval_data=x_test, eval_every=100, rng=0,
                          progress=False)
    after = model.iwae_bounds(x_test, 1, n_rep=5, rng=1).mean()
    assert after - before > 10.0, (before, after)
    assert len(history.loss) == 200 and history.eval_steps == [100, 200]
    assert set(history.eval) == {"elbo", "reconstruction", "kl", "active_units"}


def test_beta_ramp_and_iwae_training():
    """β(t) = min(1, t/T); fit_vae with k > 1 trains L_K (and refuses KL annealing with it)."""
    ramp = vae.beta_ramp(4)
    assert [ramp(t) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert vae.beta_ramp(0)(0) == 1.0
    model, x = small_vae("factorised"), binary_data(40)
    history = vae.fit_vae(model, x, steps=30, batch_size=10, k=3, lr=1e-2, rng=0, progress=False)
    assert history.objective == "IWAE L_3" and len(history.loss) == 30 and not history.beta
    assert np.mean(history.loss[-10:]) < np.mean(history.loss[:10])
    annealed = vae.fit_vae(small_vae("factorised"), x, steps=5, batch_size=10, beta=vae.beta_ramp(4), rng=0,
                           progress=False)
    assert annealed.beta == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match=r"\(k = 1\) only"):
        vae.fit_vae(model, x, steps=1, k=2, beta=vae.beta_ramp(4))


def test_samples_are_binary_images():
    for arch in ARCHS:
        samples = small_vae(arch).sample(5, rng=0)
        assert samples.shape == (5, D) and set(np.unique(samples)) <= {0.0, 1.0}
