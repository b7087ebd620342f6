"""Glow on the 8×8 digits against two baselines: test bits/dim for three seeds.

Run:  python benchmarks/glow_digits.py [--seeds 0 1 2] [--max-steps 3000] [--save lectures/data/glow_digits.npz]

Writes benchmarks/results/glow_digits.txt (the table) and glow_digits.json (curves),
and saves the first seed's Glow to ``--save`` (the model notebook 08 loads). On a shared machine the
seeds can run as parallel processes, each with its own ``--results`` directory (and ``--save ''`` but
for seed 0), then ``--combine DIR0/glow_digits.json DIR1/glow_digits.json ...`` writes the table.

Data: scikit-learn's digits, fixed split 1297 / 250 / 250 (nflows_np.datasets.digits);
uniform dequantisation, logit with α = 0.05; bits/dim of the discrete images.
Glow: L = 2 levels, K = 8 steps per level, 64 hidden channels (3×3 → 1×1 → 3×3, ReLU), learned split prior,
Adam lr 1e-3, batch 64, parameters averaged with decay 0.99 (Polyak), validation every 100 steps,
early stopping with patience 4 (the averaged parameters of the best validation evaluation are kept), at most
3000 steps. The alternatives measured (shift augmentation, a warm-up and cosine schedule) and why they were
not kept: benchmarks/glow_digits_choices.py and benchmarks/results/glow_digits_choices.md.
Baselines: a full-covariance Gaussian in the same logit space (20 dequantisation draws
of the training images) and independent per-pixel categoricals (add-one smoothing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from nflows_np import models
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.image_train import FullCovarianceGaussian, PixelCategorical, fit_images
from nflows_np.images import LogitTransform

RESULTS = os.path.join(os.path.dirname(__file__), "results")
ARCHITECTURE = {"levels": 2, "steps": 8, "hidden": 64}
TRAINING = {"batch_size": 64, "lr": 1e-3, "ema": 0.99, "eval_every": 100, "patience": 4}
MAX_STEPS = 3000
ALPHA = 0.05


def run_seed(seed: int, max_steps: int, splits: dict) -> tuple[dict, object]:
    transform = LogitTransform(LEVELS, ALPHA)
    rng = np.random.default_rng(seed)
    test_seed = int(rng.integers(2**63))
    gaussian = FullCovarianceGaussian.fit_images(transform, splits["train"], rng=rng)
    categorical = PixelCategorical(LEVELS).fit(splits["train"])
    model = models.glow_image(SHAPE, **ARCHITECTURE, rng=seed)
    fit = fit_images(model, transform, splits["train"], splits["validation"], max_steps=max_steps, rng=rng,
                     progress=False, **TRAINING)
    row = {
        "seed": seed,
        "glow": transform.bits_per_dim(model, splits["test"], rng=test_seed),
        "gaussian": transform.bits_per_dim(gaussian, splits["test"], rng=test_seed),
        "categorical": categorical.bits_per_dim(splits["test"]),
        "max_steps": max_steps, "steps": len(fit.loss), "best_step": fit.best_step, "val_bpd": fit.best_val_bpd, "stopped": fit.stopped,
        "seconds": fit.seconds, "ms_per_step": 1000 * fit.seconds_per_step, "curve": [fit.eval_steps, fit.val_bpd],
    }
    return row, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS)
    parser.add_argument("--save", default=os.path.join("lectures", "data", "glow_digits.npz"),
                        help="where the first seed's model goes ('' : nowhere)")
    parser.add_argument("--results", default=RESULTS, help="directory of glow_digits.txt and glow_digits.json")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="no training: tabulate the rows of these glow_digits.json files (seeds run in parallel)")
    args = parser.parse_args()
    if args.combine:
        rows = []
        for path in args.combine:
            with open(path) as handle:
                rows += json.load(handle)
        rows.sort(key=lambda r: r["seed"])
        write(rows, f"--seeds {' '.join(str(r['seed']) for r in rows)} --max-steps {rows[0]['max_steps']} "
                    "(one process per seed, tabulated with --combine)", args.results)
        return
    splits = {name: load_digits(name).images for name in ("train", "validation", "test")}
    rows = []
    with threadpool_limits(1, "blas"):
        for seed in args.seeds:
            row, model = run_seed(seed, args.max_steps, splits)
            rows.append(row)
            print(f"seed {seed}: glow {row['glow']:.3f}  gaussian {row['gaussian']:.3f}  "
                  f"categorical {row['categorical']:.3f}  (best step {row['best_step']}, {row['seconds']:.0f} s)",
                  flush=True)
            if seed == args.seeds[0] and args.save:
                models.save(model, args.save, data="digits")
    write(rows, f"--seeds {' '.join(map(str, args.seeds))} --max-steps {args.max_steps}", args.results)


def write(rows: list[dict], arguments: str, results: str) -> None:
    """The table (glow_digits.txt) and the rows with their curves (glow_digits.json) in ``results``."""
    lines = [
        "Glow on the 8×8 digits (scikit-learn), test bits/dim of the discrete images (250 test images)",
        f"run: python benchmarks/glow_digits.py {arguments}",
        (f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
         f"1 BLAS thread, float64, machine shared with other jobs (ms/step is not an idle figure)"),
        f"glow: {ARCHITECTURE}, {TRAINING}, max_steps {rows[0]['max_steps']}; logit alpha {ALPHA}",
        "",
        (f"{'seed':>4}  {'glow':>6}  {'full-cov gaussian':>17}  {'per-pixel categorical':>21}  {'best step':>9}  "
         f"{'steps':>5}  {'train s':>7}  {'ms/step':>7}"),
    ]
    for r in rows:
        lines.append(f"{r['seed']:>4}  {r['glow']:6.3f}  {r['gaussian']:17.3f}  {r['categorical']:21.3f}  "
                     f"{r['best_step']:>9}  {r['steps']:>5}  {r['seconds']:7.0f}  {r['ms_per_step']:7.0f}")
    for name, reduce in (("mean", np.mean), ("median", np.median), ("worst", np.max)):
        values = {key: reduce([r[key] for r in rows]) for key in ("glow", "gaussian", "categorical")}
        lines.append(f"{name:>6}{values['glow']:6.3f}  {values['gaussian']:17.3f}  {values['categorical']:21.3f}")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "glow_digits.txt"), "w") as handle:
        handle.write(text)
    with open(os.path.join(results, "glow_digits.json"), "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
