"""One candidate recipe for ``train --data D``: the gap after N steps, with its learning curve.

Run:  python benchmarks/cli_recipe_sweep.py FLOW DATA [--steps N] [--batch B] [--lr X] [--layers K]
          [--hidden H,H] [--warmup W] [--final F] [--seed S] [--evals E] [--scale tanh|exp|sigmoid]
      python benchmarks/cli_recipe_sweep.py --render

Each run appends one JSON line to results/cli_recipe_sweep.jsonl: the settings, the gap
KL(π‖p) on 20 000 test points (test NLL minus the entropy), the training's wall time,
and the gap on the first 4 000 test points at E evaluations along the way (the curve).
The lr is ``lr · warmup_cosine(steps, W, F)`` (W warm-up steps, decay to F · lr);
without ``--final`` it is constant. ``--render`` writes results/cli_recipe_sweep.md.
This is how the recipes of ``nflows_np.cli.train.DATA_RECIPES`` were chosen.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf
from nflows_np import models, train

LOG = os.path.join(os.path.dirname(__file__), "results", "cli_recipe_sweep.jsonl")
TABLE = os.path.join(os.path.dirname(__file__), "results", "cli_recipe_sweep.md")


def run(a: argparse.Namespace) -> dict:
    """Train one candidate; its gap, seconds and curve."""
    model_rng, train_rng, test_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(a.seed).spawn(4))
    options = {"dim": 2, **({"num_layers": a.layers} if a.layers else {}),
               **({"hidden": tuple(int(h) for h in a.hidden.split(","))} if a.hidden else {}),
               **({"scale": a.scale} if getattr(a, "scale", None) else {})}
    model = models.BUILDERS[a.flow](**options, rng=model_rng)
    test = nf.datasets.sample(a.data, 20_000, test_rng)
    schedule = None if a.final is None else train.warmup_cosine(a.steps, a.warmup, a.final)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        history = train.fit_mle(model, lambda n, rng: nf.datasets.sample(a.data, n, rng), steps=a.steps,
                                batch_size=a.batch, lr=a.lr, rng=train_rng, progress=False, schedule=schedule,
                                test_data=test[:4000] if a.evals else None,
                                eval_every=a.steps // a.evals if a.evals else 0)
    seconds = time.perf_counter() - start
    entropy = nf.datasets.ENTROPY[a.data]
    return {**{k: v for k, v in vars(a).items() if k != "render"}, "gap": train.test_nll(model, test) - entropy,
            "seconds": seconds, "load": os.getloadavg()[0], "measured": time.strftime("%Y-%m-%d %H:%M"),
            "curve": [[t, v - entropy] for t, v in zip(history.eval_steps, history.eval.get("test_nll", []))]}


def _load(result: dict) -> str:
    return "?" if result.get("load") is None else f"{result['load']:.0f}"


def render() -> None:
    """The table of every logged run, by dataset then gap."""
    with open(LOG) as handle:
        runs = [json.loads(line) for line in handle if line.strip()]
    head = ("| data | flow | layers | hidden | steps | batch | lr | warm-up | final lr | seed | gap | curve (step: gap "
            "on 4 000 points) | s (load) |")
    rows = [head, "| --- |" + " --- |" * 12]
    for r in sorted(runs, key=lambda r: (nf.datasets.NAMES.index(r["data"]), r["gap"])):
        curve = ", ".join(f"{t}: {g:.3f}" for t, g in r["curve"])
        flow = r["flow"] + (f" (scale {r['scale']})" if r.get("scale") else "")
        rows.append(f"| {r['data']} | {flow} | {r['layers'] or 'default'} | {r['hidden'] or 'default'} | "
                    f"{r['steps']} | {r['batch']} | {r['lr']:g} | {r['warmup']} | "
                    f"{'constant' if r['final'] is None else r['final']} | {r['seed']} | {r['gap']:.3f} | {curve} | "
                    f"{r['seconds']:.0f} ({_load(r)}) |")
    intro = ("Each row: `python benchmarks/cli_recipe_sweep.py FLOW DATA ...` with the settings shown "
                      "(test NLL on 20 000 points minus the entropy). The quality depends on the step count, "
                      "not on the machine's load; the seconds were taken on a shared machine (load average in "
                      "brackets; ? for the first runs, made with an earlier copy of this script that did not "
                      "record it) and are not idle times.")
    title = "# Candidate recipes for `train --data D`: gap to the entropy after N steps (nats)"
    text = "\n".join([title, "", intro, "", *rows, ""])
    with open(TABLE, "w") as handle:
        handle.write(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flow", nargs="?")
    parser.add_argument("data", nargs="?")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--hidden")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--final", type=float, help="final lr as a fraction of --lr (cosine); none: constant lr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", help="the couplings' log-scale map (realnvp): tanh, exp or sigmoid")
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if not args.render:
        if args.flow is None or args.data is None:
            parser.error("FLOW and DATA are needed unless --render")
        result = run(args)
        with open(LOG, "a") as handle:
            handle.write(json.dumps(result) + "\n")
        print(json.dumps(result), flush=True)
    render()


if __name__ == "__main__":
    main()
