"""Pictures of 2-D flows: densities, samples, how a flow moves space, training curves.

Every function draws into the Axes it is given (``ax=`` / ``axes=``), or into
a new figure when given none, and returns what it drew (artists, and the
arrays behind them), so a caller or a test can check the picture's numbers.
Nothing here calls ``plt.show()``; everything works headless (``MPLBACKEND=Agg``).

Directions follow the lecture: ``model.forward`` is f (x → z), ``model.inverse``
is g = f⁻¹ (z → x), and for ``model.layers = [f_1, …, f_K]`` sampling applies
g_K first: x = g_1 ∘ … ∘ g_K(z).

The figure standard every function follows (axes naming x₁/x₂ or z₁/z₂, equal aspect,
colourbars or a stated shared scale, legends for grid lines and circles, dpi ≥ 100,
"after g_k" titles) is described in :mod:`nflows_np.plotting.common`; notebooks call
:func:`use_style` once.
"""
from __future__ import annotations

from nflows_np.plotting.common import (
                                       STYLE,
                                       Comparison,
                                       DensityPlot,
                                       GridDeformation,
                                       HistoryPlot,
                                       LatentPlot,
                                       add_colorbar,
                                       density_grid,
                                       generative_steps,
                                       label_space,
                                       new_axes,
                                       use_style,
)
from nflows_np.plotting.curves import animate_flow, plot_history
from nflows_np.plotting.pictures import (
                                       plot_coloured_samples,
                                       plot_density,
                                       plot_flow_steps,
                                       plot_grid_deformation,
                                       plot_latent,
                                       plot_samples,
                                       plot_target_vs_model,
)

__all__ = [
                                       "STYLE",
                                       "Comparison",
                                       "DensityPlot",
                                       "GridDeformation",
                                       "HistoryPlot",
                                       "LatentPlot",
                                       "add_colorbar",
                                       "animate_flow",
                                       "density_grid",
                                       "generative_steps",
                                       "label_space",
                                       "new_axes",
                                       "plot_coloured_samples",
                                       "plot_density",
                                       "plot_flow_steps",
                                       "plot_grid_deformation",
                                       "plot_history",
                                       "plot_latent",
                                       "plot_samples",
                                       "plot_target_vs_model",
                                       "use_style",
]
