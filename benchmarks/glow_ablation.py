"""Glow's Figure 3 on the digits: what mixes the channels between couplings — 1×1 convolution, reverse, shuffle.

Run:  python benchmarks/glow_ablation.py [--seeds 0 1] [--steps 1000]

For each mixing and seed: a Glow (L = 2, K = 4, 32 hidden channels, split priors) trained
for a fixed number of steps (Adam lr 1e-3, batch 64; no early stopping, so the curves are
comparable step for step), its validation bits/dim every 100 steps and its final test
bits/dim. Writes benchmarks/results/glow_ablation.txt and lectures/data/glow_ablation.json
(the curves notebook 08 draws).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from nflows_np import models
from nflows_np.datasets.digits import LEVELS, SHAPE, load_digits
from nflows_np.image_train import fit_images
from nflows_np.images import LogitTransform

HERE = os.path.dirname(__file__)
RESULTS = os.path.join(HERE, "results", "glow_ablation.txt")
CURVES = os.path.join(HERE, "..", "lectures", "data", "glow_ablation.json")
ARCHITECTURE = {"levels": 2, "steps": 4, "hidden": 32}
MIXINGS = ("conv1x1", "reverse", "shuffle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    splits = {name: load_digits(name).images for name in ("train", "validation", "test")}
    transform = LogitTransform(LEVELS, 0.05)
    runs = []
    with threadpool_limits(1, "blas"):
        for seed in args.seeds:
            for mixing in MIXINGS:
                model = models.glow_image(SHAPE, **ARCHITECTURE, mixing=mixing, rng=seed)
                rng = np.random.default_rng(seed)
                fit = fit_images(model, transform, splits["train"], splits["validation"], max_steps=args.steps,
                                 eval_every=100, patience=args.steps, rng=rng)
                test = transform.bits_per_dim(model, splits["test"], rng=12345)
                runs.append({"mixing": mixing, "seed": seed, "steps": fit.eval_steps, "val_bpd": fit.val_bpd,
                             "best_val_bpd": fit.best_val_bpd, "test_bpd": test, "seconds": fit.seconds})
                print(f"seed {seed} {mixing:8s} best val {fit.best_val_bpd:.3f} (step {fit.best_step}) "
                      f"test {test:.3f}  {fit.seconds:.0f} s", flush=True)
    lines = [f"Glow mixing ablation on the digits: {ARCHITECTURE}, {args.steps} steps, Adam 1e-3, batch 64",
             (f"run: python benchmarks/glow_ablation.py --seeds {' '.join(map(str, args.seeds))} --steps {args.steps}"
              f"   ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"),
             "validation bits/dim at steps " + " ".join(str(s) for s in runs[0]["steps"])]
    for run in runs:
        lines.append(f"seed {run['seed']} {run['mixing']:8s} " + " ".join(f"{v:.3f}" for v in run["val_bpd"])
                     + f"   test (best-validation parameters) {run['test_bpd']:.3f}")
    for mixing in MIXINGS:
        tests = [r["test_bpd"] for r in runs if r["mixing"] == mixing]
        lines.append(f"mean test {mixing:8s} {np.mean(tests):.3f}")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as handle:
        handle.write(text)
    with open(CURVES, "w") as handle:
        json.dump({"architecture": ARCHITECTURE, "steps": args.steps, "runs": runs}, handle, indent=1)


if __name__ == "__main__":
    main()
