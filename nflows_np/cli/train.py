"""The training sub-commands of ``python -m nflows_np``: ``demo`` (the default job), ``train``, ``plot``, ``list``.

``python -m nflows_np [--out DIR] [--force]``
    The default job (``demo``): a RealNVP fitted to ``moons`` by maximum
    likelihood and a planar flow fitted to ``U1`` by reverse KL; pictures in
    ``DIR/realnvp-moons/`` and ``DIR/planar-U1/`` (DIR: ``nflows_np_out``), and a summary.
``train [--flow NAME] (--data NAME | --target NAME) [--steps N] [--batch-size N] [--lr X] [--warmup F] [--final-lr F] [--seed S] [--out DIR] [--force]``
    One run. ``--data`` means forward KL (MLE; the summary compares the test
    NLL with the data entropy), by default with the dataset's recipe
    (``DATA_RECIPES``: flow, size, steps, lr and its warm-up and cosine decay),
    ``--target`` reverse KL (β annealed from 0.01
    to 1 over the first ``--anneal`` fraction of the steps; the summary gives
    KL(p‖π) = F + log Z). Writes the pictures, ``model.npz`` and ``history.json``
    to ``--out DIR``, by default to ``nflows_np_out/<flow>-<data or target>/``.
``plot MODEL.npz [--out DIR]``
    Redraw the pictures of a saved run (the spec in the file says which flow,
    and which data or target).
``list``
    The flows, the datasets with their entropies, the targets with log Z.

Output folders: a run never silently replaces an earlier one. Without
``--out``, a taken folder gets a numbered suffix (``realnvp-moons-2``); a folder
named by ``--out`` that already holds a run is refused unless ``--force``.

Exit status (``EXIT_STATUS``): 0 the run finished and nothing casts doubt on it;
3 it finished but a WARNING line says why its result is not to be trusted
(training diverged, a KL estimate below zero); 130 interrupted (SIGINT / SIGTERM
stop training at the end of the current step; what was trained is saved);
2 bad arguments (one line, :class:`~nflows_np.cli.common.UsageError`); 1 an
unexpected error (a traceback).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import signal
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nflows_np import datasets, models, targets, train
from nflows_np.cli.common import UsageError, parse_number
from nflows_np.cli.pictures import draw_pictures
from nflows_np.composition import FlowModel

DEFAULT_OUT = "nflows_np_out"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
RUN_FILES = (MODEL_FILE, HISTORY_FILE)  # a folder holding one of these holds a run
TRUSTWORTHY, USAGE, DOUBTFUL, INTERRUPTED = 0, 2, 3, 130
EXIT_STATUS = (f"exit status: {TRUSTWORTHY} finished and trustworthy; {DOUBTFUL} finished, but a WARNING line says "
               f"why not to trust it (diverged, negative KL); {INTERRUPTED} interrupted (Ctrl-C or SIGTERM stop at "
               f"the end of the current step and save what was trained); {USAGE} bad arguments; 1 unexpected error")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
TEST_POINTS = 5000      # MLE: held-out points for the test NLL
EVAL_SAMPLES = 10_000   # reverse KL: model samples per estimate of F and log Z
EVALUATIONS = 5         # evaluations during a run (and one at the end)


@dataclass(frozen=True)
class Run:
    """One training run: the flow, what it fits (``data`` for MLE or ``target`` for reverse KL), and how.

    The lr of step t is ``lr · warmup_cosine(steps, warmup · steps, final_lr)(t)``: a linear
    warm-up over the first ``warmup`` fraction of the steps, then a cosine decay to
    ``final_lr · lr``; ``warmup = 0, final_lr = 1`` (the defaults) is the constant lr.
    """

    flow: str
    data: str | None = None
    target: str | None = None
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    num_layers: int | None = None
    hidden: tuple[int, ...] | None = None
    anneal: float = 0.5
    warmup: float = 0.0
    final_lr: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.flow}-{self.data or self.target}"

    def schedule(self) -> Callable[[int], float] | None:
        """The lr factor per step for ``train.fit_mle`` / ``fit_reverse_kl``; None for a constant lr."""
        if self.warmup == 0 and self.final_lr == 1:
            return None
        return train.warmup_cosine(self.steps, int(self.warmup * self.steps), self.final_lr)


# ``train --data D`` without other options: the flow and settings measured to reach the dataset's
# entropy within 0.10 nats in under a minute here (benchmarks/cli_defaults.py, results/cli_defaults.md).
# A --flow other than the recipe's keeps the recipe's training settings and the builder's architecture.
DATA_RECIPES: dict[str, dict[str, Any]] = {
    data: {"flow": "realnvp", "num_layers": 8, "hidden": (64, 64), "steps": steps, "batch_size": 256, "lr": 2e-3,
           "warmup": 0.02, "final_lr": 0.01}
    for data, steps in (("moons", 6000), ("circles", 10_000), ("rings", 14_000), ("8gaussians", 10_000),
                        ("pinwheel", 8000), ("2spirals", 18_000), ("checkerboard", 12_000), ("swissroll", 8000))
}
# 2spirals: twice the couplings at half the width (a cheaper step) and lr 1e-3; 8 × (64, 64) ends
# between 0.09 and 0.23 by the seed (benchmarks/results/recipes.md, "2spirals in the CLI").
DATA_RECIPES["2spirals"].update(num_layers=16, hidden=(32, 32), lr=1e-3)
ARCHITECTURE = ("num_layers", "hidden")  # recipe keys that belong to the recipe's flow only
DEFAULT_FLOW = {data: recipe["flow"] for data, recipe in DATA_RECIPES.items()}
DEFAULT_TARGET_FLOW = "planar"  # ``train --target T`` without --flow

# The default job. Hidden width 32 (not the builders' 64): on a 2-core machine
# OpenBLAS multithreads the 256×64×64 products, which made a step ~10× slower.
DEMO_RUNS = (
    Run("realnvp", data="moons", steps=1500, lr=3e-3, num_layers=8, hidden=(32, 32)),
    Run("planar", target="U1", steps=1500, lr=1e-2, num_layers=16),
)


# -- the command line ------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo``, ``train``, ``plot`` and ``list`` sub-commands."""
    demo = subparsers.add_parser("demo", help="the default job: RealNVP on moons (MLE) and planar on U1 (reverse KL)",
                                 description="Train the two example flows, draw their pictures, print a summary. "
                                             "Also what `python -m nflows_np [--out DIR]` runs.",
                                 epilog=EXIT_STATUS)
    demo.add_argument("--out", metavar="DIR", help=f"output folder of the two runs (default {DEFAULT_OUT}; "
                                                   "a taken run folder there gets a numbered suffix)")
    demo.add_argument("--force", action="store_true", help="overwrite runs already in --out DIR")
    demo.set_defaults(func=run_demo)

    fit = subparsers.add_parser("train", help="train one flow on a dataset (MLE) or a target (reverse KL)",
                                description="Train a flow. --data NAME: forward KL (maximum likelihood) on a toy "
                                            "dataset; --target NAME: reverse KL to an unnormalised density.",
                                epilog=EXIT_STATUS)
    fit.add_argument("--flow", help=f"one of {', '.join(models.NAMES)} (default: the best measured for the "
                                    f"dataset, see DEFAULT_FLOW; {DEFAULT_TARGET_FLOW} for a target)")
    fit.add_argument("--data", metavar="NAME", help=f"dataset, one of {', '.join(datasets.NAMES)}")
    fit.add_argument("--target", metavar="NAME", help=f"target density, one of {', '.join(targets.NAMES)}")
    recipe = "default: the dataset's recipe (see `list`), for a target {}"
    fit.add_argument("--steps", metavar="N", help=f"optimiser steps ({recipe.format(Run.steps)})")
    fit.add_argument("--batch-size", metavar="N", help=recipe.format(Run.batch_size))
    fit.add_argument("--lr", metavar="X", help=f"Adam's peak learning rate ({recipe.format(Run.lr)})")
    fit.add_argument("--warmup", metavar="FRACTION", help="the lr rises linearly from 0 over this fraction of the "
                                                          f"steps ({recipe.format(Run.warmup)})")
    fit.add_argument("--final-lr", metavar="FRACTION", help="after the warm-up the lr decays along a cosine to this "
                                                            "fraction of --lr; 1 keeps it constant "
                                                            f"({recipe.format(Run.final_lr)})")
    fit.add_argument("--seed", default=Run.seed, metavar="S", help=f"random seed (default {Run.seed})")
    fit.add_argument("--num-layers", metavar="K", help="number of layers / steps (default: the dataset's recipe "
                                                       "for its flow, else the flow's)")
    fit.add_argument("--hidden", metavar="H,H", help="hidden widths of the conditioner networks, e.g. 64,64 "
                                                     "(default: as --num-layers)")
    fit.add_argument("--anneal", default=Run.anneal, metavar="FRACTION",
                     help=f"reverse KL: β rises from 0.01 to 1 over this fraction of the steps (default {Run.anneal})")
    fit.add_argument("--out", metavar="DIR", help=f"output folder (default {DEFAULT_OUT}/FLOW-DATA or "
                                                  f"{DEFAULT_OUT}/FLOW-TARGET, with a numbered suffix if taken)")
    fit.add_argument("--force", action="store_true", help="overwrite the run already in --out DIR")
    fit.set_defaults(func=run_train)

    redraw = subparsers.add_parser("plot", help="redraw the pictures of a saved model",
                                   description="Rebuild a model saved by `train` and draw its pictures again.")
    redraw.add_argument("model", metavar="MODEL.npz", help="a model.npz written by train")
    redraw.add_argument("--out", metavar="DIR", help="output folder (default: the model's folder)")
    redraw.set_defaults(func=run_plot)

    show = subparsers.add_parser("list", help="the flows, datasets (with entropies) and targets (with log Z)")
    show.set_defaults(func=run_list)


def _hidden(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    return tuple(parse_number(part, "--hidden (comma-separated widths)", int) for part in str(text).split(","))


def _choice(name: str, names: tuple[str, ...], what: str) -> str:
    """The canonical spelling of ``name`` among ``names`` (case-insensitive), or a UsageError listing them."""
    canonical = {n.lower(): n for n in names}.get(name.lower())
    if canonical is None:
        raise UsageError(f"unknown {what} {name!r}; choose one of: {', '.join(names)}")
    return canonical


def _output_folder(path: str) -> str:
    """Create ``path`` if needed and check a file can be written there; a UsageError otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise UsageError(f"cannot write to output folder {path!r}: {err.strerror or err}") from None
    return path


def _holds_run(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, name)) for name in RUN_FILES)


def run_folder(base: str, named: bool, force: bool) -> str:
    """Where a run goes: ``base`` itself, unless it already holds a run.

    A folder the user named (``named``) is then refused unless ``force``; a
    default one becomes ``base-2``, ``base-3``, … (the first that holds none).
    """
    if not _holds_run(base) or (named and force):
        return base
    if named:
        raise UsageError(f"output folder {base!r} already holds a run ({', '.join(RUN_FILES)}); "
                         "pass --force to overwrite it, or choose another --out")
    number = 2
    while _holds_run(f"{base}-{number}"):
        number += 1
    return f"{base}-{number}"


def _settings(data: str | None, flow: str) -> dict[str, Any]:
    """The defaults of a run: the dataset's recipe (its architecture only for the recipe's flow), else ``Run``'s."""
    if data is None:
        return {}
    recipe = dict(DATA_RECIPES[data])
    if recipe.pop("flow") != flow:
        recipe = {key: value for key, value in recipe.items() if key not in ARCHITECTURE}
    return recipe


def run_from_args(args: argparse.Namespace) -> Run:
    """The :class:`Run` that ``train``'s arguments describe, every value checked."""
    if (args.data is None) == (args.target is None):
        raise UsageError("give exactly one of --data NAME (maximum likelihood) or --target NAME (reverse KL)")
    data = None if args.data is None else _choice(args.data, datasets.NAMES, "dataset")
    flow = _choice(args.flow if args.flow is not None else DEFAULT_FLOW[data] if data else DEFAULT_TARGET_FLOW,
                   models.NAMES, "flow")
    given = {
        "steps": None if args.steps is None else parse_number(args.steps, "--steps", int),
        "batch_size": None if args.batch_size is None else parse_number(args.batch_size, "--batch-size", int),
        "lr": None if args.lr is None else parse_number(args.lr, "--lr", float),
        "warmup": None if args.warmup is None else parse_number(args.warmup, "--warmup", float, inclusive=True),
        "final_lr": None if args.final_lr is None else parse_number(args.final_lr, "--final-lr", float,
                                                                    inclusive=True),
        "num_layers": None if args.num_layers is None else parse_number(args.num_layers, "--num-layers", int),
        "hidden": _hidden(args.hidden),
    }
    settings = {**_settings(data, flow), **{key: value for key, value in given.items() if value is not None}}
    run = Run(flow=flow, data=data, seed=parse_number(args.seed, "--seed", int, inclusive=True),
              target=None if args.target is None else _choice(args.target, targets.NAMES, "target"),
              anneal=parse_number(args.anneal, "--anneal", float, inclusive=True), **settings)
    for option, value in (("--anneal", run.anneal), ("--final-lr", run.final_lr)):
        if value > 1:
            raise UsageError(f"{option} must be a fraction between 0 and 1, got {value!r}")
    if not run.warmup < 1:
        raise UsageError(f"--warmup must be a fraction of the steps, at least 0 and below 1, got {run.warmup!r}")
    parameters = inspect.signature(models.BUILDERS[run.flow]).parameters
    for key in ARCHITECTURE:
        if getattr(run, key) is not None and key not in parameters:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to {run.flow}")
    return run


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) outside the training loop, which handles both itself."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_train(args: argparse.Namespace) -> int:
    """``train``: one run, its files and its summary line; the exit status says whether to trust it."""
    if args.data is not None and args.data.lower() == "digits":  # images: a multi-scale Glow (cli/images.py)
        from nflows_np.cli.images import digits_options, run_digits
        generic = {"steps": Run.steps, "batch_size": Run.batch_size, "lr": Run.lr}  # no recipe for the images
        args = argparse.Namespace(**{**vars(args), **{k: v for k, v in generic.items() if getattr(args, k) is None}})
        options = digits_options(args, Run.batch_size)
        out = _output_folder(run_folder(args.out or os.path.join(DEFAULT_OUT, f"{args.flow}-digits"),
                                        args.out is not None, args.force))
        print(f"training {args.flow} on digits; output folder {out}/", flush=True)
        return run_digits(options, out)
    run = run_from_args(args)
    out = _output_folder(run_folder(args.out or os.path.join(DEFAULT_OUT, run.name), args.out is not None,
                                    args.force))
    print(f"training {run.flow} on {run.data or run.target}; output folder {out}/", flush=True)
    with _sigterm_as_interrupt():
        line, history = train_and_draw(run, out)
    return _report(history, run, out, line)


def run_demo(args: argparse.Namespace) -> int:
    """The default job: every run of ``DEMO_RUNS``, each in its own sub-folder, then a summary."""
    out = args.out or DEFAULT_OUT
    folders = [run_folder(os.path.join(out, run.name), args.out is not None, args.force) for run in DEMO_RUNS]
    start = time.perf_counter()
    lines, status = [], TRUSTWORTHY
    with _sigterm_as_interrupt():
        for run, folder in zip(DEMO_RUNS, folders):
            folder = _output_folder(folder)
            print(f"training {run.flow} on {run.data or run.target} into {folder}/ ...", flush=True)
            line, history = train_and_draw(run, folder)
            if history.interrupted:
                return _report(history, run, folder, line)
            lines.append(line + "".join(f"\n    WARNING: {w}" for w in _doubts(history)))
            status = max(status, DOUBTFUL if _doubts(history) else TRUSTWORTHY)
    print("\nsummary")
    for line in lines:
        print(f"  {line}")
    print(f"pictures in {', '.join(f + '/' for f in folders)} ({time.perf_counter() - start:.1f} s in all)")
    return status


def _doubts(history: train.History) -> list[str]:
    """Why not to trust a finished run: divergence, then every warning."""
    diverged = [f"{history.message} (--lr)"] if history.diverged else []
    return diverged + list(history.warnings)


def _report(history: train.History, run: Run, out: str, line: str) -> int:
    """Print one run's outcome; return its exit status."""
    if history.interrupted:
        print(f"interrupted at step {len(history.loss)}/{run.steps}; saved to {out}/", flush=True)
        return INTERRUPTED
    print(line)
    for doubt in _doubts(history):
        print(f"WARNING: {doubt}")
    print(f"saved to {out}/")
    return DOUBTFUL if _doubts(history) else TRUSTWORTHY


def run_plot(args: argparse.Namespace) -> int:
    """``plot``: rebuild a saved model from its spec and draw its pictures again."""
    if not os.path.isfile(args.model):
        raise UsageError(f"no such model file: {args.model!r}")
    try:
        model, spec = models.load(args.model)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as err:
        raise UsageError(f"cannot read model {args.model!r}: not a model.npz saved by train ({err})") from None
    folder = os.path.dirname(os.path.abspath(args.model))
    out = _output_folder(folder if args.out is None else args.out)
    history = _read_history(os.path.join(folder, HISTORY_FILE))
    paths = draw_pictures(model, out, np.random.default_rng(0), spec.get("data"), spec.get("target"), history,
                          flow=spec["flow"])
    print(f"wrote {len(paths)} pictures of {spec['flow']} to {out}/")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``list``: the flows, datasets and targets the other commands accept."""
    print("flows (train --flow NAME):")
    for name in models.NAMES:
        print(f"  {name:<10} {models.BUILDERS[name].__doc__.splitlines()[0]}")
    print("datasets (train --data NAME; entropy H in nats, the lowest possible expected test NLL; "
          "the default recipe):")
    for name in datasets.NAMES:
        print(f"  {name:<13} H = {datasets.ENTROPY[name]:.4f}  {describe_recipe(name)}")
    print("targets (train --target NAME; log Z = log ∫ exp(−U) dx):")
    for name in targets.NAMES:
        target = targets.get(name)
        print(f"  {name:<6} log Z = {target.log_z:.6f} over the {target.log_z_domain}")
    return 0


def describe_recipe(data: str) -> str:
    """One line: the flow and settings ``train --data DATA`` uses by default."""
    run = Run(data=data, **DATA_RECIPES[data])
    size = "" if run.num_layers is None else f" ({run.num_layers} layers"
    size += "" if run.hidden is None else f"{', ' if size else ' ('}hidden {','.join(map(str, run.hidden))}"
    lr = f"lr {run.lr:g}"
    if run.schedule() is not None:
        lr += f" ({run.warmup:.0%} warm-up, cosine to {run.final_lr:g}×)"
    return f"{run.flow}{size}{')' if size else ''}, {run.steps} steps of {run.batch_size}, {lr}"


# -- one run --------------------------------------------------------------------------------

def build_model(run: Run, rng: np.random.Generator) -> FlowModel:
    """The model of ``run``: the flow's builder with the run's sizes (2-D)."""
    options: dict[str, Any] = {"dim": 2}
    options.update({key: getattr(run, key) for key in ("num_layers", "hidden") if getattr(run, key) is not None})
    if run.target is not None and "data_init" in inspect.signature(models.BUILDERS[run.flow]).parameters:
        options["data_init"] = False  # reverse KL never calls forward, where ActNorm would initialise
    return models.BUILDERS[run.flow](**options, rng=rng)


def train_and_draw(run: Run, out: str) -> tuple[str, train.History]:
    """Train ``run``, write ``model.npz``, ``history.json`` and the pictures to ``out``.

    Returns the summary line and the history (``interrupted``, ``diverged`` and
    ``warnings`` say whether to trust it). An interrupted run is saved as far as it got.
    """
    model_rng, train_rng, test_rng, picture_rng = (np.random.default_rng(s) for s in
                                                   np.random.SeedSequence(run.seed).spawn(4))
    model = build_model(run, model_rng)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # reported by the summary instead (WARNING lines and the exit status)
        warnings.simplefilter("ignore", train.DivergenceWarning)
        warnings.simplefilter("ignore", train.KLEstimateWarning)
        history, result = _fit(run, model, train_rng, test_rng)
    seconds = time.perf_counter() - start
    models.save(model, os.path.join(out, MODEL_FILE), **({"data": run.data} if run.data else {"target": run.target}))
    with open(os.path.join(out, HISTORY_FILE), "w") as handle:
        json.dump(history.to_dict(), handle)
    draw_pictures(model, out, picture_rng, run.data, run.target, history.to_dict(), flow=run.flow)
    objective = "MLE" if run.data else "reverse KL"
    return (f"{run.flow} on {run.data or run.target} ({objective}, {len(history.loss)} steps, {seconds:.1f} s): "
            f"{result}"), history


def _fit(run: Run, model: FlowModel, train_rng: np.random.Generator,
         test_rng: np.random.Generator) -> tuple[train.History, str]:
    """Forward KL on fresh draws of ``run.data``, or reverse KL to ``run.target``: the history and the summary."""
    every = max(1, run.steps // EVALUATIONS)
    if run.data is not None:
        test = datasets.sample(run.data, TEST_POINTS, test_rng)
        history = train.fit_mle(model, lambda n, rng: datasets.sample(run.data, n, rng), steps=run.steps,
                                batch_size=run.batch_size, lr=run.lr, test_data=test, eval_every=every, rng=train_rng,
                                stop_signals=STOP_SIGNALS, schedule=run.schedule())
        return history, _mle_summary(model, run.data, test)
    target = targets.get(run.target)
    history = train.fit_reverse_kl(model, target, steps=run.steps, batch_size=run.batch_size, lr=run.lr,
                                   beta=train.linear_beta(0.01, 1.0, int(run.anneal * run.steps)),
                                   eval_every=every, eval_samples=EVAL_SAMPLES, rng=train_rng,
                                   stop_signals=STOP_SIGNALS, schedule=run.schedule())
    return history, _reverse_kl_summary(history, target)


def _mle_summary(model: FlowModel, data: str, test: np.ndarray) -> str:
    """Test NLL against the entropy, and KL(π‖p) ≈ mean of log π − log p over the test points."""
    log_model = model.log_prob(test)
    log_true = datasets.log_prob(data, test)
    gap = log_true - log_model
    return (f"test NLL {-np.mean(log_model):.3f} nats; entropy H = {datasets.ENTROPY[data]:.3f}; "
            f"KL(π‖p) ≈ {np.mean(gap):.3f} ± {np.std(gap) / np.sqrt(gap.size):.3f} nats")


def _reverse_kl_summary(history: train.History, target: targets.Target) -> str:
    """F at β = 1, −log Z, and KL(p‖π) = F + log Z where log Z is known."""
    free_energy = history.last("free_energy")
    text = f"F = {free_energy:.3f} nats; IWAE log Z ≈ {history.last('log_z_iwae'):.3f}"
    if target.log_z is not None:
        text += (f"; −log Z = {-target.log_z:.3f}; KL(p‖π) = F + log Z ≈ {history.last('kl'):.3f} "
                 f"± {history.last('free_energy_se'):.3f} nats")
        if target.log_z_domain != "plane":
            text += f" (Z over the {target.log_z_domain})"
    return text


# -- reading a saved run ------------------------------------------------------------------------

def _read_history(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read training history {path!r}: {err}") from None
