"""Maximum-likelihood training of an image flow with early stopping on a validation split, and two baselines.

The data pipeline is :class:`~nflows_np.images.LogitTransform`: every minibatch is
freshly dequantised (a new u ~ U[0, 1)^D at each draw: the flow never sees the same
continuous image twice), taken to logit space, and the flow maximises log p_X(x).
Scores are bits per dimension of the discrete images (see :mod:`nflows_np.images`).

Early stopping: every ``eval_every`` steps the validation bits/dim is measured
(one fixed dequantisation draw, so that evaluations are comparable); training stops
after ``patience`` evaluations without improvement, and the parameters of the best
evaluation are restored. The optimiser (Adam) and its moments persist across the
evaluations: the run is the library's :func:`~nflows_np.train.fit` loop, resumed.

Baselines, fitted to the same data:

- :class:`FullCovarianceGaussian` — x ~ N(μ, Σ) in logit space, μ and Σ the maximum-
  likelihood estimates from several dequantisation draws of the training images.
- :class:`PixelCategorical` — independent pixels, P(k_i = ℓ) = (count_iℓ + 1)/(N + L)
  (add-one smoothing: a level unseen in training keeps a non-zero probability).
  Its dequantised density is piecewise constant, so its bits/dim is exact.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from nflows_np import optim, train
from nflows_np.composition import FlowModel
from nflows_np.images import LogitTransform
from nflows_np.numerics import LOG_2PI
from nflows_np.validation import RngLike, as_generator, check_int, check_real

__all__ = ["FullCovarianceGaussian", "ImageFit", "PixelCategorical", "fit_images"]


@dataclass
class ImageFit:
    """What :func:`fit_images` measured: validation bits/dim at ``eval_steps``, the best step, why it stopped."""

    eval_steps: list[int] = field(default_factory=list)
    val_bpd: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val_bpd: float = math.inf
    stopped: str = ""
    seconds: float = 0.0
    seconds_per_step: float = 0.0

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def fit_images(model: FlowModel, transform: LogitTransform, train_images: Any, val_images: Any, *,
               max_steps: int = 3000, batch_size: int = 64, lr: float = 1e-3, eval_every: int = 100,
               patience: int = 5, init_batch: int = 512, shift: int = 0, ema: float | None = None,
               schedule: Callable[[int], float] | None = None, rng: RngLike = None,
               progress: bool | None = None) -> ImageFit:
    """Fit ``model`` by maximum likelihood on dequantised, logit-transformed images; early stopping.

    Parameters
    ----------
    model : Flow with ``log_prob`` (e.g. ``models.glow_image(...)``)
    transform : LogitTransform
    train_images, val_images : (N, D) integer arrays
    max_steps, batch_size, lr : training budget, minibatch size, Adam's learning rate
    eval_every, patience : validation every ``eval_every`` steps; stop after ``patience``
        evaluations without a new best
    init_batch : training images for ActNorm's data-dependent initialisation (one forward pass)
    shift : augmentation of single-channel square images by random shifts of up to ``shift`` pixels
        (0: none); the validation images are never shifted
    ema : decay of an exponential moving average of the parameters (Polyak averaging), e.g. 0.99;
        when given, the averaged parameters are the ones evaluated, kept and returned
    schedule : callable(t) -> float, optional
        The learning rate of step t is ``lr · schedule(t)``, as in :func:`nflows_np.train.fit_mle`
        (e.g. ``nflows_np.schedules.warmup_cosine(max_steps, warmup=100)``); None: constant.
    rng : the only source of randomness (minibatches, dequantisation)

    Returns
    -------
    ImageFit
        The model is left at the parameters of the best validation evaluation.
    """
    max_steps, eval_every, patience = (check_int(v, f"fit_images: {k}") for k, v in
                                       (("max_steps", max_steps), ("eval_every", eval_every), ("patience", patience)))
    if schedule is not None and not callable(schedule):
        raise TypeError(f"fit_images: schedule must be a function of the step (or None), got {schedule!r}")
    rng = as_generator(rng)
    side = math.isqrt(np.shape(train_images)[1])
    sampler = transform.sampler(train_images, shift, (side, side)) if shift else transform.sampler(train_images)
    val_seed = int(rng.integers(2**63))
    model.forward(sampler(check_int(init_batch, "fit_images: init_batch"), rng))  # ActNorm's first batch
    adam = optim.Adam(model, lr=lr)
    result = ImageFit()
    best = {key: value.copy() for key, value in model.params.items()}
    bar = _bar(max_steps, progress)
    start = time.perf_counter()
    averaged = None if ema is None else {key: value.copy() for key, value in model.params.items()}
    decay = None if ema is None else check_real(ema, "fit_images: ema", minimum=0.0)
    if decay is not None and decay >= 1.0:
        raise ValueError(f"fit_images: ema must be a decay in [0, 1), got {ema!r}")

    done = [0]  # steps taken so far, across the chunks of the loop below

    def step_fn(t: int) -> float:
        if schedule is not None:
            adam.lr = lr * check_real(schedule(done[0]), f"fit_images: schedule({done[0]})", minimum=0.0)
        done[0] += 1
        if averaged is not None:  # θ̄ ← decay·θ̄ + (1 − decay)·θ, with θ after the previous update
            for key, array in model.params.items():
                averaged[key] *= decay
                averaged[key] += (1.0 - decay) * array
        return train.mle_step(model, sampler(batch_size, rng))

    step = 0
    while step < max_steps:
        chunk = min(eval_every, max_steps - step)
        history = train.fit(model, step_fn, None, objective="forward KL (MLE)", steps=chunk, optimizer=adam,
                            progress=False)
        step += len(history.loss)
        result.loss += history.loss
        if bar is not None:
            bar.update(len(history.loss))
        if history.diverged:
            result.stopped = history.message
            break
        current = _swap(model, averaged)
        value = transform.bits_per_dim(model, val_images, rng=val_seed)
        result.val_bpd.append(value)
        if bar is not None:
            bar.set_postfix(val_bpd=f"{value:.3f}")
        if value < result.best_val_bpd:
            result.best_val_bpd, result.best_step = value, step
            for key, array in model.params.items():
                np.copyto(best[key], array)
        _swap(model, current)
        result.eval_steps.append(step)
        if len(result.val_bpd) - 1 - result.val_bpd.index(result.best_val_bpd) >= patience:
            result.stopped = f"early stop at step {step}: no better validation bits/dim for {patience} evaluations"
            break
    else:
        result.stopped = f"reached max_steps = {max_steps}"
    if bar is not None:
        bar.close()
    result.seconds = time.perf_counter() - start
    result.seconds_per_step = result.seconds / max(1, len(result.loss))
    for key, array in model.params.items():
        np.copyto(array, best[key])
    return result


def _swap(model: FlowModel, replacement: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    """Copy ``replacement``'s arrays into ``model.params`` in place; return the previous values (None: no-op)."""
    if replacement is None:
        return None
    previous = {key: value.copy() for key, value in model.params.items()}
    for key, value in model.params.items():
        np.copyto(value, replacement[key])
    return previous


def _bar(steps: int, progress: bool | None) -> Any:
    """A tqdm bar (by default when stderr is a terminal), or None."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="MLE on images", leave=False)


class FullCovarianceGaussian:
    """x ~ N(μ, Σ) on R^D:  log p(x) = −½ (x − μ)ᵀ Σ⁻¹ (x − μ) − ½ log det Σ − (D/2) log 2π.

    ``fit(x)`` sets μ, Σ to the maximum-likelihood estimates (Σ with 1/N).
    Cost: O(N·D² + D³) to fit, O(N·D²) to evaluate.
    """

    def fit(self, x: Any) -> FullCovarianceGaussian:
        x = np.asarray(x, dtype=np.float64)
        self.dim = x.shape[1]
        self.mean = x.mean(axis=0)
        self.cholesky = scipy.linalg.cholesky(np.cov(x, rowvar=False, bias=True), lower=True)
        return self

    def log_prob(self, x: Any) -> np.ndarray:
        # Σ = L Lᵀ:  (x − μ)ᵀ Σ⁻¹ (x − μ) = ‖L⁻¹ (x − μ)‖²,  log det Σ = 2 Σ log L_ii
        white = scipy.linalg.solve_triangular(self.cholesky, (np.asarray(x) - self.mean).T, lower=True)
        return (-0.5 * np.sum(white ** 2, axis=0) - np.sum(np.log(np.diag(self.cholesky)))
                - 0.5 * self.dim * LOG_2PI)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        return self.mean + as_generator(rng).standard_normal((n, self.dim)) @ self.cholesky.T

    @classmethod
    def fit_images(cls, transform: LogitTransform, images: Any, draws: int = 20,
                   rng: RngLike = None) -> FullCovarianceGaussian:
        """Fit to ``draws`` dequantisation draws of ``images`` in ``transform``'s logit space."""
        rng = as_generator(rng)
        return cls().fit(np.concatenate([transform.forward(images, rng)[0] for _ in range(draws)]))


class PixelCategorical:
    """Independent pixels:  P(k) = Π_i π_i[k_i],  π_i[ℓ] = (count_i(ℓ) + 1)/(N + L)  (add-one smoothing).

    bits/dim = −(1/D) Σ_i log₂ π_i[k_i], exact (no dequantisation gap: the
    dequantised density π_i[⌊v_i⌋] is constant on each cell). Cost: O(N·D).
    """

    def __init__(self, levels: int):
        self.levels = check_int(levels, "PixelCategorical: levels", minimum=2)

    def fit(self, images: Any) -> PixelCategorical:
        images = np.asarray(images)
        counts = np.stack([np.bincount(column, minlength=self.levels) for column in images.T])
        self.log_probs = np.log((counts + 1.0) / (images.shape[0] + self.levels))  # (D, L)
        return self

    def log_prob(self, images: Any) -> np.ndarray:
        """log P(k) in nats, shape (N,)."""
        images = np.asarray(images)
        return self.log_probs[np.arange(images.shape[1]), images].sum(axis=1)

    def bits_per_dim(self, images: Any) -> float:
        images = np.asarray(images)
        return float(-np.mean(self.log_prob(images)) / (images.shape[1] * math.log(2.0)))
