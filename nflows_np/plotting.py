"""Pictures of 2-D flows: densities, samples, how a flow moves space, training curves.

Every function draws into the Axes it is given (``ax=`` / ``axes=``), or into
a new figure when given none, and returns what it drew (artists, and the
arrays behind them), so a caller or a test can check the picture's numbers.
Nothing here calls ``plt.show()``; everything works headless (``MPLBACKEND=Agg``).

Directions follow the lecture: ``model.forward`` is f (x → z), ``model.inverse``
is g = f⁻¹ (z → x), and for ``model.layers = [f_1, …, f_K]`` sampling applies
g_K first: x = g_1 ∘ … ∘ g_K(z).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes

from nflows_np.base import RngLike, as_generator, check_array, check_int
from nflows_np.distributions import StandardNormal

__all__ = [
    "Comparison",
    "DensityPlot",
    "GridDeformation",
    "HistoryPlot",
    "LatentPlot",
    "animate_flow",
    "density_grid",
    "generative_steps",
    "new_axes",
    "plot_coloured_samples",
    "plot_density",
    "plot_flow_steps",
    "plot_grid_deformation",
    "plot_history",
    "plot_latent",
    "plot_samples",
    "plot_target_vs_model",
]

Bounds = tuple[tuple[float, float], tuple[float, float]]
LogProb = Callable[[np.ndarray], np.ndarray]

DEFAULT_BOUNDS: Bounds = ((-4.0, 4.0), (-4.0, 4.0))
PANEL_INCHES = 3.2
COLOUR_MAP = "turbo"
DENSITY_MAP = "viridis"


class DensityPlot(NamedTuple):
    """A heatmap of exp(log_prob): ``density[i, j]`` is the value at (``xx[i, j]``, ``yy[i, j]``)."""

    ax: Axes
    xx: np.ndarray
    yy: np.ndarray
    density: np.ndarray
    mesh: Any  # the QuadMesh, whose array is ``density``


class Comparison(NamedTuple):
    """Target density | model density | model samples, side by side."""

    axes: np.ndarray
    target: DensityPlot
    model: DensityPlot
    samples: Any


class GridDeformation(NamedTuple):
    """Lines of a regular grid (``source``, (L, M, 2)) and their images (``image``) under the flow."""

    ax: Axes
    source: np.ndarray
    image: np.ndarray
    lines: list


class LatentPlot(NamedTuple):
    """Data mapped to latent space, z = f(x), over the standard-normal contours."""

    ax: Axes
    z: np.ndarray
    scatter: Any
    contours: Any


class HistoryPlot(NamedTuple):
    """Training curves; ``reference`` is the horizontal line at H or −log Z (or None)."""

    ax: Axes
    loss: Any
    evaluations: Any
    reference: Any


# -- shared helpers -----------------------------------------------------------------

def new_axes(count: int, ncols: int | None = None, inches: float = PANEL_INCHES) -> np.ndarray:
    """``count`` fresh Axes in one new figure, in rows of at most ``ncols`` (default: one row), each ``inches`` wide."""
    ncols = count if ncols is None else min(count, ncols)
    nrows = math.ceil(count / ncols)
    _, axes = plt.subplots(nrows, ncols, figsize=(inches * ncols, inches * nrows), squeeze=False,
                           layout="compressed")  # "compressed": the layout for fixed-aspect panels
    axes = axes.ravel()
    for extra in axes[count:]:
        extra.remove()
    return axes[:count]


def _axes_or_new(ax: Axes | None) -> Axes:
    return new_axes(1)[0] if ax is None else ax


def _given_axes(axes: Sequence[Axes] | None, count: int, who: str, ncols: int | None = None,
                inches: float = PANEL_INCHES) -> np.ndarray:
    if axes is None:
        return new_axes(count, ncols, inches)
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size != count:
        raise ValueError(f"{who}: needs {count} axes, got {axes.size}")
    return axes


def _check_planar(model: Any, who: str) -> None:
    if getattr(model, "dim", None) != 2:
        raise ValueError(f"{who}: draws 2-D flows only, got a model of dim {getattr(model, 'dim', None)}")


def _check_bounds(bounds: Any, who: str) -> Bounds:
    array = np.asarray(bounds, dtype=np.float64)
    if array.shape != (2, 2) or not np.all(np.isfinite(array)) or np.any(array[:, 1] <= array[:, 0]):
        raise ValueError(f"{who}: bounds must be ((xmin, xmax), (ymin, ymax)) with min < max, got {bounds!r}")
    return (tuple(array[0]), tuple(array[1]))


def _square(ax: Axes, bounds: Bounds | None = None) -> None:
    if bounds is not None:
        ax.set_xlim(*bounds[0])
        ax.set_ylim(*bounds[1])
    ax.set_aspect("equal", adjustable="box")


def _sample_bounds(points: Sequence[np.ndarray], margin: float = 0.1, tail: float = 0.5) -> Bounds:
    """A square window holding all but ``tail`` % at each end of every coordinate of ``points``.

    The default leaves out the extreme 1 % of samples, whose outliers would shrink the picture.
    """
    stacked = np.concatenate([np.asarray(p) for p in points])
    lo, hi = np.percentile(stacked, tail, axis=0), np.percentile(stacked, 100.0 - tail, axis=0)
    centre, half = (lo + hi) / 2.0, (1.0 + margin) * np.max(hi - lo) / 2.0 + 1e-9
    return ((centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half))


def density_grid(log_prob: LogProb, bounds: Bounds = DEFAULT_BOUNDS,
                 resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp(log_prob) on a regular ``resolution`` × ``resolution`` grid.

    Parameters
    ----------
    log_prob : callable (N, 2) -> (N,)
        Any log-density: ``target.log_prob`` (unnormalised is fine),
        ``model.log_prob``, ``lambda x: datasets.log_prob("moons", x)``.
    bounds : ((xmin, xmax), (ymin, ymax))
        The window; the grid includes its edges.
    resolution : int
        Points per axis.

    Returns
    -------
    xx, yy, density : numpy.ndarray
        Each (resolution, resolution), ``xx, yy = meshgrid(linspace(xmin, xmax, R), linspace(ymin, ymax, R))``
        and ``density[i, j] = exp(log_prob((xx[i, j], yy[i, j])))``. Cost: one
        call of ``log_prob`` on R² points.
    """
    (x_lo, x_hi), (y_lo, y_hi) = _check_bounds(bounds, "density_grid")
    resolution = check_int(resolution, "density_grid: resolution", minimum=2)
    xx, yy = np.meshgrid(np.linspace(x_lo, x_hi, resolution), np.linspace(y_lo, y_hi, resolution))
    log_density = np.asarray(log_prob(np.column_stack([xx.ravel(), yy.ravel()])), dtype=np.float64)
    return xx, yy, np.exp(log_density).reshape(xx.shape)


def generative_steps(model: Any, z: np.ndarray) -> list[np.ndarray]:
    """The path of ``z`` through the generative direction, layer by layer.

    Returns the K + 1 arrays ``[z, g_K(z), g_{K−1}(g_K(z)), …, x = g(z)]`` for
    ``model.layers = [f_1, …, f_K]`` (g_k = f_k⁻¹): the points the slide
    "Example of a 4-step flow" draws.
    """
    steps = [check_array(z, model.dim, "generative_steps", "z")]
    for layer in reversed(model.layers):
        steps.append(layer.inverse(steps[-1])[0])
    return steps


def _step_titles(model: Any) -> list[str]:
    """Panel titles for ``generative_steps``: the base, then 'g_k (LayerName)' for k = K … 1."""
    count = len(model.layers)
    return ["z ~ N(0, I)"] + [f"g$_{{{k}}}$ ({model.layers[k - 1].name})" for k in range(count, 0, -1)]


def _scatter(ax: Axes, points: np.ndarray, colour: Any = None, size: float = 3.0) -> Any:
    """Small dots; ``colour`` is None, a colour string, or (N,) values mapped through ``COLOUR_MAP``."""
    if colour is None or isinstance(colour, str):
        return ax.scatter(points[:, 0], points[:, 1], s=size, c=colour or "C0", alpha=0.6, linewidths=0)
    low, high = np.percentile(colour, [2.0, 98.0])  # the full range would leave most points mid-colour
    return ax.scatter(points[:, 0], points[:, 1], s=size, c=colour, cmap=COLOUR_MAP, vmin=low, vmax=high,
                      alpha=0.8, linewidths=0)


def _base_draws(model: Any, n: int, rng: RngLike) -> np.ndarray:
    return model.base.sample(n, as_generator(rng))


# -- densities and samples ------------------------------------------------------------

def plot_density(log_prob: LogProb, bounds: Bounds = DEFAULT_BOUNDS, resolution: int = 200, ax: Axes | None = None,
                 contours: bool = True, title: str | None = None) -> DensityPlot:
    """Heatmap of the density exp(log_prob) on a grid (see :func:`density_grid`), with optional contours.

    Returns
    -------
    DensityPlot
        ``(ax, xx, yy, density, mesh)``; the QuadMesh ``mesh`` shows exactly
        ``density``, each cell centred on its grid point.
    """
    ax = _axes_or_new(ax)
    xx, yy, density = density_grid(log_prob, bounds, resolution)
    mesh = ax.pcolormesh(xx, yy, density, shading="nearest", cmap=DENSITY_MAP, rasterized=True)
    if contours and np.ptp(density) > 0:
        ax.contour(xx, yy, density, levels=6, colors="white", linewidths=0.5, alpha=0.7)
    if title:
        ax.set_title(title)
    _square(ax, _check_bounds(bounds, "plot_density"))
    return DensityPlot(ax, xx, yy, density, mesh)


def plot_samples(x: Any, ax: Axes | None = None, kind: str = "scatter", bounds: Bounds | None = None,
                 color: Any = None, bins: int = 100) -> Any:
    """Samples as a scatter plot or a 2-D histogram.

    Parameters
    ----------
    x : (N, 2) array
    kind : {"scatter", "hist2d"}
    bounds : ((xmin, xmax), (ymin, ymax)), optional
        The window (and the histogram's range); default: fit the samples.
    color : str or (N,) array, optional
        A matplotlib colour string, or values shown through a colour map (scatter only).

    Returns
    -------
    The PathCollection (scatter) or the QuadMesh (hist2d).
    """
    x = check_array(x, 2, "plot_samples", "x")
    ax = _axes_or_new(ax)
    bounds = None if bounds is None else _check_bounds(bounds, "plot_samples")
    if kind == "scatter":
        artist = _scatter(ax, x, color)
    elif kind == "hist2d":
        artist = ax.hist2d(x[:, 0], x[:, 1], bins=bins, range=bounds, cmap=DENSITY_MAP, rasterized=True)[3]
    else:
        raise ValueError(f"plot_samples: kind must be 'scatter' or 'hist2d', got {kind!r}")
    _square(ax, bounds)
    return artist


def plot_target_vs_model(target_log_prob: LogProb, model: Any, bounds: Bounds = DEFAULT_BOUNDS,
                         axes: Sequence[Axes] | None = None, n: int = 2000, rng: RngLike = None,
                         resolution: int = 200) -> Comparison:
    """Three panels: the target density | the model density p(x|θ) | n model samples x = g(z).

    The target may be unnormalised (each panel has its own colour scale).
    """
    _check_planar(model, "plot_target_vs_model")
    axes = _given_axes(axes, 3, "plot_target_vs_model")
    target = plot_density(target_log_prob, bounds, resolution, axes[0], title="target")
    fitted = plot_density(model.log_prob, bounds, resolution, axes[1], title="model p(x|θ)")
    samples = plot_samples(model.sample(n, as_generator(rng)), axes[2], bounds=bounds)
    axes[2].set_title("model samples x = g(z)")
    return Comparison(axes, target, fitted, samples)


# -- how a flow moves space -------------------------------------------------------------

def plot_grid_deformation(model: Any, bounds: Bounds = ((-3.0, 3.0), (-3.0, 3.0)), direction: str = "inverse",
                          n_lines: int = 15, resolution: int = 100, ax: Axes | None = None) -> GridDeformation:
    """A regular grid pushed through the flow: through g (z → x) or through f (x → z).

    ``source`` holds ``n_lines`` lines of constant first coordinate, then
    ``n_lines`` of constant second coordinate, each of ``resolution`` points
    spanning ``bounds``; ``image[l] = g(source[l])`` for ``direction="inverse"``
    (the grid lives in z) or ``f(source[l])`` for ``"forward"`` (it lives in x).
    Cost: one pass of 2 · n_lines · resolution points.
    """
    _check_planar(model, "plot_grid_deformation")
    (x_lo, x_hi), (y_lo, y_hi) = _check_bounds(bounds, "plot_grid_deformation")
    if direction not in ("inverse", "forward"):
        raise ValueError(f"plot_grid_deformation: direction must be 'inverse' or 'forward', got {direction!r}")
    along_x, along_y = np.linspace(x_lo, x_hi, resolution), np.linspace(y_lo, y_hi, resolution)
    constant_x = [np.column_stack([np.full(resolution, v), along_y]) for v in np.linspace(x_lo, x_hi, n_lines)]
    constant_y = [np.column_stack([along_x, np.full(resolution, v)]) for v in np.linspace(y_lo, y_hi, n_lines)]
    source = np.stack(constant_x + constant_y)
    push = model.inverse if direction == "inverse" else model.forward
    image = push(source.reshape(-1, 2))[0].reshape(source.shape)
    ax = _axes_or_new(ax)
    lines = [ax.plot(line[:, 0], line[:, 1], lw=0.8, color="C0" if i < n_lines else "C3")[0]
             for i, line in enumerate(image)]
    names = ("z", "x = g(z)") if direction == "inverse" else ("x", "z = f(x)")
    ax.set_title(f"grid in {names[0]} mapped to {names[1]}")
    _square(ax, _sample_bounds([image.reshape(-1, 2)], margin=0.05, tail=0.0))
    return GridDeformation(ax, source, image, lines)


def plot_coloured_samples(model: Any, n: int = 2000, rng: RngLike = None, ax: Axes | None = None,
                          color_by: int = 1) -> Any:
    """Samples x = g(z), each coloured by its base coordinate z[color_by] (e.g. z₂ for ``color_by=1``).

    The colours show where each region of the base lands. Returns the PathCollection.
    """
    _check_planar(model, "plot_coloured_samples")
    z = _base_draws(model, n, rng)
    x = model.inverse(z)[0]
    ax = _axes_or_new(ax)
    artist = _scatter(ax, x, z[:, color_by])
    ax.set_title(f"x = g(z), coloured by z$_{{{color_by + 1}}}$")
    _square(ax, _sample_bounds([x]))
    return artist


def plot_flow_steps(model: Any, n: int = 1000, rng: RngLike = None, axes: Sequence[Axes] | None = None,
                    color_by: int = 1, ncols: int = 6) -> np.ndarray:
    """The slide "Example of a K-step flow": base samples, then after g_K, g_{K−1}, …, g_1.

    K + 1 panels (K = ``len(model.layers)``), each sample coloured by its base
    coordinate z[color_by] throughout, so one can follow the points. Returns
    the K + 1 Axes; panel k holds ``generative_steps(model, z)[k]``.
    """
    _check_planar(model, "plot_flow_steps")
    z = _base_draws(model, n, rng)
    steps = generative_steps(model, z)
    axes = _given_axes(axes, len(steps), "plot_flow_steps", ncols, inches=2.4)
    for ax, points, title in zip(axes, steps, _step_titles(model)):
        _scatter(ax, points, z[:, color_by])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        _square(ax, _sample_bounds([points]))
    return axes


def plot_latent(model: Any, x: Any, ax: Axes | None = None, title: str = "data in latent space, z = f(x)",
                bounds: Any = None) -> LatentPlot:
    """Data mapped to latent space, z = f(x), over the contours of N(0, I) at radii 1, 2, 3.

    If the flow fits, the points look standard normal: about 39 %, 86 % and
    99 % of them inside the three circles (P(‖z‖ ≤ r) = 1 − exp(−r²/2) in 2-D).
    ``bounds`` ((xmin, xmax), (ymin, ymax)) defaults to [−4, 4]².
    """
    _check_planar(model, "plot_latent")
    bounds = DEFAULT_BOUNDS if bounds is None else bounds
    z = model.forward(x)[0]
    ax = _axes_or_new(ax)
    scatter = _scatter(ax, z)
    xx, yy, density = density_grid(StandardNormal(2).log_prob, bounds, 200)
    levels = np.exp(-0.5 * np.array([3.0, 2.0, 1.0]) ** 2) / (2.0 * np.pi)  # N(0, I) at ‖z‖ = 3, 2, 1
    contours = ax.contour(xx, yy, density, levels=levels, colors="k", linewidths=0.8)
    ax.set_title(title)
    _square(ax, bounds)
    return LatentPlot(ax, z, scatter, contours)


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

def animate_flow(model: Any, path: str | os.PathLike, n: int = 1500, rng: RngLike = None, fps: float = 2.0,
                 color_by: int = 1, dpi: int = 80) -> list[np.ndarray]:
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
