"""The training sub-commands of ``python -m nflows_np``: ``demo`` (the default job), ``train``, ``plot``, ``list``.

``python -m nflows_np [--out DIR]``
    The default job (``demo``): a RealNVP fitted to ``moons`` by maximum
    likelihood and a planar flow fitted to ``U1`` by reverse KL; pictures in
    ``DIR/realnvp-moons/`` and ``DIR/planar-U1/``, and a summary.
``train [--flow NAME] (--data NAME | --target NAME) [--steps N] [--batch-size N] [--lr X] [--seed S] [--out DIR]``
    One run. ``--data`` means forward KL (MLE; the summary compares the test
    NLL with the data entropy), ``--target`` reverse KL (β annealed from 0.01
    to 1 over the first ``--anneal`` fraction of the steps; the summary gives
    KL(p‖π) = F + log Z). Writes the pictures, ``model.npz`` and ``history.json``.
``plot MODEL.npz [--out DIR]``
    Redraw the pictures of a saved run (the spec in the file says which flow,
    and which data or target).
``list``
    The flows, the datasets with their entropies, the targets with log Z.

Bad arguments raise :class:`~nflows_np.cli.common.UsageError`: one line, exit status 2.
"""
from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from nflows_np import datasets, models, targets, train
from nflows_np.cli.common import UsageError, parse_number
from nflows_np.composition import FlowModel

DEFAULT_OUT = "nflows_np_out"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.json"
TEST_POINTS = 5000      # MLE: held-out points for the test NLL
EVAL_SAMPLES = 10_000   # reverse KL: model samples per estimate of F and log Z
EVALUATIONS = 5         # evaluations during a run (and one at the end)
PICTURE_POINTS = 2000  # samples per scatter picture (half as many in the step panels and the GIF)
DATA_BOUNDS = ((-4.0, 4.0), (-4.0, 4.0))  # the window of every toy dataset's pictures
RESOLUTION = 150  # density grids: 150² model evaluations per picture
DPI = 90


@dataclass(frozen=True)
class Run:
    """One training run: the flow, what it fits (``data`` for MLE or ``target`` for reverse KL), and how."""

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

    @property
    def name(self) -> str:
        return f"{self.flow}-{self.data or self.target}"


# ``train --data D`` without --flow: the flow with the smallest gap to the entropy at the
# command's default settings, measured by benchmarks/cli_defaults.py (results/cli_defaults.md).
DEFAULT_FLOW = {"moons": "realnvp", "circles": "realnvp", "rings": "realnvp", "8gaussians": "realnvp",
                "pinwheel": "realnvp", "2spirals": "maf", "checkerboard": "realnvp", "swissroll": "realnvp"}
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
                                             "Also what `python -m nflows_np [--out DIR]` runs.")
    demo.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    demo.set_defaults(func=run_demo)

    fit = subparsers.add_parser("train", help="train one flow on a dataset (MLE) or a target (reverse KL)",
                                description="Train a flow. --data NAME: forward KL (maximum likelihood) on a toy "
                                            "dataset; --target NAME: reverse KL to an unnormalised density.")
    fit.add_argument("--flow", help=f"one of {', '.join(models.NAMES)} (default: the best measured for the "
                                    f"dataset, see DEFAULT_FLOW; {DEFAULT_TARGET_FLOW} for a target)")
    fit.add_argument("--data", metavar="NAME", help=f"dataset, one of {', '.join(datasets.NAMES)}")
    fit.add_argument("--target", metavar="NAME", help=f"target density, one of {', '.join(targets.NAMES)}")
    fit.add_argument("--steps", default=Run.steps, metavar="N", help=f"optimiser steps (default {Run.steps})")
    fit.add_argument("--batch-size", default=Run.batch_size, metavar="N", help=f"default {Run.batch_size}")
    fit.add_argument("--lr", default=Run.lr, metavar="X", help=f"Adam learning rate (default {Run.lr})")
    fit.add_argument("--seed", default=Run.seed, metavar="S", help=f"random seed (default {Run.seed})")
    fit.add_argument("--num-layers", metavar="K", help="number of layers / steps (default: the flow's)")
    fit.add_argument("--hidden", metavar="H,H", help="hidden widths of the conditioner networks, e.g. 64,64")
    fit.add_argument("--anneal", default=Run.anneal, metavar="FRACTION",
                     help=f"reverse KL: β rises from 0.01 to 1 over this fraction of the steps (default {Run.anneal})")
    fit.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
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


def run_from_args(args: argparse.Namespace) -> Run:
    """The :class:`Run` that ``train``'s arguments describe, every value checked."""
    if (args.data is None) == (args.target is None):
        raise UsageError("give exactly one of --data NAME (maximum likelihood) or --target NAME (reverse KL)")
    data = None if args.data is None else _choice(args.data, datasets.NAMES, "dataset")
    flow = args.flow if args.flow is not None else DEFAULT_FLOW[data] if data else DEFAULT_TARGET_FLOW
    run = Run(
        flow=_choice(flow, models.NAMES, "flow"),
        data=data,
        target=None if args.target is None else _choice(args.target, targets.NAMES, "target"),
        steps=parse_number(args.steps, "--steps", int),
        batch_size=parse_number(args.batch_size, "--batch-size", int),
        lr=parse_number(args.lr, "--lr", float),
        seed=parse_number(args.seed, "--seed", int, inclusive=True),
        num_layers=None if args.num_layers is None else parse_number(args.num_layers, "--num-layers", int),
        hidden=_hidden(args.hidden),
        anneal=parse_number(args.anneal, "--anneal", float, inclusive=True),
    )
    if run.anneal > 1:
        raise UsageError(f"--anneal must be a fraction between 0 and 1, got {args.anneal!r}")
    parameters = inspect.signature(models.BUILDERS[run.flow]).parameters
    for key in ("num_layers", "hidden"):
        if getattr(run, key) is not None and key not in parameters:
            raise UsageError(f"--{key.replace('_', '-')} does not apply to {run.flow}")
    return run


def run_train(args: argparse.Namespace) -> int:
    """``train``: one run, its files and its summary line."""
    run = run_from_args(args)
    print(train_and_draw(run, _output_folder(args.out)))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """The default job: every run of ``DEMO_RUNS``, each in its own sub-folder, then a summary."""
    out = _output_folder(args.out)
    start = time.perf_counter()
    lines = []
    for run in DEMO_RUNS:
        print(f"training {run.flow} on {run.data or run.target} ...", flush=True)
        lines.append(train_and_draw(run, _output_folder(os.path.join(out, run.name))))
    print("\nsummary")
    for line in lines:
        print(f"  {line}")
    print(f"pictures in {out}/ ({time.perf_counter() - start:.1f} s in all)")
    return 0


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
    paths = draw_pictures(model, out, np.random.default_rng(0), spec.get("data"), spec.get("target"), history)
    print(f"wrote {len(paths)} pictures of {spec['flow']} to {out}/")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``list``: the flows, datasets and targets the other commands accept."""
    print("flows (train --flow NAME):")
    for name in models.NAMES:
        print(f"  {name:<10} {models.BUILDERS[name].__doc__.splitlines()[0]}")
    print("datasets (train --data NAME; entropy H in nats, the lowest possible expected test NLL):")
    for name in datasets.NAMES:
        print(f"  {name:<13} H = {datasets.ENTROPY[name]:.4f}")
    print("targets (train --target NAME; log Z = log ∫ exp(−U) dx):")
    for name in targets.NAMES:
        target = targets.get(name)
        print(f"  {name:<6} log Z = {target.log_z:.6f} over the {target.log_z_domain}")
    return 0


# -- one run --------------------------------------------------------------------------------

def build_model(run: Run, rng: np.random.Generator) -> FlowModel:
    """The model of ``run``: the flow's builder with the run's sizes (2-D)."""
    options: dict[str, Any] = {"dim": 2}
    options.update({key: getattr(run, key) for key in ("num_layers", "hidden") if getattr(run, key) is not None})
    if run.target is not None and "data_init" in inspect.signature(models.BUILDERS[run.flow]).parameters:
        options["data_init"] = False  # reverse KL never calls forward, where ActNorm would initialise
    return models.BUILDERS[run.flow](**options, rng=rng)


def train_and_draw(run: Run, out: str) -> str:
    """Train ``run``, write ``model.npz``, ``history.json`` and the pictures to ``out``; return a summary line."""
    model_rng, train_rng, test_rng, picture_rng = (np.random.default_rng(s) for s in
                                                   np.random.SeedSequence(run.seed).spawn(4))
    model = build_model(run, model_rng)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)  # reported in the summary instead
        history, result = _fit(run, model, train_rng, test_rng)
    seconds = time.perf_counter() - start
    models.save(model, os.path.join(out, MODEL_FILE), **({"data": run.data} if run.data else {"target": run.target}))
    with open(os.path.join(out, HISTORY_FILE), "w") as handle:
        json.dump(history.to_dict(), handle)
    draw_pictures(model, out, picture_rng, run.data, run.target, history.to_dict())
    objective = "MLE" if run.data else "reverse KL"
    warning = f" WARNING: {history.message}" if history.diverged else ""
    return f"{run.flow} on {run.data or run.target} ({objective}, {len(history.loss)} steps, {seconds:.1f} s): " \
           f"{result}{warning}"


def _fit(run: Run, model: FlowModel, train_rng: np.random.Generator,
         test_rng: np.random.Generator) -> tuple[train.History, str]:
    """Forward KL on fresh draws of ``run.data``, or reverse KL to ``run.target``: the history and the summary."""
    every = max(1, run.steps // EVALUATIONS)
    if run.data is not None:
        test = datasets.sample(run.data, TEST_POINTS, test_rng)
        history = train.fit_mle(model, lambda n, rng: datasets.sample(run.data, n, rng), steps=run.steps,
                                batch_size=run.batch_size, lr=run.lr, test_data=test, eval_every=every, rng=train_rng)
        return history, _mle_summary(model, run.data, test)
    target = targets.get(run.target)
    history = train.fit_reverse_kl(model, target, steps=run.steps, batch_size=run.batch_size, lr=run.lr,
                                   beta=train.linear_beta(0.01, 1.0, int(run.anneal * run.steps)),
                                   eval_every=every, eval_samples=EVAL_SAMPLES, rng=train_rng)
    return history, _reverse_kl_summary(history, target)


def _mle_summary(model: Any, data: str, test: np.ndarray) -> str:
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
        text += f"; −log Z = {-target.log_z:.3f}; KL(p‖π) = F + log Z ≈ {history.last('kl'):.3f} nats"
        if target.log_z_domain != "plane":
            text += f" (Z over the {target.log_z_domain})"
    return text


# -- pictures ---------------------------------------------------------------------------------

def _read_history(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read training history {path!r}: {err}") from None


def _save(figure: Any, path: str) -> str:
    """Write ``figure`` as a 256-colour PNG (a third of the size of matplotlib's RGBA one) and close it."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI, format="png")
    plt.close(figure)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _goal(data: str | None, target: str | None, rng: np.random.Generator) -> tuple[Any, Any, np.ndarray]:
    """What the model was fitted to: (window, log-density, points drawn from it)."""
    if data is not None:
        return DATA_BOUNDS, (lambda x: datasets.log_prob(data, x)), datasets.sample(data, PICTURE_POINTS // 2, rng)
    goal = targets.get(target)
    return goal.bounds, goal.log_prob, goal.sample(PICTURE_POINTS // 2, rng)


def draw_pictures(model: Any, out: str, rng: np.random.Generator, data: str | None = None,
                  target: str | None = None, history: dict | None = None) -> list[str]:
    """Draw a 2-D model's pictures into ``out``; return their paths.

    - ``density.png``: the data / target density | the model density | model samples
      (only with ``data`` or ``target``);
    - ``flow_steps.png``: base samples, then after g_K, …, g_1 (coloured by z₂);
    - ``space.png``: a grid in z mapped by g | samples coloured by z₂ | (with
      ``data`` or ``target``) its points mapped to z by f, over the N(0, I) contours;
    - ``history.png``: the training curves, with the entropy or −log Z line (only with ``history``);
    - ``flow.gif``: the samples moving layer by layer, K + 1 frames.
    """
    from nflows_np import plotting  # imported here: matplotlib would slow every other command's start

    fitted = data is not None or target is not None
    paths = []
    if fitted:
        bounds, log_prob, points = _goal(data, target, rng)
        comparison = plotting.plot_target_vs_model(log_prob, model, bounds, n=PICTURE_POINTS, rng=rng,
                                                   resolution=RESOLUTION)
        comparison.axes[0].set_title(f"{'data' if data else 'target'}: {data or target}")
        paths.append(_save(comparison.axes[0].figure, os.path.join(out, "density.png")))
    steps = plotting.plot_flow_steps(model, PICTURE_POINTS // 2, rng)
    paths.append(_save(steps[0].figure, os.path.join(out, "flow_steps.png")))
    axes = plotting.new_axes(3 if fitted else 2)
    plotting.plot_grid_deformation(model, ax=axes[0])
    plotting.plot_coloured_samples(model, PICTURE_POINTS, rng, ax=axes[1])
    if fitted:
        plotting.plot_latent(model, points, ax=axes[2], title=f"{'data' if data else 'target samples'} in z = f(x)")
    paths.append(_save(axes[0].figure, os.path.join(out, "space.png")))
    if history is not None:
        drawn = plotting.plot_history(history, entropy=datasets.ENTROPY[data] if data else None,
                                      log_z=targets.get(target).log_z if target else None)
        paths.append(_save(drawn.ax.figure, os.path.join(out, "history.png")))
    paths.append(os.path.join(out, "flow.gif"))
    plotting.animate_flow(model, paths[-1], n=PICTURE_POINTS // 2, rng=rng)
    return paths
