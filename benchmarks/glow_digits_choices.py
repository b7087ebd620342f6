"""What each training choice buys the digits Glow: test bits/dim per recipe and seed, same model size.

Run:  python benchmarks/glow_digits_choices.py --recipes NAME [NAME ...] [--seeds 0 1 2]

Every recipe trains the Glow of benchmarks/glow_digits.py (L = 2, K = 8, 64 hidden channels, learned
split prior unless the recipe says otherwise) on the same split with the same scoring; a recipe changes
the training options of ``fit_images`` and, for two of them, the model's options. Rows are appended to
benchmarks/results/glow_digits_choices.json (one per recipe and seed); ``--table`` prints the summary
(median and worst over the seeds, and the steps taken) that benchmarks/results/glow_digits_choices.md quotes.
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
from nflows_np.schedules import warmup_cosine

RESULTS = os.path.join(os.path.dirname(__file__), "results", "glow_digits_choices.json")
ARCHITECTURE = {"levels": 2, "steps": 8, "hidden": 64}
BASE = {"batch_size": 64, "lr": 1e-3, "ema": 0.99, "eval_every": 100, "patience": 4, "max_steps": 3000}
RECIPES: dict[str, dict] = {
    "baseline": {},
    "no-ema": {"ema": None},
    "ema-0.995": {"ema": 0.995},
    "shift-1": {"shift": 1, "max_steps": 8000, "patience": 8},
    "warmup-cosine": {"warmup": 100, "schedule": "cosine", "max_steps": 1200, "patience": 12},
    "lr-5e-4": {"lr": 5e-4},
    "lr-2e-3-warmup": {"lr": 2e-3, "warmup": 200},
    "batch-128": {"batch_size": 128},
    "batch-32": {"batch_size": 32},
    "tanh": {"model": {"activation": "tanh"}},
    "unconditional-prior": {"model": {"split_prior": False}},
    "no-data-init": {"model": {"data_init": False}},
    "shift-1-cosine": {"shift": 1, "warmup": 200, "schedule": "cosine", "max_steps": 8000, "patience": 80},
}


def run(name: str, seed: int, splits: dict) -> dict:
    recipe = {**BASE, **RECIPES[name]}
    model_options = recipe.pop("model", {})
    warmup, kind = recipe.pop("warmup", 0), recipe.pop("schedule", "constant")
    if kind == "cosine":  # linear warm-up, then a cosine anneal to 0 at max_steps
        recipe["schedule"] = warmup_cosine(recipe["max_steps"], warmup)
    elif warmup:  # linear warm-up, then constant
        recipe["schedule"] = lambda t: min(1.0, (t + 1) / warmup)
    transform = LogitTransform(LEVELS, 0.05)
    rng = np.random.default_rng(seed)
    test_seed = int(rng.integers(2**63))
    model = models.glow_image(SHAPE, **ARCHITECTURE, **model_options, rng=seed)
    fit = fit_images(model, transform, splits["train"], splits["validation"], rng=rng, progress=False, **recipe)
    return {"recipe": name, "seed": seed, "test": transform.bits_per_dim(model, splits["test"], rng=test_seed),
            "val": fit.best_val_bpd, "best_step": fit.best_step, "steps": len(fit.loss), "stopped": fit.stopped,
            "seconds": fit.seconds, "curve": [fit.eval_steps, fit.val_bpd],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def table(rows: list[dict]) -> str:
    lines = ["| recipe | options | test bits/dim per seed | median | worst | best step per seed | steps run |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, options in RECIPES.items():
        mine = sorted((r for r in rows if r["recipe"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        tests = np.array([r["test"] for r in mine])
        lines.append(f"| {name} | {options or 'as glow_digits.py'} | "
                     + " / ".join(f"{t:.3f}" for t in tests)
                     + f" (seeds {', '.join(str(r['seed']) for r in mine)}) | {np.median(tests):.3f} | {tests.max():.3f} | "
                     + " / ".join(str(r["best_step"]) for r in mine) + " | "
                     + " / ".join(str(r["steps"]) for r in mine) + " |")
    return "\n".join(lines)


def _read(path: str) -> list[dict]:
    """The rows stored in ``path`` (none if it does not exist yet)."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return json.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=[], choices=list(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--table", action="store_true", help="print the summary of every stored row")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    rows = _read(args.out)
    splits = {name: load_digits(name).images for name in ("train", "validation", "test")}
    with threadpool_limits(1, "blas"):
        for name in args.recipes:
            for seed in args.seeds:
                row = run(name, seed, splits)
                print(f"{name} seed {seed}: test {row['test']:.3f}  val {row['val']:.3f}  best step {row['best_step']}"
                      f"  steps {row['steps']}  {row['seconds']:.0f} s", flush=True)
                rows = [r for r in _read(args.out) if (r["recipe"], r["seed"]) != (name, seed)] + [row]
                with open(args.out, "w") as handle:
                    json.dump(rows, handle, indent=1)
    if args.table:
        print(table(rows))


if __name__ == "__main__":
    main()
