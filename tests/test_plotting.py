"""nf.plotting draws what it claims, headless: each picture's numbers are checked
against the flow computed independently (densities to 1e-12, mapped points to 1e-12)."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import nflows_np as nf
from nflows_np import datasets, models, plotting, targets, train

TOL = 1e-12  # the pictures hold the library's own numbers: only round-off may differ


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    """No function may call plt.show(); every figure is closed after the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("plotting called plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


@pytest.fixture
def model():
    """A 4-layer 2-D flow away from the identity: RealNVP couplings with random weights, a Reverse, a scaling."""
    rng = np.random.default_rng(0)
    flow = models.realnvp(num_layers=2, hidden=(8,), rng=rng)
    scale = nf.ElementwiseAffine(2)
    layers = [flow.layers[0], nf.Reverse(2), flow.layers[1], scale]
    built = nf.FlowModel(layers)
    for value in built.params.values():
        value[...] = 0.3 * rng.standard_normal(value.shape)
    return built


def grid_points(bounds, resolution):
    (x_lo, x_hi), (y_lo, y_hi) = bounds
    xs, ys = np.linspace(x_lo, x_hi, resolution), np.linspace(y_lo, y_hi, resolution)
    return np.array([[x, y] for y in ys for x in xs])  # row i of the grid has y = ys[i]


def assert_close(got, expected, what, tol=TOL):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    error = np.abs(got - expected)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    assert np.all(error <= tol), f"{what}: max error {error.max():.3e} at {worst} (got {got[worst]}, expected {expected[worst]})"


# -- densities and samples ---------------------------------------------------------------

@pytest.mark.parametrize("which", ["target", "model", "dataset"])
def test_heatmap_is_exp_log_prob_on_its_grid(which, model):
    log_prob = {"target": targets.get("U1").log_prob, "model": model.log_prob,
                "dataset": lambda x: datasets.log_prob("moons", x)}[which]
    bounds, resolution = ((-4.0, 4.0), (-3.0, 3.0)), 41
    drawn = plotting.plot_density(log_prob, bounds, resolution)
    expected = np.exp(log_prob(grid_points(bounds, resolution))).reshape(resolution, resolution)
    assert_close(drawn.density, expected, f"{which} density")
    assert_close(np.asarray(drawn.mesh.get_array()).reshape(resolution, resolution), expected, f"{which} QuadMesh array")
    assert_close(drawn.xx[0], np.linspace(-4, 4, resolution), "grid x")
    assert_close(drawn.yy[:, 0], np.linspace(-3, 3, resolution), "grid y")
    assert drawn.ax.get_xlim() == (-4.0, 4.0) and drawn.ax.get_ylim() == (-3.0, 3.0)


def test_density_grid_rejects_bad_bounds():
    with pytest.raises(ValueError, match="bounds"):
        plotting.density_grid(targets.get("U1").log_prob, ((1, -1), (0, 1)))


def test_samples_scatter_and_hist2d():
    x = np.random.default_rng(1).standard_normal((500, 2))
    scatter = plotting.plot_samples(x)
    assert_close(scatter.get_offsets(), x, "scatter offsets")
    bounds = ((-1.0, 1.0), (-2.0, 2.0))
    mesh = plotting.plot_samples(x, kind="hist2d", bounds=bounds, bins=10)
    inside = np.sum((np.abs(x[:, 0]) <= 1) & (np.abs(x[:, 1]) <= 2))
    assert np.asarray(mesh.get_array()).sum() == inside
    with pytest.raises(ValueError, match="kind"):
        plotting.plot_samples(x, kind="violin")


def test_target_vs_model_three_panels(model):
    target = targets.get("U1")
    shown = plotting.plot_target_vs_model(target.log_prob, model, target.bounds, n=300, rng=5, resolution=30)
    assert len(shown.axes) == 3 and len(shown.axes[0].figure.axes) == 5   # three panels, two colourbars
    assert [ax.get_xlabel() for ax in shown.axes] == ["x₁"] * 3
    points = grid_points(target.bounds, 30)
    assert_close(shown.target.density.ravel(), np.exp(target.log_prob(points)), "target panel")
    assert_close(shown.model.density.ravel(), np.exp(model.log_prob(points)), "model panel")
    assert_close(shown.samples.get_offsets(), model.sample(300, np.random.default_rng(5)), "sample panel")


# -- how the flow moves space ----------------------------------------------------------------

@pytest.mark.parametrize("direction", ["inverse", "forward"])
def test_grid_deformation_lines_are_the_flow_of_the_grid(direction, model):
    drawn = plotting.plot_grid_deformation(model, ((-2.0, 2.0), (-1.0, 3.0)), direction, n_lines=5, resolution=20)
    assert drawn.source.shape == (10, 20, 2) and len(drawn.lines) == 10
    assert np.all(drawn.source[:5, :, 0] == drawn.source[:5, :1, 0])  # lines of constant first coordinate
    assert np.all(drawn.source[5:, :, 1] == drawn.source[5:, :1, 1])  # then of constant second coordinate
    assert_close(drawn.source[0, [0, -1]], [[-2.0, -1.0], [-2.0, 3.0]], "first grid line's ends")
    push = model.inverse if direction == "inverse" else model.forward
    for source, line in zip(drawn.source, drawn.lines):
        assert_close(line.get_xydata(), push(source)[0], f"{direction} image of a grid line")


def test_coloured_samples_are_model_samples_coloured_by_z2(model):
    artist = plotting.plot_coloured_samples(model, 400, rng=3, color_by=1)
    z = model.base.sample(400, np.random.default_rng(3))
    assert_close(artist.get_offsets(), model.inverse(z)[0], "coloured samples")
    assert_close(artist.get_array(), z[:, 1], "colours")


def test_flow_steps_has_k_plus_one_panels_layer_by_layer(model):
    axes = plotting.plot_flow_steps(model, 300, rng=4)
    count = len(model.layers) + 1
    assert len(axes) == count and len(axes[0].figure.axes) == count + 1   # the panels and one colourbar
    assert len({ax.get_xlim() for ax in axes}) == 1                        # one window for every step
    points = model.base.sample(300, np.random.default_rng(4))
    for k, ax in enumerate(axes):
        if k:
            points = model.layers[-k].inverse(points)[0]  # panel k: after g_K, …, g_{K−k+1}
        assert_close(ax.collections[0].get_offsets(), points, f"panel {k}")
    assert_close(points, model.sample(300, np.random.default_rng(4)), "last panel = samples")


def test_latent_is_f_of_the_data_over_normal_contours(model):
    x = datasets.sample("moons", 300, 6)
    drawn = plotting.plot_latent(model, x)
    assert_close(drawn.scatter.get_offsets(), model.forward(x)[0], "latent points")
    radii = np.array([3.0, 2.0, 1.0])
    assert_close(drawn.contours.levels, np.exp(-radii**2 / 2) / (2 * np.pi), "contour levels (N(0, I) at r = 3, 2, 1)")


def test_plotting_refuses_non_2d_models():
    with pytest.raises(ValueError, match="2-D"):
        plotting.plot_flow_steps(nf.FlowModel([nf.ElementwiseAffine(3)]), 10, 0)


# -- training curves and the animation ------------------------------------------------------------

@pytest.fixture(scope="module")
def history():
    flow = models.realnvp(num_layers=2, hidden=(8,), rng=0)
    test = datasets.sample("moons", 200, 1)
    return train.fit_mle(flow, lambda n, rng: datasets.sample("moons", n, rng), steps=40, batch_size=64,
                         test_data=test, eval_every=10, rng=2, progress=False)


def test_history_entropy_line_and_test_points(history):
    entropy = datasets.ENTROPY["moons"]
    drawn = plotting.plot_history(history, entropy=entropy)
    assert list(drawn.reference.get_ydata()) == [entropy, entropy]
    assert_close(drawn.loss.get_ydata(), history.loss, "loss curve")
    assert list(drawn.evaluations.get_xdata()) == history.eval_steps
    assert_close(drawn.evaluations.get_ydata(), history.eval["test_nll"], "test NLL points")


def test_history_from_json_with_minus_log_z_line(history):
    record = json.loads(json.dumps(history.to_dict()))
    log_z = targets.get("U1").log_z
    drawn = plotting.plot_history(record, log_z=log_z)
    assert list(drawn.reference.get_ydata()) == [-log_z, -log_z]
    with pytest.raises(ValueError, match="not both"):
        plotting.plot_history(record, entropy=1.0, log_z=log_z)


def test_gif_has_one_frame_per_layer_plus_base(model, tmp_path):
    path = tmp_path / "flow.gif"
    steps = plotting.animate_flow(model, path, n=200, rng=7)
    with Image.open(path) as gif:
        frames = gif.n_frames
    assert frames == len(steps) == len(model.layers) + 1
    assert_close(steps[-1], model.sample(200, np.random.default_rng(7)), "last frame = samples")


# -- the figure standard ------------------------------------------------------------------

def test_use_style_sets_readable_dpi_and_font(monkeypatch):
    monkeypatch.setitem(plt.rcParams, "figure.dpi", 72)
    plotting.use_style()
    assert plt.rcParams["figure.dpi"] >= 100 and plt.rcParams["font.size"] >= 10


def test_axes_name_their_space(model):
    density = plotting.plot_density(model.log_prob, resolution=20)
    assert (density.ax.get_xlabel(), density.ax.get_ylabel()) == ("x₁", "x₂")
    assert plotting.plot_density(model.base.log_prob, resolution=20, space="z").ax.get_xlabel() == "z₁"
    assert plotting.plot_latent(model, datasets.sample("moons", 50, 6)).ax.get_ylabel() == "z₂"
    drawn = plotting.plot_grid_deformation(model, n_lines=3, resolution=10, direction="forward")
    assert drawn.ax.get_xlabel() == "z₁"                                     # the image of an x-grid lives in z
    assert [t.get_text() for t in drawn.ax.get_legend().get_texts()] == ["x₁ = const", "x₂ = const"]
    with pytest.raises(ValueError, match="space"):
        plotting.plot_density(model.log_prob, resolution=20, space="y")


def test_density_colorbar_on_request(model):
    density = plotting.plot_density(model.log_prob, resolution=20, colorbar=True)
    assert len(density.ax.figure.axes) == 2 and density.ax.figure.axes[1].get_ylabel() == "density"


def test_flow_steps_titles_say_after_g_k_and_leave_no_empty_panel(model):
    axes = plotting.plot_flow_steps(model, 100, rng=4, ncols=3)               # 5 panels in rows of ≤ 3: 3 + 2
    titles = [ax.get_title() for ax in axes]
    assert titles[0].startswith("base") and all(t.startswith("after g") for t in titles[1:])
    assert titles[1].startswith("after g$_{4}$")                             # g_K first
    assert len(axes[0].figure.axes) == len(axes) + 1                         # no empty slot: panels + colourbar
    assert axes[0].get_xlabel() == "z₁" and axes[-1].get_xlabel() == "x₁"
    assert len(plotting.new_axes(9, ncols=6)[0].figure.axes) == 9
