"""What the pictures share: result types, the figure standard, windows, grids and paths.

The figure standard (every function of :mod:`nflows_np.plotting` follows it):

* axes name their space: x₁, x₂ for data space, z₁, z₂ for latent space (:func:`label_space`);
* 2-D panels have an equal aspect;
* a density is drawn with a colourbar, or the caption states the shared scale;
* grid lines and circles have a legend;
* figures render at ``STYLE["figure.dpi"]`` ≥ 100 with 10 pt text (:func:`use_style`);
* the panels of a flow's steps are titled "after g_k".
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from nflows_np.base import RngLike, as_generator, check_array, check_int
from nflows_np.composition import FlowModel

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


STYLE = {"figure.dpi": 100, "savefig.dpi": 100, "font.size": 10, "axes.titlesize": 10, "legend.fontsize": 8}
SPACES = {"x": ("x₁", "x₂"), "z": ("z₁", "z₂")}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's rcParams (readable size: dpi 100, 10 pt)."""
    plt.rcParams.update(STYLE)


def label_space(ax: Axes, space: str | None) -> None:
    """Label the axes with the coordinates of ``space``: ``"x"`` (x₁, x₂), ``"z"`` (z₁, z₂), or None (unchanged)."""
    if space is None:
        return
    if space not in SPACES:
        raise ValueError(f"label_space: space must be 'x', 'z' or None, got {space!r}")
    ax.set_xlabel(SPACES[space][0])
    ax.set_ylabel(SPACES[space][1])


def add_colorbar(artist: Any, ax: Axes, label: str) -> Any:
    """A colourbar for ``artist`` beside ``ax``, labelled ``label``; returns it."""
    return ax.figure.colorbar(artist, ax=ax, label=label, shrink=0.8)


# -- shared helpers -----------------------------------------------------------------

def new_axes(count: int, ncols: int | None = None, inches: float = PANEL_INCHES) -> np.ndarray:
    """``count`` fresh Axes in one new figure, in rows of at most ``ncols`` (default: one row), each ``inches`` wide.

    The rows are balanced (9 panels in rows of at most 6 make two rows of 5 and 4, not 6 and 3), and
    unused slots are removed, so no empty panel is drawn.
    """
    ncols = count if ncols is None else min(count, ncols)
    nrows = math.ceil(count / ncols)
    ncols = math.ceil(count / nrows)
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


def _check_planar(model: FlowModel, who: str) -> None:
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


def generative_steps(model: FlowModel, z: np.ndarray) -> list[np.ndarray]:
    """The path of ``z`` through the generative direction, layer by layer.

    Returns the K + 1 arrays ``[z, g_K(z), g_{K−1}(g_K(z)), …, x = g(z)]`` for
    ``model.layers = [f_1, …, f_K]`` (g_k = f_k⁻¹): the points the slide
    "Example of a 4-step flow" draws.
    """
    steps = [check_array(z, model.dim, "generative_steps", "z")]
    for layer in reversed(model.layers):
        steps.append(layer.inverse(steps[-1])[0])
    return steps


def _step_titles(model: FlowModel) -> list[str]:
    """Panel titles for ``generative_steps``: the base, then 'after g_k (LayerName)' for k = K … 1."""
    count = len(model.layers)
    return ["base z ~ p(z)"] + [f"after g$_{{{k}}}$ ({model.layers[k - 1].name})" for k in range(count, 0, -1)]


def _scatter(ax: Axes, points: np.ndarray, colour: Any = None, size: float = 3.0) -> Any:
    """Small dots; ``colour`` is None, a colour string, or (N,) values mapped through ``COLOUR_MAP``."""
    if colour is None or isinstance(colour, str):
        return ax.scatter(points[:, 0], points[:, 1], s=size, c=colour or "C0", alpha=0.6, linewidths=0)
    low, high = np.percentile(colour, [2.0, 98.0])  # the full range would leave most points mid-colour
    return ax.scatter(points[:, 0], points[:, 1], s=size, c=colour, cmap=COLOUR_MAP, vmin=low, vmax=high,
                      alpha=0.8, linewidths=0)


def _base_draws(model: FlowModel, n: int, rng: RngLike) -> np.ndarray:
    return model.base.sample(n, as_generator(rng))
