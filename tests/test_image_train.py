"""nflows_np.image_train: the baselines by hand / against scipy, early stopping, save and load of an image Glow."""
import math

import numpy as np
import pytest
from scipy import stats

from nflows_np import models
from nflows_np.datasets.digits import load_digits
from nflows_np.image_train import FullCovarianceGaussian, PixelCategorical, fit_images
from nflows_np.images import LogitTransform
from nflows_np.schedules import warmup_cosine


def test_pixel_categorical_by_hand():
    """One pixel, L = 2, training (0, 0, 1): P(0) = (2 + 1)/(3 + 2) = 3/5, P(1) = 2/5."""
    model = PixelCategorical(2).fit(np.array([[0], [0], [1]]))
    assert model.bits_per_dim(np.array([[0], [1]])) == pytest.approx(-(math.log2(3 / 5) + math.log2(2 / 5)) / 2,
                                                                     abs=1e-14)


def test_full_covariance_gaussian_against_scipy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 3))
    model = FullCovarianceGaussian().fit(x)
    reference = stats.multivariate_normal(x.mean(axis=0), np.cov(x, rowvar=False, bias=True))
    np.testing.assert_allclose(model.log_prob(x[:5]), reference.logpdf(x[:5]), atol=1e-10)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_fit_images_early_stops_and_keeps_the_best_parameters(ema):
    """A tiny Glow on 200 digits with lr 3e-2 overfits fast: it stops, and holds its best validation score
    (with ``ema``: the score of the averaged parameters, which are the ones returned)."""
    images = load_digits("train").images
    transform = LogitTransform(17, 0.05)
    model = models.glow_image((1, 8, 8), levels=1, steps=1, hidden=4, rng=0)
    fit = fit_images(model, transform, images[:200], images[200:260], max_steps=400, batch_size=32, lr=3e-2,
                     eval_every=10, patience=2, ema=ema, rng=0, progress=False)
    assert len(fit.val_bpd) >= 3 and fit.best_val_bpd == min(fit.val_bpd)
    assert fit.stopped.startswith("early stop") or fit.stopped.startswith("reached"), fit.stopped
    assert transform.bits_per_dim(model, images[200:260], rng=_val_seed(0)) == pytest.approx(fit.best_val_bpd,
                                                                                             abs=1e-12)


def _val_seed(seed):
    """The validation dequantisation seed fit_images draws first from rng=seed."""
    return int(np.random.default_rng(seed).integers(2**63))


def test_image_glow_saves_and_loads(tmp_path):
    images = load_digits("train").images[:64]
    transform = LogitTransform(17)
    model = models.glow_image((1, 8, 8), levels=2, steps=1, hidden=4, rng=3)
    x = transform.forward(images, rng=0)[0]
    model.forward(x)  # ActNorm initialisation
    for value in model.params.values():
        value += 0.01
    path = tmp_path / "glow.npz"
    models.save(model, path, data="digits")
    loaded, spec = models.load(path)
    assert spec["flow"] == "glow_image" and spec["data"] == "digits" and spec["data_init"] is False
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))


def test_fit_images_refuses_a_decay_of_one():
    model = models.glow_image((1, 8, 8), levels=1, steps=1, hidden=4, rng=0)
    images = load_digits("train").images[:40]
    with pytest.raises(ValueError, match="ema"):
        fit_images(model, LogitTransform(17), images, images, max_steps=2, ema=1.0, rng=0, progress=False)


def test_fit_images_follows_the_schedule_it_is_given():
    """One step from the same start on the same batch: Adam's update is η_0 · m̂/(√v̂ + ε) with the same m̂, v̂,
    so with η_0 = η (no schedule), η/5 and η/10 (the first factor of warm-ups over 5 and 10 steps) the
    parameters θ_w satisfy (θ_0 − θ_5) / (θ_0 − θ_10) = (1 − 1/5)/(1 − 1/10) = 8/9 wherever they moved."""
    images = load_digits("train").images[:64]
    after = {}
    for warmup in (0, 5, 10):
        model = models.glow_image((1, 8, 8), levels=1, steps=1, hidden=4, rng=0)
        schedule = None if warmup == 0 else warmup_cosine(100, warmup=warmup)
        fit_images(model, LogitTransform(17), images, images, max_steps=1, eval_every=1, schedule=schedule,
                   init_batch=64, rng=0, progress=False)
        after[warmup] = np.concatenate([value.ravel() for value in model.params.values()])
    moved = np.abs(after[0] - after[10]) > 1e-6
    assert moved.sum() > 100
    np.testing.assert_allclose((after[0] - after[5])[moved] / (after[0] - after[10])[moved], 8 / 9, rtol=1e-6)


@pytest.mark.parametrize("options, error, match", [
    ({"shift": -1}, ValueError, "shift"), ({"shift": 0.5}, TypeError, "shift"),
    ({"schedule": "cosine"}, TypeError, "schedule"), ({"schedule": 3}, TypeError, "schedule"),
    ({"schedule": lambda t: -1.0}, ValueError, "schedule"), ({"schedule": lambda t: float("nan")}, ValueError, "schedule"),
])
def test_fit_images_refuses_a_bad_schedule(options, error, match):
    model = models.glow_image((1, 8, 8), levels=1, steps=1, hidden=4, rng=0)
    images = load_digits("train").images[:40]
    with pytest.raises(error, match=match):
        fit_images(model, LogitTransform(17), images, images, max_steps=2, rng=0, progress=False, **options)
