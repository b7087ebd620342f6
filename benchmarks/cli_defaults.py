"""What ``python -m nflows_np train --data D`` gives with no other option: measured per toy, through the command.

Run:  python benchmarks/cli_defaults.py [--flows default,maf,glow] [--data moons,...] [--jobs 2]
      python benchmarks/cli_defaults.py --speed [--flows ...] [--data ...]   # the ms/step only
      python benchmarks/cli_defaults.py --render                             # the markdown only

Every result is kept in results/cli_defaults.json by (dataset, flow asked for), so
a run of some toys or flows, or of the timings alone, updates only those; the
markdown is written from all of it (each row says when it was measured).

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
of the same model and batch (``--speed``, meant for a quiet machine). The quality
is per step count, which load does not change. Output: benchmarks/results/cli_defaults.md.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
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
    MODEL_FILE,
    Run,
    build_model,
    describe_recipe,
    run_from_args,
    train_and_draw,
)

RESULTS = os.path.join(os.path.dirname(__file__), "results", "cli_defaults.md")
STORE = os.path.join(os.path.dirname(__file__), "results", "cli_defaults.json")  # every run and timing, by key
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
    return {"data": data, "flow": run.flow, "flow_asked": flow, "steps": run.steps, "recipe": describe_recipe(data),
            "gap": float(np.mean(gap)), "se": float(np.std(gap) / np.sqrt(gap.size)), "train_s": seconds,
            "total_s": total, "diverged": bool(history.diverged), "load": os.getloadavg()[0],
            "measured": time.strftime("%Y-%m-%d %H:%M")}


def _key(data: str, flow: str) -> str:
    return f"{data}/{flow}"


def _cell(result: dict, speed: dict | None) -> str:
    mark = "**" if result["flow_asked"] == "default" else ""
    idle = "idle time not measured" if speed is None else f"~{result['steps'] * speed['ms'] / 1000:.0f} s idle"
    warning = ", diverged" if result["diverged"] else ""
    return (f"{mark}{result['gap']:.3f}{mark} ± {result['se']:.3f} ({result['steps']} steps: {idle}; "
            f"{result['train_s']:.0f} s here at load {result['load']:.0f}, {result['total_s']:.0f} s with the "
            f"pictures{warning})")


def render(store: dict, flows: list[str]) -> str:
    """The markdown of every stored result: a row per toy, a column per flow asked for."""
    rows = ["| data | " + " | ".join(flows) + " | default flow | recipe | gap ≤ 0.10 | ≤ 60 s idle | measured |",
            "| --- |" + " --- |" * (len(flows) + 5)]
    for data in nf.datasets.NAMES:
        found = [store["results"].get(_key(data, flow)) for flow in flows]
        if not any(found):
            continue
        cells = [_cell(r, store["speed"].get(_key(data, f))) if r else "not run" for r, f in zip(found, flows)]
        default, speed = store["results"].get(_key(data, "default")), store["speed"].get(_key(data, "default"))
        gap_ok = "—" if default is None else "yes" if default["gap"] <= TARGET_GAP else "**no**"
        time_ok = ("—" if default is None or speed is None else
                   "yes" if default["steps"] * speed["ms"] / 1000 <= TARGET_SECONDS else "**no**")
        when = max(r["measured"] for r in found if r)
        flow, recipe = ("—", "—") if default is None else (default["flow"], default["recipe"])
        if default is not None and recipe != describe_recipe(data):
            recipe += f" (stale: the recipe is now {describe_recipe(data)})"
        rows.append(f"| {data} | {' | '.join(cells)} | {flow} | {recipe} | {gap_ok} | {time_ok} | {when} |")
    speeds = sorted({(v["measured"], f"{v['load']:.1f}") for v in store["speed"].values()})
    text = [
        "# What `python -m nflows_np train --data D` gives: gap of the test NLL to the entropy (nats) and time",
        "",
        (f"Written by `python benchmarks/cli_defaults.py` from {os.path.basename(STORE)}; BLAS {store.get('blas')}, "
         "one thread. Each run is the command's own (`run_from_args` and `train_and_draw`: training, files and "
         f"pictures) with seed 0. Gap: KL(π‖p) = mean of log π − log p over {TEST_POINTS:,} fresh points ± its "
         "standard error (the quality depends on the step count, not on the machine's load). Idle time: the steps "
         f"times the ms/step, the minimum over {BURSTS} bursts of {BURST_STEPS} steps (`--speed`, measured at "
         f"{', '.join(f'{when} (load {load})' for when, load in speeds) or 'never'}); on a loaded machine that "
         "overestimates. Then the training's wall time in the run and the whole command's (with the pictures). "
         "`default` is the flow `train --data D` picks; another column is `train --flow F --data D` (the dataset's "
         "training settings, the builder's architecture). Target: gap ≤ 0.10 within 60 s idle. "
         "Every figure here is measured; the raw values are in the JSON file."),
        "",
        *rows,
        "",
    ]
    return "\n".join(text)


def load_store() -> dict:
    if not os.path.exists(STORE):
        return {"results": {}, "speed": {}}
    with open(STORE) as handle:
        return json.load(handle)


def save_store(store: dict) -> None:
    """Write ``store`` over what the file holds now (another run of this script may have added to it)."""
    current = load_store()
    for part in ("results", "speed"):
        store[part] = {**current[part], **store[part]}
    with open(STORE, "w") as handle:
        json.dump(store, handle, indent=1, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", default="default", help="comma-separated: default and/or flow names")
    parser.add_argument("--data", default=",".join(nf.datasets.NAMES))
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel")
    parser.add_argument("--speed", action="store_true", help="only the ms/step bursts (run on a quiet machine)")
    parser.add_argument("--render", action="store_true", help="only write the markdown from the JSON file")
    args = parser.parse_args()
    flows, toys = args.flows.split(","), args.data.split(",")
    if "default" in flows:  # the command's choice first
        flows = ["default"] + [f for f in flows if f != "default"]
    store = load_store()
    now = time.strftime("%Y-%m-%d %H:%M")
    if args.render:
        args.speed, toys = True, []  # no run, no timing
    with threadpool_limits(limits=1, user_api="blas"):
        store["blas"] = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                                  for i in threadpool_info() if i.get("user_api") == "blas")
        if args.speed:
            for data in toys:
                for flow in flows:
                    ms = idle_ms_per_step(command_run(data, flow))
                    store["speed"][_key(data, flow)] = {"ms": ms, "measured": now, "load": os.getloadavg()[0]}
                    print(data, flow, f"{ms:.2f} ms/step", flush=True)
    if not args.speed:
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(one_run, data, flow) for data in toys for flow in flows]
            for future in concurrent.futures.as_completed(futures):
                result = future.result()
                store["results"][_key(result["data"], result["flow_asked"])] = result
                save_store(store)  # as each run ends: an interrupted benchmark keeps what it measured
                print(result, flush=True)
    save_store(store)
    text = render(store, [f for f in ("default", *models.NAMES)
                          if any(k.endswith("/" + f) for k in store["results"])])
    with open(RESULTS, "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
