"""Leaderboard part (b) for planar and radial alone: nflows_np vs normflows, median over seeds.

Run:  python benchmarks/residual_grid.py ours FLOW [VARIANT] [--estimator E] [--seeds 0 1 2]
          [--targets U1 …] [--depths 2 8 32]
      /opt/tv/bin/python benchmarks/residual_grid.py normflows FLOW [--seeds 0 1 2]

The budget is the leaderboard's (benchmarks/leaderboard.py, FULL): Adam lr 1e-2, 600 steps,
batch 256, β from 0.01 to 1 over the first half, U1–U4 with the soft wall, K ∈ {2, 8, 32},
KL = F + log Z with F on 10 000 samples. "ours" with VARIANT "library" (the default) is the
leaderboard's own run (the code of ``leaderboard.kl_run``); other variants redraw the layers'
initial parameters as ``recipes.redraw`` does (generator 1000 + seed), and radial "abs-alpha" is a
diagnostic: the layer with normflows' α = |α̂| (``AbsAlphaRadial``, here only). "normflows" runs its layers and
initialisation (``normflows_recipes.kl_run``) on every seed, where the leaderboard runs one.
Prints one line per cell and the row of medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import leaderboard  # noqa: E402
import recipes  # noqa: E402
import nflows_np as nf  # noqa: E402

BUDGET = leaderboard.FULL


class AbsAlphaRadial(nf.Radial):
    """A diagnostic, not a library layer: Radial with normflows' α = |α̂| (the library: α = softplus(α̂)),
    initialised as normflows' (α̂ ~ U(±1/2), β̂ ~ U(−3/2, −1/2), z₀ ~ N(0, I)); β = −α + softplus(β̂) as both."""

    def __init__(self, dim, rng):
        super().__init__(dim, rng)
        rng = np.random.default_rng(rng)
        self.params["alpha_raw"][...] = rng.uniform(-0.5, 0.5)

    def _coefficients(self):
        alpha_raw, beta_raw = float(self.params["alpha_raw"]), float(self.params["beta_raw"])
        alpha = max(abs(alpha_raw), 1e-300)
        return nf.flows.radial._Coefficients(alpha, float(nf.numerics.softplus(beta_raw)), float(np.sign(alpha_raw)),
                                             float(nf.numerics.sigmoid(beta_raw)))


def ours_run(flow: str, variant: str, target_name: str, depth: int, seed: int,
             estimator: str = "plain") -> tuple[float, float, float]:
    """(KL, its standard error, seconds), as ``leaderboard.kl_run`` with the variant's initial parameters
    and ``fit_reverse_kl``'s gradient estimator (``recipes.ESTIMATORS``)."""
    if flow == "radial" and variant == "abs-alpha":
        rng = np.random.default_rng(seed)
        model = nf.FlowModel([AbsAlphaRadial(2, rng) for _ in range(depth)])
    else:
        model = leaderboard.reverse_model(flow, depth, seed)
        recipes.redraw(model, flow, variant, np.random.default_rng(1000 + seed))
    return leaderboard.kl_run(flow, target_name, depth, seed, BUDGET, model=model, **recipes.ESTIMATORS[estimator])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=("ours", "normflows"))
    parser.add_argument("flow", choices=("planar", "radial"))
    parser.add_argument("variant", nargs="?", default="library")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(BUDGET.seeds))
    parser.add_argument("--targets", nargs="+", default=list(leaderboard.TARGETS))
    parser.add_argument("--estimator", choices=tuple(recipes.ESTIMATORS), default="plain")
    parser.add_argument("--depths", type=int, nargs="+", default=list(leaderboard.DEPTHS))
    args = parser.parse_args()
    if args.side == "normflows":
        import normflows_recipes

        def run(target, depth, seed):
            return normflows_recipes.kl_run(args.flow, target, depth, seed, BUDGET.kl_steps, BUDGET.kl_batch,
                                            1e-2, BUDGET.eval_samples)
    else:
        def run(target, depth, seed):
            return ours_run(args.flow, args.variant, target, depth, seed, args.estimator)
    name = f"{args.flow} " + (f"{args.variant} [{args.estimator}]" if args.side == "ours" else "(normflows)")
    cells = []
    with threadpool_limits(limits=1, user_api="blas"):
        for target in args.targets:
            for depth in args.depths:
                runs = [run(target, depth, seed) for seed in args.seeds]
                kls = [r[0] for r in runs]
                cells.append(leaderboard._median(kls))
                print(f"  {name} {target} K={depth:2d} KL {np.round(kls, 3).tolist()} median {cells[-1]:.3f} "
                      f"({statistics.median(r[2] for r in runs):.1f} s/run)", flush=True)
    print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
