"""Training reaches the quality the issues ask for (the slow tests: real training runs).

The two recipes of the lecture are run exactly as the issue states them, over
seeds 0–4, and judged by the median and the worst seed; every figure is printed
(``pytest -s`` shows them). The ten runs go to a pool of two processes (this is
a 2-core machine): about a minute on an idle machine.
"""
import concurrent.futures
import multiprocessing

import numpy as np
import pytest

import nflows_np as nf

SEEDS = (0, 1, 2, 3, 4)


def _in_parallel(jobs):
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [pool.submit(fn, seed) for fn, seed in jobs]
        return [future.result() for future in futures]


def realnvp_moons_gap(seed: int) -> float:
    """The recipe: 8 AffineCoupling, masks [1,0]/[0,1], hidden (64, 64), Adam lr 1e-3, batch 512,
    3000 steps on fresh moons samples; the gap of the test NLL (20 000 held-out points) to the entropy."""
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng,
                                            activation="relu") for k in range(8)])
    test = nf.datasets.sample("moons", 20_000, rng=10_000 + seed)
    history = nf.train.fit_mle(model, lambda n, r: nf.datasets.sample("moons", n, r), steps=3000, batch_size=512,
                               lr=1e-3, test_data=test, rng=seed, progress=False)
    return history.last("test_nll") - nf.datasets.ENTROPY["moons"]


def planar_u1_kl(seed: int) -> float:
    """The recipe: planar K = 16, reverse KL on U1, Adam lr 1e-3, batch 512, 5000 steps,
    β from 0.01 to 1 over the first half; KL = F + log Z with F on 50 000 samples."""
    rng = np.random.default_rng(seed)
    model = nf.FlowModel([nf.Planar(2, rng=rng) for _ in range(16)])
    history = nf.train.fit_reverse_kl(model, nf.targets.get("U1"), steps=5000, batch_size=512, lr=1e-3,
                                      beta=nf.train.linear_beta(0.01, 1.0, 2500), eval_samples=50_000, rng=seed,
                                      progress=False)
    return history.last("kl")


@pytest.fixture(scope="module")
def recipe_figures():
    """Both recipes over SEEDS, in one pool: {"realnvp": gaps, "planar": KLs}."""
    jobs = [(realnvp_moons_gap, seed) for seed in SEEDS] + [(planar_u1_kl, seed) for seed in SEEDS]
    figures = _in_parallel(jobs)
    return {"realnvp": figures[:len(SEEDS)], "planar": figures[len(SEEDS):]}


@pytest.mark.slow
def test_realnvp_reaches_the_entropy_of_moons(recipe_figures):
    """Median gap of the test NLL to the entropy of moons (2.3939) ≤ 0.045, every seed ≤ 0.06.

    The conditioner is a ReLU MLP with PyTorch-style uniform initialisation
    (biases included); what each choice bought is in benchmarks/results/recipes.md.
    The test NLL's Monte Carlo standard error on 20 000 points is ≈ 0.007, so a
    gap below −0.03 (4 SE) would mean the NLL is wrong.
    """
    gaps = recipe_figures["realnvp"]
    print(f"\nRealNVP on moons, seeds {SEEDS}: gap to the entropy {np.round(gaps, 4).tolist()}, "
          f"median {np.median(gaps):.4f}, max {max(gaps):.4f}")
    assert np.median(gaps) <= 0.045, gaps
    assert max(gaps) <= 0.06, gaps
    assert min(gaps) > -0.03, "below the entropy by more than the Monte Carlo error: the NLL is wrong"


@pytest.mark.slow
def test_planar_flow_fits_u1_without_collapse(recipe_figures):
    """No seed collapsed onto one of U1's two modes (the median is asserted below).

    Collapse is judged at half of ln 2: a flow on one mode pays ln 2 ≈ 0.69. KL = F + log Z
    with F on 50 000 samples (Monte Carlo standard error ≈ 0.002), so a KL below −0.01 means
    F or log Z is wrong.
    """
    kls = recipe_figures["planar"]
    print(f"\nPlanar K=16 on U1, seeds {SEEDS}: KL {np.round(kls, 4).tolist()}, "
          f"median {np.median(kls):.4f}, max {max(kls):.4f}")
    assert max(kls) < 0.5 * np.log(2), "a run collapsed onto one mode"
    assert min(kls) > -0.01, "KL below 0 by more than the Monte Carlo error: F or log Z is wrong"


@pytest.mark.slow
def test_planar_flow_reaches_the_asked_kl_on_u1(recipe_figures):
    """The asked bar, at the asked setting (lr 1e-3): median KL(q‖p) ≤ 0.05 nats over seeds 0–4.

    Every planar layer starts as the identity (û = 0, hyperplanes spread over the base's
    core). Measured on seeds 0–4: 0.0205, 0.0251, 0.0222, 0.0210, 0.0262 (median 0.022) under
    OpenBLAS's SkylakeX kernel, 0.0192, 0.0238, 0.0222, 0.0210, 0.0284 under Haswell; over
    seeds 0–19 the median is 0.0235 (benchmarks/results/recipes.md). The bar is twice the median.
    """
    assert np.median(recipe_figures["planar"]) <= 0.05, recipe_figures["planar"]


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
