"""Judging a training run (nflows_np.train): divergence without infinities, a KL estimate below zero,
Ctrl-C at the end of a step, targets by name, and a History that prints short."""
from __future__ import annotations

import math
import os
import signal
import warnings

import numpy as np
import pytest

import nflows_np as nf
from nflows_np import train


def gaussian_data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 2)) * [2.0, 0.5] + [1.0, -1.0]


def affine_fit(lr: float, test: bool, **kwargs) -> tuple[train.History, list[warnings.WarningMessage]]:
    """An elementwise affine flow fitted by Adam to a Gaussian: the exact optimum is within its reach."""
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = train.fit_mle(model, gaussian_data(2000, 0), steps=300, batch_size=64, lr=lr, rng=0, progress=False,
                                test_data=gaussian_data(1000, 1) if test else None, eval_every=100 if test else 0,
                                **kwargs)
    return history, caught


@pytest.mark.parametrize("test", [True, False], ids=["test NLL", "minibatch loss"])
def test_a_finite_blow_up_is_reported_as_divergence_with_a_hint(test):
    # Adam at lr = 10 moves the log-scales by ~10 a step: the NLL ends huge yet finite.
    history, caught = affine_fit(lr=10.0, test=test)
    assert all(np.isfinite(history.loss)) and len(history.loss) == 300
    assert history.diverged and "worse than" in history.message and "smaller learning rate than 10" in history.message
    assert [w.category for w in caught] == [train.DivergenceWarning]
    assert not history.trustworthy


@pytest.mark.parametrize("test", [True, False], ids=["test NLL", "minibatch loss"])
def test_a_healthy_run_is_not_called_divergent(test):
    history, caught = affine_fit(lr=3e-2, test=test)
    assert not history.diverged and not caught and history.trustworthy
    if test:
        assert history.last("test_nll") < history.eval["test_nll"][0]


class GaussianInABox:
    """N(0, I) whose log Z is the mass inside [−1, 1]² only: a model of N(0, I) has mass outside the box."""

    log_z_domain = "box [-1,1]^2"
    log_z = 2 * math.log(math.erf(1 / math.sqrt(2)))  # log P(|z₁| ≤ 1, |z₂| ≤ 1) = −0.763

    def log_prob(self, x):
        return -0.5 * np.sum(x**2, axis=-1) - math.log(2 * math.pi)

    def grad_log_prob(self, x):
        return -x


def test_a_kl_estimate_below_zero_is_reported_with_its_likely_cause():
    model = nf.models.planar(num_layers=2, rng=0)
    with pytest.warns(train.KLEstimateWarning, match=r"below zero beyond its Monte Carlo error.*box \[-1,1\]\^2"):
        history = train.fit_reverse_kl(model, GaussianInABox(), steps=50, batch_size=128, lr=1e-2, rng=0,
                                       eval_samples=4000, progress=False)
    # F ≥ 0 here (the target is normalised over the plane), so KL = F + log Z < 0 by at least ~0.76 − F
    assert history.last("kl") < -0.5 and len(history.warnings) == 1 and not history.trustworthy


def test_targets_are_accepted_by_name():
    model = nf.models.planar(num_layers=2, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # U1 normalised over the plane: no doubt about this KL
        history = train.fit_reverse_kl(model, "u1", steps=20, batch_size=64, lr=1e-2, rng=0, eval_samples=2000,
                                       progress=False)
    assert history.last("kl") > 0 and len(history.loss) == 20
    with pytest.raises(ValueError, match="unknown target 'U9'"):
        train.fit_reverse_kl(model, "U9", steps=2)
    with pytest.raises(TypeError, match="target must be a target name or have log_prob"):
        train.fit_reverse_kl(model, 3.0, steps=2)


def test_ctrl_c_stops_at_the_end_of_the_step_and_returns_what_was_trained():
    model = nf.FlowModel([nf.ElementwiseAffine(2)])
    before = signal.getsignal(signal.SIGINT)
    interrupt_at = 3

    def sampler(n, rng):
        if sampler.calls == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while step 3 is under way
        sampler.calls += 1
        return gaussian_data(n, sampler.calls)

    sampler.calls = 0
    history = train.fit_mle(model, sampler, steps=1000, batch_size=32, rng=0, progress=False,
                            test_data=gaussian_data(100, 99))
    assert history.interrupted and len(history.loss) == interrupt_at + 1  # step 3 finished, then the loop ended
    assert history.eval_steps == [interrupt_at + 1] and not history.trustworthy
    assert signal.getsignal(signal.SIGINT) is before  # the usual Ctrl-C is back


def test_a_second_ctrl_c_interrupts_at_once():
    model = nf.FlowModel([nf.ElementwiseAffine(2)])

    def sampler(n, rng):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return gaussian_data(n, 0)

    with pytest.raises(KeyboardInterrupt):
        train.fit_mle(model, sampler, steps=10, batch_size=32, rng=0, progress=False)


def test_history_prints_short():
    history, _ = affine_fit(lr=3e-2, test=True)
    text = repr(history)
    assert text.startswith("History('forward KL (MLE)', 300/300 steps, last loss ") and "test_nll" in text
    assert "test_nll_se" not in text and len(text) < 120, text
    assert "1 warning" in repr(train.History("reverse KL", steps=5, warnings=["KL below zero"]))
