"""``train --flow glow --data digits``: a multi-scale Glow on the 8×8 digits, a sample grid and a summary.

Maximum likelihood on dequantised, logit-transformed images with early stopping on
the validation split (:func:`nflows_np.image_train.fit_images`); writes ``model.npz``
(reload with ``nflows_np.models.load``), ``history.json`` and ``samples.png`` (samples at
temperatures 0.7 and 1.0, titled with the test bits/dim) to the output folder (``--out``, by the same rule as every run), and prints the test bits/dim of the Glow and of
the two baselines (full-covariance Gaussian, per-pixel categorical).

With ``--data digits``: ``--steps`` is the most steps (early stopping may end sooner),
``--num-layers`` the steps per level K (default 8), ``--hidden`` the coupling networks'
hidden channels (default 64), the default batch size is 64, and the parameters are averaged
with decay 0.99 (as in benchmarks/glow_digits.py).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from nflows_np import models
from nflows_np.cli.common import UsageError, parse_number
from nflows_np.composition import FlowModel
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.image_train import FullCovarianceGaussian, PixelCategorical, fit_images
from nflows_np.images import LogitTransform, image_grid

DATASET = "digits"
FLOWS = ("glow",)
DEFAULTS = {"levels": 2, "steps": 8, "hidden": 64, "batch_size": 64, "ema": 0.99}
ALPHA = 0.05
TEMPERATURES = (0.7, 1.0)


def digits_options(args: argparse.Namespace, default_batch_size: int) -> dict[str, Any]:
    """The options of a Glow on the digits from the ``train`` sub-command's arguments (a UsageError if bad)."""
    if args.target is not None:
        raise UsageError("give exactly one of --data NAME (maximum likelihood) or --target NAME (reverse KL)")
    if args.flow.lower() not in FLOWS:
        raise UsageError(f"--data digits trains an image flow: --flow must be one of {', '.join(FLOWS)}, got {args.flow!r}")
    batch = parse_number(args.batch_size, "--batch-size", int)
    options = {
        "steps": parse_number(args.steps, "--steps", int),
        "batch_size": DEFAULTS["batch_size"] if batch == default_batch_size else batch,
        "lr": parse_number(args.lr, "--lr", float),
        "seed": parse_number(args.seed, "--seed", int, inclusive=True),
        "depth": DEFAULTS["steps"] if args.num_layers is None else parse_number(args.num_layers, "--num-layers", int),
        "hidden": DEFAULTS["hidden"] if args.hidden is None else parse_number(str(args.hidden).split(",")[0],
                                                                              "--hidden", int),
    }
    return options


def run_digits(options: dict[str, Any], out: str) -> int:
    """Train a Glow on the digits with ``options`` (:func:`digits_options`) into ``out``; print the summary."""
    print(train_digits(out, **options))
    return 0


def train_digits(out: str, steps: int, batch_size: int, lr: float, seed: int, depth: int, hidden: int) -> str:
    """Train, save, draw; return the summary line."""
    splits = {name: load_digits(name).images for name in ("train", "validation", "test")}
    transform = LogitTransform(LEVELS, ALPHA)
    rng = np.random.default_rng(seed)
    model = models.glow_image(SHAPE, levels=DEFAULTS["levels"], steps=depth, hidden=hidden, rng=seed)
    fit = fit_images(model, transform, splits["train"], splits["validation"], max_steps=steps,
                     batch_size=batch_size, lr=lr, eval_every=max(1, min(100, steps // 5)), ema=DEFAULTS["ema"],
                     rng=rng)
    models.save(model, os.path.join(out, "model.npz"), data=DATASET)
    with open(os.path.join(out, "history.json"), "w") as handle:
        json.dump(fit.to_dict(), handle)
    samples = sample_figure(model, transform, rng)  # drawn first: the samples use rng before the test seed
    test_seed = int(rng.integers(2**63))
    glow = transform.bits_per_dim(model, splits["test"], rng=test_seed)
    gaussian = transform.bits_per_dim(FullCovarianceGaussian.fit_images(transform, splits["train"], rng=rng),
                                      splits["test"], rng=test_seed)
    categorical = PixelCategorical(LEVELS).fit(splits["train"]).bits_per_dim(splits["test"])
    run = f"glow (L={DEFAULTS['levels']}, K={depth}, hidden {hidden}) on digits"
    samples.suptitle(f"{run}: test {glow:.3f} bits/dim")
    save_figure(samples, os.path.join(out, "samples.png"))
    return (f"{run} (MLE, {len(fit.loss)} steps, "
            f"{fit.seconds:.1f} s, best validation at step {fit.best_step}): test {glow:.3f} bits/dim; "
            f"full-covariance Gaussian {gaussian:.3f}, per-pixel categorical {categorical:.3f}; pictures in {out}/")


def sample_figure(model: FlowModel, transform: LogitTransform, rng: np.random.Generator) -> Any:
    """A grid of 8×8 samples at each temperature in ``TEMPERATURES``, side by side: the Figure (not saved)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(TEMPERATURES), figsize=(4 * len(TEMPERATURES), 4.6), layout="constrained")
    for ax, temperature in zip(axes, TEMPERATURES):
        x = model.sample(64, rng, temperature=temperature)
        ax.imshow(image_grid(transform.to_unit(x), SHAPE[1:], columns=8, fill=0.0), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"Glow samples, T = {temperature}")
        ax.set_xlabel("8 × 8 pixels per digit")
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def save_figure(figure: Any, path: str) -> str:
    """Write ``figure`` to ``path`` and close it."""
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
