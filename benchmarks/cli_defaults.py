"""Which flow should ``python -m nflows_np train --data D`` use by default? Measured per toy.

Run:  python benchmarks/cli_defaults.py [--flows realnvp,maf,glow] [--data moons,...]

For every toy dataset and each candidate flow, trains exactly what
``python -m nflows_np train --flow F --data D`` trains with the command's default
settings (the builder's default architecture, the ``Run`` defaults of
``nflows_np.cli.train``: steps, batch size, learning rate, seed 0) and records the
gap of the test NLL to the dataset's entropy and the wall time. The CLI's default
flow for a toy (``nflows_np.cli.train.DEFAULT_FLOW``) is the one with the smallest
gap here. Output: benchmarks/results/cli_defaults.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402
from nflows_np import train  # noqa: E402
from nflows_np.cli.train import Run, build_model  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "cli_defaults.md")


def one_run(flow: str, data: str, steps: int = Run.steps) -> tuple[float, float]:
    """(gap to the entropy, seconds) of the CLI's default run of ``flow`` on ``data`` (``steps`` steps)."""
    run = Run(flow, data=data, steps=steps)
    model_rng, train_rng, test_rng, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(run.seed).spawn(4))
    model = build_model(run, model_rng)
    test = nf.datasets.sample(data, 20_000, test_rng)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        train.fit_mle(model, lambda n, rng: nf.datasets.sample(data, n, rng), steps=run.steps,
                      batch_size=run.batch_size, lr=run.lr, rng=train_rng, progress=False)
    seconds = time.perf_counter() - start
    return train.test_nll(model, test) - nf.datasets.ENTROPY[data], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", default="realnvp,maf,glow")
    parser.add_argument("--data", default=",".join(nf.datasets.NAMES))
    parser.add_argument("--steps", type=int, default=Run.steps, help="steps instead of the command's default")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    flows, toys = args.flows.split(","), args.data.split(",")
    run = Run("realnvp", data="moons", steps=args.steps)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        for data in toys:
            results = {flow: one_run(flow, data, args.steps) for flow in flows}
            best = min(results, key=lambda f: results[f][0])
            cells = " | ".join(f"{gap:.3f} ({sec:.0f} s)" for gap, sec in results.values())
            rows.append(f"| {data} | {cells} | {best} |")
            print(rows[-1], flush=True)
    command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    kernel = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})" for i in blas)
    text = "\n".join([
        "# The CLI's default run per toy: gap of the test NLL to the entropy (nats) and wall time",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/{command}`; BLAS {kernel}, "
        f"one thread. Settings: the `train` command's defaults — {run.steps} steps, batch {run.batch_size}, "
        f"Adam lr {run.lr}, seed {run.seed}, the builders' default architectures; test NLL on 20 000 points "
        "(Monte Carlo standard error ≈ 0.01). The wall times were taken on a shared, loaded machine.",
        "",
        "| data | " + " | ".join(flows) + " | default flow |",
        "| --- |" + " --- |" * (len(flows) + 1),
        *rows,
        "",
    ])
    with open(args.out, "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
