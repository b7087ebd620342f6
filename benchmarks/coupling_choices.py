"""Coupling choices at the leaderboard's budget and on the lecture's moons recipe (issue 12, item 1).

Run:  python benchmarks/coupling_choices.py [CHOICE ...] [--jobs J] [--only toy|recipe] [--data D,..] [--seeds S,..]
      /opt/tv/bin/python benchmarks/coupling_choices.py "normflows RealNVP (exp)" --only toy --jobs 1
      python benchmarks/coupling_choices.py --render

Each choice is a RealNVP (8 AffineCoupling, alternating masks, hidden (64, 64), ReLU) whose
couplings differ in one thing: the log-scale map (``scale``: 3·tanh(ŝ/3), the default; c·tanh(ŝ/c)
with a larger c; exp, unbounded, as normflows; Glow's σ(ŝ + 2)) or the conditioner's last layer
at initialisation (zeros, the default; PyTorch's uniform ±1/√fan_in, times a factor).

- Toys: each of the 8 toys (``--data``), seeds 0–2 (``--seeds``), the leaderboard's part (a) budget
  (Adam lr 1e-3, 1000 steps, batch 256 of fresh samples, test NLL on 10 000 points;
  benchmarks/leaderboard.py's ``mle_run``, the model built as ``models.realnvp`` builds it).
  The choice "normflows RealNVP (exp)" is normflows' model (benchmarks/normflows_recipes.py) instead.
  The main table has seeds 0–2; a second one compares the default with normflows and tanh10 on
  every seed both were run on, where that is more.
- Moons recipe: tests/test_quality.py's ``realnvp_moons_gap`` (batch 512, 3000 steps, 20 000
  test points), seeds 0–4.

One JSON line per run in results/coupling_choices.jsonl; ``--render`` writes the medians as the
markdown table of results/coupling_choices.md (pasted into results/recipes.md). Runs go to a
pool of J processes (default 2), one BLAS thread each; a diverged run counts as NaN.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf
from nflows_np import train

RESULTS = os.path.join(os.path.dirname(__file__), "results")
LOG = os.path.join(RESULTS, "coupling_choices.jsonl")
TABLE = os.path.join(RESULTS, "coupling_choices.md")
TOY_SEEDS, MOONS_SEEDS = (0, 1, 2), (0, 1, 2, 3, 4)

# name: (AffineCoupling keyword arguments, factor on a uniform ±1/√fan_in last layer, 0 = zeros)
CHOICES = {
    "tanh3 (default)": ({}, 0.0),
    "tanh6": ({"scale_bound": 6.0}, 0.0),
    "tanh10": ({"scale_bound": 10.0}, 0.0),
    "exp": ({"scale": "exp"}, 0.0),
    "sigmoid": ({"scale": "sigmoid"}, 0.0),
    "tanh3, last 0.1": ({}, 0.1),
    "tanh3, last 1": ({}, 1.0),
    "exp, last 0.1": ({"scale": "exp"}, 0.1),
}
DEFAULT = "tanh3 (default)"
NORMFLOWS = "normflows RealNVP (exp)"  # its toys only (--only toy), with /opt/tv/bin/python


def build(choice: str, rng: np.random.Generator, dim: int = 2) -> nf.FlowModel:
    """The choice's RealNVP, drawn from ``rng`` in the order ``models.realnvp`` draws."""
    kwargs, last = CHOICES[choice]
    layers = []
    for k in range(8):
        layer = nf.AffineCoupling([1, 0] if k % 2 == 0 else [0, 1], hidden=(64, 64), rng=rng, **kwargs)
        if last:
            weight, bias = layer.net.params["W3"], layer.net.params["b3"]
            limit = 1.0 / np.sqrt(weight.shape[0])
            weight[...] = last * rng.uniform(-limit, limit, weight.shape)
            bias[...] = last * rng.uniform(-limit, limit, bias.shape)
        layers.append(layer)
    return nf.FlowModel(layers)


def normflows_run(job: tuple[str, str, str, int]) -> dict:
    """normflows' RealNVP (exp scale) on one toy at the toys' budget: benchmarks/normflows_recipes.mle_run."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import normflows_recipes  # needs torch and normflows: run with /opt/tv/bin/python

    _, kind, data, seed = job
    gap, seconds = normflows_recipes.mle_run("realnvp", data, seed, 1000, 256, 1e-3, 10_000)
    return {"choice": NORMFLOWS, "kind": kind, "data": data, "seed": seed, "gap": gap, "seconds": seconds,
            "diverged": not np.isfinite(gap), "measured": time.strftime("%Y-%m-%d %H:%M")}


def run(job: tuple[str, str, str, int]) -> dict:
    """One run: ``(choice, "toy" | "recipe", data, seed)`` → its gap to the entropy and seconds."""
    choice, kind, data, seed = job
    if choice == NORMFLOWS:
        return normflows_run(job)
    steps, batch, n_test = (1000, 256, 10_000) if kind == "toy" else (3000, 512, 20_000)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        # as leaderboard.mle_run and test_quality.realnvp_moons_gap: one Generator seeded with the seed
        model = build(choice, np.random.default_rng(seed))
        test = nf.datasets.sample(data, n_test, rng=10_000 + seed)
        start = time.perf_counter()
        history = train.fit_mle(model, lambda n, r: nf.datasets.sample(data, n, r), steps=steps, batch_size=batch,
                                lr=1e-3, rng=seed, progress=False)
        seconds = time.perf_counter() - start
    gap = train.test_nll(model, test) - nf.datasets.ENTROPY[data] if not history.diverged else float("nan")
    return {"choice": choice, "kind": kind, "data": data, "seed": seed, "gap": gap, "seconds": seconds,
            "diverged": history.diverged, "measured": time.strftime("%Y-%m-%d %H:%M")}


def _median(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return statistics.median(finite) if len(finite) == len(values) and finite else float("nan")


def render() -> str:
    """Medians per choice and toy, and the moons recipe's seeds, from the log (the latest run of each cell)."""
    cells: dict[tuple, float] = {}
    with open(LOG) as handle:
        for line in handle:
            r = json.loads(line)
            cells[(r["choice"], r["kind"], r["data"], r["seed"])] = r["gap"]
    names = list(nf.datasets.NAMES)
    lines = ["| choice | " + " | ".join(names) + " | mean of the 8 | toys won | runs won | moons recipe, seeds 0–4 "
             "| median | max |", "| --- |" + " ---: |" * (len(names) + 3) + " --- | ---: | ---: |"]
    table = {}
    for choice in [NORMFLOWS, *CHOICES]:
        row = [_median([cells.get((choice, "toy", d, s), np.nan) for s in TOY_SEEDS]) for d in names]
        if all(np.isnan(row)):
            continue
        table[choice] = row
    for choice, row in table.items():
        wins, runs = "–", "–"
        if choice != DEFAULT:  # toys whose median beats the default's; (toy, seed) runs that beat the same run
            wins = sum(row[i] < table[DEFAULT][i] for i in range(len(names)))
            runs = sum(cells.get((choice, "toy", d, s), np.inf) < cells[(DEFAULT, "toy", d, s)]
                       for d in names for s in TOY_SEEDS)
            runs = f"{runs}/{len(names) * len(TOY_SEEDS)}"
        recipe = [cells.get((choice, "recipe", "moons", s), np.nan) for s in MOONS_SEEDS]
        recipe_cells = (", ".join(f"{g:.3f}" for g in recipe) + f" | {_median(recipe):.3f} | {np.max(recipe):.3f}"
                        if not all(np.isnan(recipe)) else "not run | | ")
        lines.append(f"| {choice} | " + " | ".join(f"{g:.3f}" for g in row) + f" | {np.mean(row):.3f} | {wins} | {runs} | "
                     + recipe_cells + " |")
    return "\n".join(lines + ["", *more_seeds(cells)])


def more_seeds(cells: dict[tuple, float]) -> list[str]:
    """The default against normflows and tanh10 on every seed both were run on, where that is more than 0–2."""
    lines = ["| toy | against | seeds | default, per seed | median | other, per seed | median | runs won by the default |",
             "| --- | --- | --- | --- | ---: | --- | ---: | ---: |"]
    totals: dict[str, list[int]] = {}
    for data in nf.datasets.NAMES:
        for other in (NORMFLOWS, "tanh10"):
            seeds = sorted(s for (c, k, d, s) in cells if (c, k, d) == (DEFAULT, "toy", data)
                           and (other, "toy", data, s) in cells)
            if len(seeds) <= len(TOY_SEEDS):
                continue
            ours, theirs = ([cells[(c, "toy", data, s)] for s in seeds] for c in (DEFAULT, other))
            lines.append(f"| {data} | {other} | {seeds[0]}–{seeds[-1]} | " + ", ".join(f"{g:.3f}" for g in ours)
                         + f" | {_median(ours):.3f} | " + ", ".join(f"{g:.3f}" for g in theirs)
                         + f" | {_median(theirs):.3f} | {sum(a < b for a, b in zip(ours, theirs))}/{len(seeds)} |")
            won = totals.setdefault(other, [0, 0, 0])  # runs won, runs, toys whose median the default wins
            won[0] += sum(a < b for a, b in zip(ours, theirs))
            won[1] += len(seeds)
            won[2] += _median(ours) < _median(theirs)
    for other, (won, runs, toys) in totals.items():
        lines.append(f"| all of the above | {other} | | | | | | {won}/{runs} runs, {toys} toy medians |")
    return lines if len(lines) > 2 else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choices", nargs="*", help=f"of {[*CHOICES, NORMFLOWS]} (default: all of ours)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--data", help="comma-separated toys (default: all 8)")
    parser.add_argument("--seeds", help="comma-separated seeds of the toy runs (default: 0,1,2; the table uses 0–2)")
    parser.add_argument("--only", choices=("toy", "recipe"), help="run only the toys or only the moons recipe")
    args = parser.parse_args()
    if args.render:
        with open(TABLE, "w") as out:
            out.write(render() + "\n")
        with open(TABLE) as handle:
            print(handle.read())
        return
    toys = args.data.split(",") if args.data else nf.datasets.NAMES
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else TOY_SEEDS
    jobs = []
    for c in args.choices or CHOICES:  # choice by choice: the toys, then the moons recipe
        jobs += [(c, "toy", d, s) for d in toys for s in seeds if args.only != "recipe"]
        jobs += [(c, "recipe", "moons", s) for s in MOONS_SEEDS if args.only != "toy"]
    with ProcessPoolExecutor(args.jobs) as pool, open(LOG, "a") as log:
        for result in pool.map(run, jobs):
            log.write(json.dumps(result) + "\n")
            log.flush()
            print(f"{result['choice']:18s} {result['kind']:6s} {result['data']:12s} seed {result['seed']} "
                  f"gap {result['gap']:.4f} ({result['seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
