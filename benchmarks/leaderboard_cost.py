"""What a leaderboard run costs: ms per training step of every run it makes, both sides, and the totals.

Run:  python benchmarks/leaderboard_cost.py [ROUNDS]   (with torch and normflows importable)

Every model of benchmarks/leaderboard.py (nflows_np, and normflows' for part (c)) at the
leaderboard's batch of 256, timed interleaved: rounds of 10-step blocks, min thread CPU
time per step (load from other processes inflates it less than wall time). The floor of
benchmarks/speed.py (24 products 512×64×64) is timed alongside; the totals are scaled by
(its idle figure 0.88 ms) / (its figure in this run) to estimate an idle machine. They count
the training steps only: sampling minibatches, evaluation and the trainer's bookkeeping come
on top. Writes benchmarks/results/leaderboard_cost.txt.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import leaderboard as lb  # noqa: E402
import normflows_recipes as nr  # noqa: E402
from speed import three_products_floor  # noqa: E402

import nflows_np as nf  # noqa: E402
from nflows_np import models, train  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "leaderboard_cost.txt")
BATCH, IDLE_FLOOR_MS = 256, 0.88
FLOOR_BATCH = 512  # IDLE_FLOOR_MS is the three-products floor of the RealNVP step at batch 512


def numpy_mle(family: str):
    model, rng = models.BUILDERS[family](dim=2, rng=0), np.random.default_rng(0)
    opt = nf.optim.Adam(model, lr=lb.LR[family])

    def step():
        model.zero_grad()
        train.mle_step(model, nf.datasets.sample("moons", BATCH, rng))
        opt.step()

    return step


def numpy_kl(flow: str, depth: int):
    model, rng, target = lb.reverse_model(flow, depth, 0), np.random.default_rng(0), nf.targets.get("U2")
    opt = nf.optim.Adam(model, lr=1e-2)

    def step():
        model.zero_grad()
        train.reverse_kl_step(model, target, model.base.sample(BATCH, rng), 0.5)
        opt.step()

    return step


def torch_mle(family: str):
    torch.manual_seed(0)
    model, rng = nr.MLE_MODELS[family](), np.random.default_rng(0)
    opt = torch.optim.Adam(model.parameters(), lr=lb.LR[family])

    def step():
        opt.zero_grad()
        model.forward_kld(torch.from_numpy(nf.datasets.sample("moons", BATCH, rng))).backward()
        opt.step()

    return step


def torch_kl(flow: str, depth: int):
    torch.manual_seed(0)
    model = nr.normflows.NormalizingFlow(nr.normflows.distributions.DiagGaussian(2, trainable=False),
                                         [nr.KL_LAYERS[flow]((2,)) for _ in range(depth)],
                                         nr.NumpyTarget(nf.targets.get("U2")))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        model.reverse_kld(BATCH, beta=0.5).backward()
        opt.step()

    return step


def main(rounds: int) -> None:
    threadpool_limits(limits=1, user_api="blas")
    torch.set_num_threads(1)
    steps = {("floor",): three_products_floor(FLOOR_BATCH)}
    steps.update({("nflows_np", "mle", f): numpy_mle(f) for f in lb.MLE_FAMILIES})
    steps.update({("normflows", "mle", f): torch_mle(f) for f in nr.MLE_MODELS})
    steps.update({("nflows_np", "kl", f, k): numpy_kl(f, k) for f in lb.REVERSE_FLOWS for k in lb.DEPTHS})
    steps.update({("normflows", "kl", f, k): torch_kl(f, k) for f in nr.KL_LAYERS for k in lb.DEPTHS})
    best = {key: np.inf for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            start = time.thread_time()
            for _ in range(10):
                step()
            best[key] = min(best[key], (time.thread_time() - start) / 10)
    scale = IDLE_FLOOR_MS / (1e3 * best[("floor",)])
    lines = [(f"# leaderboard cost, {time.strftime('%Y-%m-%d %H:%M')}; python benchmarks/leaderboard_cost.py "
              f"{rounds}; ms per step (min thread CPU time), batch {BATCH}; floor {1e3 * best[('floor',)]:.3f} ms "
              f"here, so idle ≈ {scale:.2f} × these (an estimate)")]
    lines += [f"{' '.join(map(str, key)):40s} {1e3 * t:8.2f} ms/step" for key, t in best.items()]
    for name, budget in (("full", lb.FULL), ("quick", lb.QUICK)):
        for side, seeds in (("nflows_np", len(budget.seeds)), ("normflows", 1), ("normflows", len(budget.seeds))):
            mle = sum(t for k, t in best.items() if k[:2] == (side, "mle")) * budget.mle_steps * 8
            kl = sum(t for k, t in best.items() if k[:2] == (side, "kl")) * budget.kl_steps * len(lb.TARGETS)
            minutes = (mle + kl) * seeds * scale / 60
            lines.append(f"{name} run, {side} on {seeds} seed(s): training steps ≈ {minutes:.1f} min at idle")
    print("\n".join(lines))
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
