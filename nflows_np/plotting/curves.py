"""Training curves and the animation of a flow's steps."""
from __future__ import annotations

import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes

from nflows_np.base import RngLike
from nflows_np.composition import FlowModel
from nflows_np.plotting.common import (
    HistoryPlot,
    _base_draws,
    _check_planar,
    _sample_bounds,
    _scatter,
    _square,
    _step_titles,
    generative_steps,
    new_axes,
)

# -- training curves --------------------------------------------------------------------

def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_history(history: Any, ax: Axes | None = None, entropy: float | None = None,
                 log_z: float | None = None) -> HistoryPlot:
    """Training curves: the per-step loss, its running mean, and the periodic evaluations.

    Parameters
    ----------
    history : nflows_np.train.History or its ``to_dict()`` (e.g. read from history.json)
    entropy : float, optional
        For MLE: a horizontal line at the data entropy H, the floor of the
        expected test NLL (E_π[−log p] = H + KL(π‖p) ≥ H).
    log_z : float, optional
        For reverse KL: a horizontal line at −log Z, the floor of the free
        energy F (F = KL(p‖π) − log Z ≥ −log Z). Give at most one of the two.

    Returns
    -------
    HistoryPlot
        ``(ax, loss, evaluations, reference)``: the loss Line2D, the
        evaluation markers (or None) and the reference line (or None).
    """
    if entropy is not None and log_z is not None:
        raise ValueError("plot_history: give entropy (MLE) or log_z (reverse KL), not both")
    record = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    loss = np.asarray(record["loss"], dtype=np.float64)
    if ax is None:
        ax = new_axes(1)[0]
        ax.figure.set_size_inches(6.4, 3.6)
    steps = np.arange(1, loss.size + 1)
    line = ax.plot(steps, loss, lw=0.5, alpha=0.4, color="C0", label="minibatch loss")[0]
    window = max(1, loss.size // 50)
    if window > 1:
        ax.plot(steps[window - 1:], _running_mean(loss, window), lw=1.5, color="C0", label=f"running mean ({window})")
    beta = np.asarray(record.get("beta") or [], dtype=np.float64)
    if beta.size and np.any(beta < 1.0):
        ax.axvspan(0, int(np.flatnonzero(beta < 1.0)[-1]) + 1, color="0.9", label="β < 1 (annealing)")
    key = next((k for k in ("test_nll", "free_energy") if k in record.get("eval", {})), None)
    evaluations = None
    if key is not None:
        label = "test NLL" if key == "test_nll" else "F (β = 1)"
        evaluations = ax.plot(record["eval_steps"], record["eval"][key], "o", color="C1", ms=4, label=label)[0]
    reference = None
    if entropy is not None:
        reference = ax.axhline(entropy, color="k", ls="--", lw=1, label=f"entropy H = {entropy:.3f}")
    elif log_z is not None:
        reference = ax.axhline(-log_z, color="k", ls="--", lw=1, label=f"−log Z = {-log_z:.3f}")
    floor = [] if reference is None else [reference.get_ydata()[0]]
    if loss.size:
        top = np.percentile(loss, 95)
        bottom = min([np.min(loss), *floor])
        ax.set_ylim(bottom - 0.05 * (top - bottom + 1e-9), top + 0.05 * (top - bottom + 1e-9))
    ax.set_xlabel("step")
    ax.set_ylabel("nats")
    ax.set_title(record.get("objective", "training"))
    ax.legend(fontsize=8)
    return HistoryPlot(ax, line, evaluations, reference)


# -- animation ----------------------------------------------------------------------------

def animate_flow(model: FlowModel, path: str | os.PathLike, n: int = 1500, rng: RngLike = None, fps: float = 2.0,
                 color_by: int = 1, dpi: int = 100) -> list[np.ndarray]:
    """Write an animated GIF of samples moving through the flow, layer by layer.

    The GIF has exactly K + 1 frames (K = ``len(model.layers)``): frame 0 is
    the base sample z, frame k the points after g_K, …, g_{K−k+1} (see
    :func:`generative_steps`). Every frame carries its own title, so no two
    frames are identical (a GIF writer would merge identical ones). The
    window is fixed over all frames, and points keep their colour (z[color_by]).

    Returns
    -------
    list of numpy.ndarray
        The K + 1 point clouds drawn, one per frame.
    """
    _check_planar(model, "animate_flow")
    z = _base_draws(model, n, rng)
    steps = generative_steps(model, z)
    titles = _step_titles(model)
    ax = new_axes(1)[0]
    fig = ax.figure
    fig.set_size_inches(4.0, 4.0)
    scatter = _scatter(ax, steps[0], z[:, color_by])
    ax.set_xlabel("first coordinate (z₁ at step 0, x₁ at the last)")
    ax.set_ylabel("second coordinate")
    _square(ax, _sample_bounds(steps))

    def draw(k: int) -> tuple:
        scatter.set_offsets(steps[k])
        ax.set_title(f"step {k}/{len(steps) - 1}: {titles[k]}", fontsize=10)
        return (scatter,)

    animation = FuncAnimation(fig, draw, frames=len(steps), blit=False, repeat=False)
    try:
        animation.save(os.fspath(path), writer=PillowWriter(fps=fps), dpi=dpi)
    finally:
        plt.close(fig)
    return steps
