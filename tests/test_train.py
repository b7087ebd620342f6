"""The training loop: MLE and reverse KL on problems with known answers; divergence; save / load."""
import itertools
import warnings

import numpy as np
import pytest

import nflows_np as nf
from nflows_np import train
from nflows_np.distributions import LOG_2PI


class GaussianTarget:
    """π̃(x) = Z · N(x | μ, diag σ²) with a known log Z: a target whose optimum is exact."""

    def __init__(self, mu, sigma, log_z):
        self.mu, self.sigma, self.log_z, self.dim = np.asarray(mu), np.asarray(sigma), log_z, len(mu)

    def log_prob(self, x):
        r = (x - self.mu) / self.sigma
        return self.log_z - 0.5 * np.sum(r * r, 1) - np.sum(np.log(self.sigma)) - 0.5 * self.dim * LOG_2PI

    def grad_log_prob(self, x):
        return -(x - self.mu) / self.sigma**2


def gaussian_entropy(sigma):
    return 0.5 * len(sigma) * (1 + LOG_2PI) + np.sum(np.log(sigma))


def test_mle_recovers_a_gaussian():
    """x ~ N(μ, diag σ²): an elementwise affine flow reaches the entropy and recovers μ, σ."""
    rng = np.random.default_rng(0)
    mu, sigma = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    data = mu + sigma * rng.standard_normal((20_000, 2))
    test = mu + sigma * rng.standard_normal((20_000, 2))
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    history = train.fit_mle(model, data, steps=1500, batch_size=256, lr=0.05, test_data=test,
                            eval_every=500, rng=1, progress=False)
    # z = x e^s + t is standard normal when e^s = 1/σ and t = −μ/σ.
    # Tolerances: Adam's minibatch noise at lr 0.05 and the finite sample (n = 20 000:
    # σ̂/σ has standard error 1/√(2n) ≈ 0.005).
    np.testing.assert_allclose(np.exp(-model.params["0.s"]), sigma, rtol=0.03)
    np.testing.assert_allclose(-model.params["0.t"] * np.exp(-model.params["0.s"]), mu, atol=0.05)
    assert abs(history.last("test_nll") - gaussian_entropy(sigma)) < 0.01
    assert history.eval_steps == [500, 1000, 1500] and len(history.loss) == 1500


def test_mle_from_a_sampler_is_reproducible():
    sampler = lambda n, rng: 3.0 + rng.standard_normal((n, 1))  # noqa: E731
    runs = []
    for _ in range(2):
        model = nf.FlowModel([nf.ElementwiseAffine(1)])
        runs.append(train.fit_mle(model, sampler, steps=50, batch_size=64, rng=7, progress=False).loss)
    assert runs[0] == runs[1]


def test_reverse_kl_reaches_zero_on_a_gaussian_target():
    target = GaussianTarget([1.0, -1.0], [0.7, 1.5], log_z=2.5)
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    history = train.fit_reverse_kl(model, target, steps=1500, batch_size=256, lr=0.05,
                                   beta=train.linear_beta(0.1, 1.0, 500), eval_samples=20_000, rng=0,
                                   progress=False)
    # The family contains the target, so KL → 0; 0.01 nats covers Adam's noise and the
    # Monte Carlo error of F (std of the log-weight times 1/√20 000).
    assert abs(history.last("kl")) < 0.01
    assert history.last("log_z_iwae") == pytest.approx(target.log_z, abs=0.01)
    assert history.beta[0] == pytest.approx(0.1) and history.beta[-1] == 1.0


def test_reverse_kl_gradient_matches_finite_differences():
    """The hand-written reverse-KL gradient (fed to backward) against central differences."""
    rng = np.random.default_rng(3)
    target = GaussianTarget([0.5, -0.5], [1.2, 0.8], log_z=0.0)
    model = nf.FlowModel([nf.gradcheck.randomize_params(nf.ElementwiseAffine(2), rng), nf.Reverse(2),
                          nf.gradcheck.randomize_params(nf.ElementwiseAffine(2), rng)])
    z = rng.standard_normal((16, 2))
    model.zero_grad()
    train.reverse_kl_step(model, target, z, beta=0.7)
    for key, value in model.params.items():
        numeric = nf.gradcheck.numerical_gradient(lambda: _rkl_loss(model, target, z, 0.7), value)
        assert nf.gradcheck.rel_error(model.grads[key], numeric) < 1e-7, key


def _rkl_loss(model, target, z, beta):
    x, log_det = model.inverse(z)
    return float(np.mean(model.base.log_prob(z) - log_det - beta * target.log_prob(x)))


def test_divergence_stops_and_keeps_the_last_good_parameters():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((512, 2))
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    snapshots = []
    original_step = train.mle_step

    def exploding_step(m, x):
        snapshots.append({k: v.copy() for k, v in m.params.items()})
        loss = original_step(m, x)
        return loss if len(snapshots) < 5 else float("inf")

    train.mle_step = exploding_step
    try:
        with pytest.warns(train.DivergenceWarning, match="diverged at step 4"):
            history = train.fit_mle(model, data, steps=100, batch_size=64, lr=0.1, rng=0, progress=False)
    finally:
        train.mle_step = original_step
    assert history.diverged and len(history.loss) == 4
    # The parameters at step 4 gave a non-finite loss; the last good ones are those of step 3.
    for key, value in model.params.items():
        np.testing.assert_array_equal(value, snapshots[3][key])


def test_a_huge_learning_rate_diverges_cleanly():
    """A real blow-up (lr = 1e6 on a scale parameter): a message, finite parameters, no exception."""
    rng = np.random.default_rng(0)
    data = 1e3 * rng.standard_normal((512, 2))
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = train.fit_mle(model, data, steps=200, batch_size=64, lr=1e6, optimizer="sgd", rng=0,
                                progress=False)
    assert history.diverged, "expected this run to diverge"
    assert any(issubclass(w.category, train.DivergenceWarning) for w in caught)
    assert all(np.isfinite(v).all() for v in model.params.values())
    assert np.isfinite(model.log_prob(data[:10])).all()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"steps": 0}, ValueError, "steps"), ({"steps": 2.5}, TypeError, "steps"), ({"batch_size": -1}, ValueError, "batch_size"),
    ({"lr": -1.0}, ValueError, "lr"), ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
])
def test_bad_training_arguments(kwargs, error, match):
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    with pytest.raises(error, match=match):
        train.fit_mle(model, np.zeros((10, 2)), **{"steps": 5, **kwargs})


def test_bad_training_data():
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    with pytest.raises(ValueError, match="data"):
        train.fit_mle(model, np.zeros((10, 3)), steps=5)
    with pytest.raises(ValueError, match="non-finite"):
        train.fit_mle(model, np.full((10, 2), np.nan), steps=5)
    # a sampler that returns NaN is bad data, not a divergence of training
    nan_sampler = lambda n, rng: np.full((n, 2), np.nan)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", train.DivergenceWarning)
        with pytest.raises(ValueError, match="minibatch from the sampler contains non-finite"):
            train.fit_mle(model, nan_sampler, steps=5)


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model = nf.FlowModel([nf.gradcheck.randomize_params(nf.ElementwiseAffine(2), rng), nf.Reverse(2)])
    path = tmp_path / "model.npz"
    train.save_params(model, path, spec={"flow": "test", "dim": 2})
    other = nf.FlowModel([nf.ElementwiseAffine(2), nf.Reverse(2)])
    grads_before = {k: id(v) for k, v in other.params.items()}
    spec = train.load_params(other, path)
    assert spec == {"flow": "test", "dim": 2}
    x = rng.standard_normal((5, 2))
    np.testing.assert_array_equal(other.log_prob(x), model.log_prob(x))
    assert {k: id(v) for k, v in other.params.items()} == grads_before
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert set(data.files) == {"0.s", "0.t", "__spec__"}
    wrong = nf.FlowModel([nf.ElementwiseAffine(3)])
    with pytest.raises(ValueError, match="shape"):
        train.load_params(wrong, path)


def test_warmup_cosine_factors():
    """Linear warm-up to 1 over W steps, half-cosine down to ``final`` at step T, then flat."""
    factor = train.warmup_cosine(110, warmup=10, final=0.02)
    assert factor(0) == pytest.approx(0.1) and factor(4) == pytest.approx(0.5) and factor(9) == 1.0
    assert factor(10) == 1.0
    assert factor(60) == pytest.approx(0.02 + 0.98 * 0.5)  # half-way through the decay: cos(π/2) = 0
    assert factor(110) == pytest.approx(0.02) and factor(10_000) == pytest.approx(0.02)
    values = [factor(t) for t in range(10, 120)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert train.warmup_cosine(5)(0) == 1.0  # no warm-up: starts at the peak


@pytest.mark.parametrize("kwargs, error, words", [
    ({"steps": 0}, ValueError, "steps"),
    ({"steps": 10.5}, TypeError, "steps"),
    ({"steps": 10, "warmup": -1}, ValueError, "warmup"),
    ({"steps": 10, "warmup": 10}, ValueError, "warmup"),
    ({"steps": 10, "final": -0.1}, ValueError, "final"),
    ({"steps": 10, "final": 1.5}, ValueError, "final"),
    ({"steps": 10, "final": float("nan")}, ValueError, "final"),
])
def test_warmup_cosine_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        train.warmup_cosine(**kwargs)


def _sgd_run(schedule, steps=3):
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    data = np.random.default_rng(0).normal(2.0, 3.0, (256, 2))
    history = train.fit_mle(model, data, steps=steps, batch_size=256, lr=0.1, optimizer="sgd", rng=0,
                            progress=False, schedule=schedule)
    return model, history


def test_schedule_scales_the_learning_rate_of_each_step():
    """Plain SGD moves the parameters by lr · schedule(t) · gradient; a factor of 1 is the constant-lr run."""
    plain_model, plain = _sgd_run(None)
    ones_model, ones = _sgd_run(lambda t: 1.0)
    assert ones.loss == plain.loss
    np.testing.assert_array_equal(ones_model.params["0.s"], plain_model.params["0.s"])
    frozen_model, frozen = _sgd_run(lambda t: 0.0)
    np.testing.assert_array_equal(frozen_model.params["0.s"], 0.0)  # ElementwiseAffine starts at s = 0
    assert frozen.loss[-1] == pytest.approx(frozen.loss[0], rel=1e-12)  # same points, another order
    full_model, _ = _sgd_run(None, steps=1)
    half_model, _ = _sgd_run(lambda t: 0.5, steps=1)  # one step from the same start: half the move
    np.testing.assert_allclose(half_model.params["0.t"], 0.5 * full_model.params["0.t"], rtol=1e-12)


@pytest.mark.parametrize("schedule, error", [(0.5, TypeError), (lambda t: -1.0, ValueError),
                                             (lambda t: float("nan"), ValueError), (lambda t: "1", TypeError)])
def test_schedule_must_give_finite_factors(schedule, error):
    with pytest.raises(error, match="schedule"):
        _sgd_run(schedule)


def test_reverse_kl_takes_a_schedule():
    target = GaussianTarget([1.0, -1.0], [0.7, 1.5], log_z=2.5)
    runs = [train.fit_reverse_kl(nf.FlowModel([nf.ElementwiseAffine(2)]), target, steps=20, batch_size=64, lr=0.05,
                                 rng=0, progress=False, eval_samples=1000, schedule=schedule).loss
            for schedule in (None, lambda t: 1.0, train.warmup_cosine(20, 5, 0.1))]
    assert runs[0] == runs[1] and runs[2] != runs[0]
