"""Pictures of 2-D densities, samples, and how a flow moves space (the figure standard: see ``common``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from nflows_np.base import RngLike, as_generator, check_array
from nflows_np.composition import FlowModel
from nflows_np.distributions import StandardNormal
from nflows_np.plotting.common import (
    DEFAULT_BOUNDS,
    DENSITY_MAP,
    Bounds,
    Comparison,
    DensityPlot,
    GridDeformation,
    LatentPlot,
    LogProb,
    _axes_or_new,
    _base_draws,
    _check_bounds,
    _check_planar,
    _given_axes,
    _sample_bounds,
    _scatter,
    _square,
    _step_titles,
    add_colorbar,
    density_grid,
    generative_steps,
    label_space,
)

# -- densities and samples ------------------------------------------------------------

def plot_density(log_prob: LogProb, bounds: Bounds = DEFAULT_BOUNDS, resolution: int = 200, ax: Axes | None = None,
                 contours: bool = True, title: str | None = None, space: str | None = "x",
                 colorbar: bool = False) -> DensityPlot:
    """Heatmap of the density exp(log_prob) on a grid (see :func:`density_grid`), with optional contours.

    ``contours`` draws six white lines at equally spaced density levels between the grid's
    minimum and maximum. ``space`` names the axes (``"x"``: x₁, x₂; ``"z"``: z₁, z₂; None: no
    labels); ``colorbar`` adds the colour scale (without it, say in the caption which scale the
    panels share, or that each has its own).

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
    if colorbar:
        add_colorbar(mesh, ax, "density")
    label_space(ax, space)
    _square(ax, _check_bounds(bounds, "plot_density"))
    return DensityPlot(ax, xx, yy, density, mesh)


def plot_samples(x: Any, ax: Axes | None = None, kind: str = "scatter", bounds: Bounds | None = None,
                 color: Any = None, bins: int = 100, space: str | None = "x") -> Any:
    """Samples as a scatter plot or a 2-D histogram.

    Parameters
    ----------
    x : (N, 2) array
    kind : {"scatter", "hist2d"}
    bounds : ((xmin, xmax), (ymin, ymax)), optional
        The window (and the histogram's range); default: fit the samples.
    color : str or (N,) array, optional
        A matplotlib colour string, or values shown through a colour map (scatter only).
    space : {"x", "z", None}
        The axis labels: x₁, x₂ or z₁, z₂ (None: unlabelled).

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
    label_space(ax, space)
    _square(ax, bounds)
    return artist


def plot_target_vs_model(target_log_prob: LogProb, model: FlowModel, bounds: Bounds = DEFAULT_BOUNDS,
                         axes: Sequence[Axes] | None = None, n: int = 2000, rng: RngLike = None,
                         resolution: int = 200) -> Comparison:
    """Three panels: the target density | the model density p(x|θ) | n model samples x = g(z).

    The target may be unnormalised; the two density panels share one colour scale when both
    are normalised (the model's is), each with its colourbar.
    """
    _check_planar(model, "plot_target_vs_model")
    axes = _given_axes(axes, 3, "plot_target_vs_model")
    target = plot_density(target_log_prob, bounds, resolution, axes[0], title="target", colorbar=True)
    fitted = plot_density(model.log_prob, bounds, resolution, axes[1], title="model p(x|θ)", colorbar=True)
    samples = plot_samples(model.sample(n, as_generator(rng)), axes[2], bounds=bounds)
    axes[2].set_title("model samples x = g(z)")
    return Comparison(axes, target, fitted, samples)


# -- how a flow moves space -------------------------------------------------------------

def plot_grid_deformation(model: FlowModel, bounds: Bounds = ((-3.0, 3.0), (-3.0, 3.0)), direction: str = "inverse",
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
    source_space, image_space = ("z", "x") if direction == "inverse" else ("x", "z")
    label_space(ax, image_space)
    ax.legend(handles=[Line2D([], [], color="C0", lw=0.8, label=f"{source_space}₁ = const"),
                       Line2D([], [], color="C3", lw=0.8, label=f"{source_space}₂ = const")],
              loc="upper right", fontsize=7, framealpha=0.8)
    _square(ax, _sample_bounds([image.reshape(-1, 2)], margin=0.05, tail=0.0))
    return GridDeformation(ax, source, image, lines)


def plot_coloured_samples(model: FlowModel, n: int = 2000, rng: RngLike = None, ax: Axes | None = None,
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
    label_space(ax, "x")
    _square(ax, _sample_bounds([x]))
    return artist


def plot_flow_steps(model: FlowModel, n: int = 1000, rng: RngLike = None, axes: Sequence[Axes] | None = None,
                    color_by: int = 1, ncols: int = 6, same_window: bool = True) -> np.ndarray:
    """The slide "Example of a K-step flow": base samples, then after g_K, g_{K−1}, …, g_1.

    K + 1 panels (K = ``len(model.layers)``), each sample coloured by its base
    coordinate z[color_by] throughout, so one can follow the points. Returns
    the K + 1 Axes; panel k holds ``generative_steps(model, z)[k]``. With ``same_window`` every panel
    shows the same square window (holding all steps), so the axes do not jump from panel to panel;
    a colourbar beside the last panel says which base coordinate the colours are.
    """
    _check_planar(model, "plot_flow_steps")
    z = _base_draws(model, n, rng)
    steps = generative_steps(model, z)
    axes = _given_axes(axes, len(steps), "plot_flow_steps", ncols, inches=2.4)
    window = _sample_bounds(steps) if same_window else None
    for k, (ax, points, title) in enumerate(zip(axes, steps, _step_titles(model))):
        artist = _scatter(ax, points, z[:, color_by])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        label_space(ax, "z" if k == 0 else "x" if k == len(steps) - 1 else None)
        _square(ax, window or _sample_bounds([points]))
    add_colorbar(artist, axes[-1], f"colour: z$_{{{color_by + 1}}}$ of the base sample")
    return axes


def plot_latent(model: FlowModel, x: Any, ax: Axes | None = None, title: str = "data in latent space, z = f(x)",
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
    ax.legend(handles=[Line2D([], [], color="k", lw=0.8, label="N(0, I): ‖z‖ = 1, 2, 3")], loc="upper right",
              fontsize=7, framealpha=0.8)
    ax.set_title(title)
    label_space(ax, "z")
    _square(ax, bounds)
    return LatentPlot(ax, z, scatter, contours)
