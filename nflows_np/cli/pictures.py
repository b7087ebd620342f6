"""The pictures of a trained 2-D flow that ``train``, ``plot`` and the default job write."""
from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from nflows_np import datasets, targets
from nflows_np.composition import FlowModel

__all__ = ["draw_figures", "draw_pictures", "run_title"]

PICTURE_POINTS = 2000  # samples per scatter picture (half as many in the step panels and the GIF)
DATA_BOUNDS = ((-4.0, 4.0), (-4.0, 4.0))  # the window of every toy dataset's pictures
RESOLUTION = 150  # density grids: 150² model evaluations per picture
DPI = 90


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


def run_title(flow: str | None, data: str | None = None, target: str | None = None,
              history: dict | None = None) -> str:
    """The run and its score, as every picture's title says it.

    Data: the last test NLL and its gap to the entropy H (the lowest expected NLL);
    target: the last KL(p‖π) = F + log Z (± its standard error), or F where log Z is unknown.
    Without a history (or its evaluations) only the run is named.
    """
    run = f"{flow or 'flow'} on {data or target}" if (data or target) else (flow or "flow")
    scores = (history or {}).get("eval", {})
    if data is not None and scores.get("test_nll"):
        nll = scores["test_nll"][-1]
        return f"{run}: test NLL {nll:.3f} nats, gap to the entropy {nll - datasets.ENTROPY[data]:.3f}"
    if target is not None and scores.get("kl"):
        return f"{run}: KL(p‖π) = {scores['kl'][-1]:.3f} ± {scores['free_energy_se'][-1]:.3f} nats"
    if target is not None and scores.get("free_energy"):
        return f"{run}: F = {scores['free_energy'][-1]:.3f} nats (log Z unknown)"
    return run


def draw_figures(model: FlowModel, rng: np.random.Generator, data: str | None = None, target: str | None = None,
                 history: dict | None = None, flow: str | None = None) -> dict[str, Any]:
    """The figures of a 2-D model, by file name, each titled with :func:`run_title` (not saved).

    - ``density.png``: the data / target density | the model density | model samples
      (only with ``data`` or ``target``);
    - ``flow_steps.png``: base samples, then after g_K, …, g_1 (coloured by z₂);
    - ``space.png``: a grid in z mapped by g | samples coloured by z₂ | (with
      ``data`` or ``target``) its points mapped to z by f, over the N(0, I) contours;
    - ``history.png``: the training curves, with the entropy or −log Z line (only with ``history``).
    """
    from nflows_np import plotting  # imported here: matplotlib would slow every other command's start

    fitted = data is not None or target is not None
    figures = {}
    if fitted:
        bounds, log_prob, points = _goal(data, target, rng)
        comparison = plotting.plot_target_vs_model(log_prob, model, bounds, n=PICTURE_POINTS, rng=rng,
                                                   resolution=RESOLUTION)
        comparison.axes[0].set_title(f"{'data' if data else 'target'}: {data or target}")
        figures["density.png"] = comparison.axes[0].figure
    figures["flow_steps.png"] = plotting.plot_flow_steps(model, PICTURE_POINTS // 2, rng)[0].figure
    axes = plotting.new_axes(3 if fitted else 2)
    plotting.plot_grid_deformation(model, ax=axes[0])
    plotting.plot_coloured_samples(model, PICTURE_POINTS, rng, ax=axes[1])
    if fitted:
        plotting.plot_latent(model, points, ax=axes[2], title=f"{'data' if data else 'target samples'} in z = f(x)")
    figures["space.png"] = axes[0].figure
    if history is not None:
        drawn = plotting.plot_history(history, entropy=datasets.ENTROPY[data] if data else None,
                                      log_z=targets.get(target).log_z if target else None)
        figures["history.png"] = drawn.ax.figure
    title = run_title(flow, data, target, history)
    for figure in figures.values():
        figure.suptitle(title)
    return figures


def draw_pictures(model: FlowModel, out: str, rng: np.random.Generator, data: str | None = None,
                  target: str | None = None, history: dict | None = None, flow: str | None = None) -> list[str]:
    """Draw a 2-D model's pictures (:func:`draw_figures`) into ``out``, and ``flow.gif``, the samples
    moving layer by layer (K + 1 frames); return their paths."""
    from nflows_np import plotting

    paths = [_save(figure, os.path.join(out, name))
             for name, figure in draw_figures(model, rng, data, target, history, flow).items()]
    paths.append(os.path.join(out, "flow.gif"))
    plotting.animate_flow(model, paths[-1], n=PICTURE_POINTS // 2, rng=rng)
    return paths
