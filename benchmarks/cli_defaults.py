"""What ``python -m nflows_np train --data D`` gives with no other option: measured per toy, through the command.

Run:  python benchmarks/cli_defaults.py [--flows default,maf,glow] [--data moons,...] [--jobs 2]

With ``--data`` naming some toys, the rows of the others are kept from the results
file (each row says when it was measured).

For every toy dataset and each flow asked for (``default``: the command's own
choice, ``DEFAULT_FLOW``; another name: ``train --flow NAME --data D``, the
dataset's training settings with the builder's architecture), the arguments go
through the command's parser (``run_from_args``) and the run through its
``train_and_draw`` (training, model.npz, history.json, pictures) into a
temporary folder. The saved model is then scored on 20 000 fresh points: the
gap KL(π‖p) = E_π[log π − log p] (the test NLL minus the entropy, estimated with
the true log-density so its Monte Carlo error is small) and its standard error.

Wall time on a shared machine says little, so each row also has an idle
estimate: the steps times the command's ms/step, the minimum over short bursts
of the same model and batch (taken one at a time, before the runs). The quality
is per step count, which load does not change. Output: benchmarks/results/cli_defaults.md.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import sys
import tempfile
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import nflows_np as nf  # noqa: E402
from nflows_np import models, train  # noqa: E402
from nflows_np.cli import build_parser  # noqa: E402
from nflows_np.cli.train import (  # noqa: E402
    DEFAULT_FLOW,
    MODEL_FILE,
    Run,
    build_model,
    describe_recipe,
    run_from_args,
    train_and_draw,
)

RESULTS = os.path.join(os.path.dirname(__file__), "results", "cli_defaults.md")
TEST_POINTS = 20_000
BURSTS, BURST_STEPS = 7, 40
TARGET_GAP, TARGET_SECONDS = 0.10, 60.0


def command_run(data: str, flow: str) -> Run:
    """The Run of ``train --data DATA`` (with ``--flow FLOW`` unless ``flow`` is "default")."""
    args = ["train", "--data", data] + ([] if flow == "default" else ["--flow", flow])
    return run_from_args(build_parser().parse_args(args))


def idle_ms_per_step(run: Run) -> float:
    """The run's ms/step: the minimum over ``BURSTS`` bursts of ``BURST_STEPS`` steps (one BLAS thread, as fit)."""
    times = []
    for burst in range(BURSTS):
        model = build_model(run, np.random.default_rng(burst))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", train.DivergenceWarning)
            start = time.perf_counter()
            train.fit_mle(model, lambda n, rng: nf.datasets.sample(run.data, n, rng), steps=BURST_STEPS,
                          batch_size=run.batch_size, lr=run.lr, rng=burst, progress=False)
        times.append((time.perf_counter() - start) / BURST_STEPS)
    return 1000 * min(times)


def one_run(data: str, flow: str) -> dict:
    """Gap (nats) with its standard error, training and total seconds of one command run."""
    run = command_run(data, flow)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        line, history = train_and_draw(run, out)
        total = time.perf_counter() - start
        model, _ = models.load(os.path.join(out, MODEL_FILE))
    test = nf.datasets.sample(data, TEST_POINTS, np.random.default_rng([run.seed, 2026]))
    gap = nf.datasets.log_prob(data, test) - model.log_prob(test)
    seconds = float(re.search(r"steps, ([0-9.]+) s\)", line).group(1))
    return {"data": data, "flow": run.flow, "default": flow == "default", "steps": run.steps,
            "gap": float(np.mean(gap)), "se": float(np.std(gap) / np.sqrt(gap.size)), "train_s": seconds,
            "total_s": total, "diverged": history.diverged}


def _cell(result: dict, ms: float) -> str:
    mark = "**" if result["default"] else ""
    warning = ", diverged" if result["diverged"] else ""
    return (f"{mark}{result['gap']:.3f}{mark} ± {result['se']:.3f} ({result['steps']} steps: "
            f"~{result['steps'] * ms / 1000:.0f} s idle; {result['train_s']:.0f} s here, "
            f"{result['total_s']:.0f} s with the pictures{warning})")


def table(results: list[dict], speed: dict[tuple[str, str], float], flows: list[str],
          toys: list[str]) -> dict[str, str]:
    """Markdown rows by toy: one cell per flow, the default flow, its recipe, whether it meets the target."""
    rows = {}
    for data in toys:
        cells, verdict = [], ""
        for flow in flows:
            result = next(r for r in results if r["data"] == data and r["flow"] == (DEFAULT_FLOW[data] if flow ==
                                                                                   "default" else flow)
                          and r["default"] == (flow == "default"))
            ms = speed[(data, flow)]
            cells.append(_cell(result, ms))
            if flow == "default":
                met = result["gap"] <= TARGET_GAP and result["steps"] * ms / 1000 <= TARGET_SECONDS
                verdict = "yes" if met else "**no**"
        rows[data] = (f"| {data} | {' | '.join(cells)} | {DEFAULT_FLOW[data]} | {describe_recipe(data)} | {verdict} "
                      f"| {time.strftime('%Y-%m-%d %H:%M')} |")
    return rows


def header(flows: list[str]) -> list[str]:
    return ["| data | " + " | ".join(flows) + " | default flow | recipe | gap ≤ 0.10 in ≤ 60 s idle | measured |",
            "| --- |" + " --- |" * (len(flows) + 4)]


def kept_rows(path: str, flows: list[str]) -> dict[str, str]:
    """The rows of an earlier results file with the same columns, by dataset."""
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        lines = handle.read().splitlines()
    if header(flows)[0] not in lines:
        return {}
    return {line.split(" | ")[0].strip("| "): line for line in lines
            if line.startswith("| ") and line.split(" | ")[0].strip("| ") in nf.datasets.NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", default="default", help="comma-separated: default and/or flow names")
    parser.add_argument("--data", default=",".join(nf.datasets.NAMES))
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (the idle timings run alone first)")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args()
    flows, toys = args.flows.split(","), args.data.split(",")
    if "default" in flows:  # the command's choice first
        flows = ["default"] + [f for f in flows if f != "default"]
    with threadpool_limits(limits=1, user_api="blas"):
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        speed = {(data, flow): idle_ms_per_step(command_run(data, flow)) for data in toys for flow in flows}
    print({key: round(value, 2) for key, value in speed.items()}, flush=True)
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, data, flow) for data in toys for flow in flows]
        results = []
        for future in concurrent.futures.as_completed(futures):
            results.append(future.result())
            print(results[-1], flush=True)
    rows = {**kept_rows(args.out, flows), **table(results, speed, flows, toys)}
    command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    kernel = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})" for i in blas)
    load = os.getloadavg()[0]
    text = "\n".join([
        "# What `python -m nflows_np train --data D` gives: gap of the test NLL to the entropy (nats) and time",
        "",
        f"Last run {time.strftime('%Y-%m-%d %H:%M')}: `python benchmarks/{command}`; BLAS {kernel}, one thread; "
        f"{args.jobs} runs at a time; load average {load:.1f} at the end. Each run is the command's own "
        "(`run_from_args` and `train_and_draw`: training, files and pictures) with seed 0. Gap: "
        f"KL(π‖p) = mean of log π − log p over {TEST_POINTS:,} fresh points ± its standard error. "
        "Time: the steps times the idle ms/step (the minimum over "
        f"{BURSTS} bursts of {BURST_STEPS} steps, run alone), then the training's wall time here on a shared "
        "machine. `default` is the flow `train --data D` picks; another column is `train --flow F --data D` (the "
        "dataset's training settings, the builder's architecture). The target: gap ≤ 0.10 within 60 s idle.",
        "",
        *header(flows),
        *[rows[data] for data in nf.datasets.NAMES if data in rows],
        "",
    ])
    with open(args.out, "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
