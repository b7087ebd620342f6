"""A leaderboard of every flow family on every 2-D problem of the lecture, at a stated budget.

Run:  python benchmarks/leaderboard.py [--quick] [--readme | --readme-only]
      (with a Python where torch and normflows import, for part (c))

(a) Maximum likelihood: every family (NICE, RealNVP, MAF, Glow-style
    ActNorm → LU → coupling, planar, radial, Sylvester) × the 8 toy datasets;
    test NLL on held-out points and its gap to the dataset's entropy (the best
    achievable NLL), median over seeds.
(b) Reverse KL: planar, radial and each Sylvester variant × U1–U4 × K ∈ {2, 8, 32};
    KL(q‖π) = F + log Z (U2–U4 with their soft wall, normalisable on the plane),
    median over seeds, with the Monte Carlo standard error of one estimate.
(c) normflows side by side, in the same run, when torch and normflows import: its
    RealNVP, MAF and Glow-style flows by maximum likelihood (its planar and radial
    flows have no inverse, so no likelihood) and its planar and radial flows by
    reverse KL, at the same budget, seeds, data stream and test points
    (benchmarks/normflows_recipes.py); their rows, marked "(normflows)", sit under
    the matching nflows_np rows. Without them the output says (c) was skipped and why.
(d) Wall time of each run (the median over seeds), on this machine, one BLAS thread
    (and one PyTorch thread).

Each family is built by its ``nflows_np.models`` builder with its default
architecture (printed in the tables' header); the budget (steps, batch, learning
rate) is stated at the top of the output. ``--quick`` runs one seed at a smaller
budget (a smoke run of the whole grid, ≤ 3 minutes on an idle machine); the full
run three seeds (≤ 20 minutes). The full run writes ``benchmarks/results/leaderboard.md``,
the quick one ``leaderboard_quick.md`` (a smoke run never replaces the full tables);
``--readme`` (full run only) then rewrites the README's tables between its markers
from leaderboard.md (``--readme-only`` does only that, from the last full results file).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402
from nflows_np import models, train  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
README = os.path.join(os.path.dirname(__file__), "..", "README.md")
BEGIN, END = "<!-- leaderboard:begin -->", "<!-- leaderboard:end -->"

MLE_FAMILIES = ("nice", "realnvp", "maf", "glow", "planar", "radial", "sylvester")
REVERSE_FLOWS = ("planar", "radial", "sylvester-orthogonal", "sylvester-householder", "sylvester-triangular")
TARGETS = ("U1", "U2", "U3", "U4")
DEPTHS = (2, 8, 32)


@dataclass(frozen=True)
class Budget:
    seeds: tuple[int, ...]
    mle_steps: int
    mle_batch: int
    test_points: int
    kl_steps: int
    kl_batch: int
    eval_samples: int


FULL = Budget(seeds=(0, 1, 2), mle_steps=1000, mle_batch=256, test_points=10_000,
              kl_steps=600, kl_batch=256, eval_samples=10_000)
QUICK = Budget(seeds=(0,), mle_steps=200, mle_batch=256, test_points=2_000,
               kl_steps=200, kl_batch=256, eval_samples=2_000)
# Learning rates: the recipe's 1e-3 for the networks (coupling, MAF, Glow); 1e-2 for the
# residual flows, whose few parameters per layer move too slowly at 1e-3 within the budget.
LR = {"nice": 1e-3, "realnvp": 1e-3, "maf": 1e-3, "glow": 1e-3, "planar": 1e-2, "radial": 1e-2, "sylvester": 1e-2}


def normflows_side() -> tuple[object | None, str]:
    """(benchmarks/normflows_recipes as a module, its description) or (None, why part (c) is skipped)."""
    try:
        import normflows
        import torch
    except ImportError as err:
        return None, f"torch and normflows do not both import here ({err})"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import normflows_recipes

    return normflows_recipes, f"normflows {normflows.__version__}, torch {torch.__version__}"


def part_c_note(side: object | None, about: str, seeds: tuple[int, ...] = ()) -> str:
    """The results file's paragraph on part (c): what ran, or that it was skipped and why."""
    if side is None:
        return (f"(c) normflows side by side: skipped — {about}. Run this script with a Python where torch "
                "and normflows import to add its rows (PyTorch is not a dependency of this project).")
    return (f"(c) normflows side by side ({about}, float64, one thread): the rows marked (normflows), trained in "
            f"this run at the same budget, minibatch stream and test points, on seeds {list(seeds)} (one seed "
            "unless --normflows-all-seeds: normflows' steps cost 4–12× nflows_np's here, and all three seeds "
            "would take the full run past 20 minutes; benchmarks/results/leaderboard_cost.txt). "
            "RealNVP: 8 AffineCouplingBlock "
            "(MLP [1, 64, 64, 2], ReLU, scale exp) with swap Permute; MAF: 5 MaskedAffineAutoregressive (MADE "
            "width 64, two masked ReLU layers, no residual blocks) with swap Permute; Glow: 4 × (ActNorm → "
            "LULinearPermute → AffineCouplingBlock); planar, radial: its Planar / Radial layers and "
            "initialisation, reverse KL on the same target energies (nflows_np's, through torch.autograd). "
            "normflows' planar and radial flows have no inverse, hence no maximum-likelihood rows; it has no "
            "NICE-with-scaling or Sylvester flow.")


def mle_run(family: str, data: str, seed: int, budget: Budget) -> tuple[float, float]:
    """(gap of the test NLL to the entropy, seconds) for one family on one toy."""
    model = models.BUILDERS[family](dim=2, rng=seed)
    test = nf.datasets.sample(data, budget.test_points, rng=10_000 + seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        history = train.fit_mle(model, lambda n, r: nf.datasets.sample(data, n, r), steps=budget.mle_steps,
                                batch_size=budget.mle_batch, lr=LR[family], rng=seed, progress=False)
    seconds = time.perf_counter() - start
    gap = train.test_nll(model, test) - nf.datasets.ENTROPY[data] if not history.diverged else float("nan")
    return gap, seconds


def reverse_model(flow: str, depth: int, seed: int):
    if flow.startswith("sylvester-"):
        return models.sylvester(dim=2, num_layers=depth, variant=flow.split("-")[1], rng=seed)
    return models.BUILDERS[flow](dim=2, num_layers=depth, rng=seed)


def kl_run(flow: str, target_name: str, depth: int, seed: int, budget: Budget, model=None,
           **fit_options) -> tuple[float, float, float]:
    """(KL, its Monte Carlo standard error, seconds) for one flow of ``depth`` layers on one target.

    ``model``: the flow to train (default: ``reverse_model(flow, depth, seed)``); ``fit_options``
    go to ``fit_reverse_kl`` (e.g. its gradient estimator).
    """
    model = reverse_model(flow, depth, seed) if model is None else model
    target = nf.targets.get(target_name)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        history = train.fit_reverse_kl(model, target, steps=budget.kl_steps, batch_size=budget.kl_batch, lr=1e-2,
                                       beta=train.linear_beta(0.01, 1.0, budget.kl_steps // 2), rng=seed,
                                       eval_samples=budget.eval_samples, progress=False, **fit_options)
    seconds = time.perf_counter() - start
    if history.diverged:
        return float("nan"), float("nan"), seconds
    x, log_q = model.sample_with_log_prob(budget.eval_samples, rng=20_000 + seed)
    log_w = log_q - target.log_prob(x)
    return float(log_w.mean() + target.log_z), float(log_w.std() / np.sqrt(log_w.size)), seconds


def _median(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def mle_table(budget: Budget, log, side: object | None = None, side_seeds: tuple[int, ...] = ()) -> list[str]:
    """Part (a), with normflows' rows of part (c) (seeds ``side_seeds``) under the matching families."""
    datasets = nf.datasets.NAMES
    lines = ["| flow | " + " | ".join(datasets) + " | s / run |", "| --- |" + " ---: |" * (len(datasets) + 1)]
    best: dict[str, tuple[float, str]] = {}
    rows = [(family, lambda f, d, seed: mle_run(f, d, seed, budget), budget.seeds) for family in MLE_FAMILIES]
    if side is not None:
        def normflows_run(family, data, seed):
            return side.mle_run(family.split()[0], data, seed, budget.mle_steps, budget.mle_batch,
                                LR[family.split()[0]], budget.test_points)
        for family in reversed(list(side.MLE_MODELS)):
            rows.insert(MLE_FAMILIES.index(family) + 1, (f"{family} (normflows)", normflows_run, side_seeds))
    for family, run, seeds in rows:
        cells, times = [], []
        for data in datasets:
            runs = [run(family, data, seed) for seed in seeds]
            gap = _median([g for g, _ in runs])
            times += [s for _, s in runs]
            log(f"  MLE {family:20s} {data:13s} gaps {[round(g, 3) for g, _ in runs]} "
                f"({statistics.median(s for _, s in runs):.1f} s/run)")
            cells.append(f"{gap:.3f}")
            if np.isfinite(gap) and gap < best.get(data, (np.inf, ""))[0]:
                best[data] = (gap, family)
        lines.append(f"| {family} | " + " | ".join(cells) + f" | {statistics.median(times):.1f} |")
    lines.append("| best | " + " | ".join(best.get(d, (np.nan, "–"))[1] for d in datasets) + " | |")
    return lines


def kl_table(budget: Budget, log, side: object | None = None, side_seeds: tuple[int, ...] = ()) -> list[str]:
    """Part (b), with normflows' rows of part (c) (seeds ``side_seeds``) under the matching flows."""
    header = [f"{t} K={k}" for t in TARGETS for k in DEPTHS]
    lines = ["| flow | " + " | ".join(header) + " | s / run (K=8) |", "| --- |" + " ---: |" * (len(header) + 1)]
    rows = [(flow, lambda f, t, k, seed: kl_run(f, t, k, seed, budget), budget.seeds) for flow in REVERSE_FLOWS]
    if side is not None:
        def normflows_run(flow, target, depth, seed):
            return side.kl_run(flow.split()[0], target, depth, seed, budget.kl_steps, budget.kl_batch, 1e-2,
                               budget.eval_samples)
        for flow in reversed(list(side.KL_LAYERS)):
            rows.insert(REVERSE_FLOWS.index(flow) + 1, (f"{flow} (normflows)", normflows_run, side_seeds))
    for flow, run, seeds in rows:
        cells, times = [], []
        for target in TARGETS:
            for depth in DEPTHS:
                runs = [run(flow, target, depth, seed) for seed in seeds]
                kl = _median([r[0] for r in runs])
                if depth == 8:
                    times += [r[2] for r in runs]
                log(f"  KL  {flow:22s} {target} K={depth:2d} KL {[round(r[0], 3) for r in runs]} "
                    f"± {runs[0][1]:.3f} ({statistics.median(r[2] for r in runs):.1f} s/run)")
                cells.append(f"{kl:.3f}")
        lines.append(f"| {flow} | " + " | ".join(cells) + f" | {statistics.median(times):.1f} |")
    return lines


def blas_kernel() -> str:
    info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})" for i in info) or "?"


def readme_section(results: str) -> str:
    """The README's summary, cut from a leaderboard file: its provenance line and both tables."""
    lines = results.splitlines()
    measured = next(line for line in lines if line.startswith("Measured "))
    tables, current = [], []
    for line in lines + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    mle, kl = tables[0], tables[1]
    side_by_side = any("(normflows)" in line for line in mle + kl)
    return "\n".join([
        f"From `benchmarks/results/leaderboard.md` ({measured[len('Measured '):].split(' by ')[0]}; "
        "budgets, seeds and machine in that file"
        + ("; the rows marked (normflows) are normflows' flows trained in the same run at the same budget, "
           "seeds and test points" if side_by_side else "") + "). Maximum likelihood, gap of the test NLL to the "
        "entropy in nats (0 is the best possible):",
        "", *mle, "",
        "Reverse KL, KL(q‖π) in nats (U2–U4 with the soft wall, so every entry is a KL ≥ 0):",
        "", *kl, "",
    ])


def write_readme() -> None:
    """Rewrite the README between its leaderboard markers from benchmarks/results/leaderboard.md."""
    with open(os.path.join(RESULTS, "leaderboard.md")) as handle:
        section = readme_section(handle.read())
    with open(README) as handle:
        text = handle.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} … {END} section to rewrite")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(README, "w") as handle:
        handle.write(head + BEGIN + "\n" + section + END + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, a smaller budget (a smoke run)")
    parser.add_argument("--readme", action="store_true", help="then rewrite the README's leaderboard section")
    parser.add_argument("--normflows-all-seeds", action="store_true",
                        help="part (c) on every seed (by default on the first: the full run stays within 20 minutes)")
    parser.add_argument("--readme-only", action="store_true",
                        help="only rewrite the README's section from the last results file")
    args = parser.parse_args()
    if args.quick and (args.readme or args.readme_only):
        parser.error("the README takes the full run's tables (benchmarks/results/leaderboard.md): drop --quick")
    if args.readme_only:
        write_readme()
        return
    budget = QUICK if args.quick else FULL
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s]{message}", flush=True)

    side, about = normflows_side()
    log(f" part (c): {about}" if side is not None else f" part (c) skipped: {about}")
    with threadpool_limits(limits=1, user_api="blas"):
        kernel = blas_kernel()
        side_seeds = budget.seeds if args.normflows_all_seeds else budget.seeds[:1]
        mle = mle_table(budget, log, side, side_seeds)
        kl = kl_table(budget, log, side, side_seeds)
    total = time.perf_counter() - start
    stamp = time.strftime("%Y-%m-%d %H:%M")
    text = "\n".join([
        f"# nflows_np leaderboard{' (--quick)' if args.quick else ''}",
        "",
        f"Measured {stamp} by `python benchmarks/leaderboard.py{' --quick' if args.quick else ''}` on "
        f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, BLAS {kernel}, one BLAS thread; "
        f"the whole run took {total / 60:.1f} min.",
        "",
        f"## (a) Maximum likelihood: gap of the test NLL to the entropy (nats), median of seeds {list(budget.seeds)}",
        "",
        f"Budget: Adam, {budget.mle_steps} steps, batch {budget.mle_batch} of fresh samples; lr 1e-3 (NICE, "
        f"RealNVP, MAF, Glow), 1e-2 (planar, radial, Sylvester); test NLL on {budget.test_points} held-out "
        "points. Architectures: the builders' defaults (RealNVP 8 couplings, NICE 4 + scaling, MAF 5, Glow 4 "
        "steps, hidden (64, 64); planar / radial 16 layers, Sylvester 8). Lower is better; 0 is the best possible.",
        "",
        *mle,
        "",
        f"## (b) Reverse KL: KL(q‖π) in nats, median of seeds {list(budget.seeds)}",
        "",
        f"Budget: Adam lr 1e-2, {budget.kl_steps} steps, batch {budget.kl_batch}, β from 0.01 to 1 over the "
        f"first half; KL = F + log Z with F on {budget.eval_samples} samples. U2–U4 with the soft wall beyond "
        "|x₁| = 4 (normalisable on the plane, so the KL is ≥ 0).",
        "",
        *kl,
        "",
        part_c_note(side, about, side_seeds if side is not None else ()),
        "",
    ])
    name = "leaderboard_quick.md" if args.quick else "leaderboard.md"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name), "w") as handle:
        handle.write(text)
    print(text)
    if args.readme:
        write_readme()


if __name__ == "__main__":
    main()
